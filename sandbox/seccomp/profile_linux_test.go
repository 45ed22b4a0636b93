//go:build linux

package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	moby "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite testdata/profile_<GOARCH>.json from Default()")

var enosys = verdict{Action: specs.ActErrno, Errno: uint(unix.ENOSYS)}

func mustDefault(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	if _, err := nativeArch(runtime.GOARCH); err != nil {
		t.Skipf("no profile on this architecture: %v", err)
	}
	p, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return p
}

// upstream returns moby's profile for a process without capabilities, the
// base Default starts from.
func upstream(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	p, err := moby.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}})
	if err != nil {
		t.Fatalf("moby profile: %v", err)
	}
	return p
}

// isAllowing reports whether an action lets the call run.
func isAllowing(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActErrno, specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap:
		return false
	}
	return true
}

func TestDefaultShape(t *testing.T) {
	p := mustDefault(t)
	if err := check(p); err != nil {
		t.Fatalf("check: %v", err)
	}
	if got := verdictOf(p.DefaultAction, p.DefaultErrnoRet); got != eperm {
		t.Errorf("default = %+v, want ERRNO(EPERM)", got)
	}
	want := map[string][]specs.Arch{"amd64": {specs.ArchX86_64}, "arm64": {specs.ArchAARCH64}}[runtime.GOARCH]
	if !slices.Equal(p.Architectures, want) {
		t.Errorf("architectures = %v, want exactly %v", p.Architectures, want)
	}
	if len(p.Flags) != 0 || p.ListenerPath != "" {
		t.Errorf("unexpected flags %v or listener %q", p.Flags, p.ListenerPath)
	}
	// Every call is answered: no rule kills, traps, logs or notifies.
	for _, r := range p.Syscalls {
		if r.Action != specs.ActAllow && r.Action != specs.ActErrno {
			t.Errorf("rule for %v has action %s", r.Names, r.Action)
		}
	}
}

func TestDefaultDenied(t *testing.T) {
	p := mustDefault(t)
	denied := setOf(deniedSyscalls())
	// The brief's list, spelled out so that shortening deniedSyscalls fails.
	for _, n := range strings.Fields(`ptrace process_vm_readv process_vm_writev pidfd_getfd
		name_to_handle_at open_by_handle_at userfaultfd bpf perf_event_open keyctl add_key
		request_key mount umount2 umount fsopen fsconfig fsmount fspick move_mount open_tree
		mount_setattr pivot_root chroot unshare setns kexec_load kexec_file_load init_module
		finit_module delete_module create_module lookup_dcookie quotactl reboot swapon swapoff
		syslog sethostname setdomainname settimeofday clock_settime clock_adjtime adjtimex acct
		iopl ioperm vhangup nfsservctl fanotify_init uselib ustat sysfs _sysctl vm86 vm86old
		mbind set_mempolicy move_pages`) {
		if !denied[n] {
			t.Errorf("%s missing from deniedSyscalls", n)
		}
	}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if denied[n] {
				t.Errorf("denied syscall %s appears in a %s rule %v", n, r.Action, r.Args)
			}
		}
	}
	for n := range denied {
		if got := decide(t, p, n); got != eperm {
			t.Errorf("%s: %+v, want EPERM", n, got)
		}
	}
	// Upstream allows some of them (adjtimex, name_to_handle_at, ptrace on
	// kernels >= 4.8); make sure the test would notice them.
	if !slices.ContainsFunc(upstream(t).Syscalls, func(r specs.LinuxSyscall) bool {
		return isAllowing(r.Action) && slices.Contains(r.Names, "adjtimex")
	}) {
		t.Log("upstream no longer allows adjtimex; the stripping is untested for it")
	}
}

func TestDefaultENOSYS(t *testing.T) {
	p := mustDefault(t)
	for _, n := range []string{"io_uring_setup", "io_uring_enter", "io_uring_register", "clone3"} {
		for _, args := range [][]uint64{nil, {1, 2, 3, 4, 5, 6}, {^uint64(0)}} {
			if got := decide(t, p, n, args...); got != enosys {
				t.Errorf("%s(%v) = %+v, want ERRNO(ENOSYS)", n, args, got)
			}
		}
	}
}

