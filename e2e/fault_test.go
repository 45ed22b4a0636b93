package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// The tests in this file break a session from every side (the server, the
// client, containerd) or load it (junk, endless lines, many sessions), and
// then check that mcpbox ended it in bounded time and left nothing behind:
// env.checkClean covers containerd and the run dir, faultEnv.checkNothingLeft
// the rest (processes, network namespaces, mounts, FIFOs).

// stopTimeout is the --stop-timeout env.command passes.
const stopTimeout = time.Second

// faultEnv is env plus the leftover checks beyond containerd's view.
type faultEnv struct {
	*env
	// mu guards ids: the session (container) ids seen in the run dir.
	mu      sync.Mutex
	ids     map[string]bool
	stopped chan struct{}
	watched chan struct{}
	// What existed before the test: network namespace names and nsfs
	// mounts (the way a namespace outlives its processes).
	netnsBefore map[string]bool
	nsfsBefore  map[string]bool
}

// newFaultEnv is newEnv with checkNothingLeft at cleanup. It runs before
// env.checkClean (cleanups run last in, first out), so a leftover process
// is reported as such, not only as the task it belongs to.
func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	e := newEnv(t)
	testutil.RequiresCommand(t, "ip")
	f := &faultEnv{
		env:         e,
		ids:         map[string]bool{},
		stopped:     make(chan struct{}),
		watched:     make(chan struct{}),
		netnsBefore: setOf(netnsNames(t)),
		nsfsBefore:  setOf(nsfsMounts(t)),
	}
	go f.watchRunDir()
	t.Cleanup(f.checkNothingLeft)
	return f
}

// watchRunDir records the session ids (their directories' names) while the
// test runs, so that processes and mounts of a session can be recognized
// after its directory is gone.
func (f *faultEnv) watchRunDir() {
	defer close(f.watched)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		entries, _ := os.ReadDir(f.runDir)
		f.mu.Lock()
		for _, ent := range entries {
			f.ids[ent.Name()] = true
		}
		f.mu.Unlock()
		select {
		case <-f.stopped:
			return
		case <-tick.C:
		}
	}
}

// markers returns the strings that name something of this test: its run
// dir, its containerd namespace and the session ids seen.
func (f *faultEnv) markers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := []string{f.runDir, f.namespace}
	for id := range f.ids {
		m = append(m, id)
	}
	return m
}

// checkNothingLeft fails the test if a session left a process, a network
// namespace, a mount or a FIFO behind. Processes get a few seconds to go:
// a shim exits shortly after its task is deleted.
func (f *faultEnv) checkNothingLeft() {
	t := f.t
	t.Helper()
	close(f.stopped)
	<-f.watched
	markers := f.markers()
	t.Logf("leftover check: %d sessions seen", len(markers)-2)

	var procs []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		procs = processesMentioning(markers)
		if len(procs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range procs {
		t.Errorf("process left behind: %s", p)
	}

	for _, name := range netnsNames(t) {
		if !f.netnsBefore[name] && (strings.Contains(name, "mcpbox") || mentions(name, markers)) {
			t.Errorf("network namespace %q (ip netns list) left behind", name)
		}
	}
	for _, m := range nsfsMounts(t) {
		if !f.nsfsBefore[m] {
			t.Errorf("namespace mount left behind: %s", m)
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if mentions(line, markers) {
				t.Errorf("mount left behind: %s", line)
			}
		}
	} else {
		t.Errorf("leftover check: %v", err)
	}
	filepath.WalkDir(f.runDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeNamedPipe != 0 {
			t.Errorf("FIFO left behind: %s", p)
		}
		return nil
	})
}

