//go:build linux && cgo && seccomp

package seccomp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"golang.org/x/sys/unix"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

func TestWithNotifyDefault(t *testing.T) {
	p := mustDefault(t)
	before, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, names, err := WithNotify(p, "/run/mcpbox/agent.sock")
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(p); !bytes.Equal(before, after) {
		t.Error("WithNotify changed its input")
	}
	if err := Validate(q); err != nil {
		t.Fatalf("Validate(WithNotify(Default())): %v", err)
	}
	if q.ListenerPath != "/run/mcpbox/agent.sock" {
		t.Errorf("ListenerPath = %q", q.ListenerPath)
	}
	if !slices.IsSorted(names) {
		t.Error("names are not sorted")
	}
	notified := setOf(names)
	for _, n := range []string{"ptrace", "mount", "umount2", "unshare", "setns", "bpf", "kexec_load", "init_module", "finit_module", "keyctl", "acct", "pivot_root", "perf_event_open", "userfaultfd"} {
		if !notified[n] {
			t.Errorf("%s is not notified", n)
		}
	}
	// Allowed outright, refused by runc, or restricted by our own rules
	// (partially allowed, or answered with ENOSYS): never notified.
	for _, n := range []string{"read", "write", "openat", "execve", "exit_group", "futex", "close",
		"socket", "socketpair", "clone", "ioctl", "personality", "seccomp",
		"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"} {
		if notified[n] {
			t.Errorf("%s is notified", n)
		}
	}
	var rule *specs.LinuxSyscall
	for i, r := range q.Syscalls {
		if r.Action == specs.ActNotify {
			if rule != nil {
				t.Fatal("more than one NOTIFY rule")
			}
			rule = &q.Syscalls[i]
		}
	}
	if rule == nil || !slices.Equal(rule.Names, names) || len(rule.Args) != 0 {
		t.Fatalf("NOTIFY rule = %+v, want the returned names without conditions", rule)
	}
	t.Logf("%d syscalls notified: %s", len(names), strings.Join(names, " "))
}

func TestWithNotifyRejects(t *testing.T) {
	p := mustDefault(t)
	if _, _, err := WithNotify(p, "agent.sock"); err == nil {
		t.Error("relative listener path accepted")
	}
	if _, _, err := WithNotify(nil, "/a.sock"); err == nil {
		t.Error("nil profile accepted")
	}
	allow := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno}}}
	if _, _, err := WithNotify(allow, "/a.sock"); err == nil {
		t.Error("allowing default action accepted")
	}
}

func TestDecode(t *testing.T) {
	str := func(addr uint64) string { return map[uint64]string{1: `"none"`, 2: `"/tmp"`, 3: `"tmpfs"`}[addr] }
	for _, tc := range []struct {
		name string
		args [6]uint64
		want string
	}{
		{"socket", [6]uint64{17, 3 | 0x80000}, "AF_PACKET SOCK_RAW|SOCK_CLOEXEC proto=0"},
		{"unshare", [6]uint64{0x10000000 | 0x20000}, "flags=CLONE_NEWNS|CLONE_NEWUSER"},
		{"clone", [6]uint64{0x40000000 | 0x11}, "flags=CLONE_NEWNET|0x11"},
		{"mount", [6]uint64{1, 2, 3, 0}, `source="none" target="/tmp" fstype="tmpfs" flags=0x0`},
		{"ptrace", [6]uint64{16, 42}, "PTRACE_ATTACH pid=42"},
		{"mkdir", [6]uint64{2, 0o755}, `path="/tmp"`},
		{"bpf", [6]uint64{5, 0xff}, "args=0x5,0xff,0x0,0x0,0x0,0x0"},
	} {
		if got := decode(tc.name, tc.args, str); got != tc.want {
			t.Errorf("decode(%s, %v) = %q, want %q", tc.name, tc.args, got, tc.want)
		}
	}
}

// requireRunc skips unless root, runc and the go command are available;
// under CI=true it fails instead. These are tier-2 tests (see
// e2e/doc.go): -short runs them too.
func requireRunc(t testing.TB) string {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "go")
	return testutil.RequiresCommand(t, "runc")
}

// buildProbe builds testdata/notifyprobe as a static binary.
func buildProbe(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "notifyprobe")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/notifyprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build notifyprobe: %v\n%s", err, out)
	}
	return bin
}

