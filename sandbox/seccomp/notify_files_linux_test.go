//go:build linux && cgo && seccomp

package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestOpenWriteFlagValues(t *testing.T) {
	for _, c := range []struct {
		ours, unix uint64
		name       string
	}{
		{oWronly, unix.O_WRONLY, "O_WRONLY"}, {oRdwr, unix.O_RDWR, "O_RDWR"},
		{oCreat, unix.O_CREAT, "O_CREAT"}, {oTrunc, unix.O_TRUNC, "O_TRUNC"},
		{oAppend, unix.O_APPEND, "O_APPEND"},
	} {
		if c.ours != c.unix {
			t.Errorf("%s = %#x, unix says %#x", c.name, c.ours, c.unix)
		}
	}
	if unix.O_TMPFILE&openWriteFlags != 0 {
		t.Error("O_TMPFILE overlaps the write flags; it is covered through O_WRONLY/O_RDWR only")
	}
}

func fileNotifyProfile(t *testing.T) (*specs.LinuxSeccomp, []string) {
	t.Helper()
	p, _, err := WithNotify(mustDefault(t), "/run/mcpbox/agent.sock")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(p)
	q, names, err := WithFileNotify(p)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(p); !bytes.Equal(before, after) {
		t.Error("WithFileNotify changed its input")
	}
	return q, names
}

func TestWithFileNotifyDefault(t *testing.T) {
	q, names := fileNotifyProfile(t)
	if err := Validate(q); err != nil {
		t.Fatalf("Validate(WithFileNotify(WithNotify(Default()))): %v", err)
	}
	if q.ListenerPath != "/run/mcpbox/agent.sock" {
		t.Errorf("ListenerPath = %q", q.ListenerPath)
	}
	if !slices.IsSorted(names) {
		t.Error("names are not sorted")
	}
	want := []string{"chmod", "creat", "fchmodat", "link", "linkat", "mkdir", "mkdirat", "open", "openat",
		"rename", "renameat", "renameat2", "rmdir", "symlink", "symlinkat", "truncate", "unlink", "unlinkat"}
	if !slices.Equal(names, want) {
		t.Errorf("notified %v, want %v", names, want)
	}
	byName := map[string][]specs.LinuxSyscall{}
	for _, r := range q.Syscalls {
		for _, n := range r.Names {
			byName[n] = append(byName[n], r)
		}
	}
	for _, n := range want {
		rules := byName[n]
		g, hasMode := modeGuard(n)
		if _, split := openFlagsArg[n]; split {
			if len(rules) != 6 || checkOpenSplit(n, rules) != nil {
				t.Errorf("%s rules %+v, want the flag split", n, rules)
			}
			// The mode guard of Default's rule is kept on every rule.
			for _, r := range rules {
				if len(r.Args) != 2 || r.Args[1] != g {
					t.Errorf("%s rule %+v lacks the mode guard", n, r)
				}
			}
			continue
		}
		var wantArgs []specs.LinuxSeccompArg
		if hasMode {
			wantArgs = []specs.LinuxSeccompArg{g}
		}
		if len(rules) != 1 || rules[0].Action != specs.ActNotify || !slices.Equal(rules[0].Args, wantArgs) {
			t.Errorf("%s rules %+v, want one NOTIFY with conditions %+v", n, rules, wantArgs)
		}
	}
	// Left as Default has them: openat2 cannot be split by flags (Default
	// answers it ENOSYS); read, write and the fd-based calls (fchmod keeps
	// its mode guard) are not file-naming calls.
	before := map[string][]specs.LinuxSyscall{}
	for _, r := range mustDefault(t).Syscalls {
		for _, n := range r.Names {
			before[n] = append(before[n], r)
		}
	}
	// A rule's names may shrink; what it does to the call may not.
	effect := func(rules []specs.LinuxSyscall) []string {
		var out []string
		for _, r := range rules {
			out = append(out, fmt.Sprintf("%+v %+v", verdictOf(r.Action, r.ErrnoRet), r.Args))
		}
		return out
	}
	for _, n := range []string{"openat2", "read", "write", "ftruncate", "fchmod", "close"} {
		if got, want := effect(byName[n]), effect(before[n]); len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s rules %v, want Default's %v", n, got, want)
		}
	}
	// A set-user-ID or set-group-ID mode never reaches the agent: it fails
	// in the filter, whose answer the agent cannot change.
	for n, args := range setIDCalls() {
		if got := decide(t, q, n, args(0o4755)...); got != eperm {
			t.Errorf("%s with mode 04755 = %+v, want EPERM", n, got)
		}
		if got := decide(t, q, n, args(0o644)...); got == eperm {
			t.Errorf("%s with mode 0644 = %+v, want allowed or notified", n, got)
		}
	}
	t.Logf("notified: %s", strings.Join(names, " "))
}

