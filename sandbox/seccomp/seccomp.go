// Package seccomp owns the seccomp filter that runc installs in every mcpbox
// sandbox, as a runtime-spec *specs.LinuxSeccomp.
//
// The profile starts from moby's maintained default
// (github.com/moby/profiles/seccomp, generated for a process with every
// capability set empty) so that upstream fixes flow in, and is then tightened
// in code: native architecture only, a hard deny list, io_uring, clone3 and
// openat2 answered with ENOSYS, argument rules of our own for clone, socket,
// socketpair, ioctl, personality, seccomp, execveat and memfd_create, and no
// set-user-ID or set-group-ID bit in the mode of chmod, open, mknod and
// their siblings (modeArgs).
// Validate compiles a profile with libseccomp exactly as runc 1.1.5 would
// and rejects the rule shapes runc silently changes the meaning of;
// CheckKernel says whether the running kernel can enforce the profile.
// Build puts these together into one sandbox's profile (Options: extra
// syscalls, memfd denied, user notification), which is all a session needs.
//
// The package does not load filters (runc does that inside the container),
// does not choose a profile for a server (the launcher does), and does not
// decide which extra syscalls a server gets: WithAllowed adds what a profile
// lists, but refuses anything on the deny list. WithMemfdDenied takes
// memfd_create away, for sandboxes that cannot make memfds non-executable. Build, Validate, CheckKernel and
// CheckNames need libseccomp: build with cgo and `-tags seccomp` on Linux,
// otherwise they return an error wrapping errors.ErrUnsupported.
//
// It sits below package sandbox and must not import it (nor anything of
// the launcher): its options are plain values.
package seccomp

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Values of personality(2)'s persona argument (include/uapi/linux/personality.h).
const (
	perLinux        = 0x0000000
	perLinux32      = 0x0000008
	uname26         = 0x0020000
	readImpliesExec = 0x0400000
	addrNoRandomize = 0x0040000
	personalityGet  = 0xffffffff // query only: returns the current persona
)

// deniedSyscalls are never allowed in a sandbox, whatever upstream or a
// profile says: they cross the sandbox boundary (ptrace, process_vm_*,
// pidfd_getfd, *_by_handle_at), reach kernel subsystems a server has no use
// for (bpf, perf, keyrings, userfaultfd, fanotify), change mounts,
// namespaces or the host (time, hostname, modules, swap, reboot), or are
// legacy ABI that only widens the attack surface. mbind, set_mempolicy and
// move_pages stay out as moby gates them on CAP_SYS_NICE. Some names exist
// on one architecture only; they are listed so that no rule ever names them.
func deniedSyscalls() []string {
	return []string{
		"_sysctl", "acct", "add_key", "adjtimex", "bpf", "chroot",
		"clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64",
		"create_module", "delete_module", "fanotify_init", "finit_module",
		"fsconfig", "fsmount", "fsopen", "fspick", "get_mempolicy",
		"init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load",
		"keyctl", "lookup_dcookie", "mbind", "mount", "mount_setattr",
		"move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
		"open_by_handle_at", "open_tree", "perf_event_open", "pidfd_getfd",
		"pivot_root", "process_madvise", "process_vm_readv",
		"process_vm_writev", "ptrace", "quotactl", "quotactl_fd", "reboot",
		"request_key", "set_mempolicy", "set_mempolicy_home_node",
		"setdomainname", "sethostname", "setns", "settimeofday", "stime",
		"swapoff", "swapon", "syslog", "sysfs", "umount", "umount2", "unshare",
		"userfaultfd", "uselib", "ustat", "vhangup", "vm86", "vm86old",
	}
}

