package launcher

import (
	"os"

	"github.com/mcpbox/mcpbox/launcher/backend"
)

// RootlessState is where the rootless runtime keeps its state, and why:
// $XDG_RUNTIME_DIR/mcpbox, else /tmp/mcpbox-UID, else (someone else made
// that first) $XDG_STATE_HOME/mcpbox/run; sessions and gc find the same
// one (see backend.StateDir).
func RootlessState() (backend.StateLocation, error) {
	return backend.StateDir(os.Getenv("XDG_RUNTIME_DIR"), DefaultDirs().State)
}
