// Package cgroups finds, prepares and asks for the cgroup subtree under which
// a rootless session may put its container, so that runc can enforce the
// spec's memory, pids and cpu limits without root.
//
// runc in a user namespace uses its rootless cgroup manager: without a
// cgroupsPath it ignores cgroups, and with limits in the spec it then fails
// ("cannot set memory limit: container could not join or create cgroup").
// With a cgroupsPath it must be able to create that cgroup in every
// controller hierarchy it knows. This package says where that is possible
// (Find), makes it possible on cgroup v1 hosts once per boot as root
// (PrepareV1), and on cgroup v2 hosts asks the user's systemd for a delegated
// scope (StartScope).
//
// It does not create the session's own cgroup, write limits or remove
// cgroups: runc does, from the spec. It never falls back silently: a
// Delegation says which limit controllers it covers, and Missing names the
// rest.
package cgroups

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The limit controllers a session's spec may use.
const (
	Memory = "memory"
	Pids   = "pids"
	CPU    = "cpu"
)

// limitControllers is the order in which controllers are reported.
var limitControllers = []string{Memory, Pids, CPU}

// DefaultRoot is where cgroup file systems are mounted on every host mcpbox
// supports, and where runc looks for them.
const DefaultRoot = "/sys/fs/cgroup"

// ErrUnsupported is returned on systems without Linux cgroups.
var ErrUnsupported = errors.New("cgroups: only Linux has cgroups")

// Delegation is a cgroup subtree that a user may create session cgroups in.
type Delegation struct {
	// Parent is the cgroup under which a session may create its own, as
	// runc's linux.cgroupsPath takes it: absolute, relative to each
	// hierarchy's root on cgroup v1 and to the unified root on v2. A
	// session's cgroupsPath is Parent + "/" + its id. "" when nothing is
	// delegated.
	Parent string
	// Version is the cgroup version runc will use on this host: 1 (legacy
	// or hybrid) or 2 (unified); 0 when no cgroup file system is mounted.
	Version int
	// Controllers are the limit controllers (Memory, Pids, CPU) that work
	// under Parent, in that order.
	Controllers []string
	// How says, for messages, how the subtree came to be delegated, or,
	// when Parent is "", why nothing is.
	How string
	// Fix is what the user can do to get the limit controllers that are
	// missing; "" when nothing is missing or nothing can be done.
	Fix string
}

// Missing returns the controllers of want that limits cannot use under d, in
// the order of want, without repeats.
func (d Delegation) Missing(want []string) []string {
	var missing []string
	for _, c := range want {
		if (d.Parent == "" || !contains(d.Controllers, c)) && !contains(missing, c) {
			missing = append(missing, c)
		}
	}
	return missing
}

// Wanted returns the limit controllers that r sets a limit with, in the
// order Memory, Pids, CPU: what a spec needs delegated before runc accepts
// it in a user namespace.
func Wanted(r *specs.LinuxResources) []string {
	if r == nil {
		return nil
	}
	var want []string
	if r.Memory != nil && *r.Memory != (specs.LinuxMemory{}) {
		want = append(want, Memory)
	}
	if r.Pids != nil && r.Pids.Limit > 0 {
		want = append(want, Pids)
	}
	if r.CPU != nil {
		// Cpus and Mems belong to the cpuset controller, which runc
		// handles apart from the limits.
		c := *r.CPU
		c.Cpus, c.Mems = "", ""
		if c != (specs.LinuxCPU{}) {
			want = append(want, CPU)
		}
	}
	return want
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
