package launcher

import (
	"errors"
	"fmt"

	ctrd "github.com/mcpbox/mcpbox/launcher/runtime/containerd"
)

// ErrContainerdUnreachable is returned when containerd does not answer on
// its socket. The message says how to fix it.
var ErrContainerdUnreachable = ctrd.ErrUnreachable

// ExitError reports how a session ended when the server did not exit 0, or
// when mcpbox stopped it. Code is what mcpbox should exit with: the server's
// own code, or 128+n for a server killed by signal n.
type ExitError struct {
	Code int
	// Reason says why, when there is more to say than the code (an OOM
	// kill, a message over the size limit).
	Reason string
}

func (e *ExitError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("server exited with code %d: %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("server exited with code %d", e.Code)
}

// UsageError is bad input found before anything was started: a command that
// does not exist, a mount source that is missing, a malformed flag value.
type UsageError struct {
	Flag string // the flag at fault, "" for the command itself
	Err  error
}

func (e *UsageError) Error() string {
	if e.Flag == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("--%s: %v", e.Flag, e.Err)
}

func (e *UsageError) Unwrap() error { return e.Err }

var errNotAPackage = errors.New("not a package command: use the npx/uvx form, e.g. `-- npx -y @scope/server` or `-- uvx some-server`")
