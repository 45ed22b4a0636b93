// Package observe is the narrow API through which `mcpbox trial` watches a
// session: the hooks a session calls (egress decisions, the server's
// identity, notified syscalls, cgroup usage) and the cgroup sampler that
// produces Usage.
//
// Both launcher (which runs the session and calls the hooks) and
// launcher/trial (which sets them) import it, so it must import neither,
// nor cmd: it sits below both. It does not run or stop anything.
package observe

import (
	"time"

	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/sandbox/egress"
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// Hooks watch a session for `mcpbox trial`: what the server's cgroup
// used, every egress attempt, the syscalls the profile denies and, with
// Exec, the programs it ran. Nil fields watch nothing.
type Hooks struct {
	// OnEgress receives every egress decision. Setting it gives the server
	// mcpbox's egress proxy even when nothing is allowed, so that its
	// attempts are seen (and refused) instead of failing unseen.
	OnEgress func(egress.Event)
	// OnUsage receives the cgroup's figures every UsageEvery (default
	// 100 ms) while the server runs, and once more at its end.
	OnUsage    func(Usage)
	UsageEvery time.Duration
	// OnIdentity receives the server's identity (package and version)
	// once it is resolved.
	OnIdentity func(broker.Identity)
	// Syscalls, when set, makes every syscall the profile denies outright
	// a user notification that mcpbox's agent answers with Syscalls'
	// decision; OnSyscall then receives each of them (under load, some
	// are only counted).
	Syscalls  func(seccomp.Event) seccomp.Decision
	OnSyscall func(seccomp.Event)
	// Exec also notifies execve and execveat (Syscalls must allow them),
	// so that every program the sandbox runs is seen.
	Exec bool
	// Files also notifies opens for writing and the calls that create,
	// delete or rename files (Syscalls must allow them: runc's own open
	// of its exec fifo is one), so that every attempt to change a file is
	// seen, refused by the sandbox's permissions or not.
	Files bool
	// Reads notifies every open, reads included (Files must be set too),
	// so that reads of secrets such as ~/.ssh are seen.
	Reads bool
}

// Usage is what a sandbox's cgroup has used.
type Usage struct {
	PeakMemory uint64        // bytes, the cgroup's high-water mark
	Pids       uint64        // tasks now
	CPU        time.Duration // CPU time used so far
}