func TestDefaultSocket(t *testing.T) {
	p := mustDefault(t)
	type key struct{ domain, protocol uint64 }
	allowed := map[key]bool{}
	for _, r := range p.Syscalls {
		if !slices.Contains(r.Names, "socket") {
			continue
		}
		if len(r.Names) != 1 || r.Action != specs.ActAllow {
			t.Fatalf("socket rule %+v: want a rule of its own with ALLOW", r)
		}
	}
	// The whole domain space, and the protocols that matter for netlink.
	for d := uint64(0); d < 64; d++ {
		for _, proto := range []uint64{unix.NETLINK_ROUTE, unix.NETLINK_AUDIT, unix.NETLINK_SOCK_DIAG, unix.NETLINK_KOBJECT_UEVENT, 1 << 32} {
			if decide(t, p, "socket", d, unix.SOCK_RAW, proto) == allow {
				allowed[key{d, proto}] = true
			}
		}
	}
	want := map[key]bool{}
	for _, d := range []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6} {
		for _, proto := range []uint64{unix.NETLINK_ROUTE, unix.NETLINK_AUDIT, unix.NETLINK_SOCK_DIAG, unix.NETLINK_KOBJECT_UEVENT, 1 << 32} {
			want[key{d, proto}] = true
		}
	}
	want[key{unix.AF_NETLINK, unix.NETLINK_ROUTE}] = true
	for k := range want {
		if !allowed[k] {
			t.Errorf("socket(%d, SOCK_RAW, %d) denied, want allowed", k.domain, k.protocol)
		}
	}
	for k := range allowed {
		if !want[k] {
			t.Errorf("socket(%d, SOCK_RAW, %d) allowed, want EPERM", k.domain, k.protocol)
		}
	}
	// Upper bits are truncated by the kernel; the filter must not be fooled.
	for _, d := range []uint64{1<<32 | unix.AF_PACKET, 1<<32 | unix.AF_INET, 1<<63 | unix.AF_UNIX} {
		if got := decide(t, p, "socket", d, unix.SOCK_STREAM, 0); got != eperm {
			t.Errorf("socket(%#x) = %+v, want EPERM", d, got)
		}
	}
	for d := uint64(0); d < 64; d++ {
		want := eperm
		if d == unix.AF_UNIX {
			want = allow
		}
		if got := decide(t, p, "socketpair", d, unix.SOCK_STREAM, 0, 0); got != want {
			t.Errorf("socketpair(%d) = %+v, want %+v", d, got, want)
		}
	}
}

func TestDefaultPersonality(t *testing.T) {
	p := mustDefault(t)
	safe := []uint64{0, 0x8, 0x20000, 0x20008, 0xffffffff}
	for _, v := range safe {
		if got := decide(t, p, "personality", v); got != allow {
			t.Errorf("personality(%#x) = %+v, want allowed", v, got)
		}
	}
	for _, v := range []uint64{readImpliesExec, addrNoRandomize, readImpliesExec | perLinux32, 0x0008000 /* SHORT_INODE */, 1, 0x100000000, 0xfffffffe, 0xffffffffffffffff} {
		if got := decide(t, p, "personality", v); got != eperm {
			t.Errorf("personality(%#x) = %+v, want EPERM", v, got)
		}
	}
	// Never looser than upstream: every value we allow, moby allows too.
	up := upstream(t)
	for _, v := range safe {
		if got := decide(t, up, "personality", v); got != allow {
			t.Errorf("personality(%#x): allowed here but not by upstream (%+v)", v, got)
		}
	}
}

func TestDefaultClone(t *testing.T) {
	p := mustDefault(t)
	threadFlags := uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_SYSVSEM | unix.CLONE_THREAD | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID)
	const sigchld = uint64(unix.SIGCHLD)
	for _, flags := range []uint64{0, sigchld, threadFlags, unix.CLONE_VFORK | unix.CLONE_VM | sigchld} {
		if got := decide(t, p, "clone", flags); got != allow {
			t.Errorf("clone(%#x) = %+v, want allowed", flags, got)
		}
	}
	for _, ns := range []uint64{unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP} {
		if got := decide(t, p, "clone", ns|sigchld); got != eperm {
			t.Errorf("clone(%#x) = %+v, want EPERM", ns, got)
		}
	}
	// Upstream has the same rule for processes without CAP_SYS_ADMIN; if it
	// changes, look at why before trusting ours blindly.
	up := upstream(t)
	if !slices.ContainsFunc(up.Syscalls, func(r specs.LinuxSyscall) bool {
		return slices.Equal(r.Names, []string{"clone"}) && len(r.Args) == 1 &&
			r.Args[0] == specs.LinuxSeccompArg{Index: 0, Value: nsCloneFlags, Op: specs.OpMaskedEqual}
	}) {
		t.Errorf("upstream's masked clone rule changed or disappeared: review it against ours")
	}
}