func mentions(s string, markers []string) bool {
	for _, m := range markers {
		if m != "" && strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// processesMentioning lists the processes whose command line or cgroup
// names one of markers: mcpbox (--run-dir, --namespace), the shim
// (-namespace) and the sandboxed processes (cgroup /mcpbox/<id>).
func processesMentioning(markers []string) []string {
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, ent := range entries {
		pid := ent.Name()
		if pid == self || pid[0] < '0' || pid[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			continue // gone meanwhile
		}
		cgroup, _ := os.ReadFile("/proc/" + pid + "/cgroup")
		cmd := strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		if mentions(cmd, markers) || mentions(string(cgroup), markers) {
			if len(cmd) > 300 {
				cmd = cmd[:300] + "…"
			}
			out = append(out, pid+" "+cmd)
		}
	}
	return out
}

// netnsNames lists `ip netns list`.
func netnsNames(t *testing.T) []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Errorf("ip netns list: %v", err)
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// nsfsMounts lists the mount points of namespace files (bind mounts that
// keep a namespace alive without a process), as "mountpoint root".
func nsfsMounts(t *testing.T) []string {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(mi), "\n") {
		// id parent major:minor root mountpoint opts ... - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if !ok || len(f) < 5 || !strings.HasPrefix(post, "nsfs ") {
			continue
		}
		out = append(out, f[4]+" "+f[3])
	}
	return out
}

func setOf(s []string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}

// faultServer returns node's path and that of a server script under
// testdata/faults; it skips (fails under CI) without node.
func faultServer(t *testing.T, name string) (node, script string) {
	t.Helper()
	return testutil.RequiresCommand(t, "node"), filepath.Join(testutil.RepoRoot(t), "testdata", "faults", name)
}

// rawRun is an mcpbox session driven byte by byte, as a misbehaving client
// would, with mcpbox's peak RSS watched while it runs.
type rawRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *tailWriter
	done   chan struct{} // closed when mcpbox has exited
	err    error         // cmd.Wait's
	hwm    chan int64    // peak VmHWM seen by polling, in KiB
}

// start runs `mcpbox run <args>` with pipes on all three stdio streams.
func (f *faultEnv) start(args ...string) *rawRun {
	t := f.t
	t.Helper()
	cmd := f.command(args...)
	r := &rawRun{t: t, cmd: cmd, stderr: &tailWriter{}, done: make(chan struct{}), hwm: make(chan int64, 1)}
	var err error
	if r.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if r.stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.hwm <- pollHWM(cmd.Process.Pid, r.done)
	}()
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("mcpbox stderr (%d bytes, tail):\n%s", r.stderr.Len(), r.stderr.String())
		}
	})
	return r
}

// wait waits up to d for mcpbox to exit and returns its exit code and how
// long it took; it fails the test (and kills mcpbox) past d.
func (r *rawRun) wait(d time.Duration) (int, time.Duration) {
	r.t.Helper()
	start := time.Now()
	select {
	case <-r.done:
	case <-time.After(d):
		r.cmd.Process.Kill()
		<-r.done
		r.t.Fatalf("mcpbox did not exit within %v\nstderr tail:\n%s", d, r.stderr.String())
	}
	took := time.Since(start)
	var exit *exec.ExitError
	if r.err != nil && !errors.As(r.err, &exit) {
		r.t.Fatalf("mcpbox: %v", r.err)
	}
	return r.cmd.ProcessState.ExitCode(), took
}

// peakRSS returns mcpbox's peak resident set in MiB, after it has exited:
// the larger of the last VmHWM seen while polling and the kernel's
// ru_maxrss from wait4, which covers the moment just before the exit.
func (r *rawRun) peakRSS() float64 {
	<-r.done
	kib := <-r.hwm
	if ru, ok := r.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > kib {
		kib = ru.Maxrss
	}
	return float64(kib) / 1024
}

// pollHWM reads VmHWM of pid every 50 ms until done and returns the most
// it saw, in KiB.
func pollHWM(pid int, done <-chan struct{}) int64 {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	var peak int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					peak = max(peak, kib)
				}
			}
		}
		select {
		case <-done:
			return peak
		case <-tick.C:
		}
	}
}

// tailWriter keeps the byte count and the last 64 KiB of what is written
// to it (mcpbox's stderr under a flood), and tells when a marker appears.
type tailWriter struct {
	mu    sync.Mutex
	n     int64
	tail  []byte
	seen  map[string]chan struct{}
	found map[string]bool
}

const tailKeep = 64 << 10

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n += int64(len(p))
	w.tail = append(w.tail, p...)
	for m, ch := range w.seen {
		// The marker may straddle two writes: look a little back.
		from := max(0, len(w.tail)-len(p)-len(m))
		if !w.found[m] && bytes.Contains(w.tail[from:], []byte(m)) {
			w.found[m] = true
			close(ch)
		}
	}
	if len(w.tail) > 2*tailKeep {
		w.tail = append(w.tail[:0], w.tail[len(w.tail)-tailKeep:]...)
	}
	return len(p), nil
}

