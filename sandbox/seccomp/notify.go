package seccomp

import (
	"strconv"
	"time"
)

// Seccomp user notification: WithNotify turns the calls a profile denies by
// default into SCMP_ACT_NOTIFY, and the Agent answers them on behalf of the
// kernel. It is an observer first: trial mode learns which denied syscalls a
// server tries, with decoded arguments, and the answer stays a denial unless
// the caller's decide function says otherwise.
//
// Allow answers with SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel then runs
// the call with whatever arguments are in the process's memory at that
// moment, which another thread of the process can change after the agent
// looked at them (seccomp_unotify(2), "Design goals; use of
// SECCOMP_USER_NOTIF_FLAG_CONTINUE"). Allow is therefore a decision about the
// syscall number, never about pointed-to arguments such as a mount's target:
// use it to observe, or for calls that are harmless with any arguments.

// Event is one notified syscall as the agent saw it.
type Event struct {
	Syscall   string    // name on the native architecture, or "syscall_NR"
	Nr        int       // syscall number
	Pid       uint32    // calling thread, in the agent's pid namespace
	Args      [6]uint64 // raw arguments
	Detail    string    // key arguments decoded, e.g. "AF_PACKET SOCK_RAW" or `target="/tmp" fstype="tmpfs"`
	Time      time.Time // when the agent received it
	Container string    // the container's id, from the state runc sent
}

// Decision is the agent's answer to one notified syscall. The zero value
// denies, so that a forgotten case fails closed.
type Decision int

const (
	// Deny makes the syscall fail with EPERM, as the profile's default
	// would have.
	Deny Decision = iota
	// Allow lets the kernel run the syscall. It is sound for observation
	// and for calls harmless with any arguments only: the process can
	// change pointed-to arguments after the agent decided (see above).
	Allow
)

func (d Decision) String() string {
	switch d {
	case Deny:
		return "deny"
	case Allow:
		return "allow"
	}
	return "decision(" + strconv.Itoa(int(d)) + ")"
}

// AgentOptions tune an Agent. The zero value is usable.
type AgentOptions struct {
	// QueueSize bounds the events waiting for OnEvent; 0 means 1024.
	// When the queue is full further events are counted as dropped: the
	// agent never makes a syscall wait for a slow consumer.
	QueueSize int
	// OnEvent, if set, is called for each event from one goroutine, in
	// the order the events were answered.
	OnEvent func(Event)
}
