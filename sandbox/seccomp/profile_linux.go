//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"

	moby "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsCloneFlags are the clone(2) flags that create namespaces. clone(2)
// cannot create a time namespace (CLONE_NEWTIME overlaps CSIGNAL there);
// clone3 and unshare, which can, are not allowed at all.
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// Default returns mcpbox's seccomp profile for the native architecture:
// moby's default for a process without capabilities, tightened (see the
// package documentation). It fails on an architecture other than amd64 or
// arm64, and when upstream changed in a way the tightening does not expect.
//
// Syscall names that the runtime's libseccomp does not know are kept: runc
// skips unknown names, which for an ALLOW rule only means the call stays
// denied, and a newer libseccomp will know them.
func Default() (*specs.LinuxSeccomp, error) {
	arch, err := nativeArch(runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	// Capability sets are empty in a sandbox, so moby leaves out every rule
	// it gates on a capability (mount, bpf, perf, chroot, ...).
	base, err := moby.GetDefaultProfile(&specs.Spec{
		Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}},
	})
	if err != nil {
		return nil, fmt.Errorf("seccomp: moby default profile: %w", err)
	}
	p, err := tighten(base, arch)
	if err != nil {
		return nil, err
	}
	if err := check(p); err != nil {
		return nil, fmt.Errorf("seccomp: default profile: %w", err)
	}
	return p, nil
}

// WithMemfdDenied returns a copy of p in which memfd_create fails with
// ENOSYS whatever its arguments: the filter of a sandbox that cannot make
// memfds non-executable (sandbox.MemfdDeny), on a kernel without a usable
// vm.memfd_noexec or under a runtime that cannot set it. ENOSYS because it
// is what programs take as "not on this kernel" (memfd_create is from
// Linux 3.17): Chromium's shared memory falls back to files in /dev/shm,
// V8 to a temporary file, both noexec in a sandbox; Node and CPython do
// not call it unless asked (os.memfd_create raises OSError). The other
// ways of running code from memory stay as p has them: execveat with
// AT_EMPTY_PATH is refused in the default profile, and an O_TMPFILE file
// lives on a noexec mount.
func WithMemfdDenied(p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	if p == nil {
		return nil, errors.New("seccomp: memfd denied: nil profile")
	}
	const name = "memfd_create"
	q := copyProfile(p)
	kept := q.Syscalls[:0]
	for _, r := range q.Syscalls {
		r.Names = slices.DeleteFunc(r.Names, func(n string) bool { return n == name })
		if len(r.Names) > 0 {
			kept = append(kept, r)
		}
	}
	enosys := uint(unix.ENOSYS)
	q.Syscalls = append(kept, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActErrno, ErrnoRet: &enosys})
	if err := check(q); err != nil {
		return nil, fmt.Errorf("seccomp: memfd denied: %w", err)
	}
	return q, nil
}

// tighten keeps upstream's rules minus every denied or owned name, pins the
// architecture, and appends our own rules for the owned names.
func tighten(base *specs.LinuxSeccomp, arch specs.Arch) (*specs.LinuxSeccomp, error) {
	const review = "review github.com/moby/profiles/seccomp before upgrading it"
	if base == nil || verdictOf(base.DefaultAction, base.DefaultErrnoRet) != (verdict{specs.ActErrno, uint(unix.EPERM)}) {
		return nil, fmt.Errorf("seccomp: upstream default profile no longer denies with EPERM by default: %s", review)
	}
	drop := setOf(append(deniedSyscalls(), ownedSyscalls()...))
	eperm := uint(unix.EPERM)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   []specs.Arch{arch},
	}
	for _, r := range base.Syscalls {
		if r.Action != specs.ActAllow && r.Action != specs.ActErrno {
			return nil, fmt.Errorf("seccomp: upstream rule for %v uses action %s: %s", r.Names, r.Action, review)
		}
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return drop[n] })
		if len(r.Names) == 0 {
			continue
		}
		r.Args = slices.Clone(r.Args)
		r.ErrnoRet = copyUint(r.ErrnoRet)
		p.Syscalls = append(p.Syscalls, r)
	}
	p.Syscalls = append(p.Syscalls, ownRules()...)
	return p, nil
}

