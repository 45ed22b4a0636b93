//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// These tests run no probe that could change the machine: they build the
// program and check what it prints and refuses outside a sandbox. The one
// exception, the exec probes (TestExecProbesOnHost), can at worst execute
// this test binary as the marker.

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// probeBinary builds the program once, statically, as mcpbox ships it.
func probeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcpbox-probe-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "mcpbox-probe")
		cmd := exec.Command("go", "build", "-o", buildPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

func TestMain(m *testing.M) {
	// What the exec probes run when the kernel lets them: here, a copy of
	// this test binary (see TestExecProbesOnHost).
	if len(os.Args) == 2 && os.Args[1] == execMarkerArg {
		os.Exit(execMarker(os.Stdout))
	}
	if name := os.Getenv(execHelperEnv); name != "" {
		os.Exit(execHelper(name))
	}
	// Helper process for TestInt80Child: the probe's own child function.
	if os.Getenv("MCPBOX_PROBE_TEST_INT80_CHILD") == "1" {
		_ = json.NewEncoder(os.Stdout).Encode(childInt80(nil))
		os.Exit(0)
	}
	// Helper process for TestInt80: the call may kill its caller (SIGSYS).
	if os.Getenv("MCPBOX_PROBE_TEST_INT80") == "1" {
		ret, _ := int80Getpid()
		fmt.Println(ret)
		os.Exit(0)
	}
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

func TestProbeTable(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range allProbes() {
		if seen[p.name] {
			t.Errorf("duplicate probe name %q", p.name)
		}
		seen[p.name] = true
		if !categories[p.category] {
			t.Errorf("%s: invalid category %q", p.name, p.category)
		}
		if p.tried == "" || p.run == nil {
			t.Errorf("%s: missing tried or run", p.name)
		}
		if !strings.Contains(p.name, "/") {
			t.Errorf("%s: name is not prefix/name", p.name)
		}
	}
	if len(seen) < 40 {
		t.Errorf("%d probes, want at least 40", len(seen))
	}
}

func TestList(t *testing.T) {
	bin := probeBinary(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "-list", "-i-know-this-is-not-a-sandbox")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("-list: %v\n%s", err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("-list wrote to stderr: %s", stderr.String())
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var p struct{ Name, Category, Tried string }
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if names[p.Name] {
			t.Errorf("duplicate name %q", p.Name)
		}
		names[p.Name] = true
		if !categories[p.Category] {
			t.Errorf("%s: invalid category %q", p.Name, p.Category)
		}
	}
	if len(names) < 40 {
		t.Errorf("-list printed %d probes, want at least 40", len(names))
	}

	// -run filters the list too.
	out, err := exec.Command(bin, "-list", "-i-know-this-is-not-a-sandbox", "-run", "^kernel/mount-").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.Contains(line, `"name":"kernel/mount-`) {
			t.Errorf("-run ^kernel/mount- listed %s", line)
		}
	}
}

func TestRefusesOutsideSandbox(t *testing.T) {
	if _, err := os.Stat(sandboxInitPath); err == nil {
		t.Skipf("%s exists: this looks like a sandbox, and the refusal test needs a host", sandboxInitPath)
	}
	bin := probeBinary(t)
	cases := []struct {
		name string
		args []string
		env  []string
	}{
		{"no flags", nil, nil},
		{"with MCPBOX_SANDBOX=1", nil, []string{"MCPBOX_SANDBOX=1"}},
		{"one probe with MCPBOX_SANDBOX=1", []string{"-run", "identity/caps-zero"}, []string{"MCPBOX_SANDBOX=1"}},
		{"-list without the override", []string{"-list"}, []string{"MCPBOX_SANDBOX=1"}},
		{"override without -list", []string{"-i-know-this-is-not-a-sandbox"}, []string{"MCPBOX_SANDBOX=1"}},
		{"child mode", []string{childArg, "kernel/mount-tmpfs", "shared"}, []string{"MCPBOX_SANDBOX=1"}},
		{"child noop", []string{childArg, "noop"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, tc.env...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitRefused {
				t.Fatalf("exit: %v, want status %d; stderr: %s", err, exitRefused, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("printed on stdout: %s", stdout.String())
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "mcpbox-probe:") {
				t.Errorf("want one clear line on stderr, got %q", msg)
			}
			if strings.Contains(msg, `"outcome"`) {
				t.Errorf("a probe ran: %s", msg)
			}
		})
	}
}

// -compare lets the probe run outside mcpbox only with MCPBOX_COMPARE=1 and
// as a non-root user or as pid 1 of a container. These cases run as root on
// the host, so every one must refuse.
func TestCompareRefusesAsRootOnHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: as any other user -compare with MCPBOX_COMPARE=1 is allowed to run")
	}
	if os.Getpid() == 1 {
		t.Skip("running as pid 1, which -compare allows")
	}
	bin := probeBinary(t)
	cases := []struct {
		name string
		args []string
		env  []string
	}{
		{"-compare without MCPBOX_COMPARE", []string{"-compare"}, nil},
		{"-compare with MCPBOX_COMPARE=0", []string{"-compare"}, []string{"MCPBOX_COMPARE=0"}},
		{"-compare as root", []string{"-compare"}, []string{"MCPBOX_COMPARE=1"}},
		{"-compare as root, one probe", []string{"-compare", "-run", "identity/caps-zero"}, []string{"MCPBOX_COMPARE=1"}},
		{"-compare as root with MCPBOX_SANDBOX=1", []string{"-compare"}, []string{"MCPBOX_COMPARE=1", "MCPBOX_SANDBOX=1"}},
		{"MCPBOX_COMPARE without -compare", nil, []string{"MCPBOX_COMPARE=1"}},
		{"child as root", []string{childArg, "kernel/mount-tmpfs", "shared"}, []string{"MCPBOX_COMPARE=1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, tc.env...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitRefused {
				t.Fatalf("exit: %v, want status %d; stderr: %s", err, exitRefused, stderr.String())
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "refusing to run") {
				t.Errorf("want one refusal line on stderr, got %q", msg)
			}
			if stdout.Len() != 0 || strings.Contains(msg, `"outcome"`) {
				t.Errorf("a probe ran: %s %s", stdout.String(), msg)
			}
		})
	}
}

