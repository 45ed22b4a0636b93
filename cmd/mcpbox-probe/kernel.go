//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const kernCat = "kernel"

func kernelProbes() []probe {
	return []probe{
		// Mounts and namespaces: always in a child.
		{name: "kernel/mount-tmpfs", category: kernCat, tried: "in a child: mount a tmpfs on a new directory in /tmp (undone at once if it succeeds)",
			run: func(e *env) result { return isolatedChildResult(e, "kernel/mount-tmpfs") }},
		{name: "kernel/mount-cgroup", category: kernCat, tried: "in a child: mount cgroup2 on a new directory in /tmp (undone at once if it succeeds)",
			run: func(e *env) result { return isolatedChildResult(e, "kernel/mount-cgroup") }},
		{name: "kernel/mount-proc", category: kernCat, tried: "in a child: mount a fresh proc on a new directory in /tmp (undone at once if it succeeds)",
			run: func(e *env) result { return isolatedChildResult(e, "kernel/mount-proc") }},
		{name: "kernel/umount-kcore", category: kernCat, tried: "in a child: umount2(\"/proc/kcore\", MNT_DETACH) to unmask it",
			run: func(e *env) result { return isolatedChildResult(e, "kernel/umount-kcore") }},
		{name: "kernel/fsopen", category: kernCat, tried: "in a child: fsopen(\"tmpfs\") (new mount API)",
			run: func(e *env) result { return childResult(e, "kernel/fsopen") }},
		{name: "kernel/unshare-user", category: kernCat, tried: "start a child that unshare(CLONE_NEWUSER)s before exec",
			run: func(e *env) result {
				return startOnly(e, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWUSER}, "unshare(CLONE_NEWUSER)")
			}},
		{name: "kernel/unshare-mount", category: kernCat, tried: "start a child that unshare(CLONE_NEWNS)s before exec",
			run: func(e *env) result {
				return startOnly(e, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}, "unshare(CLONE_NEWNS)")
			}},
		{name: "kernel/unshare-net", category: kernCat, tried: "start a child that unshare(CLONE_NEWNET)s before exec",
			run: func(e *env) result {
				return startOnly(e, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}, "unshare(CLONE_NEWNET)")
			}},
		{name: "kernel/clone-newuser", category: kernCat, tried: "start a child with a raw clone(CLONE_NEWUSER)",
			run: func(e *env) result {
				return startOnly(e, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}, "clone(CLONE_NEWUSER)")
			}},
		{name: "kernel/clone3", category: kernCat, tried: "raw clone3 (435) with an invalid size; seccomp must answer ENOSYS or EPERM", run: probeClone3},
		{name: "kernel/setns-net", category: kernCat, tried: "in a child: setns(/proc/self/ns/net, CLONE_NEWNET)",
			run: func(e *env) result { return childResult(e, "kernel/setns-net") }},
		{name: "kernel/pivot-root", category: kernCat, tried: "in a child: pivot_root on a directory that is not a mount point (EPERM if refused, EINVAL if the permission check passed)",
			run: func(e *env) result { return isolatedChildResult(e, "kernel/pivot-root") }},
		{name: "kernel/chroot", category: kernCat, tried: "in a child: chroot(\"/tmp\")",
			run: func(e *env) result { return childResult(e, "kernel/chroot") }},
		{name: "kernel/ptrace-pid1", category: kernCat, tried: "in a child: PTRACE_SEIZE pid 1 (seize does not stop it)",
			run: func(e *env) result { return childResult(e, "kernel/ptrace-pid1") }},
		{name: "kernel/process-vm-readv-pid1", category: kernCat, tried: "process_vm_readv 8 bytes from pid 1", run: probeProcessVMReadv},
		{name: "kernel/pidfd-getfd-pid1", category: kernCat, tried: "pidfd_open(1) then pidfd_getfd(pidfd, 0)", run: probePidfdGetfd},
		{name: "kernel/open-by-handle-at", category: kernCat, tried: "open_by_handle_at on / with a made-up handle (the shocker breakout)", run: probeOpenByHandle},
		{name: "kernel/init-module", category: kernCat, tried: "init_module with an empty image", run: probeInitModule},
		{name: "kernel/finit-module", category: kernCat, tried: "finit_module on /dev/null", run: probeFinitModule},
		{name: "kernel/kexec-load", category: kernCat, tried: "kexec_load with no segments and invalid flags (EPERM if refused, EINVAL if the permission check passed)", run: probeKexec},
		{name: "kernel/bpf", category: kernCat, tried: "bpf with an invalid command (EPERM/ENOSYS if seccomp blocks bpf, EINVAL if it is reachable)", run: probeBPF},
		{name: "kernel/perf-event-open", category: kernCat, tried: "perf_event_open a software CPU clock counter on itself", run: probePerf},
		{name: "kernel/userfaultfd", category: kernCat, tried: "userfaultfd(O_CLOEXEC)", run: probeUserfaultfd},
		{name: "kernel/io-uring-setup", category: kernCat, tried: "io_uring_setup with 1 entry", run: probeIOUring},
		{name: "kernel/keyctl", category: kernCat, tried: "keyctl(KEYCTL_GET_KEYRING_ID, session keyring)", run: probeKeyctl},
		{name: "kernel/add-key", category: kernCat, tried: "add_key a user key to the process keyring", run: probeAddKey},
		{name: "kernel/socket-alg", category: kernCat, tried: "socket(AF_ALG, SOCK_SEQPACKET)", run: socketProbe(unix.AF_ALG, unix.SOCK_SEQPACKET, 0)},
		{name: "kernel/socket-vsock", category: kernCat, tried: "socket(AF_VSOCK, SOCK_STREAM)", run: socketProbe(unix.AF_VSOCK, unix.SOCK_STREAM, 0)},
		{name: "kernel/socket-packet", category: kernCat, tried: "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)", run: socketProbe(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))},
		{name: "kernel/socket-raw", category: kernCat, tried: "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", run: socketProbe(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)},
		{name: "kernel/socket-netlink-audit", category: kernCat, tried: "socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT)", run: socketProbe(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT)},
		{name: "kernel/int80", category: kernCat, tried: "in a child: the i386 getpid through INT $0x80; must die of SIGSYS or get ENOSYS/EPERM", run: probeInt80},
		{name: "kernel/seccomp-listener", category: kernCat, tried: "in a child: seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, allow-all filter)",
			run: func(e *env) result { return childResult(e, "kernel/seccomp-listener") }},
		{name: "kernel/personality", category: kernCat, tried: "in a child: personality(READ_IMPLIES_EXEC), then read it back with personality(0xffffffff)",
			run: func(e *env) result { return childResult(e, "kernel/personality") }},
		{name: "kernel/reboot", category: kernCat, tried: "reboot with a valid magic1 and an invalid magic2 (EPERM if refused, EINVAL if CAP_SYS_BOOT was held)", run: probeReboot},
		{name: "kernel/swapon", category: kernCat, tried: "swapon on a path that does not exist (EPERM if refused, ENOENT if permitted)", run: probeSwapon},
		{name: "kernel/syslog", category: kernCat, tried: "syslog(SYSLOG_ACTION_READ_ALL) into 256 bytes; no data may come back", run: probeSyslog},
		{name: "kernel/sethostname", category: kernCat, tried: "sethostname to the current host name", run: probeSethostname},
		{name: "kernel/settimeofday", category: kernCat, tried: "settimeofday to the time just read", run: probeSettimeofday},
		{name: "kernel/tiocsti", category: kernCat, tried: "ioctl(TIOCSTI, \"x\") on fds 0, 1 and 2", run: probeTIOCSTI},
		{name: "kernel/kill-all", category: kernCat, tried: "kill(-1, 0) (signal 0 only) and list /proc: only the sandbox's few processes may be reachable", run: probeKillAll},
	}
}

