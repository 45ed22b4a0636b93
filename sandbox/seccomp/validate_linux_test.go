//go:build linux && cgo && seccomp

package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a helper process (os/exec's TestMain
// trick) that loads filters into itself, runs the probes and prints a
// report as JSON. A loaded filter cannot be removed, so only a child does it.
const helperEnv = "MCPBOX_SECCOMP_TEST_HELPER"

// guardErrno is what the guard filter returns. The guard is loaded before
// the profile and denies every syscall on the deny list, so those calls are
// evaluated by the kernel without ever running: the kernel applies the most
// restrictive result of all filters and, between two ERRNO results, the one
// of the newest filter. A call therefore fails with EPERM if the profile
// denies it and with guardErrno if the profile would have let it run.
const guardErrno = unix.ENOTRECOVERABLE

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type outcome string

const (
	allowed outcome = "allowed" // reaches the kernel: anything but EPERM and ENOSYS
	denied  outcome = "EPERM"
	nosys   outcome = "ENOSYS"
)

func classify(errno int) outcome {
	switch unix.Errno(errno) {
	case unix.EPERM:
		return denied
	case unix.ENOSYS:
		return nosys
	}
	return allowed
}

// probe is one syscall with arguments whose effect, when allowed, is
// harmless: the arguments are invalid, or the call only reads, or it
// creates a socket that is closed at once.
type probe struct {
	name    string
	nr      uintptr
	args    [6]uintptr
	want    outcome
	closeFD bool // close the returned fd
	keep    any  // memory the arguments point to
}

// probes returns the table; fd is an open pipe in the helper and -1 when
// the parent only wants names and expectations.
func probes(fd int) []probe {
	u := uintptr(fd)
	n := new(int32)
	var ps []probe
	add := func(want outcome, name string, nr uintptr, args ...uintptr) *probe {
		p := probe{name: name, nr: nr, want: want}
		copy(p.args[:], args)
		ps = append(ps, p)
		return &ps[len(ps)-1]
	}
	const badType = 0x7f // fails socket(2)'s type check with EINVAL
	add(allowed, "getpid", unix.SYS_GETPID)
	add(allowed, "prctl(PR_GET_NO_NEW_PRIVS)", unix.SYS_PRCTL, unix.PR_GET_NO_NEW_PRIVS)

	add(allowed, "socket(AF_UNIX)", unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC).closeFD = true
	add(allowed, "socket(AF_INET)", unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC).closeFD = true
	add(allowed, "socket(AF_INET6)", unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC).closeFD = true
	add(allowed, "socket(AF_NETLINK, NETLINK_ROUTE)", unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE).closeFD = true
	add(denied, "socket(AF_NETLINK, NETLINK_AUDIT)", unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT).closeFD = true
	add(denied, "socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT)", unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT).closeFD = true
	add(denied, "socket(AF_PACKET)", unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC).closeFD = true
	add(denied, "socket(1<<32|AF_INET)", unix.SYS_SOCKET, 1<<32|unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC).closeFD = true
	for family := uintptr(0); family < unix.AF_MAX; family++ {
		want := denied
		switch family {
		case unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK:
			want = allowed
		}
		add(want, fmt.Sprintf("socket(%d, badtype, 0)", family), unix.SYS_SOCKET, family, badType, 0)
	}
	add(allowed, "socketpair(AF_UNIX, badtype)", unix.SYS_SOCKETPAIR, unix.AF_UNIX, badType, 0, 0)
	add(denied, "socketpair(AF_INET)", unix.SYS_SOCKETPAIR, unix.AF_INET, unix.SOCK_STREAM, 0, 0)

	add(allowed, "ioctl(pipe, FIONREAD)", unix.SYS_IOCTL, u, unix.TIOCINQ, uintptr(unsafe.Pointer(n))).keep = n
	// On a pipe TIOCSTI fails with ENOTTY: nothing can be injected even if
	// the filter let it through.
	add(denied, "ioctl(pipe, TIOCSTI)", unix.SYS_IOCTL, u, unix.TIOCSTI)
	add(denied, "ioctl(pipe, TIOCLINUX)", unix.SYS_IOCTL, u, unix.TIOCLINUX)
	add(denied, "ioctl(pipe, 1<<32|TIOCSTI)", unix.SYS_IOCTL, u, 1<<32|unix.TIOCSTI)
	add(denied, "ioctl(pipe, 0xffffffff0000541c)", unix.SYS_IOCTL, u, 0xffffffff0000541c)
	for cmd := uintptr(0x5400); cmd < 0x5500; cmd++ {
		want := allowed
		if cmd == unix.TIOCSTI || cmd == unix.TIOCLINUX {
			want = denied
		}
		add(want, fmt.Sprintf("ioctl(-1, %#x)", cmd), unix.SYS_IOCTL, ^uintptr(0), cmd)
	}
	for _, cmd := range []uintptr{0, 1, 0x3fff, 0x4000, 0x80000000, 0xffffffff, 1<<32 | 0x5413, 0xc0045878 /* FIFREEZE */} {
		add(allowed, fmt.Sprintf("ioctl(-1, %#x)", cmd), unix.SYS_IOCTL, ^uintptr(0), cmd)
	}

	add(allowed, "personality(0xffffffff)", unix.SYS_PERSONALITY, personalityGet)
	add(allowed, "personality(PER_LINUX32)", unix.SYS_PERSONALITY, perLinux32)
	add(allowed, "personality(PER_LINUX)", unix.SYS_PERSONALITY, perLinux)
	add(denied, "personality(READ_IMPLIES_EXEC)", unix.SYS_PERSONALITY, readImpliesExec)
	add(denied, "personality(ADDR_NO_RANDOMIZE)", unix.SYS_PERSONALITY, addrNoRandomize)

	// A nil program makes the kernel answer EFAULT: the call got through.
	add(allowed, "seccomp(SET_MODE_FILTER, 0, nil)", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, 0)
	add(allowed, "seccomp(SET_MODE_FILTER, TSYNC, nil)", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, 0)
	add(denied, "seccomp(SET_MODE_FILTER, NEW_LISTENER, nil)", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, 0)
	add(denied, "seccomp(SET_MODE_FILTER, NEW_LISTENER|TSYNC, nil)", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_TSYNC, 0)

	// CLONE_THREAD without CLONE_SIGHAND fails with EINVAL before any
	// namespace or task is created.
	add(allowed, "clone(CLONE_THREAD)", unix.SYS_CLONE, unix.CLONE_THREAD)
	for _, ns := range []struct {
		name string
		flag uintptr
	}{
		{"NEWNS", unix.CLONE_NEWNS}, {"NEWUTS", unix.CLONE_NEWUTS}, {"NEWIPC", unix.CLONE_NEWIPC},
		{"NEWUSER", unix.CLONE_NEWUSER}, {"NEWPID", unix.CLONE_NEWPID}, {"NEWNET", unix.CLONE_NEWNET},
		{"NEWCGROUP", unix.CLONE_NEWCGROUP},
	} {
		add(denied, "clone(CLONE_THREAD|CLONE_"+ns.name+")", unix.SYS_CLONE, unix.CLONE_THREAD|ns.flag)
	}
	// unshare(CLONE_NEWUSER) fails with EINVAL in a multi-threaded process.
	add(denied, "unshare(CLONE_NEWUSER)", unix.SYS_UNSHARE, unix.CLONE_NEWUSER)
	add(nosys, "clone3(nil, 0)", unix.SYS_CLONE3, 0, 0)
	add(nosys, "io_uring_setup(0, nil)", unix.SYS_IO_URING_SETUP, 0, 0)
	add(nosys, "io_uring_enter(-1)", unix.SYS_IO_URING_ENTER, ^uintptr(0))
	add(nosys, "io_uring_register(-1)", unix.SYS_IO_URING_REGISTER, ^uintptr(0))
	// Code run from memory. fd -1 keeps execveat from ever running a
	// program: EBADF with AT_EMPTY_PATH, ENOENT for the empty path
	// without it. A memfd that gets created is closed at once.
	empty, name := new(byte), []byte("mcpbox-test\x00")
	e, nm := uintptr(unsafe.Pointer(empty)), uintptr(unsafe.Pointer(&name[0]))
	add(denied, "execveat(-1, \"\", AT_EMPTY_PATH)", unix.SYS_EXECVEAT, ^uintptr(0), e, 0, 0, unix.AT_EMPTY_PATH).keep = empty
	add(denied, "execveat(-1, \"\", 1<<32|AT_EMPTY_PATH)", unix.SYS_EXECVEAT, ^uintptr(0), e, 0, 0, 1<<32|unix.AT_EMPTY_PATH).keep = empty
	add(allowed, "execveat(-1, \"\", 0)", unix.SYS_EXECVEAT, ^uintptr(0), e, 0, 0, 0).keep = empty
	mfd := func(want outcome, label string, flags uintptr) {
		p := add(want, "memfd_create("+label+")", unix.SYS_MEMFD_CREATE, nm, flags)
		p.keep, p.closeFD = name, true
	}
	mfd(allowed, "0", 0)
	mfd(allowed, "MFD_CLOEXEC", unix.MFD_CLOEXEC)
	mfd(allowed, "MFD_CLOEXEC|MFD_ALLOW_SEALING", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	mfd(allowed, "MFD_CLOEXEC|MFD_NOEXEC_SEAL", unix.MFD_CLOEXEC|unix.MFD_NOEXEC_SEAL)
	mfd(denied, "MFD_CLOEXEC|MFD_EXEC", unix.MFD_CLOEXEC|unix.MFD_EXEC)
	mfd(denied, "1<<32|MFD_CLOEXEC|MFD_EXEC", 1<<32|unix.MFD_CLOEXEC|unix.MFD_EXEC)
	// Modes: the calls get no path (NULL) and fd -1, so one that the
	// filter lets through fails in the kernel with EFAULT or EBADF and
	// changes nothing. The legacy names are looked up, as arm64 lacks them.
	for _, name := range slices.Sorted(maps.Keys(setIDCalls())) {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil || nr < 0 {
			continue
		}
		args := setIDCalls()[name]
		for _, m := range []uint64{0o755, 0o1777} {
			// libseccomp that does not know a name (fchmodat2 before
			// 2.5.5) leaves it to the default, as runc does.
			want := allowed
			if _, err := libseccomp.GetSyscallFromNameByArch(name, libseccomp.ArchNative); err != nil {
				want = denied
			}
			add(want, fmt.Sprintf("%s(mode %#o)", name, m), uintptr(nr), toUintptrs(args(m))...)
		}
		for _, m := range []uint64{0o4755, 0o2755, 1<<32 | 0o4000} {
			add(denied, fmt.Sprintf("%s(mode %#o)", name, m), uintptr(nr), toUintptrs(args(m))...)
		}
	}
	add(nosys, "openat2(-1, NULL, NULL, 24)", unix.SYS_OPENAT2, ^uintptr(0), 0, 0, 24)
	add(denied, "ptrace(PTRACE_GETREGS, 0)", unix.SYS_PTRACE, unix.PTRACE_GETREGS, 0)
	add(denied, "bpf(-1)", unix.SYS_BPF, ^uintptr(0))
	add(denied, "keyctl(-1)", unix.SYS_KEYCTL, ^uintptr(0))
	return ps
}

func toUintptrs(v []uint64) []uintptr {
	out := make([]uintptr, len(v))
	for i, x := range v {
		out[i] = uintptr(x)
	}
	return out
}

type report struct {
	Probes map[string]int // probe name → errno (0 = success)
	Sweep  map[string]int // denied syscall name → errno, under the guard
	Absent []string       // denied names that are no syscall on this arch
}

func runHelper(mode string) error {
	p, err := Default()
	if err != nil {
		return err
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	rep := report{Probes: map[string]int{}, Sweep: map[string]int{}}
	var sweep []string
	var guard []libseccomp.ScmpSyscall
	for _, name := range deniedSyscalls() {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil || nr < 0 {
			rep.Absent = append(rep.Absent, name)
			continue
		}
		sweep = append(sweep, name)
		guard = append(guard, nr)
	}
	loadGuard := func() error {
		f, err := libseccomp.NewFilter(libseccomp.ActAllow)
		if err != nil {
			return err
		}
		defer f.Release()
		for _, nr := range guard {
			if err := f.AddRule(nr, libseccomp.ActErrno.SetReturnCode(int16(guardErrno))); err != nil {
				return err
			}
		}
		return f.Load()
	}
	runProbes := func() {
		for _, pr := range probes(pipe[0]) {
			r, _, e := unix.Syscall6(pr.nr, pr.args[0], pr.args[1], pr.args[2], pr.args[3], pr.args[4], pr.args[5])
			runtime.KeepAlive(pr.keep)
			if e == 0 && pr.closeFD {
				unix.Close(int(r))
			}
			rep.Probes[pr.name] = int(e)
		}
	}

	switch mode {
	case "control": // no profile: what the kernel itself answers
		runProbes()
		if err := loadGuard(); err != nil {
			return fmt.Errorf("guard: %w", err)
		}
	case "filtered", "memfd-denied":
		if mode == "memfd-denied" {
			if p, err = WithMemfdDenied(p); err != nil {
				return err
			}
		}
		if err := loadGuard(); err != nil {
			return fmt.Errorf("guard: %w", err)
		}
		f, err := compile(p)
		if err != nil {
			return err
		}
		if err := f.Load(); err != nil {
			return fmt.Errorf("load profile: %w", err)
		}
		f.Release()
		runProbes()
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	for i, name := range sweep {
		_, _, e := unix.Syscall6(uintptr(guard[i]), 0, 0, 0, 0, 0, 0)
		rep.Sweep[name] = int(e)
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

func runChild(t *testing.T, mode string) report {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s helper: %v\n%s", mode, err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%s helper: decode %q: %v", mode, stdout.String(), err)
	}
	return rep
}

// TestFilterBehaviour loads the compiled profile into a child process and
// checks, syscall by syscall, what the kernel answers. A control child
// without the profile shows which answers come from the filter.
func TestFilterBehaviour(t *testing.T) {
	if err := CheckKernel(); err != nil {
		t.Skipf("kernel cannot run the filter: %v", err)
	}
	filtered := runChild(t, "filtered")
	control := runChild(t, "control")

	seen := map[string]bool{}
	for _, pr := range probes(-1) {
		if seen[pr.name] {
			t.Fatalf("duplicate probe name %q", pr.name)
		}
		seen[pr.name] = true
		errno, ok := filtered.Probes[pr.name]
		if !ok {
			t.Errorf("%s: not run", pr.name)
			continue
		}
		if got := classify(errno); got != pr.want {
			t.Errorf("%s = %v (%s), want %s", pr.name, unix.Errno(errno), got, pr.want)
		}
		if c := control.Probes[pr.name]; pr.want != allowed && classify(c) == pr.want {
			t.Logf("%s: the kernel alone also answers %v here, so this probe does not show the filter at work", pr.name, unix.Errno(c))
		}
	}

	if len(filtered.Sweep) < 40 {
		t.Errorf("only %d denied syscalls swept", len(filtered.Sweep))
	}
	for name, errno := range filtered.Sweep {
		if unix.Errno(errno) != unix.EPERM {
			t.Errorf("%s with the profile = %v, want EPERM (%v means the profile allows it)", name, unix.Errno(errno), guardErrno)
		}
		if c := unix.Errno(control.Sweep[name]); c != guardErrno {
			t.Errorf("%s under the guard alone = %v, want %v: the guard does not work", name, c, guardErrno)
		}
	}
	t.Logf("swept %d denied syscalls; not on %s: %s", len(filtered.Sweep), runtime.GOARCH, strings.Join(filtered.Absent, " "))
}

// TestFilterMemfdDenied loads the deny-mode profile (WithMemfdDenied) into
// a child: every memfd_create fails with ENOSYS in the kernel, and every
// other probe gets what it gets under the default profile.
func TestFilterMemfdDenied(t *testing.T) {
	if err := CheckKernel(); err != nil {
		t.Skipf("kernel cannot run the filter: %v", err)
	}
	rep := runChild(t, "memfd-denied")
	n := 0
	for _, pr := range probes(-1) {
		want := pr.want
		if pr.nr == unix.SYS_MEMFD_CREATE {
			want = nosys
			n++
		}
		errno, ok := rep.Probes[pr.name]
		if !ok {
			t.Errorf("%s: not run", pr.name)
			continue
		}
		if got := classify(errno); got != want {
			t.Errorf("%s = %v (%s), want %s", pr.name, unix.Errno(errno), got, want)
		}
	}
	if n < 4 {
		t.Errorf("only %d memfd_create probes", n)
	}
}

func TestValidateDefault(t *testing.T) {
	p := mustDefault(t)
	if err := Validate(p); err != nil {
		t.Fatalf("Validate(Default()): %v", err)
	}
	// Names libseccomp does not know are dropped from ALLOW rules; say which.
	var unknown []string
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if _, err := libseccomp.GetSyscallFromName(n); err != nil {
				unknown = append(unknown, n)
			}
		}
	}
	t.Logf("libseccomp %s does not know (skipped, so denied): %s", libVersion(), strings.Join(unknown, " "))

	f, err := compile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	n, err := bpfLen(f)
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 || n > bpfMaxInsns-stubMargin {
		t.Errorf("filter has %d BPF instructions, want between 100 and %d", n, bpfMaxInsns-stubMargin)
	}
	t.Logf("filter has %d BPF instructions", n)
}

func TestValidateRejects(t *testing.T) {
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	native, err := nativeArch(runtime.GOARCH)
	if err != nil {
		t.Skip(err)
	}
	other := specs.ArchAARCH64
	if native == specs.ArchAARCH64 {
		other = specs.ArchX86_64
	}
	profile := func(arches []specs.Arch, rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction:   specs.ActErrno,
			DefaultErrnoRet: &eperm,
			Architectures:   arches,
			Syscalls:        append([]specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}, rules...),
		}
	}
	tests := []struct {
		name string
		p    *specs.LinuxSeccomp
		want string // substring of the error; "" means valid
	}{
		{"minimal", profile([]specs.Arch{native}), ""},
		{"no architectures means native", profile(nil), ""},
		{"unknown name in ALLOW rule is skipped", profile(nil, specs.LinuxSyscall{Names: []string{"no_such_syscall"}, Action: specs.ActAllow}), ""},
		{"unknown name in ERRNO rule", profile(nil, specs.LinuxSyscall{Names: []string{"no_such_syscall"}, Action: specs.ActErrno, ErrnoRet: &enosys}), "unknown to libseccomp"},
		{"unknown architecture", profile([]specs.Arch{"SCMP_ARCH_PDP11"}), "unknown architecture"},
		{"architecture without prefix", profile([]specs.Arch{"x86_64"}), "unknown architecture"},
		{"foreign architecture", profile([]specs.Arch{native, other}), "not the native"},
		{"unknown action", profile(nil, specs.LinuxSyscall{Names: []string{"getpid"}, Action: "SCMP_ACT_MAYBE"}), "unknown action"},
		{"unknown operator", profile(nil, specs.LinuxSyscall{Names: []string{"getpid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ABOUT"}}}), "unknown operator"},
		{"unknown flag", func() *specs.LinuxSeccomp {
			p := profile(nil)
			p.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}
			return p
		}(), "not supported by runc"},
		{"same-argument conditions", profile(nil, specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 1, Value: unix.TIOCSTI, Op: specs.OpNotEqual}, {Index: 1, Value: unix.TIOCLINUX, Op: specs.OpNotEqual},
		}}), "two conditions on argument 1"},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "default action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.p)
			if tt.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate: got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckKernel(t *testing.T) {
	// This machine runs the sandboxes; it must be able to enforce the profile.
	if err := CheckKernel(); err != nil {
		t.Fatalf("CheckKernel: %v", err)
	}
}

func TestCheckNames(t *testing.T) {
	if err := CheckNames("getpid", "read", "io_uring_setup"); err != nil {
		t.Errorf("CheckNames(known): %v", err)
	}
	err := CheckNames("getpid", "no_such_syscall", "gtepid")
	if err == nil || !strings.Contains(err.Error(), "no_such_syscall, gtepid") {
		t.Errorf("CheckNames(unknown) = %v, want both names reported", err)
	}
	if runtime.GOARCH == "amd64" {
		// socketcall exists on i386 only: libseccomp knows the name, the
		// native ABI does not have it.
		if err := CheckNames("socketcall"); err == nil {
			t.Error("CheckNames(socketcall) on amd64: no error")
		}
	}
}