// As nobody, -compare runs: the host's own permission checks apply. The
// test runs one harmless probe and a child that does nothing.
func TestCompareRunsAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to nobody")
	}
	dir, err := os.MkdirTemp("", "mcpbox-probe-compare-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(probeBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "mcpbox-probe")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want int
	}{
		{"-compare", []string{"-compare", "-run", "^identity/non-root-uid$"}, []string{"MCPBOX_COMPARE=1"}, exitPass},
		{"-compare without MCPBOX_COMPARE", []string{"-compare", "-run", "^identity/non-root-uid$"}, nil, exitRefused},
		{"child", []string{childArg, "noop"}, []string{"MCPBOX_COMPARE=1"}, exitPass},
		{"child without MCPBOX_COMPARE", []string{childArg, "noop"}, nil, exitRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = "/"
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}, tc.env...)
			cmd.SysProcAttr = nobody
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.want {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.want, stderr.String())
			}
			if tc.want == exitPass && tc.args[0] == "-compare" && !strings.Contains(stderr.String(), `"summary":true,"total":1,"passed":1`) {
				t.Errorf("want one passing probe, got %s", stderr.String())
			}
		})
	}
}

func TestCheckCompareHere(t *testing.T) {
	t.Setenv(compareEnv, "")
	if err := checkCompare(0); err == nil || !strings.Contains(err.Error(), compareEnv) {
		t.Errorf("without %s: checkCompare = %v, want an error naming it", compareEnv, err)
	}
	t.Setenv(compareEnv, "1")
	err := checkCompare(0)
	switch {
	case os.Geteuid() != 0 && err != nil:
		t.Errorf("as uid %d: checkCompare = %v, want nil", os.Geteuid(), err)
	case os.Geteuid() == 0 && os.Getpid() != 1 && err == nil:
		t.Error("as root, not pid 1: checkCompare = nil, want an error")
	}
}