// kernelChildren are the attempts that run in a re-executed child.
func kernelChildren() map[string]childFunc {
	return map[string]childFunc{
		"kernel/mount-tmpfs":      mountChild("tmpfs", "tmpfs", "size=1m"),
		"kernel/mount-cgroup":     mountChild("cgroup2", "cgroup2", ""),
		"kernel/mount-proc":       mountChild("proc", "proc", ""),
		"kernel/umount-kcore":     childUmountKcore,
		"kernel/fsopen":           childFsopen,
		"kernel/setns-net":        childSetnsNet,
		"kernel/pivot-root":       childPivotRoot,
		"kernel/chroot":           childChroot,
		"kernel/ptrace-pid1":      childPtracePid1,
		"kernel/int80":            childInt80,
		"kernel/seccomp-listener": childSeccompListener,
		"kernel/personality":      childPersonality,
	}
}

func nsNote(args []string) string {
	if len(args) > 0 && args[0] == "private" {
		return "in a private mount namespace"
	}
	return "in the sandbox's mount namespace"
}

func mountChild(source, fstype, data string) childFunc {
	return func(args []string) result {
		dir, err := os.MkdirTemp("/tmp", "mcpbox-probe-mnt-")
		if err != nil {
			return errored(fmt.Sprintf("no mount point: %v", err))
		}
		defer os.Remove(dir)
		err = unix.Mount(source, dir, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data)
		if err != nil {
			return denied(err, "")
		}
		uerr := unix.Unmount(dir, unix.MNT_DETACH)
		return allowed(fmt.Sprintf("mounted %s on %s %s (unmount: %v)", fstype, dir, nsNote(args), uerr))
	}
}