// when returns a channel closed once marker has been written.
func (w *tailWriter) when(marker string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen, w.found = map[string]chan struct{}{}, map[string]bool{}
	}
	ch := make(chan struct{})
	w.seen[marker] = ch
	if bytes.Contains(w.tail, []byte(marker)) {
		w.found[marker] = true
		close(ch)
	}
	return ch
}

func (w *tailWriter) Len() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.tail) > tailKeep {
		return "…" + string(w.tail[len(w.tail)-tailKeep:])
	}
	return string(w.tail)
}

// readLine reads one line from r within d.
func readLine(t *testing.T, r *bufio.Reader, d time.Duration) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- res{s, err}
	}()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("read from mcpbox: %v (got %q)", got.err, got.s)
		}
		return got.s
	case <-time.After(d):
		t.Fatalf("no line from mcpbox within %v", d)
	}
	return ""
}

// TestFaultServerCrash: the server answers initialize, then dies with exit
// code 3 on tools/call without answering. The pending call fails at once
// and mcpbox exits with the server's code. The session has egress on, so
// mcpbox's own network namespace is part of what must go.
func TestFaultServerCrash(t *testing.T) {
	f := newFaultEnv(t)
	node, script := faultServer(t, "crash.js")
	ctx := testutil.Context(t, time.Minute)
	cmd := f.command("--allow-host", "api.example.com", "--", node, script)
	cs, stderr := f.connectCmd(ctx, cmd)

	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "anything", Arguments: map[string]any{}})
	took := time.Since(start)
	if err == nil {
		t.Fatal("tools/call to a server that died succeeded")
	}
	if errors.Is(err, context.DeadlineExceeded) || took > 5*time.Second {
		t.Errorf("the call failed after %v (%v), want an error within 5s of the crash", took, err)
	}
	t.Logf("tools/call failed after %v: %v", took.Round(time.Millisecond), err)

	cs.Close() // waits for mcpbox
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("mcpbox exit code %d, want the server's 3\nstderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "crashing on tools/call") {
		t.Errorf("the server's last words are missing from stderr:\n%s", stderr.String())
	}
}

// TestFaultClientHalfLine: the client writes half a request line and closes
// stdin. mcpbox closes the server's stdin, waits --stop-timeout, sends
// SIGTERM, waits again, sends SIGKILL; it exits 0 (the client ended the
// session) within those bounds, whatever the server does.
func TestFaultClientHalfLine(t *testing.T) {
	f := newFaultEnv(t)
	node, script := faultServer(t, "linger.js")
	for _, tc := range []struct {
		name    string
		arg     string
		signals int // stop-timeouts mcpbox has to wait: EOF grace, then SIGTERM
	}{
		{"server exits on SIGTERM", "exit-on-sigterm", 1},
		{"server ignores SIGTERM", "ignore-sigterm", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.start("--", node, script, tc.arg)
			stdout := bufio.NewReader(r.stdout)
			io.WriteString(r.stdin, `{"jsonrpc":"2.0","id":1,"method":"ping"}`+"\n")
			if got := readLine(t, stdout, 30*time.Second); !strings.Contains(got, `"id":1`) {
				t.Fatalf("ping answered with %q", got)
			}
			io.WriteString(r.stdin, `{"jsonrpc":"2.0","id":2,"method":"tools/li`)
			time.Sleep(100 * time.Millisecond)
			r.stdin.Close()
			code, took := r.wait(30 * time.Second)
			t.Logf("exit %d, %v after the client closed stdin", code, took.Round(time.Millisecond))
			if code != 0 {
				t.Errorf("exit code %d, want 0: the client ended the session", code)
			}
			least := time.Duration(tc.signals) * stopTimeout
			limit := least + 4*time.Second
			if took < least-100*time.Millisecond || took > limit {
				t.Errorf("took %v to exit after the client's EOF, want between %v and %v", took, least, limit)
			}
			stderr := r.stderr.String()
			if !strings.Contains(stderr, "server stdin EOF") || !strings.Contains(stderr, "server got SIGTERM") {
				t.Errorf("the server should see EOF, then SIGTERM; its stderr:\n%s", stderr)
			}
			if i := strings.Index(stderr, "unfinished line "); i >= 0 {
				t.Logf("the server's view of the half line: %s", strings.SplitN(stderr[i:], "\n", 2)[0])
			}
		})
	}
}

