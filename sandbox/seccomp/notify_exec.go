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
//
// An ALLOW rule with conditions becomes a NOTIFY rule with the same
// conditions: the calls it does not match (execveat with AT_EMPTY_PATH in
// the default profile) keep failing with the default errno, unseen by the
// agent, as WithNotify leaves the denied variants of socket or clone.
func WithNotifyExec(p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	if p == nil || p.ListenerPath == "" {
		return nil, fmt.Errorf("seccomp: notify exec: the profile has no listener: apply WithNotify first")
	}
	exec := []string{"execve", "execveat"}
	isExec := func(n string) bool { return slices.Contains(exec, n) }
	q := copyProfile(p)
	var kept, notify []specs.LinuxSyscall
	var plain []string
	for _, r := range q.Syscalls {
		if !slices.ContainsFunc(r.Names, isExec) {
			kept = append(kept, r)
			continue
		}
		if r.Action != specs.ActAllow {
			return nil, fmt.Errorf("seccomp: notify exec: %v has a %s rule: only ALLOW rules can be turned into notifications", r.Names, r.Action)
		}
		for _, n := range r.Names {
			switch {
			case !isExec(n):
			case len(r.Args) == 0:
				if !slices.Contains(plain, n) {
					plain = append(plain, n)
				}
			default:
				notify = append(notify, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActNotify, Args: slices.Clone(r.Args)})
			}
		}
		r.Names = slices.DeleteFunc(r.Names, isExec)
		if len(r.Names) > 0 {
			kept = append(kept, r)
		}
	}
	if len(plain) > 0 {
		notify = append(notify, specs.LinuxSyscall{Names: plain, Action: specs.ActNotify})
	}
	q.Syscalls = append(kept, notify...)
	if err := check(q); err != nil {
		return nil, fmt.Errorf("seccomp: notify exec: %w", err)
	}
	return q, nil
}

// WithNotifyOpens returns a copy of p, which must already notify, in which
// every open and openat is notified, reads included, replacing whatever
// rules p had for them (the split WithFileNotify makes among them). An
// agent then sees every path the sandbox opens; its Allow answer lets each
// open run, and the sandbox's mounts and permissions decide it. Each open
// costs a round trip to the agent (about 12 µs), acceptable for a trial,
// not for a server in use.
//
// A call whose rules in p all carry its mode guard (no S_ISUID or S_ISGID,
// see modeArgs) keeps it on its NOTIFY rule: a set-user-ID mode fails with
// EPERM in the filter and never reaches the agent, whose Allow would let it
// run.
func WithNotifyOpens(p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	if p == nil || p.ListenerPath == "" {
		return nil, fmt.Errorf("seccomp: notify opens: the profile has no listener: apply WithNotify first")
	}
	opens := []string{"open", "openat"}
	isOpen := func(n string) bool { return slices.Contains(opens, n) }
	// rules and unguarded count, per open call, the rules naming it and
	// those without its guard.
	rules, unguarded := map[string]int{}, map[string]int{}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if !isOpen(n) {
				continue
			}
			rules[n]++
			if !hasModeGuard(n, r.Args) {
				unguarded[n]++
			}
		}
	}
	q := copyProfile(p)
	var kept []specs.LinuxSyscall
	for _, r := range q.Syscalls {
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), isOpen)
		if len(r.Names) > 0 {
			kept = append(kept, r)
		}
	}
	var plain []string
	for _, n := range opens {
		if g, _ := modeGuard(n); rules[n] > 0 && unguarded[n] == 0 {
			kept = append(kept, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActNotify, Args: []specs.LinuxSeccompArg{g}})
		} else {
			plain = append(plain, n)
		}
	}
	if len(plain) > 0 {
		kept = append(kept, specs.LinuxSyscall{Names: plain, Action: specs.ActNotify})
	}
	q.Syscalls = kept
	return q, nil
}