func childUmountKcore(args []string) result {
	if err := unix.Unmount("/proc/kcore", unix.MNT_DETACH); err != nil {
		return denied(err, "")
	}
	return allowed("unmounted the mask over /proc/kcore " + nsNote(args))
}

func childFsopen([]string) result {
	fd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return denied(err, "")
	}
	unix.Close(fd)
	return allowed("fsopen(\"tmpfs\") returned a filesystem context")
}

func childSetnsNet([]string) result {
	runtime.LockOSThread()
	fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return denied(err, "open /proc/self/ns/net: "+err.Error())
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return denied(err, "")
	}
	return allowed("setns into a network namespace succeeded")
}

func childPivotRoot(args []string) result {
	dir, err := os.MkdirTemp("/tmp", "mcpbox-probe-pivot-")
	if err != nil {
		return errored(fmt.Sprintf("no directory: %v", err))
	}
	defer os.Remove(dir)
	// dir is not a mount point, so a pivot_root that passes the permission
	// check still fails with EINVAL and changes nothing.
	err = unix.PivotRoot(dir, dir)
	switch {
	case err == nil:
		return allowed("pivot_root succeeded " + nsNote(args))
	case errnoIs(err, unix.EPERM, unix.EACCES, unix.ENOSYS):
		return denied(err, "")
	default:
		r := fail(outcomeAllowed, fmt.Sprintf("pivot_root passed the permission check and failed only on its arguments: %v", err))
		r.Errno = errnoName(err)
		return r
	}
}

func childChroot([]string) result {
	if err := unix.Chroot("/tmp"); err != nil {
		return denied(err, "")
	}
	return allowed("chroot(\"/tmp\") succeeded")
}

func childPtracePid1([]string) result {
	runtime.LockOSThread()
	if err := unix.PtraceSeize(1); err != nil {
		return denied(err, "")
	}
	// The tracer's exit detaches; seize never stopped pid 1.
	return allowed("PTRACE_SEIZE of pid 1 succeeded")
}

