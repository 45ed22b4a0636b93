package launcher

import (
	"context"
	"os"

	"github.com/mcpbox/mcpbox/launcher/backend"
)

// Choice is the runtime a session runs in and why (see backend.Choice).
type Choice = backend.Choice

// ChooseRuntime resolves opts.Runtime: "auto" (or "") is containerd when
// the caller can use its socket — it exists, we may open it (connect(2)
// succeeds) and containerd answers — otherwise rootless; the host's root
// always gets containerd. An explicit "containerd" is not probed: an
// unusable socket stays the session's ErrContainerdUnreachable, with its
// fix. An explicit "rootless" is refused to the host's root
// (backend.ErrRootlessAsRoot). The Why is for doctor and the info log
// ("uid 1000 may not open /run/containerd/containerd.sock").
func ChooseRuntime(ctx context.Context, opts Options) (Choice, error) {
	address := opts.Address
	if address == "" {
		address = DefaultAddress
	}
	return backend.Choose(ctx, opts.Runtime, address)
}

// RootlessState is where the rootless runtime keeps its state, and why:
// $XDG_RUNTIME_DIR/mcpbox, else /tmp/mcpbox-UID, else (someone else made
// that first) $XDG_STATE_HOME/mcpbox/run; sessions and gc find the same
// one (see backend.StateDir).
func RootlessState() (backend.StateLocation, error) {
	return backend.StateDir(os.Getenv("XDG_RUNTIME_DIR"), DefaultDirs().State)
}