// startAgent listens in a fresh directory and closes the agent with the
// test, failing it if the agent hit an error.
func startAgent(t testing.TB, decide func(Event) Decision, opts AgentOptions) (*Agent, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	a, err := ListenAgent(sock, decide, opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("agent socket mode %v, want 0600", st.Mode().Perm())
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	return a, sock
}

// runProbe runs the probe with args under runc, with profile as the
// container's filter, and returns its stdout. The rootfs is an empty
// directory made read-only; the probe is bound in read-only.
func runProbe(t testing.TB, runc, probe string, profile *specs.LinuxSeccomp, args ...string) string {
	t.Helper()
	return runProbeIn(t, runc, probe, profile, nil, args...)
}

// runProbeIn is runProbe with setup, if not nil, called on the rootfs
// directory before the container starts (and before it is made read-only).
// /tmp in the container is a writable tmpfs of 1 MiB.
func runProbeIn(t testing.TB, runc, probe string, profile *specs.LinuxSeccomp, setup func(rootfs string), args ...string) string {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	state := filepath.Join(dir, "state")
	for _, d := range []string{rootfs, state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if setup != nil {
		setup(rootfs)
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := "mcpbox-notify-test-" + hex.EncodeToString(b)
	ro := []string{"nosuid", "nodev", "noexec"}
	spec := specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args: append([]string{"/notifyprobe"}, args...),
			// Go's preemption signal (SIGURG) interrupts notified calls,
			// and one that races with the agent's answer is restarted and
			// notified twice: without it the counts are exact.
			Env:             []string{"PATH=/", "NOTIFYPROBE_SANDBOX=1", "GODEBUG=asyncpreemptoff=1"},
			Cwd:             "/",
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Hostname: "notify",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: ro},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: append(ro, "size=1m")},
			{Destination: "/notifyprobe", Type: "bind", Source: probe, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace},
			},
			Seccomp: profile,
		},
	}
	js, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// runc run deletes the container when it exits; this catches a
		// test that failed half way.
		_ = exec.Command(runc, "--root", state, "delete", "--force", id).Run()
		for _, cg := range []string{filepath.Join("/sys/fs/cgroup/pids", id), filepath.Join("/sys/fs/cgroup", id)} {
			if _, err := os.Stat(cg); err == nil {
				t.Errorf("cgroup %s left behind", cg)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runc, "--root", state, "run", "--bundle", dir, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// keyValues parses the probe's k=v lines.
func keyValues(t testing.TB, out string) map[string]int {
	t.Helper()
	m := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			k, v, ok := strings.Cut(f, "=")
			n, err := strconv.Atoi(v)
			if !ok || err != nil {
				t.Fatalf("probe printed %q", sc.Text())
			}
			m[k] = n
		}
	}
	return m
}

// recorder collects events from OnEvent.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) find(name string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Syscall == name {
			out = append(out, ev)
		}
	}
	return out
}

func TestAgentRunc(t *testing.T) {
	runc := requireRunc(t)
	probe := buildProbe(t)
	const eperm = 1

	for _, tc := range []struct {
		name   string
		decide func(Event) Decision
		want   map[string]int
	}{
		{
			name:   "deny",
			decide: func(Event) Decision { return Deny },
			want:   map[string]int{"ptrace": eperm, "unshare": eperm, "mount": eperm, "socket": eperm},
		},
		{
			// Only ptrace(PTRACE_PEEKDATA) of a pid that does not exist,
			// which the kernel then answers ESRCH.
			name: "allow-ptrace",
			decide: func(ev Event) Decision {
				if ev.Syscall == "ptrace" && ev.Args[0] == unix.PTRACE_PEEKDATA {
					return Allow
				}
				return Deny
			},
			want: map[string]int{"ptrace": int(unix.ESRCH), "unshare": eperm, "mount": eperm, "socket": eperm},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			agent, sock := startAgent(t, tc.decide, AgentOptions{OnEvent: rec.add})
			profile, _, err := WithNotify(mustDefault(t), sock)
			if err != nil {
				t.Fatal(err)
			}
			id := ""
			got := keyValues(t, runProbe(t, runc, probe, profile, "probe"))
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s errno = %d, want %d", k, got[k], want)
				}
			}
			if err := agent.Close(); err != nil {
				t.Fatal(err)
			}

			check := func(name string, wantDetail ...string) {
				t.Helper()
				evs := rec.find(name)
				if len(evs) != 1 {
					t.Errorf("%d %s events, want 1", len(evs), name)
					return
				}
				ev := evs[0]
				for _, w := range wantDetail {
					if !strings.Contains(ev.Detail, w) {
						t.Errorf("%s detail %q lacks %q", name, ev.Detail, w)
					}
				}
				if ev.Pid == 0 || ev.Time.IsZero() || ev.Container == "" {
					t.Errorf("%s event incomplete: %+v", name, ev)
				}
				if id == "" {
					id = ev.Container
				} else if ev.Container != id {
					t.Errorf("%s from container %q, others from %q", name, ev.Container, id)
				}
				t.Logf("%s: %s", name, ev.Detail)
			}
			check("ptrace", "PTRACE_PEEKDATA")
			check("unshare", "CLONE_NEWUSER")
			check("mount", `source="none"`, `target="/tmp"`, `fstype="tmpfs"`)
			// socket is partially allowed (AF_UNIX, AF_INET, ...): its
			// denied variants get the profile's errno from the filter and
			// never reach the agent.
			if evs := rec.find("socket"); len(evs) != 0 {
				t.Errorf("socket(AF_PACKET) reached the agent: %+v", evs)
			}
			counts := agent.Counts()
			received, dropped := agent.Stats()
			total := 0
			for _, c := range counts {
				total += c
			}
			if uint64(total) != received || dropped != 0 {
				t.Errorf("counts %v add up to %d, received %d, dropped %d", counts, total, received, dropped)
			}
		})
	}
}