func TestDefaultSeccompAndIoctl(t *testing.T) {
	p := mustDefault(t)
	for flags, want := range map[uint64]verdict{
		0: allow,
		unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG:          allow,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER:                                  eperm,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC: eperm,
		1<<32 | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER:                          eperm,
	} {
		if got := decide(t, p, "seccomp", unix.SECCOMP_SET_MODE_FILTER, flags, 0); got != want {
			t.Errorf("seccomp(SET_MODE_FILTER, %#x) = %+v, want %+v", flags, got, want)
		}
	}
	if got := decide(t, p, "prctl", unix.PR_SET_NO_NEW_PRIVS, 1); got != allow {
		t.Errorf("prctl = %+v, want allowed", got)
	}
	for cmd, want := range map[uint64]verdict{
		unix.TIOCSTI:           eperm,
		unix.TIOCLINUX:         eperm,
		1<<32 | unix.TIOCSTI:   eperm,
		1<<63 | unix.TIOCLINUX: eperm,
		unix.TIOCINQ:           allow, // FIONREAD
		unix.TCGETS:            allow,
		unix.TIOCGWINSZ:        allow,
		0x5421:                 allow, // FIONBIO
		0x5451:                 allow, // FIOCLEX
		unix.TIOCSTI - 1:       allow,
		unix.TIOCLINUX + 1:     allow,
	} {
		if got := decide(t, p, "ioctl", 0, cmd, 0); got != want {
			t.Errorf("ioctl(0, %#x) = %+v, want %+v", cmd, got, want)
		}
	}
}

// TestDefaultExecFromMemory: no executable memfd and no execveat of a
// descriptor; every other memfd_create and execveat, and execve, run.
func TestDefaultExecFromMemory(t *testing.T) {
	p := mustDefault(t)
	for flags, want := range map[uint64]verdict{
		0:                allow,
		unix.MFD_CLOEXEC: allow,
		unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING: allow,
		unix.MFD_NOEXEC_SEAL:                      allow,
		unix.MFD_HUGETLB | unix.MFD_CLOEXEC:       allow,
		1 << 32:                                   allow,
		unix.MFD_EXEC:                             eperm,
		unix.MFD_EXEC | unix.MFD_CLOEXEC:          eperm,
		unix.MFD_EXEC | unix.MFD_NOEXEC_SEAL:      eperm,
		1<<32 | unix.MFD_EXEC:                     eperm, // the kernel reads the low 32 bits
		^uint64(0):                                eperm,
	} {
		if got := decide(t, p, "memfd_create", 0, flags); got != want {
			t.Errorf("memfd_create(name, %#x) = %+v, want %+v", flags, got, want)
		}
	}
	for flags, want := range map[uint64]verdict{
		0:                        allow,
		unix.AT_SYMLINK_NOFOLLOW: allow,
		unix.AT_EMPTY_PATH:       eperm,
		unix.AT_EMPTY_PATH | unix.AT_SYMLINK_NOFOLLOW: eperm,
		1<<32 | unix.AT_EMPTY_PATH:                    eperm,
		^uint64(0):                                    eperm,
	} {
		if got := decide(t, p, "execveat", 3, 0, 0, 0, flags); got != want {
			t.Errorf("execveat(3, path, argv, envp, %#x) = %+v, want %+v", flags, got, want)
		}
	}
	if got := decide(t, p, "execve", 0, 0, 0); got != allow {
		t.Errorf("execve = %+v, want allowed", got)
	}
	// Upstream allows both outright: the rules here are what denies.
	up := upstream(t)
	if decide(t, up, "memfd_create", 0, unix.MFD_EXEC) != allow || decide(t, up, "execveat", 3, 0, 0, 0, unix.AT_EMPTY_PATH) != allow {
		t.Log("upstream no longer allows memfd_create(MFD_EXEC) or execveat(AT_EMPTY_PATH): review the rules here")
	}
}

