package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options say what Build changes in the default profile. The zero value
// asks for the default profile as it is.
type Options struct {
	// Allow are syscalls allowed beyond the default profile: a profile's
	// seccomp.allow (see WithAllowed for what is refused).
	Allow []string
	// DenyMemfd makes memfd_create fail with ENOSYS, for a sandbox that
	// cannot make memfds non-executable (see WithMemfdDenied).
	DenyMemfd bool
	// Listener is the absolute path of the socket on which runc hands the
	// notification fd to an agent (ListenAgent). With it, the calls the
	// profile denies are notified instead (WithNotify); "" notifies nothing.
	Listener string
	// NotifyExec also notifies execve and execveat (WithNotifyExec).
	NotifyExec bool
	// NotifyFiles also notifies the calls that change files
	// (WithFileNotify).
	NotifyFiles bool
	// NotifyReads notifies every open, reads included (WithNotifyOpens).
	NotifyReads bool
}

// Build returns the profile of one sandbox: Default, changed as opts say,
// after checking that the running kernel can enforce it and that it
// compiles the way runc will compile it. It fails closed: an error means
// the sandbox must not start, and its message says so.
func Build(opts Options) (*specs.LinuxSeccomp, error) {
	if err := CheckKernel(); err != nil {
		return nil, fmt.Errorf("seccomp cannot be enforced here, so the server is not started: %w", err)
	}
	p, err := Default()
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if len(opts.Allow) > 0 {
		if p, err = WithAllowed(p, opts.Allow...); err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
	}
	if opts.DenyMemfd {
		if p, err = WithMemfdDenied(p); err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
	}
	if p, err = withNotifications(p, opts); err != nil {
		return nil, fmt.Errorf("seccomp notification: %w", err)
	}
	if err := Validate(p); err != nil {
		if opts.Listener != "" {
			return nil, fmt.Errorf("seccomp profile with notification does not compile, so the server is not started: %w", err)
		}
		return nil, fmt.Errorf("seccomp profile does not compile, so the server is not started: %w", err)
	}
	return p, nil
}

// withNotifications applies the notification options to p, in the order
// they build on each other: the reads replace the open rules that the
// file notification split.
func withNotifications(p *specs.LinuxSeccomp, opts Options) (*specs.LinuxSeccomp, error) {
	if opts.Listener == "" {
		if opts.NotifyExec || opts.NotifyFiles || opts.NotifyReads {
			return nil, errors.New("seccomp: notify: exec, file or read notification needs a listener path")
		}
		return p, nil
	}
	p, _, err := WithNotify(p, opts.Listener)
	if err != nil {
		return nil, err
	}
	if opts.NotifyExec {
		if p, err = WithNotifyExec(p); err != nil {
			return nil, err
		}
	}
	if opts.NotifyFiles {
		if p, _, err = WithFileNotify(p); err != nil {
			return nil, err
		}
	}
	if opts.NotifyReads {
		if p, err = WithNotifyOpens(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}