func TestAgentFlood(t *testing.T) {
	runc := requireRunc(t)
	probe := buildProbe(t)
	const calls = 100000
	var consumed int
	agent, sock := startAgent(t, func(Event) Decision { return Deny }, AgentOptions{
		QueueSize: 64,
		OnEvent: func(Event) {
			consumed++ // one goroutine calls OnEvent
			time.Sleep(time.Millisecond)
		},
	})
	profile, _, err := WithNotify(mustDefault(t), sock)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := keyValues(t, runProbe(t, runc, probe, profile, "loop", strconv.Itoa(calls)))
	elapsed := time.Since(start)
	if got["errno"] != 1 || got["same"] != calls {
		t.Errorf("probe: %v, want errno=1 (EPERM) for all %d calls", got, calls)
	}
	received, dropped := agent.Stats()
	if err := agent.Close(); err != nil {
		t.Fatal(err)
	}
	if n := agent.Counts()["acct"]; n != calls {
		t.Errorf("agent counted %d acct calls, want %d", n, calls)
	}
	if received != calls {
		t.Errorf("answered %d calls, want %d", received, calls)
	}
	if dropped == 0 {
		t.Error("no event dropped although the consumer is slower than the calls")
	}
	if uint64(consumed)+dropped != received {
		t.Errorf("consumed %d + dropped %d != received %d", consumed, dropped, received)
	}
	t.Logf("%d calls in %v (%d ns/call in the container): received %d, consumed %d, dropped %d",
		calls, elapsed.Round(time.Millisecond), got["ns"], received, consumed, dropped)
}

// BenchmarkNotifiedSyscall compares, in two runc containers of the same
// run, acct(NULL) answered EPERM by the agent (notified) with acct(NULL)
// answered EPERM by the filter itself (the baseline). The time per call is
// measured inside the container, so container start-up is not counted.
// Each run makes max(b.N, 20000) calls per container; -benchtime=Nx asks
// for more. ns/op is the notified call's time.
func BenchmarkNotifiedSyscall(b *testing.B) {
	runc := requireRunc(b)
	probe := buildProbe(b)
	calls := strconv.Itoa(max(b.N, 20000))
	agent, sock := startAgent(b, func(Event) Decision { return Deny }, AgentOptions{})
	notify, _, err := WithNotify(defaultProfile(b), sock)
	if err != nil {
		b.Fatal(err)
	}
	notified := keyValues(b, runProbe(b, runc, probe, notify, "loop", calls))
	direct := keyValues(b, runProbe(b, runc, probe, defaultProfile(b), "loop", calls))
	if notified["errno"] != 1 || direct["errno"] != 1 {
		b.Fatalf("acct errno: notified %v, direct %v; want EPERM from both", notified, direct)
	}
	if n := agent.Counts()["acct"]; strconv.Itoa(n) != calls {
		b.Fatalf("agent answered %d acct calls, want %s", n, calls)
	}
	b.ReportMetric(float64(notified["ns"]), "ns/op")
	b.ReportMetric(float64(direct["ns"]), "baseline-ns/op")
	b.ReportMetric(float64(notified["ns"])/float64(max(direct["ns"], 1)), "x-baseline")
}