func childSeccompListener([]string) result {
	filter := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r1, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return denied(errno, "")
	}
	unix.Close(int(r1))
	return allowed("installed a seccomp filter and got a notification listener fd")
}

const readImpliesExec = 0x0400000

func childPersonality([]string) result {
	runtime.LockOSThread()
	_, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, readImpliesExec, 0, 0)
	cur, _, qerr := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if qerr == 0 && cur&readImpliesExec != 0 {
		return allowed(fmt.Sprintf("READ_IMPLIES_EXEC took effect: personality is %#x", cur))
	}
	if errno != 0 {
		return denied(errno, "")
	}
	r := pass(outcomeDenied, fmt.Sprintf("the call returned success but READ_IMPLIES_EXEC did not take effect (personality %#x)", cur))
	return r
}

func childInt80([]string) result {
	// seccomp may kill only the calling thread (SECCOMP_RET_KILL_THREAD,
	// libseccomp's default for a foreign architecture): the call then
	// never returns, and the rest of the process goes on. So it runs on a
	// thread of its own, and silence means it was stopped.
	//
	// A kernel without IA32 emulation (CONFIG_IA32_EMULATION off, or
	// ia32_emulation=0 since Linux 6.7) has no gate at 0x80: the
	// instruction faults (SIGSEGV), which SetPanicOnFault turns into a
	// panic this goroutine recovers from instead of a crash.
	type answer struct {
		ret   int64
		ok    bool
		fault bool
	}
	ch := make(chan answer, 1)
	go func() {
		runtime.LockOSThread() // the thread dies with the call; never unlock
		debug.SetPanicOnFault(true)
		defer func() {
			if v := recover(); v != nil {
				ch <- answer{fault: true}
			}
		}()
		ret, ok := int80Getpid()
		ch <- answer{ret: ret, ok: ok}
	}()
	var ret int64
	var ok bool
	select {
	case a := <-ch:
		if a.fault {
			r := pass(outcomeDenied, "INT $0x80 faulted: this kernel has no 32-bit system call gate (no IA32 emulation)")
			r.Signal = "SIGSEGV"
			return r
		}
		ret, ok = a.ret, a.ok
	case <-time.After(2 * time.Second):
		return result{Outcome: outcomeDenied, Pass: true, Detail: "the calling thread never came back from INT $0x80: seccomp killed it"}
	}
	if !ok {
		return skipped("INT $0x80 exists only on amd64")
	}
	if ret < 0 {
		en := syscall.Errno(-ret)
		if en == unix.ENOSYS || en == unix.EPERM || en == unix.EACCES {
			return denied(en, "")
		}
		r := errored(fmt.Sprintf("INT $0x80 getpid returned %v", en))
		r.Errno = errnoName(en)
		return r
	}
	return allowed(fmt.Sprintf("the i386 getpid through INT $0x80 returned %d", ret))
}

func probeInt80(e *env) result {
	if !haveInt80 {
		return skipped("INT $0x80 exists only on amd64")
	}
	return childResult(e, "kernel/int80")
}

// requireDenied maps a system call's error: nil means the call succeeded; an
// errno in ok means it was refused (pass); any other errno means the call
// got past its permission check and failed only on its arguments (fail).
func requireDenied(err error, what string, ok ...syscall.Errno) result {
	if err == nil {
		return allowed(what + " succeeded")
	}
	if errnoIs(err, ok...) {
		return denied(err, "")
	}
	r := fail(outcomeAllowed, fmt.Sprintf("%s passed the permission check and failed only on its arguments: %v", what, err))
	r.Errno = errnoName(err)
	return r
}

