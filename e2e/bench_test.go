package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// The benchmarks here compare mcpbox against the bare server measured in the
// same run, alternating the two so that machine noise hits both alike. They
// speak raw JSON-RPC lines so the client adds the same small cost to both.

const initializeLine = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}` + "\n"

// stdioServer is a started server (bare or through mcpbox) and its pipes.
type stdioServer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

func startServer(b testing.TB, cmd *exec.Cmd) *stdioServer {
	b.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return &stdioServer{cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(out, 1<<20)}
}

// call writes one line and reads lines until the response with the id.
func (s *stdioServer) call(b testing.TB, line string, id string) string {
	if _, err := io.WriteString(s.stdin, line); err != nil {
		b.Fatal(err)
	}
	want := `"id":` + id + `,`
	for {
		resp, err := s.stdout.ReadString('\n')
		if err != nil {
			b.Fatalf("reading response %s: %v", id, err)
		}
		if strings.Contains(resp, want) || strings.HasSuffix(strings.TrimSpace(resp), `"id":`+id+`}`) {
			return resp
		}
	}
}

// timeToInitialize starts cmd, times it to its first initialize response,
// and stops it.
func timeToInitialize(b testing.TB, cmd *exec.Cmd) time.Duration {
	start := time.Now()
	s := startServer(b, cmd)
	s.call(b, initializeLine, "1")
	d := time.Since(start)
	s.stop()
	return d
}

func (s *stdioServer) stop() {
	s.stdin.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// BenchmarkColdStart: time from spawn to the first initialize response of
// server-filesystem, bare node vs mcpbox run (all isolation on), medians of
// b.N alternating runs each. Run with -benchtime 10x or more.
func BenchmarkColdStart(b *testing.B) {
	e := newBenchEnv(b)
	node, server := testutil.Server(b, "server-filesystem")
	dir := b.TempDir()
	// The sandbox's user must be able to read the grant (a 0700 one of
	// root's is refused).
	os.Chmod(dir, 0o755)
	var bare, boxed []time.Duration
	for i := 0; i < b.N; i++ {
		bare = append(bare, timeToInitialize(b, exec.Command(node, server, dir)))
		boxed = append(boxed, timeToInitialize(b, e.command("--mount", dir, "--", node, server, dir)))
	}
	mb, mx := median(bare), median(boxed)
	b.ReportMetric(mb.Seconds(), "bare-s")
	b.ReportMetric(mx.Seconds(), "mcpbox-s")
	b.ReportMetric(float64(mx)/float64(mb), "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkColdStartRootless: time from spawn to the first initialize
// response of server-filesystem as the unprivileged CI user, bare node vs
// mcpbox on the rootless runtime (chosen by auto, limits delegated),
// medians of b.N alternating runs each. Run with -benchtime 10x or more.
func BenchmarkColdStartRootless(b *testing.B) {
	e := newRootlessEnv(b)
	node, server := testutil.Server(b, "server-filesystem")
	dir := e.userDir("data")
	os.Chmod(dir, 0o755)
	bare := func() *exec.Cmd { return e.as(node, server, dir) }
	boxed := func() *exec.Cmd { return e.command("--mount", dir, "--", node, server, dir) }
	// Once each untimed: the pins and audit log of a user's earlier
	// session, and the page cache.
	timeToInitialize(b, bare())
	timeToInitialize(b, boxed())
	var bareT, boxedT []time.Duration
	for i := 0; i < b.N; i++ {
		bareT = append(bareT, timeToInitialize(b, bare()))
		boxedT = append(boxedT, timeToInitialize(b, boxed()))
	}
	mb, mx := median(bareT), median(boxedT)
	b.ReportMetric(mb.Seconds(), "bare-s")
	b.ReportMetric(mx.Seconds(), "rootless-s")
	b.ReportMetric(float64(mx)/float64(mb), "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkColdStartNpx: what users have in their configs, `npx -y PKG`,
// against `mcpbox run -- npx -y PKG` (package cached by a first run, so
// offline) and bare node on the installed script; time to the first
// initialize response of server-filesystem, medians of b.N alternating runs.
// npx asks the registry on every start, so this one needs the network.
func BenchmarkColdStartNpx(b *testing.B) {
	e := newBenchEnv(b)
	node, server := testutil.Server(b, "server-filesystem")
	npx := testutil.RequiresCommand(b, "npx")
	dir := b.TempDir()
	os.Chmod(dir, 0o755)
	xdgRoot := b.TempDir()
	xdg := []string{"XDG_CACHE_HOME=" + xdgRoot + "/cache", "XDG_STATE_HOME=" + xdgRoot + "/state", "XDG_CONFIG_HOME=" + xdgRoot + "/config"}
	pkg := "@modelcontextprotocol/server-filesystem@2026.8.31"
	boxed := func() *exec.Cmd {
		cmd := e.command("--mount", dir, "--", "npx", "-y", pkg, dir)
		cmd.Env = append(cmd.Env, xdg...)
		return cmd
	}
	timeToInitialize(b, boxed()) // installs into the cache
	var bare, viaNpx, viaBox []time.Duration
	for i := 0; i < b.N; i++ {
		bare = append(bare, timeToInitialize(b, exec.Command(node, server, dir)))
		viaNpx = append(viaNpx, timeToInitialize(b, exec.Command(npx, "-y", pkg, dir)))
		viaBox = append(viaBox, timeToInitialize(b, boxed()))
	}
	b.ReportMetric(median(bare).Seconds(), "bare-s")
	b.ReportMetric(median(viaNpx).Seconds(), "npx-s")
	b.ReportMetric(median(viaBox).Seconds(), "mcpbox-npx-s")
	b.ReportMetric(float64(median(viaBox))/float64(median(bare)), "ratio-vs-bare")
	b.ReportMetric(float64(median(viaBox))/float64(median(viaNpx)), "ratio-vs-npx")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRoundTrip: per-message round trip of tools/call on
// server-everything's echo with a 1 KB message, bare vs mcpbox, p50 and
// p99; and mcpbox's own peak RSS during the session.
func BenchmarkRoundTrip(b *testing.B) {
	e := newBenchEnv(b)
	node, server := testutil.Server(b, "server-everything")
	bareS := startServer(b, exec.Command(node, server, "stdio"))
	defer bareS.stop()
	boxS := startServer(b, e.command(append(strings.Fields(os.Getenv("XFLAGS")), "--", node, server, "stdio")...))
	defer boxS.stop()
	for _, s := range []*stdioServer{bareS, boxS} {
		s.call(b, initializeLine, "1")
		io.WriteString(s.stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	}
	msg := strings.Repeat("x", 1000)
	var bare, boxed []time.Duration
	n := b.N
	if n < 200 {
		n = 200
	}
	for i := 0; i < n; i++ {
		id := strconv.Itoa(i + 2)
		line := `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"echo","arguments":{"message":"` + msg + `"}}}` + "\n"
		for _, s := range []*stdioServer{bareS, boxS} {
			start := time.Now()
			s.call(b, line, id)
			d := time.Since(start)
			if s == bareS {
				bare = append(bare, d)
			} else {
				boxed = append(boxed, d)
			}
		}
	}
	b.ReportMetric(float64(percentile(bare, 50).Microseconds()), "bare-p50-µs")
	b.ReportMetric(float64(percentile(boxed, 50).Microseconds()), "mcpbox-p50-µs")
	b.ReportMetric(float64((percentile(boxed, 50) - percentile(bare, 50)).Microseconds()), "added-p50-µs")
	b.ReportMetric(float64(percentile(bare, 99).Microseconds()), "bare-p99-µs")
	b.ReportMetric(float64(percentile(boxed, 99).Microseconds()), "mcpbox-p99-µs")
	if hwm, err := statusKB(boxS.cmd.Process.Pid, "VmHWM"); err == nil {
		b.ReportMetric(float64(hwm)/1024, "mcpbox-peak-RSS-MiB")
	}
	b.ReportMetric(0, "ns/op")
}

// newBenchEnv is newEnv for benchmarks, without the per-test cleanup
// assertions' *testing.T.
func newBenchEnv(b *testing.B) *env {
	addr := testutil.RequiresContainerd(b)
	e := &env{bin: mcpboxBinary(b), addr: addr, namespace: "mcpbox-bench", runDir: b.TempDir()}
	return e
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func percentile(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

// statusKB reads a "kB" field of /proc/PID/status.
func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