// ownedSyscalls are the syscalls whose rules this package writes itself.
// Whatever upstream says about them is dropped before our rules are added,
// so an upstream change can neither loosen nor duplicate them.
func ownedSyscalls() []string {
	names := []string{
		"clone", "clone3", "execveat", "io_uring_enter", "io_uring_register",
		"io_uring_setup", "ioctl", "memfd_create", "openat2", "personality",
		"seccomp", "socket", "socketpair",
	}
	for n := range modeArgs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// setIDBits are S_ISUID and S_ISGID: a file with either is a set-user-ID or
// set-group-ID program wherever it is executed from. The sandbox's writable
// mounts are nosuid, but a read-write grant is a host directory, where the
// same file runs with the identity of whoever the server ran as.
const setIDBits = 0o6000

// modeArgs are the calls that give a file the mode in one of their
// arguments, with that argument's index (the same on amd64 and arm64; the
// legacy names exist on amd64 only). Each is allowed only when the mode has
// none of setIDBits (modeGuard). mkdir and mkdirat are not among them: the
// kernel keeps only the permission and sticky bits of their mode
// (vfs_prepare_mode), and a new directory is set-group-ID only when its
// parent is: a choice made on the host, or a chmod these rules refuse.
var modeArgs = map[string]uint{
	"chmod": 1, "creat": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2,
	"mknod": 1, "mknodat": 2, "open": 2, "openat": 3,
}

// modeGuard returns the condition under which name may run: its mode
// argument has neither S_ISUID nor S_ISGID. ok is false for a call that
// takes no mode. The mask lies in the low 16 bits, where the kernel reads
// its umode_t; whatever the rest of the register holds cannot hide a bit.
func modeGuard(name string) (arg specs.LinuxSeccompArg, ok bool) {
	idx, ok := modeArgs[name]
	if !ok {
		return specs.LinuxSeccompArg{}, false
	}
	return specs.LinuxSeccompArg{Index: idx, Value: setIDBits, ValueTwo: 0, Op: specs.OpMaskedEqual}, true
}

// guarded reports whether conds hold exactly name's mode guard and nothing
// else.
func guarded(name string, conds []specs.LinuxSeccompArg) bool {
	g, ok := modeGuard(name)
	return ok && len(conds) == 1 && conds[0] == g
}

// hasModeGuard reports whether conds include name's mode guard.
func hasModeGuard(name string, conds []specs.LinuxSeccompArg) bool {
	g, ok := modeGuard(name)
	return ok && slices.Contains(conds, g)
}

// nativeArch maps a GOARCH to the only architecture the filter accepts.
// Syscalls made through another ABI (int 0x80 on x86_64, AArch32) hit
// libseccomp's bad-arch action and kill the thread, which also makes the
// socket rules sound: socketcall(2), whose arguments seccomp cannot see,
// exists only on the 32-bit ABIs.
func nativeArch(goarch string) (specs.Arch, error) {
	switch goarch {
	case "amd64":
		return specs.ArchX86_64, nil
	case "arm64":
		return specs.ArchAARCH64, nil
	}
	return "", fmt.Errorf("seccomp: no profile for architecture %q (mcpbox supports amd64 and arm64): %w", goarch, errors.ErrUnsupported)
}

// WithAllowed returns a copy of p that also allows the named syscalls
// unconditionally; it is how a profile's `seccomp.allow` reaches the
// filter. It refuses names on the deny list and names p already restricts
// (by arguments or with another action): allowing those outright would undo
// the restriction. Names p already allows are skipped. WithAllowed cannot
// tell whether a name exists; CheckNames can.
func WithAllowed(p *specs.LinuxSeccomp, names ...string) (*specs.LinuxSeccomp, error) {
	if p == nil {
		return nil, errors.New("seccomp: allow: nil profile")
	}
	denied := setOf(deniedSyscalls())
	allowed := map[string]bool{}
	restricted := map[string]bool{}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if r.Action == specs.ActAllow && len(r.Args) == 0 {
				allowed[n] = true
			} else {
				restricted[n] = true
			}
		}
	}
	var add []string
	for _, n := range names {
		switch {
		case !validName(n):
			return nil, fmt.Errorf("seccomp: allow %q: not a syscall name", n)
		case denied[n]:
			return nil, fmt.Errorf("seccomp: allow %s: mcpbox never allows it in a sandbox", n)
		case restricted[n]:
			return nil, fmt.Errorf("seccomp: allow %s: the base profile restricts it by arguments or action; allowing it unconditionally would undo that", n)
		case allowed[n]:
			continue
		}
		allowed[n] = true
		add = append(add, n)
	}
	q := copyProfile(p)
	if len(add) > 0 {
		q.Syscalls = append(q.Syscalls, specs.LinuxSyscall{Names: add, Action: specs.ActAllow})
	}
	return q, nil
}

// allowExcept32 returns ALLOW rules for argument arg of syscall name whose
// union matches every value except those whose low 32 bits are in deny.
//
// "Allow unless the argument is X" has no direct form that survives runc
// and libseccomp: runc turns two conditions on one argument into two rules
// and ORs them (so NE X, NE Y allows everything), and libseccomp lets an
// unconditional ALLOW override a conditional ERRNO for the same syscall, in
// either order. What remains is a union of ALLOW rules with one masked
// comparison each: walk the binary trie of 32-bit values and emit every
// maximal prefix that contains no denied value. Masks never cover the upper
// 32 bits because the kernel truncates 32-bit arguments (ioctl's cmd is an
// unsigned int): ioctl(fd, 1<<32|TIOCSTI, ...) is TIOCSTI, the bypass of
// CVE-2017-5226. Each denied value costs at most 32 rules.
func allowExcept32(name string, arg uint, deny ...uint32) []specs.LinuxSyscall {
	var rules []specs.LinuxSyscall
	var walk func(prefix uint32, bits int)
	walk = func(prefix uint32, bits int) {
		mask := uint32(0)
		if bits > 0 {
			mask = ^uint32(0) << (32 - bits)
		}
		if !slices.ContainsFunc(deny, func(d uint32) bool { return d&mask == prefix }) {
			rules = append(rules, specs.LinuxSyscall{
				Names:  []string{name},
				Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{
					{Index: arg, Value: uint64(mask), ValueTwo: uint64(prefix), Op: specs.OpMaskedEqual},
				},
			})
			return
		}
		if bits == 32 {
			return // exactly a denied value
		}
		walk(prefix, bits+1)
		walk(prefix|1<<(31-bits), bits+1)
	}
	walk(0, 0)
	return rules
}