func TestWithFileNotifyRejects(t *testing.T) {
	if _, _, err := WithFileNotify(mustDefault(t)); err == nil || !strings.Contains(err.Error(), "WithNotify") {
		t.Errorf("profile without listener path: err = %v", err)
	}
	if _, _, err := WithFileNotify(nil); err == nil {
		t.Error("nil profile accepted")
	}
}

// TestWithFileNotifyPartial: calls the profile denies or restricts keep
// their rules and are not listed.
func TestWithFileNotifyPartial(t *testing.T) {
	epermRet := uint(1)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &epermRet,
		ListenerPath:    "/a.sock",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "openat", "mkdirat"}, Action: specs.ActAllow},
			{Names: []string{"unlinkat"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0, Op: specs.OpEqualTo}}},
		},
	}
	q, names, err := WithFileNotify(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"mkdirat", "openat"}) {
		t.Errorf("names %v", names)
	}
	if err := Validate(q); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q.Syscalls[0].Names, []string{"read"}) || !slices.Equal(q.Syscalls[1].Names, []string{"unlinkat"}) {
		t.Errorf("rules %+v", q.Syscalls)
	}

	// A call allowed under its mode guard is notified under it; one also
	// allowed unconditionally keeps its rules, as the OR of the two is
	// what it means.
	creat, _ := modeGuard("creat")
	chmod, _ := modeGuard("chmod")
	p.Syscalls = append(p.Syscalls,
		specs.LinuxSyscall{Names: []string{"creat"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{creat}},
		specs.LinuxSyscall{Names: []string{"chmod"}, Action: specs.ActAllow},
		specs.LinuxSyscall{Names: []string{"chmod"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{chmod}})
	if q, names, err = WithFileNotify(p); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"creat", "mkdirat", "openat"}) {
		t.Errorf("names %v", names)
	}
	notify := verdict{Action: specs.ActNotify}
	for _, c := range []struct {
		name string
		args []uint64
		want verdict
	}{
		{"creat", []uint64{0, 0o644}, notify}, {"creat", []uint64{0, 0o4755}, eperm},
		{"chmod", []uint64{0, 0o644}, allow}, {"chmod", []uint64{0, 0o4755}, allow},
		{"openat", []uint64{0, 0, unix.O_WRONLY | unix.O_CREAT, 0o4755}, notify},
	} {
		if got := decide(t, q, c.name, c.args...); got != c.want {
			t.Errorf("%s%v = %+v, want %+v", c.name, c.args, got, c.want)
		}
	}
	if err := Validate(q); err != nil {
		t.Fatal(err)
	}
}