func errOf(errno syscall.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

func probeClone3(*env) result {
	// A NULL struct with size 0 fails with EINVAL in the kernel, so this
	// cannot create a process even if seccomp lets it through.
	_, _, errno := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	return requireDenied(errOf(errno), "clone3", unix.ENOSYS, unix.EPERM)
}

func pidIsSelf1() bool { return os.Getpid() == 1 }

func probeProcessVMReadv(*env) result {
	if pidIsSelf1() {
		return skipped("the probe is pid 1 itself")
	}
	buf := make([]byte, 8)
	local := []unix.Iovec{{Base: &buf[0], Len: 8}}
	remote := []unix.RemoteIovec{{Base: 0x400000, Len: 8}}
	_, err := unix.ProcessVMReadv(1, local, remote, 0)
	return requireDenied(err, "process_vm_readv of pid 1", unix.EPERM, unix.EACCES, unix.ESRCH, unix.ENOSYS)
}

func probePidfdGetfd(*env) result {
	if pidIsSelf1() {
		return skipped("the probe is pid 1 itself")
	}
	pidfd, err := unix.PidfdOpen(1, 0)
	if err != nil {
		return denied(err, "pidfd_open(1): "+err.Error())
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, 0, 0)
	if err == nil {
		unix.Close(fd)
	}
	return requireDenied(err, "pidfd_getfd of pid 1's fd 0", unix.EPERM, unix.EACCES, unix.ESRCH, unix.ENOSYS)
}

func probeOpenByHandle(*env) result {
	mfd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errored(err.Error())
	}
	defer unix.Close(mfd)
	// FILEID_INO32_GEN for inode 2, generation 0: the root of most
	// filesystems, as in the shocker exploit.
	h := unix.NewFileHandle(1, []byte{2, 0, 0, 0, 0, 0, 0, 0})
	fd, err := unix.OpenByHandleAt(mfd, h, unix.O_RDONLY)
	if err == nil {
		unix.Close(fd)
	}
	return requireDenied(err, "open_by_handle_at", unix.EPERM, unix.EACCES, unix.ENOSYS)
}

func probeInitModule(*env) result {
	err := unix.InitModule(nil, "")
	return requireDenied(err, "init_module", unix.EPERM, unix.ENOSYS)
}

func probeFinitModule(*env) result {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errored(err.Error())
	}
	defer unix.Close(fd)
	err = unix.FinitModule(fd, "", 0)
	return requireDenied(err, "finit_module", unix.EPERM, unix.ENOSYS)
}

func probeKexec(*env) result {
	// Arch bits 0xffff are no architecture and bit 15 is no flag: EINVAL
	// after the permission check, so nothing is loaded or unloaded.
	const badFlags = 0xffff8000
	_, _, errno := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, badFlags, 0, 0)
	return requireDenied(errOf(errno), "kexec_load", unix.EPERM, unix.ENOSYS)
}

func probeBPF(*env) result {
	_, _, errno := unix.Syscall(unix.SYS_BPF, 0x7fff, 0, 0)
	return requireDenied(errOf(errno), "bpf", unix.EPERM, unix.ENOSYS)
}

func probePerf(*env) result {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Bits:   unix.PerfBitDisabled,
	}
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	return deniedUnless(err, "perf_event_open")
}

func probeUserfaultfd(*env) result {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
	if errno == 0 {
		unix.Close(int(fd))
	}
	return deniedUnless(errOf(errno), "userfaultfd")
}

func probeIOUring(*env) result {
	var params [120]byte // struct io_uring_params, all zero
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno == 0 {
		unix.Close(int(fd))
	}
	return deniedUnless(errOf(errno), "io_uring_setup")
}

func probeKeyctl(*env) result {
	_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	return deniedUnless(err, "keyctl(KEYCTL_GET_KEYRING_ID)")
}

