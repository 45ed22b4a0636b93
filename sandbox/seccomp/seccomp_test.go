package seccomp

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// decide evaluates p for one call the way libseccomp runs the filter runc
// builds from it on a 64-bit architecture: the rules naming the syscall are
// ORed, the conditions of one rule are ANDed on full 64-bit values, and the
// default applies when no rule matches. It relies on check(p): one verdict
// per syscall, so the order of rules does not matter.
func decide(t *testing.T, p *specs.LinuxSeccomp, name string, args ...uint64) verdict {
	t.Helper()
	var a [6]uint64
	copy(a[:], args)
	for _, r := range p.Syscalls {
		if slices.Contains(r.Names, name) && matches(t, r.Args, a) {
			return verdictOf(r.Action, r.ErrnoRet)
		}
	}
	return verdictOf(p.DefaultAction, p.DefaultErrnoRet)
}

func matches(t *testing.T, conds []specs.LinuxSeccompArg, a [6]uint64) bool {
	t.Helper()
	for _, c := range conds {
		v := a[c.Index]
		var ok bool
		switch c.Op {
		case specs.OpEqualTo:
			ok = v == c.Value
		case specs.OpNotEqual:
			ok = v != c.Value
		case specs.OpLessThan:
			ok = v < c.Value
		case specs.OpLessEqual:
			ok = v <= c.Value
		case specs.OpGreaterThan:
			ok = v > c.Value
		case specs.OpGreaterEqual:
			ok = v >= c.Value
		case specs.OpMaskedEqual:
			ok = v&c.Value == c.ValueTwo
		default:
			t.Fatalf("operator %s not understood by the test evaluator", c.Op)
		}
		if !ok {
			return false
		}
	}
	return true
}

var (
	allow = verdict{Action: specs.ActAllow}
	eperm = verdict{Action: specs.ActErrno, Errno: 1}
)

func TestAllowExcept32(t *testing.T) {
	const x, y = 0x5412, 0x541c
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: allowExcept32("ioctl", 1, x, y)}
	if err := check(p); err != nil {
		t.Fatalf("check: %v", err)
	}
	if n := len(p.Syscalls); n > 64 {
		t.Errorf("%d rules for two denied values, want at most 64", n)
	}
	values := []uint64{0, 1, x - 1, x, x + 1, y - 1, y, y + 1, 0x541b, 0xffffffff, 1<<63 | 0xffffffff, ^uint64(0)}
	for _, hi := range []uint64{1 << 32, 1 << 63, 0xdeadbeef << 32, 0xffffffff00000000} {
		values = append(values, hi|x, hi|y, hi|(x+1))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		values = append(values, r.Uint64(), r.Uint64()&0xffffffff, 0x5400|r.Uint64()&0xff)
	}
	for _, v := range values {
		want := allow
		if low := v & 0xffffffff; low == x || low == y {
			want = eperm
		}
		if got := decide(t, p, "ioctl", 3, v); got != want {
			t.Fatalf("ioctl(3, %#x): got %v, want %v", v, got, want)
		}
	}
	if got := decide(t, p, "ioctl", 3, x); got != eperm {
		t.Fatalf("denied value allowed: %v", got)
	}
}

func TestCheck(t *testing.T) {
	enosys := uint(38)
	eq := func(i uint, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Value: v, Op: specs.OpEqualTo}
	}
	tests := []struct {
		name  string
		rules []specs.LinuxSyscall
		want  string // substring of the error; "" means valid
	}{
		{"plain", []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}, ""},
		{"args on different arguments", []specs.LinuxSyscall{{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(0, 16), eq(2, 0)}}}, ""},
		{"two conditions on one argument", []specs.LinuxSyscall{{Names: []string{"ioctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 1, Value: 0x5412, Op: specs.OpNotEqual}, {Index: 1, Value: 0x541c, Op: specs.OpNotEqual},
		}}}, "two conditions on argument 1"},
		{"same verdict as default", []specs.LinuxSyscall{{Names: []string{"ptrace"}, Action: specs.ActErrno}}, "equals the default"},
		{"mixed verdicts", []specs.LinuxSyscall{
			{Names: []string{"ioctl"}, Action: specs.ActAllow},
			{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: &enosys, Args: []specs.LinuxSeccompArg{eq(1, 0x5412)}},
		}, "different actions"},
		{"bad index", []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(6, 0)}}}, "out of range"},
		{"bad name", []specs.LinuxSyscall{{Names: []string{"Read"}, Action: specs.ActAllow}}, "not a syscall name"},
		{"no names", []specs.LinuxSyscall{{Action: specs.ActAllow}}, "names no syscall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: tt.rules})
			if tt.want == "" && err != nil {
				t.Fatalf("check: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("check: got %v, want error containing %q", err, tt.want)
			}
		})
	}
	if err := check(nil); err == nil {
		t.Error("check(nil): no error")
	}
}

func TestWithAllowed(t *testing.T) {
	one := uint(1)
	base := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &one,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
		},
	}
	got, err := WithAllowed(base, "mlock", "read", "mlock", "getcpu")
	if err != nil {
		t.Fatalf("WithAllowed: %v", err)
	}
	if len(base.Syscalls) != 2 {
		t.Fatalf("WithAllowed modified its argument: %d rules", len(base.Syscalls))
	}
	if n := len(got.Syscalls); n != 3 {
		t.Fatalf("got %d rules, want 3", n)
	}
	if last := got.Syscalls[2]; !slices.Equal(last.Names, []string{"mlock", "getcpu"}) || last.Action != specs.ActAllow || len(last.Args) != 0 {
		t.Errorf("added rule = %+v, want unconditional ALLOW of mlock, getcpu", last)
	}
	got.Syscalls[0].Names[0] = "changed"
	*got.DefaultErrnoRet = 2
	if base.Syscalls[0].Names[0] != "read" || *base.DefaultErrnoRet != 1 {
		t.Error("WithAllowed's result shares memory with its argument")
	}

	for _, name := range []string{"ptrace", "mount", "bpf", "unshare", "socket", "", "Read", "1x", "a-b"} {
		if _, err := WithAllowed(base, "mlock", name); err == nil {
			t.Errorf("WithAllowed(%q): no error", name)
		}
	}
	if _, err := WithAllowed(nil, "read"); err == nil {
		t.Error("WithAllowed(nil): no error")
	}
}

func TestMissingActions(t *testing.T) {
	tests := []struct{ avail, want string }{
		{"kill_process kill_thread trap errno user_notif trace log allow\n", ""},
		{"kill_thread trap errno trace allow", ""},
		{"kill_process kill_thread trap trace log allow", "errno"},
		{"", "allow errno kill_thread"},
	}
	for _, tt := range tests {
		if got := strings.Join(missingActions(tt.avail), " "); got != tt.want {
			t.Errorf("missingActions(%q) = %q, want %q", tt.avail, got, tt.want)
		}
	}
}

func TestNativeArch(t *testing.T) {
	for goarch, want := range map[string]specs.Arch{"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64} {
		if got, err := nativeArch(goarch); err != nil || got != want {
			t.Errorf("nativeArch(%s) = %s, %v; want %s", goarch, got, err, want)
		}
	}
	for _, goarch := range []string{"386", "arm", "s390x", "riscv64"} {
		if _, err := nativeArch(goarch); err == nil {
			t.Errorf("nativeArch(%s): no error", goarch)
		}
	}
}