// TestCheckStrictBesideOpenSplit: check accepts mixed actions for the
// exact split and nothing else.
func TestCheckStrictBesideOpenSplit(t *testing.T) {
	q, _ := fileNotifyProfile(t)
	if err := check(q); err != nil {
		t.Fatal(err)
	}
	idx := func(p *specs.LinuxSeccomp, name string, act specs.LinuxSeccompAction, value uint64) int {
		for i, r := range p.Syscalls {
			if slices.Equal(r.Names, []string{name}) && r.Action == act && len(r.Args) >= 1 && r.Args[0].Value == value {
				return i
			}
		}
		t.Fatalf("no %s %s rule with value %#x", name, act, value)
		return -1
	}
	for _, tc := range []struct {
		name   string
		mutate func(p *specs.LinuxSeccomp)
	}{
		{"unconditional ALLOW next to the split", func(p *specs.LinuxSeccomp) {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"openat"}, Action: specs.ActAllow})
		}},
		{"a write bit not notified", func(p *specs.LinuxSeccomp) {
			p.Syscalls = slices.Delete(p.Syscalls, idx(p, "openat", specs.ActNotify, oTrunc), idx(p, "openat", specs.ActNotify, oTrunc)+1)
		}},
		{"NOTIFY bit outside the ALLOW mask", func(p *specs.LinuxSeccomp) {
			i := idx(p, "openat", specs.ActNotify, oAppend)
			p.Syscalls[i].Args[0].Value, p.Syscalls[i].Args[0].ValueTwo = unix.O_EXCL, unix.O_EXCL
		}},
		{"ALLOW mask narrowed", func(p *specs.LinuxSeccomp) {
			i := idx(p, "openat", specs.ActAllow, openWriteFlags)
			p.Syscalls[i].Args[0].Value = oWronly | oRdwr
		}},
		{"flags on the wrong argument", func(p *specs.LinuxSeccomp) {
			p.Syscalls[idx(p, "open", specs.ActNotify, oCreat)].Args[0].Index = 2
		}},
		{"LOG instead of NOTIFY", func(p *specs.LinuxSeccomp) {
			p.Syscalls[idx(p, "openat", specs.ActNotify, oWronly)].Action = specs.ActLog
		}},
		{"the split shape on another syscall", func(p *specs.LinuxSeccomp) {
			p.Syscalls = slices.DeleteFunc(p.Syscalls, func(r specs.LinuxSyscall) bool { return slices.Contains(r.Names, "mkdirat") })
			for _, r := range openSplitRules("openat", true) {
				r.Names = []string{"mkdirat"}
				p.Syscalls = append(p.Syscalls, r)
			}
		}},
		{"the mode guard dropped from one NOTIFY rule", func(p *specs.LinuxSeccomp) {
			i := idx(p, "openat", specs.ActNotify, oCreat)
			p.Syscalls[i].Args = p.Syscalls[i].Args[:1]
		}},
		{"the mode guard dropped from the ALLOW rule", func(p *specs.LinuxSeccomp) {
			i := idx(p, "open", specs.ActAllow, openWriteFlags)
			p.Syscalls[i].Args = p.Syscalls[i].Args[:1]
		}},
		{"a narrower mode mask on one rule", func(p *specs.LinuxSeccomp) {
			i := idx(p, "openat", specs.ActNotify, oWronly)
			p.Syscalls[i].Args[1].Value = unix.S_ISUID
		}},
		{"a third condition", func(p *specs.LinuxSeccomp) {
			i := idx(p, "openat", specs.ActNotify, oRdwr)
			p.Syscalls[i].Args = append(p.Syscalls[i].Args, specs.LinuxSeccompArg{Index: 0, Value: 3, Op: specs.OpEqualTo})
		}},
		{"mixed actions on read", func(p *specs.LinuxSeccomp) {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActNotify,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpEqualTo}}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := copyProfile(q)
			tc.mutate(p)
			if err := check(p); err == nil {
				t.Error("check accepted it")
			} else {
				t.Log(err)
			}
			if err := Validate(p); err == nil {
				t.Error("Validate accepted it")
			}
		})
	}
}

func TestDecodeFiles(t *testing.T) {
	str := func(addr uint64) string { return map[uint64]string{1: `"/usr/lib/x"`, 2: `"/tmp/y"`}[addr] }
	atFDCWD := uint64(0xffffff9c) // int32(-100) as the kernel passes it
	for _, tc := range []struct {
		name string
		args [6]uint64
		want string
	}{
		{"openat", [6]uint64{atFDCWD, 1, unix.O_WRONLY | unix.O_CREAT | unix.O_CLOEXEC, 0o644}, `path="/usr/lib/x" flags=O_WRONLY|O_CREAT|O_CLOEXEC mode=0644`},
		{"openat", [6]uint64{3, 2, unix.O_RDWR | unix.O_APPEND, 0o777}, `dirfd=3 path="/tmp/y" flags=O_RDWR|O_APPEND`},
		{"openat", [6]uint64{atFDCWD, 2, unix.O_RDWR | unix.O_TMPFILE, 0o600}, `path="/tmp/y" flags=O_RDWR|O_TMPFILE mode=0600`},
		{"open", [6]uint64{2, unix.O_WRONLY | unix.O_TRUNC | 0x8000, 0}, `path="/tmp/y" flags=O_WRONLY|O_TRUNC|0x8000`},
		{"creat", [6]uint64{2, 0o644}, `path="/tmp/y" mode=0644`},
		{"mkdirat", [6]uint64{atFDCWD, 2, 0o755}, `path="/tmp/y"`},
		{"unlinkat", [6]uint64{atFDCWD, 2, 0}, `path="/tmp/y"`},
		{"renameat2", [6]uint64{atFDCWD, 2, atFDCWD, 1, 0}, `path="/tmp/y" to="/usr/lib/x"`},
		{"rename", [6]uint64{2, 1}, `path="/tmp/y" to="/usr/lib/x"`},
		{"symlinkat", [6]uint64{1, atFDCWD, 2}, `path="/tmp/y" target="/usr/lib/x"`},
		{"unlink", [6]uint64{2}, `path="/tmp/y"`},
	} {
		if got := decode(tc.name, tc.args, str); got != tc.want {
			t.Errorf("decode(%s, %v) = %q, want %q", tc.name, tc.args, got, tc.want)
		}
	}
}