func TestCheckSandboxHere(t *testing.T) {
	if _, err := os.Stat(sandboxInitPath); err == nil {
		t.Skipf("%s exists", sandboxInitPath)
	}
	t.Setenv(sandboxEnv, "1")
	err := checkSandbox(0)
	if err == nil || !strings.Contains(err.Error(), sandboxInitPath) {
		t.Errorf("checkSandbox = %v, want an error naming %s", err, sandboxInitPath)
	}
}

func TestResultJSON(t *testing.T) {
	r := denied(syscall.EPERM, "")
	r.Name, r.Category, r.Tried = "kernel/mount-tmpfs", "kernel", "mount a tmpfs"
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"kernel/mount-tmpfs","category":"kernel","tried":"mount a tmpfs","outcome":"denied","errno":"EPERM","pass":true,"detail":"operation not permitted"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}

	// errno and signal are left out when empty; pass is always there.
	b, _ = json.Marshal(result{Name: "x/y", Category: "identity", Tried: "t", Outcome: outcomeAllowed})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"errno", "signal", "detail"} {
		if _, ok := m[k]; ok {
			t.Errorf("empty %s is printed: %s", k, b)
		}
	}
	if m["pass"] != false {
		t.Errorf("pass missing or wrong: %s", b)
	}

	b, _ = json.Marshal(summary{Summary: true, Total: 3, Passed: 2, Failed: 1})
	if string(b) != `{"summary":true,"total":3,"passed":2,"failed":1}` {
		t.Errorf("summary: %s", b)
	}
}

func TestErrnoName(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{syscall.EPERM, "EPERM"},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, "EACCES"},
		{os.ErrDeadlineExceeded, "ETIMEDOUT"},
		{errors.New("other"), ""},
		{nil, ""},
	} {
		if got := errnoName(tc.err); got != tc.want {
			t.Errorf("errnoName(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestUnexpectedEnv(t *testing.T) {
	environ := []byte("PATH=/bin\x00HOME=/home/x\x00MCPBOX_SANDBOX=1\x00TOKEN=secret\x00LANG=C\x00")
	unexpected, _ := unexpectedEnv(environ, []string{"LANG"})
	if !reflect.DeepEqual(unexpected, []string{"TOKEN"}) {
		t.Errorf("unexpected = %v, want [TOKEN]", unexpected)
	}
	for _, n := range unexpected {
		if strings.Contains(n, "secret") {
			t.Errorf("a value leaked: %v", unexpected)
		}
	}
}

func TestParseAbstract(t *testing.T) {
	in := `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 12345 @/containerd-shim/abc.sock@
0000000000000000: 00000002 00000000 00010000 0001 01 12346 /run/x.sock
0000000000000000: 00000003 00000000 00000000 0001 03 12347
`
	got, err := parseAbstract(strings.NewReader(in))
	if err != nil || !reflect.DeepEqual(got, []string{"@/containerd-shim/abc.sock@"}) {
		t.Errorf("parseAbstract = %v, %v", got, err)
	}
}

func TestProxyRefusal(t *testing.T) {
	if !isProxyRefusal([]byte("HTTP/1.1 403 Forbidden\r\n\r\n")) {
		t.Error("403 not recognised")
	}
	if isProxyRefusal([]byte("HTTP/1.1 200 OK\r\n")) {
		t.Error("200 taken for a refusal")
	}
}

func TestMountFor(t *testing.T) {
	ms := []mount{
		{point: "/", opts: map[string]bool{"ro": true}},
		{point: "/tmp", opts: map[string]bool{"noexec": true}},
		{point: "/tmpx", opts: map[string]bool{}},
	}
	if m, _ := mountFor(ms, "/tmp/a"); m.point != "/tmp" {
		t.Errorf("/tmp/a → %s", m.point)
	}
	if m, _ := mountFor(ms, "/tmpx"); m.point != "/tmpx" {
		t.Errorf("/tmpx → %s", m.point)
	}
	if m, _ := mountFor(ms, "/usr"); m.point != "/" {
		t.Errorf("/usr → %s", m.point)
	}
}

func TestLastProgress(t *testing.T) {
	n, ok := lastProgress([]byte("progress 16\nprogress 32\n{\"outcome\":\"denied\"}\n"))
	if !ok || n != 32 {
		t.Errorf("lastProgress = %d, %v", n, ok)
	}
}

func TestChildTableCoversChildren(t *testing.T) {
	tab := childTable()
	for _, name := range []string{"noop", "hold", "kernel/mount-tmpfs", "kernel/mount-cgroup", "kernel/mount-proc",
		"kernel/umount-kcore", "kernel/fsopen", "kernel/setns-net", "kernel/pivot-root", "kernel/chroot",
		"kernel/ptrace-pid1", "kernel/int80", "kernel/seccomp-listener", "kernel/personality",
		"resources/fds", "resources/fsize", "resources/tmpfill", "resources/memhog", "fs/execveat-memfd"} {
		if tab[name] == nil {
			t.Errorf("no child %q", name)
		}
	}
}

// The assembly helpers are harmless to run on a host: a fork whose child
// only pauses, and the i386 getpid.

func TestForkHolder(t *testing.T) {
	pid, err := forkHolder()
	if err != nil {
		t.Fatalf("forkHolder: %v", err)
	}
	defer func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("holder did not die of SIGKILL: %v", ws)
		}
	}()
	ppid, err := parentOf(pid)
	if err != nil || ppid != os.Getpid() {
		t.Errorf("parent of holder = %d, %v; want %d", ppid, err, os.Getpid())
	}
}

