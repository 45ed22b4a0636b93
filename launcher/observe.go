package launcher

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// notifySocket is the name of the seccomp agent's socket in a session dir.
const notifySocket = "seccomp.sock"

// startAgent listens for runc's seccomp notification fd and answers the
// session's notified syscalls: by opts.Observe's decision, or, for
// --report-violations, by denying each one and reporting it on stderr and
// in the audit log.
func (s *session) startAgent(audit io.Writer) (*seccomp.Agent, error) {
	decide := func(seccomp.Event) seccomp.Decision { return seccomp.Deny }
	var onEvent func(seccomp.Event)
	if o := s.opts.Observe; o != nil && o.Syscalls != nil {
		decide, onEvent = o.Syscalls, o.OnSyscall
	}
	if s.opts.ReportViolations {
		prev := onEvent
		onEvent = func(ev seccomp.Event) {
			fmt.Fprintf(s.opts.Stderr, "mcpbox: denied syscall %s %s (the profile does not allow it)\n", ev.Syscall, broker.EscapeHidden(ev.Detail))
			if audit != nil {
				audit.Write(deniedSyscallLine(ev))
			}
			if prev != nil {
				prev(ev)
			}
		}
	}
	a, err := seccomp.ListenAgent(filepath.Join(s.dir, notifySocket), decide, seccomp.AgentOptions{OnEvent: onEvent})
	if err != nil {
		return nil, fmt.Errorf("launcher: seccomp agent: %w", err)
	}
	return a, nil
}