// setIDCalls are the calls that set a file's mode from an argument, each
// with its arguments for a given mode: no path (NULL), fd -1, and for the
// opens O_WRONLY|O_CREAT|O_EXCL, so that a call the filter lets through
// fails in the kernel on its path or fd and changes nothing.
func setIDCalls() map[string]func(mode uint64) []uint64 {
	const none = ^uint64(0) // fd -1
	const create = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL
	return map[string]func(uint64) []uint64{
		"chmod":     func(m uint64) []uint64 { return []uint64{0, m} },
		"creat":     func(m uint64) []uint64 { return []uint64{0, m} },
		"fchmod":    func(m uint64) []uint64 { return []uint64{none, m} },
		"fchmodat":  func(m uint64) []uint64 { return []uint64{none, 0, m} },
		"fchmodat2": func(m uint64) []uint64 { return []uint64{none, 0, m, 0} },
		"mknod":     func(m uint64) []uint64 { return []uint64{0, unix.S_IFREG | m, 0} },
		"mknodat":   func(m uint64) []uint64 { return []uint64{none, 0, unix.S_IFREG | m, 0} },
		"open":      func(m uint64) []uint64 { return []uint64{0, create, m} },
		"openat":    func(m uint64) []uint64 { return []uint64{none, 0, create, m} },
	}
}

// TestDefaultSetIDModes: no call that takes a mode may set S_ISUID or
// S_ISGID; every other mode, the sticky bit included, is allowed; openat2,
// whose mode seccomp cannot see, fails with ENOSYS.
func TestDefaultSetIDModes(t *testing.T) {
	p := mustDefault(t)
	calls := setIDCalls()
	if len(calls) != len(modeArgs) {
		t.Fatalf("the test knows %d calls, modeArgs has %d", len(calls), len(modeArgs))
	}
	up := upstream(t)
	for name, args := range calls {
		// The rule: a single ALLOW with the masked comparison on the mode.
		var rules []specs.LinuxSyscall
		for _, r := range p.Syscalls {
			if slices.Contains(r.Names, name) {
				rules = append(rules, r)
			}
		}
		want := specs.LinuxSeccompArg{Index: modeArgs[name], Value: unix.S_ISUID | unix.S_ISGID, ValueTwo: 0, Op: specs.OpMaskedEqual}
		if len(rules) != 1 || rules[0].Action != specs.ActAllow || !slices.Equal(rules[0].Names, []string{name}) ||
			!slices.Equal(rules[0].Args, []specs.LinuxSeccompArg{want}) {
			t.Errorf("%s rules %+v, want one ALLOW if arg %d & 06000 == 0", name, rules, modeArgs[name])
		}
		for _, m := range []uint64{0, 0o644, 0o755, 0o777, 0o1777, 0o177777 &^ 0o6000} {
			if got := decide(t, p, name, args(m)...); got != allow {
				t.Errorf("%s(mode %#o) = %+v, want allowed", name, m, got)
			}
		}
		for _, m := range []uint64{0o4755, 0o2755, 0o6755, 0o4000, 0o2000, 0o2010, 0o7777, 1<<32 | 0o4755, ^uint64(0)} {
			if got := decide(t, p, name, args(m)...); got != eperm {
				t.Errorf("%s(mode %#o) = %+v, want EPERM", name, m, got)
			}
		}
		// Upstream allows every mode: the rule here is what refuses.
		if decide(t, up, name, args(0o4755)...) != allow {
			t.Logf("upstream no longer allows %s with mode 04755: review the rule here", name)
		}
	}
	for _, args := range [][]uint64{nil, {^uint64(0), 0, 0, 24}} {
		if got := decide(t, p, "openat2", args...); got != enosys {
			t.Errorf("openat2%v = %+v, want ENOSYS", args, got)
		}
	}
	// The kernel ignores S_ISUID and S_ISGID in mkdir's mode, so mkdir has
	// no rule of its own and stays as upstream has it.
	for _, n := range []string{"mkdir", "mkdirat"} {
		if got := decide(t, p, n, 0, 0o2755); got != allow {
			t.Errorf("%s(mode 02755) = %+v, want allowed", n, got)
		}
	}
}