// TestInt80Child runs the probe's INT $0x80 attempt on the host, where no
// seccomp filter stops it: the kernel either answers the i386 getpid (IA32
// emulation) or faults (none), and the probe must report either without
// crashing.
func TestInt80Child(t *testing.T) {
	if !haveInt80 {
		t.Skip("INT $0x80 exists only on amd64")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MCPBOX_PROBE_TEST_INT80_CHILD=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the int80 child crashed: %v\n%s", err, tail(stderr.String(), 600))
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("printed %q: %v", out, err)
	}
	switch {
	case r.Outcome == outcomeAllowed && strings.Contains(r.Detail, "returned"):
		t.Logf("IA32 emulation: %s", r.Detail)
	case r.Pass && r.Signal == "SIGSEGV":
		t.Logf("no IA32 emulation: %s", r.Detail)
	default:
		t.Errorf("result %+v, want the i386 getpid's answer or a fault", r)
	}
}

func TestInt80(t *testing.T) {
	if !haveInt80 {
		t.Skip("INT $0x80 exists only on amd64")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MCPBOX_PROBE_TEST_INT80=1")
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("helper died (seccomp here?): %v", err)
	}
	ret, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("helper printed %q", out)
	}
	if ret != int64(cmd.Process.Pid) && ret != -int64(syscall.ENOSYS) && ret != -int64(syscall.EPERM) {
		t.Errorf("i386 getpid = %d, want the helper's pid %d or -ENOSYS/-EPERM", ret, cmd.Process.Pid)
	}
	t.Logf("i386 getpid through INT $0x80 returned %d (helper pid %d)", ret, cmd.Process.Pid)
}