// TestFileNotifyRunc runs the probe's files mode under WithFileNotify in
// runc, with an agent that allows the file calls: the probe starting at
// all shows that ordinary (read-only) opens work; the read of /etc/hostname
// must not be notified; the next four must be, with their paths, and
// behave as without the agent; the set-user-ID create and set-group-ID
// chmod must fail with EPERM unseen, though the agent would allow them.
func TestFileNotifyRunc(t *testing.T) {
	runc := requireRunc(t)
	probe := buildProbe(t)
	rec := &recorder{}
	agent, sock := startAgent(t, func(ev Event) Decision {
		switch ev.Syscall {
		case "open", "openat", "mkdirat", "unlinkat", "fchmodat":
			return Allow
		}
		return Deny
	}, AgentOptions{OnEvent: rec.add})
	p, _, err := WithNotify(mustDefault(t), sock)
	if err != nil {
		t.Fatal(err)
	}
	profile, _, err := WithFileNotify(p)
	if err != nil {
		t.Fatal(err)
	}
	out := runProbeIn(t, runc, probe, profile, func(rootfs string) {
		for _, d := range []string{"etc", "usr/lib"} {
			if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(rootfs, "etc/hostname"), []byte("notify\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}, "files")
	got := keyValues(t, out)
	if err := agent.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: %v", got)
	for k, want := range map[string]int{"read": 0, "readn": len("notify\n"), "tmp": 0, "written": len("probe\n"), "mkdir": 0, "unlink": 0,
		"setuid": int(syscall.EPERM), "setgid": int(syscall.EPERM)} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %d (printed: %t), want %d", k, v, ok, want)
		}
	}
	if e := syscall.Errno(got["usr"]); e != syscall.EROFS && e != syscall.EACCES {
		t.Errorf("create under /usr/lib: errno %d (%v), want EROFS or EACCES", got["usr"], e)
	}

	rec.mu.Lock()
	events := slices.Clone(rec.events)
	rec.mu.Unlock()
	for _, ev := range events {
		t.Logf("event %s: %s", ev.Syscall, ev.Detail)
		if _, split := openFlagsArg[ev.Syscall]; split && ev.Args[openFlagsArg[ev.Syscall]]&openWriteFlags == 0 {
			t.Errorf("read-only open notified: %s %s", ev.Syscall, ev.Detail)
		}
		if strings.Contains(ev.Detail, "/etc/hostname") {
			t.Errorf("read of /etc/hostname notified: %s %s", ev.Syscall, ev.Detail)
		}
		if strings.Contains(ev.Detail, "/tmp/probe-s") || ev.Syscall == "fchmodat" {
			t.Errorf("set-ID mode notified: %s %s", ev.Syscall, ev.Detail)
		}
	}
	expect := func(name string, want ...string) {
		t.Helper()
		n := 0
		for _, ev := range events {
			if ev.Syscall != name || !strings.Contains(ev.Detail, want[0]) {
				continue
			}
			n++
			for _, w := range want[1:] {
				if !strings.Contains(ev.Detail, w) {
					t.Errorf("%s detail %q lacks %q", name, ev.Detail, w)
				}
			}
			if ev.Pid == 0 || ev.Container == "" {
				t.Errorf("%s event incomplete: %+v", name, ev)
			}
		}
		if n != 1 {
			t.Errorf("%d %s events for %s, want 1", n, name, want[0])
		}
	}
	expect("openat", `path="/usr/lib/probe-x"`, "flags=O_WRONLY|O_CREAT|O_CLOEXEC", "mode=0644")
	expect("openat", `path="/tmp/probe-y"`, "flags=O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC")
	expect("mkdirat", `path="/tmp/probe-d"`)
	expect("unlinkat", `path="/tmp/probe-y"`)
}