// ownRules are the rules for ownedSyscalls. Separate rules for one syscall
// are ORed; conditions inside one rule are ANDed and never repeat an
// argument (see check).
func ownRules() []specs.LinuxSyscall {
	enosys := uint(unix.ENOSYS)
	allowIf := func(name string, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: args}
	}
	eq := func(index uint, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: index, Value: v, Op: specs.OpEqualTo}
	}
	// maskedZero matches when none of the bits in mask are set.
	maskedZero := func(index uint, mask uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: index, Value: mask, ValueTwo: 0, Op: specs.OpMaskedEqual}
	}

	rules := []specs.LinuxSyscall{
		// ENOSYS, not EPERM: glibc and runtimes fall back to clone(2) and
		// to epoll only when the kernel claims not to have these.
		{
			Names:    []string{"clone3", "io_uring_enter", "io_uring_register", "io_uring_setup"},
			Action:   specs.ActErrno,
			ErrnoRet: &enosys,
		},
		// Threads and processes, but no new namespaces. The flags are
		// argument 0 on both supported architectures (not on s390x).
		allowIf("clone", maskedZero(0, nsCloneFlags)),
		// Installing further filters is fine; a listener would let the
		// sandbox become its own seccomp agent.
		allowIf("seccomp", maskedZero(1, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)),
		// Address families a server needs. NETLINK_ROUTE lets runtimes list
		// interfaces (getifaddrs, net.Interfaces); every other family and
		// netlink protocol gets the default EPERM, which programs that probe
		// families treat like EAFNOSUPPORT. Equality is on all 64 bits, so
		// setting upper bits (which the kernel truncates) only denies.
		allowIf("socket", eq(0, unix.AF_UNIX)),
		allowIf("socket", eq(0, unix.AF_INET)),
		allowIf("socket", eq(0, unix.AF_INET6)),
		allowIf("socket", eq(0, unix.AF_NETLINK), eq(2, unix.NETLINK_ROUTE)),
		allowIf("socketpair", eq(0, unix.AF_UNIX)),
		// Code written into memory must not become a program. The kernel
		// side is vm.memfd_noexec=2, which the sandbox's hook sets (see
		// sandbox.WithMemfdNoExec); where the hook cannot be used,
		// WithMemfdDenied replaces the memfd_create rule here and the call
		// fails. These rules hold in case the setting is not what the
		// hook left: memfd_create may not ask for an executable memfd
		// (MFD_EXEC; without it the kernel seals it non-executable), and
		// execveat may not execute a descriptor (AT_EMPTY_PATH, which is
		// how fexecve runs a memfd or any file opened before). Executing
		// a path, /proc/self/fd/N included, stays allowed: the mount's
		// noexec and the file's mode decide it. Both flags are 32-bit
		// arguments; the masks test their low bits, which is what the
		// kernel reads whatever the upper half holds.
		//
		// Not blocked, on purpose: mmap(PROT_EXEC) of a memfd (and so
		// ld.so loading a program from one), SysV shmat(SHM_EXEC) and
		// anonymous executable memory. They map code into the caller, as
		// a JIT does (V8 needs it, so Node and Chromium do); a program
		// that can do that runs what it likes in its own process already.
		// What the rules take away is execve of a program image that no
		// grant put in place, which is what a dropped binary needs.
		allowIf("memfd_create", maskedZero(1, unix.MFD_EXEC)),
		allowIf("execveat", maskedZero(4, unix.AT_EMPTY_PATH)),
		// openat2 takes its mode in a struct that seccomp cannot read, so
		// it could create a set-user-ID file past the mode rules below.
		// ENOSYS, as for clone3: the programs that use it (systemd, path
		// resolution libraries) fall back to openat when the kernel claims
		// not to have it, as on kernels before 5.6.
		{Names: []string{"openat2"}, Action: specs.ActErrno, ErrnoRet: &enosys},
	}
	// No set-user-ID or set-group-ID file: what the sandbox writes into a
	// read-write grant stays on the host, owned by the user the server ran
	// as, and the grant's nosuid holds only inside. Every call that sets a
	// mode from an argument is allowed only without those bits, so
	// `chmod 4755`, `install -m 2755` and open(O_CREAT, 04755) fail with
	// EPERM. A read-only open with stray bits in its unused mode fails too;
	// libcs pass 0 there. The other ways to such a file are closed
	// elsewhere: chown clears the bits and so does a write by a process
	// without CAP_FSETID; link and rename of one from another mount fail
	// with EXDEV; file capabilities need CAP_SETFCAP, which the server
	// holds in no namespace (setxattr's name is a string seccomp cannot
	// read, so that check is the kernel's); io_uring is refused above.
	for _, name := range slices.Sorted(maps.Keys(modeArgs)) {
		g, _ := modeGuard(name)
		rules = append(rules, allowIf(name, g))
	}
	// moby's values: plain Linux, 32-bit uname, UNAME26, both, and the
	// query. Notably not READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE.
	for _, v := range []uint64{perLinux, perLinux32, uname26, uname26 | perLinux32, personalityGet} {
		rules = append(rules, allowIf("personality", eq(0, v)))
	}
	// TIOCSTI pushes bytes into a terminal's input queue and TIOCLINUX can
	// read the console: both reach past the sandbox when a tty leaks in.
	return append(rules, allowExcept32("ioctl", 1, unix.TIOCSTI, unix.TIOCLINUX)...)
}