// TestFaultClientGone: the client stops reading and closes its end of
// mcpbox's stdout while the server floods notifications; its stdin stays
// open, so only the failed write (EPIPE: mcpbox ignores SIGPIPE) can tell
// mcpbox. It must stop the server and exit. Egress is on.
func TestFaultClientGone(t *testing.T) {
	f := newFaultEnv(t)
	node, script := faultServer(t, "flood.js")
	r := f.start("--allow-host", "api.example.com", "--", node, script)
	defer r.stdin.Close()
	stdout := bufio.NewReader(r.stdout)
	for i := 0; i < 100; i++ {
		line := readLine(t, stdout, 30*time.Second)
		if !json.Valid([]byte(line)) {
			t.Fatalf("line %d is not JSON: %q", i, line)
		}
	}
	r.stdout.Close()
	code, took := r.wait(20 * time.Second)
	t.Logf("exit %d, %v after the client closed its end of stdout", code, took.Round(time.Millisecond))
	t.Logf("mcpbox stderr tail:\n%s", lastLines(r.stderr.String(), 5))
	if limit := 2*stopTimeout + 5*time.Second; took > limit {
		t.Errorf("took %v to notice the client was gone and stop, want under %v", took, limit)
	}
}

// TestFaultContainerdRestart: containerd goes away and comes back while a
// session runs. The session ends with an error on stderr that names the
// cause, within a bound, and `mcpbox gc` then removes everything left.
//
// containerd is restarted the way it runs (systemd, or its own command
// line again, as scripts/setup.sh starts it), and only when no other
// sandbox runs on the machine: someone else's sessions would die with it.
func TestFaultContainerdRestart(t *testing.T) {
	f := newFaultEnv(t)
	node, script := faultServer(t, "linger.js")
	how, why := restartUnsafe(f.addr)
	if why != "" {
		if testutil.InCI() {
			t.Fatalf("CI=true but containerd cannot be restarted here: %s", why)
		}
		t.Skip("containerd cannot be restarted safely: " + why)
	}
	pid := containerdPID(t)
	// Whatever happens below, containerd runs when the test ends. Added
	// after newEnv's check, so it runs before it.
	t.Cleanup(func() {
		if !containerdAnswers(f.addr) {
			t.Errorf("containerd was down at the end of the test; starting it again")
			how.start(t, f.addr)
		}
	})

	r := f.start("--allow-host", "api.example.com", "--", node, script)
	defer r.stdin.Close()
	stdout := bufio.NewReader(r.stdout)
	io.WriteString(r.stdin, `{"jsonrpc":"2.0","id":1,"method":"ping"}`+"\n")
	if got := readLine(t, stdout, 30*time.Second); !strings.Contains(got, `"id":1`) {
		t.Fatalf("ping answered with %q", got)
	}
	go io.Copy(io.Discard, stdout)

	stopped := time.Now()
	how.stop(t, pid)
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		if errors.Is(err, fs.ErrNotExist) && !dials(f.addr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd (pid %d) still runs or its socket still answers 20s after SIGTERM", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("containerd down after %v", time.Since(stopped).Round(time.Millisecond))
	how.start(t, f.addr)
	t.Logf("containerd back after %v", time.Since(stopped).Round(time.Millisecond))

	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
	}
	code, _ := r.wait(time.Second)
	took := time.Since(stopped)
	stderr := r.stderr.String()
	t.Logf("session ended %v after containerd was stopped, exit %d; stderr tail:\n%s", took.Round(time.Millisecond), code, lastLines(stderr, 6))
	if code == 0 {
		t.Errorf("exit 0 after losing containerd, want a failure")
	}
	// STYLE.md: say what failed, why, and what to do next. A bare gRPC
	// "Unavailable ... EOF" says none of it.
	if !strings.Contains(stderr, "containerd") {
		t.Errorf("stderr does not say that the session ended because containerd went away:\n%s", stderr)
	}

	gctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(gctx, f.bin, "--containerd-address", f.addr, "--namespace", f.namespace, "--run-dir", f.runDir, "gc").CombinedOutput()
	t.Logf("mcpbox gc: %s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Errorf("mcpbox gc: %v\n%s", err, out)
	}
}