func TestParseMountinfo(t *testing.T) {
	in := `22 1 0:20 / / ro,relatime - overlay overlay rw,lowerdir=/a
23 22 0:21 / /tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw,size=65536k
24 22 0:22 / /data rw,nosuid,nodev - ext4 /dev/sda1 rw
25 22 0:23 / /ro\040super rw - ext4 /dev/sda2 ro
`
	ms, err := parseMountinfo(strings.NewReader(in))
	if err != nil || len(ms) != 4 {
		t.Fatalf("parseMountinfo = %v, %v", ms, err)
	}
	if m := ms[3]; m.point != "/ro super" || m.fstype != "ext4" || !m.opts["rw"] || !m.super["ro"] {
		t.Errorf("last mount = %+v", m)
	}
	if !ms[1].opts["noexec"] || !ms[1].super["rw"] {
		t.Errorf("/tmp = %+v", ms[1])
	}
}

// TestWritableExecMounts: a mount fails the probe when a program could be
// written to it and run, and only then.
func TestWritableExecMounts(t *testing.T) {
	in := `1 0 0:1 / / ro - tmpfs tmpfs rw
2 1 0:2 / /tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw
3 1 0:3 / /data rw,nosuid,nodev - ext4 /dev/sda1 rw
4 1 0:4 / /readonly-super rw,nosuid - ext4 /dev/sda2 ro
5 1 0:5 / /proc/kcore rw,nosuid - tmpfs tmpfs rw
6 1 0:6 / /file rw,nosuid - ext4 /dev/sda1 rw
7 1 0:7 / /usr ro,nosuid - ext4 /dev/sda1 rw
`
	ms, err := parseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	devices := map[string]bool{"/proc/kcore": true}
	var got []string
	for _, m := range writableExecMounts(ms, func(p string) bool { return devices[p] }) {
		got = append(got, m.point)
	}
	if want := []string{"/data", "/file"}; !reflect.DeepEqual(got, want) {
		t.Errorf("writable and executable: %v, want %v", got, want)
	}
}

// The exec marker runs anywhere: it only prints that it ran. With any other
// argument next to it the program is the probe, which refuses.
func TestExecMarker(t *testing.T) {
	bin := probeBinary(t)
	out, err := exec.Command(bin, execMarkerArg).Output()
	if err != nil {
		t.Fatalf("%s: %v", execMarkerArg, err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil || r.Outcome != outcomeAllowed || r.Pass || !strings.Contains(r.Detail, bin) {
		t.Errorf("marker printed %q (%v), want a failing allowed result naming %s", out, err, bin)
	}
	cmd := exec.Command(bin, execMarkerArg, "-run", "x")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "MCPBOX_SANDBOX=1"}
	var ee *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &ee) || ee.ExitCode() != exitUsage && ee.ExitCode() != exitRefused {
		t.Errorf("%s with more arguments: %v, want the probe's refusal", execMarkerArg, err)
	}
}

// execHelperEnv makes the test binary run one exec probe and print its
// result (TestExecProbesOnHost). With memfdNoExecEnv=2 it first sets
// vm.memfd_noexec to 2, which it does only as pid 1 of its own pid
// namespace, where the setting stays. With memfdENOSYSEnv=1 it first
// loads a seccomp filter that answers memfd_create with ENOSYS, as
// mcpbox's memfd deny mode does (TestExecProbesMemfdDenied).
const (
	execHelperEnv  = "MCPBOX_PROBE_TEST_EXEC"
	memfdNoExecEnv = "MCPBOX_PROBE_TEST_MEMFD_NOEXEC"
	memfdENOSYSEnv = "MCPBOX_PROBE_TEST_MEMFD_ENOSYS"
)

// denyMemfdCreate loads, into every thread of this process, a seccomp
// filter that fails memfd_create with ENOSYS and allows everything else.
func denyMemfdCreate() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_MEMFD_CREATE},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	return nil
}

