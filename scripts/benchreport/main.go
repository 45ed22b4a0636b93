// Command benchreport measures mcpbox against the bare server in one run and
// writes docs/bench.md and docs/bench.svg; `make bench` runs it after the
// go test microbenchmarks.
//
// It starts real processes: bare `node server.js`, the built bin/mcpbox
// (host rootfs, and image rootfs when this build has `mcpbox image build`)
// and srt from npm when it can be installed, all serving
// @modelcontextprotocol/server-everything from testdata/servers; and, as
// the unprivileged user `make setup` creates (-rootless-user), bare node
// and mcpbox's rootless runtime (runc, and crun where it runs) serving
// server-filesystem, with the phases of each start read from mcpbox's
// debug log. Every figure is a ratio against the bare server measured in
// the same run, alternating the variants so machine noise hits all of
// them alike.
//
// It needs root and containerd, uses its own containerd namespace
// (mcpbox-bench-PID), run directory and XDG directories, and removes them
// afterwards. It does not parse `go test -bench` output and does not judge
// the numbers: it reports them.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bench is one run's setup: where the programs are and where its state goes.
type bench struct {
	bin        string // bin/mcpbox, absolute
	addr       string // containerd socket
	namespace  string
	tmp        string // removed at the end
	runDir     string
	node       string
	everything string // server-everything's entry point
	offProfile string // a profile file with tools pin/scan off
	imageRef   string // the runtime image `mcpbox image build` made, if any
	runs       int
	rounds     int
	sessions   []int
	// filesystem is server-filesystem's entry point and fsData the
	// directory it serves, for the rootless start-up.
	filesystem, fsData string
	// rootless is the unprivileged user of the rootless variants, or nil
	// and rootlessWhy says why there are none.
	rootless         *rootlessUser
	rootlessWhy      string
	rootlessUserName string
	rootlessRuns     int
}

func main() {
	b := &bench{}
	var out, svg, sessions, only string
	flag.StringVar(&b.bin, "mcpbox", "bin/mcpbox", "the mcpbox binary to measure")
	flag.StringVar(&b.addr, "containerd-address", envOr("MCPBOX_CONTAINERD_ADDRESS", "/run/containerd/containerd.sock"), "containerd's socket")
	flag.StringVar(&out, "out", "docs/bench.md", "the report to write (empty: stdout only)")
	flag.StringVar(&svg, "svg", "docs/bench.svg", "the chart to write, referenced from the report by its base name")
	flag.IntVar(&b.runs, "runs", 7, "repetitions of each start-up measurement")
	flag.IntVar(&b.rounds, "rounds", 2000, "sequential round trips per variant for the latency measurement")
	flag.StringVar(&sessions, "sessions", "1,10,50,100", "numbers of concurrent sessions")
	flag.StringVar(&only, "sections", allSections, "the sections to measure, in order (fewer: to try one; the report then has only those)")
	flag.StringVar(&b.rootlessUserName, "rootless-user", "mcpbox-ci", "the unprivileged user the rootless start-up runs as (empty: none)")
	flag.IntVar(&b.rootlessRuns, "rootless-runs", 15, "repetitions of each rootless start-up measurement")
	flag.Parse()
	for _, f := range strings.Split(sessions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("-sessions: %q is not a positive number", f)
		}
		b.sessions = append(b.sessions, n)
	}

	began := time.Now()
	if err := b.setup(); err != nil {
		fatalf("%v", err)
	}
	atExit = b.cleanup
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupted
		logf("interrupted: cleaning up")
		b.cleanup()
		os.Exit(130)
	}()

	r := &report{machine: describeMachine(b), began: began}
	for _, name := range strings.Split(only, ",") {
		switch strings.TrimSpace(name) {
		case "startup":
			r.sections = append(r.sections, b.coldStart())
		case "rootless":
			r.sections = append(r.sections, b.rootlessStart()...)
		case "latency":
			r.sections = append(r.sections, b.latency())
		case "throughput":
			r.sections = append(r.sections, b.throughput())
		case "memory":
			r.sections = append(r.sections, b.memory())
		case "concurrency":
			r.sections = append(r.sections, b.concurrency())
		default:
			fatalf("-sections: %q is not a section (%s)", name, allSections)
		}
	}
	b.cleanup()
	r.elapsed = time.Since(began)
	r.machine = append(r.machine, [2]string{"load average at end (1, 5, 15 min)", loadAverage()})

	md := r.markdown(filepath.Base(svg))
	fmt.Print(r.text())
	if out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			fatalf("write %s: %v", out, err)
		}
		logf("wrote %s", out)
	}
	if svg != "" {
		if err := os.WriteFile(svg, []byte(r.svg()), 0o644); err != nil {
			fatalf("write %s: %v", svg, err)
		}
		logf("wrote %s", svg)
	}
	logf("done in %s", r.elapsed.Round(time.Second))
}