// verdict is what a rule or the default does to a call: the action and, for
// ERRNO and TRACE, the errno.
type verdict struct {
	Action specs.LinuxSeccompAction
	Errno  uint
}

// verdictOf normalises an action the way runc does: ERRNO and TRACE without
// an explicit errno mean EPERM (1); other actions carry none.
func verdictOf(a specs.LinuxSeccompAction, errnoRet *uint) verdict {
	if a != specs.ActErrno && a != specs.ActTrace {
		return verdict{Action: a}
	}
	if errnoRet == nil {
		return verdict{Action: a, Errno: 1}
	}
	return verdict{Action: a, Errno: *errnoRet}
}

// check rejects the rule shapes whose meaning runc 1.1.5 or libseccomp
// change silently, so that a profile means what it says:
//   - two conditions on one argument in one rule: runc adds them as separate
//     rules, so they are ORed, not ANDed;
//   - a rule whose verdict equals the default: runc drops it (libseccomp
//     refuses it), so it cannot carve an exception out of anything;
//   - one syscall with rules of different verdicts: libseccomp lets an
//     unconditional rule override conditional ones regardless of order.
//     The one exception is open and openat split on their flags exactly
//     as WithFileNotify does it, into an ALLOW and NOTIFY rules that no
//     flags value matches both of (checkOpenSplit).
func check(p *specs.LinuxSeccomp) error {
	if p == nil {
		return errors.New("seccomp: nil profile")
	}
	if p.DefaultAction == "" {
		return errors.New("seccomp: profile has no default action")
	}
	def := verdictOf(p.DefaultAction, p.DefaultErrnoRet)
	byName := map[string]verdict{}
	mixed := map[string]bool{}
	for i, r := range p.Syscalls {
		if len(r.Names) == 0 {
			return fmt.Errorf("seccomp: rule %d names no syscall", i)
		}
		v := verdictOf(r.Action, r.ErrnoRet)
		if v == def {
			return fmt.Errorf("seccomp: rule %d (%s): action %s equals the default action; runc drops such rules", i, strings.Join(r.Names, ","), r.Action)
		}
		var seen [6]bool
		for _, a := range r.Args {
			if a.Index >= uint(len(seen)) {
				return fmt.Errorf("seccomp: rule %d (%s): argument index %d out of range", i, strings.Join(r.Names, ","), a.Index)
			}
			if seen[a.Index] {
				return fmt.Errorf("seccomp: rule %d (%s): two conditions on argument %d; runc ORs them, so split the rule or use one masked comparison", i, strings.Join(r.Names, ","), a.Index)
			}
			seen[a.Index] = true
		}
		for _, n := range r.Names {
			if !validName(n) {
				return fmt.Errorf("seccomp: rule %d: %q is not a syscall name", i, n)
			}
			if prev, ok := byName[n]; ok && prev != v {
				if _, split := openFlagsArg[n]; !split {
					return fmt.Errorf("seccomp: syscall %s has rules with different actions (%s and %s); libseccomp does not apply them in order", n, prev.Action, v.Action)
				}
				mixed[n] = true // judged on all its rules below
				continue
			}
			byName[n] = v
		}
	}
	for _, n := range slices.Sorted(maps.Keys(mixed)) {
		var rules []specs.LinuxSyscall
		for _, r := range p.Syscalls {
			if slices.Contains(r.Names, n) {
				rules = append(rules, r)
			}
		}
		if err := checkOpenSplit(n, rules); err != nil {
			return err
		}
	}
	return nil
}

// requiredActions are the kernel seccomp actions the profile relies on, as
// spelled in /proc/sys/kernel/seccomp/actions_avail: allow and errno for the
// rules and the default, kill_thread for libseccomp's bad-arch action.
func requiredActions() []string { return []string{"allow", "errno", "kill_thread"} }

// missingActions returns the required actions absent from the contents of
// /proc/sys/kernel/seccomp/actions_avail.
func missingActions(avail string) []string {
	have := setOf(strings.Fields(avail))
	var missing []string
	for _, a := range requiredActions() {
		if !have[a] {
			missing = append(missing, a)
		}
	}
	return missing
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		if c != '_' && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func copyProfile(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	q := *p
	q.DefaultErrnoRet = copyUint(p.DefaultErrnoRet)
	q.Architectures = slices.Clone(p.Architectures)
	q.Flags = slices.Clone(p.Flags)
	q.Syscalls = make([]specs.LinuxSyscall, len(p.Syscalls))
	for i, r := range p.Syscalls {
		r.Names = slices.Clone(r.Names)
		r.Args = slices.Clone(r.Args)
		r.ErrnoRet = copyUint(r.ErrnoRet)
		q.Syscalls[i] = r
	}
	return &q
}

func copyUint(v *uint) *uint {
	if v == nil {
		return nil
	}
	c := *v
	return &c
}