func execHelper(name string) int {
	if os.Getenv(memfdENOSYSEnv) == "1" {
		if err := denyMemfdCreate(); err != nil {
			fmt.Fprintln(os.Stderr, "exec helper:", err)
			return exitUsage
		}
	}
	if v := os.Getenv(memfdNoExecEnv); v != "" {
		if os.Getpid() != 1 {
			fmt.Fprintln(os.Stderr, "exec helper: refusing to set vm.memfd_noexec outside a pid namespace of its own")
			return exitRefused
		}
		if err := os.WriteFile("/proc/sys/vm/memfd_noexec", []byte(v), 0); err != nil {
			fmt.Fprintln(os.Stderr, "exec helper:", err)
			return exitUsage
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	e := &env{ctx: ctx}
	var r result
	switch name {
	case "fs/exec-memfd":
		r = probeExecMemfd(e)
	case "fs/memfd-mfd-exec":
		r = probeMemfdExecFlag(e)
	case "fs/exec-tmpfile":
		r = probeExecTmpfile(e)
	case "fs/execveat-memfd":
		// If the call succeeds this process becomes the marker, which
		// prints the result instead.
		r = childExecveatMemfd(nil)
	default:
		fmt.Fprintln(os.Stderr, "exec helper: unknown probe", name)
		return exitUsage
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return exitUsage
	}
	return exitPass
}

// TestExecProbesOnHost shows that the exec probes see the hole where it is
// open and pass where it is closed. Their attempts are harmless anywhere:
// what they execute is this test binary as the marker. On the host, where
// memfds are executable, each fails; in a pid namespace of the test's own
// with vm.memfd_noexec=2, the memfd ones pass.
func TestExecProbesOnHost(t *testing.T) {
	testutil.RequiresRoot(t) // a pid namespace of its own for the vm.memfd_noexec=2 half
	host, err := os.ReadFile("/proc/sys/vm/memfd_noexec")
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but the kernel has no vm.memfd_noexec (%v): the memfd hook is tested on Linux 6.6 or later", err)
		}
		t.Skipf("kernel without vm.memfd_noexec: %v", err)
	}
	run := func(t *testing.T, name string, newPidNS bool) result {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), execHelperEnv+"="+name)
		if newPidNS {
			cmd.Env = append(cmd.Env, memfdNoExecEnv+"=2")
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s helper: %v\n%s", name, err, stderr.String())
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%s helper printed %q: %v", name, out, err)
		}
		return r
	}
	for _, name := range []string{"fs/exec-memfd", "fs/execveat-memfd", "fs/memfd-mfd-exec", "fs/exec-tmpfile"} {
		t.Run(name, func(t *testing.T) {
			if strings.TrimSpace(string(host)) == "0" || name == "fs/exec-tmpfile" {
				if r := run(t, name, false); r.Pass || r.Outcome != outcomeAllowed {
					t.Errorf("on the host: %+v, want allowed", r)
				}
			}
			if name == "fs/exec-tmpfile" {
				return // the host's /tmp is what it is; see the sandbox tests
			}
			if r := run(t, name, true); !r.Pass || r.Outcome != outcomeDenied {
				t.Errorf("with vm.memfd_noexec=2: %+v, want denied", r)
			}
		})
	}
	if after, _ := os.ReadFile("/proc/sys/vm/memfd_noexec"); !bytes.Equal(after, host) {
		t.Errorf("the host's vm.memfd_noexec changed from %q to %q", host, after)
	}
}

// TestExecProbesMemfdDenied: where memfd_create itself fails with ENOSYS
// (mcpbox's memfd deny mode, on a kernel without a usable vm.memfd_noexec),
// each memfd probe passes as refused with ENOSYS: the attempt failed at its
// first step, which is no error of the probe's.
func TestExecProbesMemfdDenied(t *testing.T) {
	for _, name := range []string{"fs/exec-memfd", "fs/execveat-memfd", "fs/memfd-mfd-exec"} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), execHelperEnv+"="+name, memfdENOSYSEnv+"=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s helper: %v\n%s", name, err, stderr.String())
			}
			var r result
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("%s helper printed %q: %v", name, out, err)
			}
			if !r.Pass || r.Outcome != outcomeDenied || r.Errno != "ENOSYS" {
				t.Errorf("%+v, want passed, denied with ENOSYS", r)
			}
		})
	}
}
