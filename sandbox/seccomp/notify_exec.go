package seccomp

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithNotifyExec returns a copy of p, which must already notify (see
// WithNotify), in which execve and execveat are notified instead of
// allowed, so that an agent sees every program the sandbox runs, however
// short-lived; its Allow answer lets each run. runc's own execve of the
// container's first process is notified too, after runc has handed the
// notification fd over, so the agent is there to answer it.
func WithNotifyExec(p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	if p == nil || p.ListenerPath == "" {
		return nil, fmt.Errorf("seccomp: notify exec: the profile has no listener: apply WithNotify first")
	}
	exec := []string{"execve", "execveat"}
	q := copyProfile(p)
	var kept []specs.LinuxSyscall
	for _, r := range q.Syscalls {
		has := slices.ContainsFunc(r.Names, func(n string) bool { return slices.Contains(exec, n) })
		if !has {
			kept = append(kept, r)
			continue
		}
		if r.Action != specs.ActAllow || len(r.Args) > 0 {
			return nil, fmt.Errorf("seccomp: notify exec: %v has a %s rule with %d conditions: not a plain allow", r.Names, r.Action, len(r.Args))
		}
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return slices.Contains(exec, n) })
		if len(r.Names) > 0 {
			kept = append(kept, r)
		}
	}
	q.Syscalls = append(kept, specs.LinuxSyscall{Names: exec, Action: specs.ActNotify})
	return q, nil
}

// WithNotifyOpens returns a copy of p, which must already notify, in which
// every open and openat is notified, reads included, replacing whatever
// rules p had for them (the split WithFileNotify makes among them). An
// agent then sees every path the sandbox opens; its Allow answer lets each
// open run, and the sandbox's mounts and permissions decide it. Each open
// costs a round trip to the agent (about 12 µs), acceptable for a trial,
// not for a server in use.
func WithNotifyOpens(p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	if p == nil || p.ListenerPath == "" {
		return nil, fmt.Errorf("seccomp: notify opens: the profile has no listener: apply WithNotify first")
	}
	opens := []string{"open", "openat"}
	q := copyProfile(p)
	var kept []specs.LinuxSyscall
	for _, r := range q.Syscalls {
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return slices.Contains(opens, n) })
		if len(r.Names) > 0 {
			kept = append(kept, r)
		}
	}
	q.Syscalls = append(kept, specs.LinuxSyscall{Names: opens, Action: specs.ActNotify})
	return q, nil
}
