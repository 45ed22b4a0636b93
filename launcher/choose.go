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

// RootlessStateDir is where the rootless runtime keeps its state:
// $XDG_RUNTIME_DIR/mcpbox when XDG_RUNTIME_DIR is the caller's own 0700
// directory, else /tmp/mcpbox-UID; created 0700, and refused when it
// belongs to someone else (see backend.StateDir).
func RootlessStateDir() (string, error) {
	return backend.StateDir(os.Getenv("XDG_RUNTIME_DIR"))
}