// restarter stops and starts containerd the way it runs here: through
// systemd when systemd manages it, else with its own command line again.
type restarter struct {
	systemd bool
	argv    []string // the running containerd's command line
}

func (r restarter) stop(t *testing.T, pid int) {
	t.Helper()
	if r.systemd {
		if out, err := exec.Command("systemctl", "stop", "containerd").CombinedOutput(); err != nil {
			t.Fatalf("systemctl stop containerd: %v %s", err, out)
		}
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop containerd (pid %d): %v", pid, err)
	}
}

func (r restarter) start(t *testing.T, addr string) {
	t.Helper()
	if r.systemd {
		if out, err := exec.Command("systemctl", "start", "containerd").CombinedOutput(); err != nil {
			t.Fatalf("systemctl start containerd: %v %s", err, out)
		}
		for deadline := time.Now().Add(30 * time.Second); !containerdAnswers(addr); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("containerd did not answer within 30s of systemctl start")
			}
		}
		return
	}
	startContainerd(t, addr, r.argv)
}

// restartUnsafe says how containerd can be restarted here, or why it must
// not be.
func restartUnsafe(addr string) (restarter, string) {
	out, err := exec.Command("pidof", "containerd").Output()
	pids := strings.Fields(string(out))
	if err != nil || len(pids) != 1 {
		return restarter{}, fmt.Sprintf("want exactly one containerd process, pidof found %q", pids)
	}
	cmdline, err := os.ReadFile("/proc/" + pids[0] + "/cmdline")
	if err != nil {
		return restarter{}, err.Error()
	}
	r := restarter{argv: strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")}
	if exec.Command("systemctl", "is-active", "--quiet", "containerd").Run() == nil {
		r.systemd = true
	}
	if !containerdAnswers(addr) {
		return r, "containerd does not answer at " + addr
	}
	// Another sandbox (another user's session, another test run) would
	// lose its containerd too.
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err == nil && bytes.Contains(bytes.SplitN(b, []byte{0}, 2)[0], []byte("containerd-shim")) {
			return r, fmt.Sprintf("a container is running (shim pid %s: %s)", ent.Name(), strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return r, ""
}

func containerdPID(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("pidof", "containerd").Output()
	if err != nil {
		t.Fatalf("pidof containerd: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("pidof containerd: %q", out)
	}
	return pid
}

// startContainerd starts containerd again with the command line it had
// (scripts/setup.sh's, usually): the stale socket removed, nohup, its log
// in a fresh /tmp/mcpbox-containerd.XXXXXX; in its own session, so that it
// outlives the test and a ^C to it. It waits until `ctr version` answers.
func startContainerd(t *testing.T, addr string, argv []string) {
	t.Helper()
	sh := exec.Command("bash", append([]string{"-c", `set -e
sock=$1
shift
rm -f "$sock"
logdir=$(mktemp -d /tmp/mcpbox-containerd.XXXXXX)
echo "$logdir/containerd.log"
nohup "$@" >"$logdir/containerd.log" 2>&1 </dev/null &`, "bash", addr}, argv...)...)
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := sh.Output()
	if err != nil {
		t.Fatalf("start containerd: %v %s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); !containerdAnswers(addr); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer within 30s of its start; log: %s", out)
		}
	}
	t.Logf("containerd started again; log: %s", strings.TrimSpace(string(out)))
}

func containerdAnswers(addr string) bool {
	return exec.Command("ctr", "--address", addr, "version").Run() == nil
}

func dials(addr string) bool {
	c, err := net.DialTimeout("unix", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// waitFor waits up to d for marker on w.
func waitFor(w *tailWriter, marker string, d time.Duration) bool {
	select {
	case <-w.when(marker):
		return true
	case <-time.After(d):
		return false
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// maxRSS is the bound on mcpbox's peak RSS under a flood.
const maxRSS = 200 // MiB

// TestFaultJunkFlood: a server writes 1 GiB of non-JSON lines, and another
// a single endless line. The junk is diverted to stderr (one short warning
// a line) without reaching the client, and the session goes on; the endless
// line ends the session at --max-message. mcpbox's peak RSS stays bounded.
func TestFaultJunkFlood(t *testing.T) {
	f := newFaultEnv(t)
	node, dir := faultServer(t, "")

	t.Run("1 GiB of junk lines", func(t *testing.T) {
		// 4096 lines of 256 KiB: each is diverted with a ~1 KiB warning.
		r := f.start("--", node, filepath.Join(dir, "junk.js"))
		var out bytes.Buffer
		copied := make(chan struct{})
		go func() { io.Copy(&out, io.LimitReader(r.stdout, 1<<20)); close(copied) }()
		start := time.Now()
		if !waitFor(r.stderr, "junk done", 90*time.Second) {
			t.Fatalf("the server did not get 1 GiB of junk out within 90s (%d bytes of stderr so far)", r.stderr.Len())
		}
		took := time.Since(start)
		// The notification after the junk is on its way to the client.
		time.Sleep(200 * time.Millisecond)
		r.stdin.Close()
		code, stopTook := r.wait(20 * time.Second)
		<-copied
		rss := r.peakRSS()
		t.Logf("1 GiB of junk lines through in %v from mcpbox's start (≥ %.0f MiB/s), %d bytes of warnings on stderr; exit %d %v after EOF; mcpbox peak RSS %.1f MiB",
			took.Round(time.Millisecond), 1024/took.Seconds(), r.stderr.Len(), code, stopTook.Round(time.Millisecond), rss)
		if want := `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"after the junk"}}` + "\n"; out.String() != want {
			t.Errorf("the client got %d bytes (%.200q), want only the message after the junk", out.Len(), out.String())
		}
		if code != 0 {
			t.Errorf("exit %d after the client's EOF, want 0", code)
		}
		if n := r.stderr.Len(); n > 16<<20 {
			t.Errorf("%d bytes of stderr for 4096 junk lines: warnings should be short", n)
		}
		if rss > maxRSS {
			t.Errorf("mcpbox peak RSS %.1f MiB, want under %d MiB", rss, maxRSS)
		}
	})

	t.Run("endless line", func(t *testing.T) {
		r := f.start("--max-message", "8Mi", "--", node, filepath.Join(dir, "endless.js"))
		defer r.stdin.Close()
		var out bytes.Buffer
		go io.Copy(&out, r.stdout)
		code, took := r.wait(60 * time.Second)
		rss := r.peakRSS()
		stderr := r.stderr.String()
		t.Logf("endless line stopped after %v, exit %d, mcpbox peak RSS %.1f MiB; stderr tail:\n%s", took.Round(time.Millisecond), code, rss, lastLines(stderr, 3))
		if code != 1 || !strings.Contains(stderr, "max-message") {
			t.Errorf("exit %d: want 1 and a message naming --max-message", code)
		}
		if out.Len() != 0 {
			t.Errorf("the client got %d bytes of the endless line", out.Len())
		}
		if rss > maxRSS {
			t.Errorf("mcpbox peak RSS %.1f MiB, want under %d MiB", rss, maxRSS)
		}
	})
}

// TestFaultManySessions starts 50 sandboxed server-everything sessions at
// once on this small machine; each answers tools/list through the Go SDK
// client, is closed, and is cleaned up.
func TestFaultManySessions(t *testing.T) {
	f := newFaultEnv(t)
	node, server := testutil.Server(t, "server-everything")
	ctx := testutil.Context(t, 3*time.Minute)
	const n = 50
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := f.command("--", node, server, "stdio")
			stderr := &lockedBuilder{}
			cmd.Stderr = stderr
			client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-test", Version: "1"}, nil)
			cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 30 * time.Second}, nil)
			if err != nil {
				errs <- fmt.Errorf("session %d: connect: %v\n%s", i, err, stderr.String())
				return
			}
			tools, err := cs.ListTools(ctx, nil)
			if err == nil && !hasTool(tools, "echo") {
				err = fmt.Errorf("tools/list lacks echo: %v", toolNames(tools))
			}
			if err != nil {
				errs <- fmt.Errorf("session %d: %v\n%s", i, err, stderr.String())
			}
			if err := cs.Close(); err != nil {
				errs <- fmt.Errorf("session %d: close: %v\n%s", i, err, stderr.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	t.Logf("%d sessions started, answered tools/list and were closed in %v", n, time.Since(start).Round(time.Millisecond))
	for err := range errs {
		t.Error(err)
	}
}