// setup checks what the run needs and creates its private directories.
func (b *bench) setup() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (containerd, srt as nobody): run `sudo make bench`")
	}
	bin, err := filepath.Abs(b.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s is missing: run `make build` (%w)", bin, err)
	}
	b.bin = bin
	if conn, err := net.DialTimeout("unix", b.addr, 2*time.Second); err != nil {
		return fmt.Errorf("containerd is not reachable at %s: run `make setup` (%w)", b.addr, err)
	} else {
		conn.Close()
	}
	if b.node, err = exec.LookPath("node"); err != nil {
		return errors.New("node is not installed: run `make setup`")
	}
	if b.everything, err = fixture("server-everything"); err != nil {
		return err
	}
	b.namespace = fmt.Sprintf("mcpbox-bench-%d", os.Getpid())
	if b.tmp, err = os.MkdirTemp("", "mcpbox-bench."); err != nil {
		return err
	}
	// srt runs as nobody and must reach its files below.
	if err := os.Chmod(b.tmp, 0o755); err != nil {
		return err
	}
	b.runDir = filepath.Join(b.tmp, "run")
	b.offProfile = filepath.Join(b.tmp, "bench-off.yaml")
	off := "name: bench-off\nextends: untrusted\ntools:\n  pin: \"off\"\n  scan: \"off\"\n"
	if err := os.WriteFile(b.offProfile, []byte(off), 0o644); err != nil {
		return err
	}
	if err := b.filesystemData(); err != nil {
		return err
	}
	b.rootless, b.rootlessWhy = b.setupRootless(b.rootlessUserName)
	if b.rootless == nil {
		logf("no rootless start-up: %s", b.rootlessWhy)
	}
	logf("namespace %s, scratch %s", b.namespace, b.tmp)
	return nil
}

// cleanup removes what the run left: sessions, containers (mcpbox gc, then
// by force), images an image build made, the namespace and the scratch
// directory. Failures are reported, not fatal: the report is still worth
// writing.
func (b *bench) cleanup() {
	killLive()
	b.gcRootless()
	if out, err := exec.Command(b.bin, b.globalFlags("gc")...).CombinedOutput(); err != nil {
		logf("warning: mcpbox gc: %v: %s", err, bytes.TrimSpace(out))
	}
	if b.imageRef != "" {
		name, _, _ := strings.Cut(b.imageRef, "@") // image rm takes the name
		if out, err := exec.Command(b.bin, b.globalFlags("image", "rm", name)...).CombinedOutput(); err != nil {
			logf("warning: mcpbox image rm: %v: %s", err, bytes.TrimSpace(out))
		}
	}
	ctr := func(args ...string) (string, error) {
		out, err := exec.Command("ctr", append([]string{"--address", b.addr, "-n", b.namespace}, args...)...).CombinedOutput()
		return string(out), err
	}
	if ids, err := ctr("containers", "ls", "-q"); err == nil && strings.TrimSpace(ids) != "" {
		logf("warning: mcpbox gc left containers in %s; removing them", b.namespace)
		for _, id := range strings.Fields(ids) {
			ctr("task", "kill", "-s", "SIGKILL", id)
			time.Sleep(200 * time.Millisecond)
			ctr("task", "rm", "-f", id)
			ctr("containers", "rm", id)
		}
	}
	if refs, err := ctr("images", "ls", "-q"); err == nil && strings.TrimSpace(refs) != "" {
		ctr(append([]string{"images", "rm", "--sync"}, strings.Fields(refs)...)...)
	}
	if out, err := exec.Command("ctr", "--address", b.addr, "namespaces", "rm", b.namespace).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "not found") {
		logf("warning: ctr namespaces rm %s: %s", b.namespace, bytes.TrimSpace(out))
	}
	if b.tmp != "" {
		if err := os.RemoveAll(b.tmp); err != nil {
			logf("warning: remove %s: %v", b.tmp, err)
		}
	}
}

// fixture is the real path of an npm fixture's entry point: mcpbox
// refuses a grant that leads through a symlink (testdata/servers/node_modules
// may be one, in a second worktree), and the image variant grants its
// directory.
func fixture(name string) (string, error) {
	p, err := filepath.Abs("testdata/servers/node_modules/@modelcontextprotocol/" + name + "/dist/index.js")
	if err == nil {
		p, err = filepath.EvalSymlinks(p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", errors.New("the npm fixtures are not installed: run `make fixtures`")
	}
	return p, err
}

// globalFlags puts mcpbox's global flags for this run before args.
func (b *bench) globalFlags(args ...string) []string {
	return append([]string{"--containerd-address", b.addr, "--namespace", b.namespace, "--run-dir", b.runDir, "--log-level", "warn"}, args...)
}

// xdg is a set of XDG directories for mcpbox: its pins, audit logs,
// package cache and user profiles.
type xdg string

// newXDG makes fresh, empty XDG directories: mcpbox's first start for a user.
func (b *bench) newXDG() xdg {
	dir, err := os.MkdirTemp(b.tmp, "xdg.")
	if err != nil {
		fatalf("%v", err)
	}
	return xdg(dir)
}

// mcpbox is `mcpbox run [args] -- node server-everything stdio` with the
// run's flags and XDG directories.
func (b *bench) mcpbox(x xdg, args ...string) *exec.Cmd {
	full := b.globalFlags("run", "--stop-timeout", "1s")
	full = append(full, args...)
	full = append(full, "--", b.node, b.everything, "stdio")
	cmd := exec.Command(b.bin, full...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"XDG_STATE_HOME=" + string(x) + "/state", "XDG_CACHE_HOME=" + string(x) + "/cache", "XDG_CONFIG_HOME=" + string(x) + "/config"}
	cmd.Dir = b.tmp
	return cmd
}

// bare is the baseline: `node server-everything stdio` straight on the host.
func (b *bench) bare() *exec.Cmd {
	cmd := exec.Command(b.node, b.everything, "stdio")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Dir = b.tmp
	return cmd
}

// allSections are the report's sections, in order.
const allSections = "startup,rootless,latency,throughput,memory,concurrency"

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchreport: "+format+"\n", args...)
}

// atExit cleans up after a fatal error once setup has made something to
// clean.
var atExit = func() {}

func fatalf(format string, args ...any) {
	logf(format, args...)
	atExit()
	os.Exit(1)
}
