package launcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/backend"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/userns"
)

// The runtimes a session can run in (Options.Runtime).
const (
	RuntimeAuto       = backend.Auto
	RuntimeContainerd = backend.Containerd
	RuntimeRootless   = backend.Rootless
)

// isRootless reports whether sessions run in the rootless runtime: this
// process is mcpbox again inside its user namespace (see userns), where it
// is root of its own namespaces but nobody's root on the host.
func (o Options) isRootless() bool { return o.Runtime == RuntimeRootless }

// openRootless opens the rootless runtime and moves the run directory
// under its state directory when it was left at the root default.
func openRootless(ctx context.Context, opts Options) (*rootless.Runtime, error) {
	c, ok := userns.Inside()
	if !ok {
		return nil, fmt.Errorf("launcher: %w: run mcpbox itself with --runtime rootless, not the launcher", rootless.ErrNotInUserNS)
	}
	loc, err := RootlessState()
	if err != nil {
		return nil, err
	}
	opts.Logger.Info("rootless state directory", "dir", loc.Dir, "why", loc.Why())
	rt, err := rootless.Open(ctx, rootless.Options{StateDir: filepath.Join(loc.Dir, "runc"), Caller: c})
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	return rt, nil
}

// rootlessRunDir is the sessions' directory of the rootless runtime.
func rootlessRunDir() (string, error) {
	loc, err := RootlessState()
	if err != nil {
		return "", err
	}
	return loc.Sessions()
}

// chownForSandbox gives a file mcpbox made for the server to the server's
// user, uid:gid as the sandbox sees them. In the rootless runtime that is
// the id of mcpbox's namespace that the container maps them to: nobody's
// (userns.NSNobody), or the caller, who owns the file already.
func (o Options) chownForSandbox(path string, uid, gid uint32) error {
	if !o.isRootless() {
		return os.Chown(path, int(uid), int(gid))
	}
	return os.Chown(path, userns.NSID(uid), userns.NSID(gid))
}

// announceUnenforced says which limits the rootless runtime cannot
// enforce, and how to fix it; with RequireLimits it refuses instead.
func (s *session) announceUnenforced(missing []string, fix string) error {
	if len(missing) == 0 {
		return nil
	}
	msg := fmt.Sprintf("limits not enforced: %s (%s)", strings.Join(missing, ", "), fix)
	if s.job.requireLimits {
		return &UsageError{Err: fmt.Errorf("rootless: %s; the server is not started because limits are required", msg)}
	}
	fmt.Fprintf(s.opts.Stderr, "mcpbox: rootless: %s\n", msg)
	return nil
}

// usageCgroup is the cgroup whose usage a trial samples: the container's,
// where the runtime says it put it (the rootless runtime moves it under the
// caller's delegated subtree), else the one the spec names; "" when the
// container has none of its own to sample.
func (s *session) usageCgroup() string {
	if c, ok := s.container.(interface{ Cgroup() string }); ok {
		return c.Cgroup()
	}
	return s.cgroupsPath()
}