// TestWithMemfdDenied: memfd_create fails with ENOSYS whatever its flags,
// nothing else changes, and a profile's allow list cannot bring it back
// (nor can the notify agent: TestNotifyKeepsMemfdDenied).
func TestWithMemfdDenied(t *testing.T) {
	p := mustDefault(t)
	q, err := WithMemfdDenied(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range []uint64{0, unix.MFD_CLOEXEC, unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING, unix.MFD_NOEXEC_SEAL,
		unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING | unix.MFD_NOEXEC_SEAL, unix.MFD_EXEC, unix.MFD_HUGETLB, 1 << 32, ^uint64(0)} {
		if got := decide(t, q, "memfd_create", 0, flags); got != enosys {
			t.Errorf("memfd_create(name, %#x) = %+v, want ENOSYS", flags, got)
		}
	}
	if decide(t, p, "memfd_create", 0, unix.MFD_CLOEXEC) != allow {
		t.Error("WithMemfdDenied changed its argument")
	}
	// Everything else decides as before, execveat(AT_EMPTY_PATH) included.
	for _, c := range []struct {
		name string
		args []uint64
	}{
		{"execveat", []uint64{3, 0, 0, 0, unix.AT_EMPTY_PATH}}, {"execveat", []uint64{3, 0, 0, 0, 0}},
		{"execve", nil}, {"read", nil}, {"mmap", []uint64{0, 4096, unix.PROT_READ | unix.PROT_EXEC}},
		{"memfd_secret", nil}, {"keyctl", nil}, {"clone3", nil},
	} {
		if got, want := decide(t, q, c.name, c.args...), decide(t, p, c.name, c.args...); got != want {
			t.Errorf("%s%v = %+v, was %+v", c.name, c.args, got, want)
		}
	}
	if len(q.Syscalls) != len(p.Syscalls) {
		t.Errorf("%d rules, was %d: only the memfd_create rule should be replaced", len(q.Syscalls), len(p.Syscalls))
	}
	if _, err := WithAllowed(q, "memfd_create"); err == nil {
		t.Error("a profile's seccomp.allow re-allowed memfd_create")
	}
	// A rule naming memfd_create among others loses only that name.
	mixed := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "memfd_create", "write"}, Action: specs.ActAllow}}}
	m, err := WithMemfdDenied(mixed)
	if err != nil {
		t.Fatal(err)
	}
	if decide(t, m, "memfd_create") != enosys || decide(t, m, "read") != allow || decide(t, m, "write") != allow {
		t.Errorf("mixed rule: %+v", m.Syscalls)
	}
	if _, err := WithMemfdDenied(nil); err == nil {
		t.Error("WithMemfdDenied(nil)")
	}
}

// TestDefaultKeepsUpstream checks that tightening removes only what it
// means to: everything else upstream allows unconditionally stays allowed,
// so upstream additions flow in.
func TestDefaultKeepsUpstream(t *testing.T) {
	p := mustDefault(t)
	drop := setOf(append(deniedSyscalls(), ownedSyscalls()...))
	n := 0
	for _, r := range upstream(t).Syscalls {
		if r.Action != specs.ActAllow || len(r.Args) != 0 {
			continue
		}
		for _, name := range r.Names {
			if drop[name] {
				continue
			}
			n++
			if got := decide(t, p, name); got != allow {
				t.Errorf("upstream allows %s, Default gives %+v", name, got)
			}
		}
	}
	if n < 250 {
		t.Errorf("only %d upstream syscalls kept; did the upstream profile change shape?", n)
	}
}

func TestDefaultWithAllowed(t *testing.T) {
	p := mustDefault(t)
	q, err := WithAllowed(p, "sched_setattr", "mlock")
	if err != nil {
		t.Fatalf("WithAllowed: %v", err)
	}
	if len(q.Syscalls) != len(p.Syscalls) {
		t.Errorf("already-allowed names added a rule")
	}
	for _, n := range append(deniedSyscalls(), ownedSyscalls()...) {
		if _, err := WithAllowed(p, n); err == nil {
			t.Errorf("WithAllowed(%s): no error", n)
		}
	}
}

func TestGolden(t *testing.T) {
	p := mustDefault(t)
	got, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "profile_"+runtime.GOARCH+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && runtime.GOARCH != "amd64" {
		t.Skipf("no %s; create it with `go test ./sandbox/seccomp -run TestGolden -update`", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		t.Errorf("Default() differs from %s from line %d:\n got: %s\nwant: %s\n"+
			"an upstream moby change or a change here: review it, then run `go test ./sandbox/seccomp -run TestGolden -update`",
			path, i+1, line(gl, i), line(wl, i))
	}
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return strings.TrimSpace(lines[i])
	}
	return "<end of file>"
}