func probeAddKey(*env) result {
	_, err := unix.AddKey("user", "mcpbox-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
	return deniedUnless(err, "add_key")
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func socketProbe(domain, typ, proto int) func(*env) result {
	return func(*env) result {
		fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		if err == nil {
			unix.Close(fd)
		}
		return deniedUnless(err, "socket")
	}
}

func probeReboot(*env) result {
	_, _, errno := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, 0, unix.LINUX_REBOOT_CMD_CAD_OFF, 0, 0, 0)
	if errno == unix.EINVAL {
		r := fail(outcomeAllowed, "reboot got past the CAP_SYS_BOOT check (EINVAL from the invalid magic): it would have been allowed")
		r.Errno = "EINVAL"
		return r
	}
	return requireDenied(errOf(errno), "reboot", unix.EPERM, unix.ENOSYS)
}

func probeSwapon(*env) result {
	p, err := unix.BytePtrFromString("/nonexistent-mcpbox-probe-" + randSuffix())
	if err != nil {
		return errored(err.Error())
	}
	_, _, errno := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0)
	return requireDenied(errOf(errno), "swapon", unix.EPERM, unix.ENOSYS)
}

func probeSyslog(*env) result {
	buf := make([]byte, 256)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return denied(err, "")
	}
	if n > 0 {
		return allowed(fmt.Sprintf("read %d bytes of the kernel log", n))
	}
	return pass(outcomeDenied, "the call succeeded but returned no data")
}

func probeSethostname(*env) result {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return errored(err.Error())
	}
	name := unix.ByteSliceToString(u.Nodename[:])
	err := unix.Sethostname([]byte(name))
	return deniedUnless(err, fmt.Sprintf("sethostname(%q) (the same name)", name))
}

func probeSettimeofday(*env) result {
	var tv unix.Timeval
	if err := unix.Gettimeofday(&tv); err != nil {
		return errored(err.Error())
	}
	err := unix.Settimeofday(&tv)
	return deniedUnless(err, "settimeofday (to the time just read)")
}

func probeTIOCSTI(*env) result {
	var notes []string
	c := byte('x')
	for fd := 0; fd <= 2; fd++ {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		if errno == 0 {
			return allowed(fmt.Sprintf("TIOCSTI on fd %d injected a character", fd))
		}
		notes = append(notes, fmt.Sprintf("fd %d: %s", fd, errnoName(errno)))
	}
	r := pass(outcomeDenied, strings.Join(notes, ", "))
	r.Errno = strings.TrimPrefix(notes[0], "fd 0: ")
	return r
}

// maxSandboxProcs is how many processes a sandbox that runs only the probe
// and mcpbox-init may plausibly show.
const maxSandboxProcs = 64

func probeKillAll(*env) result {
	kerr := unix.Kill(-1, 0)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return errored(err.Error())
	}
	var pids []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, n)
		}
	}
	sort.Ints(pids)
	comm := func(pid int) string {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	var shown []string
	for i, p := range pids {
		if i == 8 {
			shown = append(shown, "…")
			break
		}
		shown = append(shown, fmt.Sprintf("%d:%s", p, comm(p)))
	}
	detail := fmt.Sprintf("kill(-1, 0): %v; %d processes visible: %s", kerrString(kerr), len(pids), strings.Join(shown, " "))
	// mcpbox-init is bind-mounted at /.mcpbox/init, so its comm is "init".
	okInit := map[string]bool{"mcpbox-init": true, filepath.Base(sandboxInitPath): true, comm(os.Getpid()): true}
	init := comm(1)
	switch {
	case len(pids) > maxSandboxProcs:
		return fail(outcomeAllowed, "too many processes visible for a sandbox pid namespace; "+detail)
	case !okInit[init]:
		return fail(outcomeAllowed, fmt.Sprintf("pid 1 is %q, not mcpbox-init or the probe; %s", init, detail))
	case pids[len(pids)-1] > 2 && comm(2) == "kthreadd":
		return fail(outcomeAllowed, "kthreadd is visible: this is the host's pid namespace; "+detail)
	}
	return pass(outcomeDenied, detail)
}

func kerrString(err error) string {
	if err == nil {
		return "ok"
	}
	return errnoOr(err)
}