func defaultProfile(tb testing.TB) *specs.LinuxSeccomp {
	tb.Helper()
	p, err := Default()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestNotifyExecAndOpens: the trial's extra notifications replace the
// allow rules of execve/execveat and of every open, and still compile.
func TestNotifyExecAndOpens(t *testing.T) {
	base, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := WithNotify(base, "/run/x/seccomp.sock")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = WithNotifyExec(p); err != nil {
		t.Fatal(err)
	}
	if p, _, err = WithFileNotify(p); err != nil {
		t.Fatal(err)
	}
	if p, err = WithNotifyOpens(p); err != nil {
		t.Fatal(err)
	}
	if err := Validate(p); err != nil {
		t.Fatal(err)
	}
	actions := map[string][]specs.LinuxSeccompAction{}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			actions[n] = append(actions[n], r.Action)
		}
	}
	for _, n := range []string{"execve", "execveat", "open", "openat"} {
		if a := actions[n]; len(a) != 1 || a[0] != specs.ActNotify {
			t.Errorf("%s: %v, want one notify rule", n, a)
		}
	}
	if a := actions["read"]; len(a) != 1 || a[0] != specs.ActAllow {
		t.Errorf("read: %v", a)
	}
	// The agent sees execveat, but fexecve stays denied by the filter.
	notify := verdict{Action: specs.ActNotify}
	if got := decide(t, p, "execveat", 3, 0, 0, 0, 0); got != notify {
		t.Errorf("execveat(path) = %+v, want notified", got)
	}
	if got := decide(t, p, "execveat", 3, 0, 0, 0, unix.AT_EMPTY_PATH); got != eperm {
		t.Errorf("execveat(AT_EMPTY_PATH) = %+v, want EPERM", got)
	}
	if _, err := WithNotifyExec(base); err == nil {
		t.Error("WithNotifyExec without a listener")
	}
	// The agent's Allow would run whatever it is asked about, so a mode
	// with S_ISUID or S_ISGID must still fail in the filter: after each
	// step of the trial's chain, for every call that takes a mode.
	steps := []struct {
		name string
		p    *specs.LinuxSeccomp
	}{{"WithNotify", nil}, {"... WithNotifyOpens", p}}
	if steps[0].p, _, err = WithNotify(base, "/run/x/seccomp.sock"); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		for name, args := range setIDCalls() {
			for _, mode := range []uint64{0o4755, 0o2755} {
				if got := decide(t, s.p, name, args(mode)...); got != eperm {
					t.Errorf("%s: %s(mode %#o) = %+v, want EPERM", s.name, name, mode, got)
				}
			}
			if got := decide(t, s.p, name, args(0o755)...); got == eperm {
				t.Errorf("%s: %s(mode 0755) = EPERM, want allowed or notified", s.name, name)
			}
		}
		if got := decide(t, s.p, "openat2"); got != enosys {
			t.Errorf("%s: openat2 = %+v, want ENOSYS", s.name, got)
		}
	}
}

// TestNotifyKeepsMemfdDenied: with the agent watching, memfd_create in a
// deny-mode profile still fails with ENOSYS and never reaches the agent,
// whose Allow would run it.
func TestNotifyKeepsMemfdDenied(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if p, err = WithMemfdDenied(p); err != nil {
		t.Fatal(err)
	}
	q, names, err := WithNotify(p, "/run/mcpbox/agent.sock")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, "memfd_create") {
		t.Error("memfd_create is notified")
	}
	if q, err = WithNotifyExec(q); err != nil {
		t.Fatal(err)
	}
	if q, _, err = WithFileNotify(q); err != nil {
		t.Fatal(err)
	}
	if q, err = WithNotifyOpens(q); err != nil {
		t.Fatal(err)
	}
	enosys := verdict{Action: specs.ActErrno, Errno: uint(unix.ENOSYS)}
	for _, flags := range []uint64{0, unix.MFD_CLOEXEC, unix.MFD_EXEC, unix.MFD_NOEXEC_SEAL} {
		if got := decide(t, q, "memfd_create", 0, flags); got != enosys {
			t.Errorf("memfd_create(name, %#x) = %+v, want ENOSYS", flags, got)
		}
	}
	if err := Validate(q); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}
