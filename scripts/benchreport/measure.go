package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// samples collects the times of one variant; after its first failure the
// variant is not run again and the error stands in the report.
type samples struct {
	times []time.Duration
	err   error
}

// startup times cmd from spawn to its initialize response, then stops it.
func (s *samples) startup(cmd *exec.Cmd) {
	if s.err != nil {
		return
	}
	begin := time.Now()
	sess, err := start(cmd)
	if err != nil {
		s.err = err
		return
	}
	if _, err := sess.initialize(); err != nil {
		s.err = err
		sess.stop()
		return
	}
	s.times = append(s.times, time.Since(begin))
	sess.stop()
}

// coldStart: spawn to the first initialize response.
func (b *bench) coldStart() section {
	image, imageWhy := b.imageProfile()
	srt, srtLabel, srtWhy := b.installSrt()
	logf("start-up: %d runs", b.runs)
	var bare, first, warm, imgFirst, imgWarm, viaSrt samples
	for i := 0; i < b.runs; i++ {
		bare.startup(b.bare())
		x := b.newXDG()
		first.startup(b.mcpbox(x))
		warm.startup(b.mcpbox(x))
		if image != "" {
			x := b.newXDG()
			// The image holds node, not the server's script: grant it.
			args := []string{"--profile", image, "--mount", filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(b.everything))))}
			imgFirst.startup(b.mcpbox(x, args...))
			imgWarm.startup(b.mcpbox(x, args...))
		}
		if srt != nil {
			viaSrt.startup(srt())
		}
	}
	sec := section{
		Title: "Start-up: spawn to the first `initialize` response",
		Text: fmt.Sprintf("server-everything over stdio, %d runs of each variant, alternating. "+
			"*First start* is mcpbox's first session for a user: empty XDG state, cache and config directories "+
			"(no pins, no audit log yet), a fresh set for every run. *Warm start* is the same command again right after, "+
			"with the state the first start left. Neither drops the kernel's page cache: the files of node, the server and "+
			"mcpbox are in memory for every variant, bare included, so the difference is the sandbox's own work.", b.runs),
		Head: []string{"variant", "median", "p90", "vs bare (median)"},
	}
	base := median(bare.times)
	add := func(label, bar string, s *samples, why string) {
		switch {
		case why != "":
			sec.Rows = append(sec.Rows, []string{label, "—", "—", why})
		case s.err != nil:
			sec.Rows = append(sec.Rows, []string{label, "—", "—", "failed: " + oneLine(s.err)})
		default:
			r := ratio(median(s.times), base)
			sec.Rows = append(sec.Rows, []string{label, ms(median(s.times)), ms(pct(s.times, 90)), times(r)})
			if bar != "" {
				sec.Bars = append(sec.Bars, bar2{"start-up", bar, r})
			}
		}
	}
	if bare.err != nil {
		sec.Rows = append(sec.Rows, []string{"bare `node server.js` (baseline)", "—", "—", "failed: " + oneLine(bare.err)})
		return sec
	}
	add("bare `node server.js` (baseline)", "", &bare, "")
	add("mcpbox, host rootfs, first start", "mcpbox host rootfs, first", &first, "")
	add("mcpbox, host rootfs, warm start", "mcpbox host rootfs, warm", &warm, "")
	add("mcpbox, image rootfs, first start", "mcpbox image rootfs, first", &imgFirst, imageWhy)
	add("mcpbox, image rootfs, warm start", "mcpbox image rootfs, warm", &imgWarm, imageWhy)
	add(srtLabel, "srt", &viaSrt, srtWhy)
	return sec
}

// imageProfile builds the node runtime image and returns a profile file that
// uses it, or why it cannot.
func (b *bench) imageProfile() (profile, why string) {
	// An unknown command exits 0 with a message, so look for the flag.
	help, err := exec.Command(b.bin, "image", "build", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(help), "--runtime") {
		return "", "not available in this build (no `mcpbox image build --runtime`)"
	}
	logf("building the node runtime image (mcpbox image build --runtime node)")
	cmd := exec.Command(b.bin, b.globalFlags("image", "build", "--runtime", "node")...)
	cmd.Env = b.mcpbox(b.newXDG()).Env
	var stderr tail
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Sprintf("`mcpbox image build --runtime node` failed: %v %s", err, stderr.lastLine())
	}
	// It prints the pinned reference (name:tag@sha256:…) the profile names.
	b.imageRef = lastLine(out)
	profile = filepath.Join(b.tmp, "bench-image.yaml")
	yaml := "name: bench-image\nextends: everything\nrootfs: image\nimage: " + b.imageRef + "\n"
	if err := os.WriteFile(profile, []byte(yaml), 0o644); err != nil {
		return "", err.Error()
	}
	return profile, ""
}

// installSrt installs srt (@anthropic-ai/sandbox-runtime) and what it needs
// into the scratch directory, as scripts/compare.sh does, and returns the
// command that runs the server under it as nobody. srt's settings are its
// README's MCP server example: no network, writes to the working directory
// and /tmp.
func (b *bench) installSrt() (cmd func() *exec.Cmd, label, why string) {
	label = "srt (@anthropic-ai/sandbox-runtime), as nobody"
	var missing []string
	for tool, pkg := range map[string]string{"bwrap": "bubblewrap", "socat": "socat", "rg": "ripgrep"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		logf("installing %s for srt", strings.Join(missing, " "))
		c := exec.Command("apt-get", append([]string{"install", "-y", "-q"}, missing...)...)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := c.CombinedOutput(); err != nil {
			return nil, label, "not measured: apt-get install " + strings.Join(missing, " ") + " failed: " + lastLine(out)
		}
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return nil, label, "not measured: npm is not installed"
	}
	logf("installing srt from npm into %s", b.tmp)
	prefix := filepath.Join(b.tmp, "srt")
	if out, err := exec.Command("npm", "install", "--prefix", prefix, "--no-audit", "--no-fund", "--loglevel=error",
		"@anthropic-ai/sandbox-runtime").CombinedOutput(); err != nil {
		return nil, label, "not measured: npm install @anthropic-ai/sandbox-runtime failed: " + lastLine(out)
	}
	exec.Command("chmod", "-R", "a+rX", prefix).Run()
	pkg := filepath.Join(prefix, "node_modules", "@anthropic-ai", "sandbox-runtime")
	if out, err := exec.Command(b.node, "-p", "require(process.argv[1]).version", filepath.Join(pkg, "package.json")).Output(); err == nil {
		label = fmt.Sprintf("srt %s (@anthropic-ai/sandbox-runtime), as nobody", strings.TrimSpace(string(out)))
	}
	home := filepath.Join(b.tmp, "srt-home")
	settings := filepath.Join(b.tmp, "srt-settings.json")
	if err := os.Mkdir(home, 0o755); err != nil {
		return nil, label, "not measured: " + err.Error()
	}
	if err := os.Chown(home, 65534, 65534); err != nil {
		return nil, label, "not measured: " + err.Error()
	}
	const js = `{"network": {"allowedDomains": [], "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [".", "/tmp"], "denyWrite": []}}`
	if err := os.WriteFile(settings, []byte(js), 0o644); err != nil {
		return nil, label, "not measured: " + err.Error()
	}
	return func() *exec.Cmd {
		c := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
			"env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME="+home,
			b.node, filepath.Join(pkg, "dist", "cli.js"), "--settings", settings, "--", b.node, b.everything, "stdio")
		c.Dir = home
		return c
	}, label, ""
}

// variant is a long-lived session the per-message measurements share.
type variant struct {
	label string
	bar   string
	sess  *session
	times []time.Duration
	err   error
}

// openVariants starts bare, mcpbox with the default profile's policies and
// mcpbox with policies off, each past the handshake and tools/list.
func (b *bench) openVariants() []*variant {
	vs := []*variant{
		{label: "bare `node server.js` (baseline)"},
		{label: "mcpbox, policies on (default profile: audit, pins, scan, redaction)", bar: "policies on"},
		{label: "mcpbox, policies off (`--audit none --no-redact`, pin/scan off)", bar: "policies off"},
		{label: "mcpbox, policies off, `--cpus 2` (no CPU quota on this machine)", bar: "policies off, --cpus 2"},
	}
	x := b.newXDG()
	off := []string{"--profile", b.offProfile, "--audit", "none", "--no-redact"}
	cmds := []*exec.Cmd{b.bare(), b.mcpbox(x), b.mcpbox(x, off...), b.mcpbox(x, append(off, "--cpus", "2")...)}
	for i, v := range vs {
		s, err := start(cmds[i])
		if err == nil {
			if _, err = s.initialize(); err == nil {
				_, _, err = s.call("tools/list", "{}")
			}
			if err != nil {
				s.stop()
			}
		}
		v.sess, v.err = s, err
	}
	return vs
}

func closeVariants(vs []*variant) {
	for _, v := range vs {
		if v.err == nil {
			v.sess.stop()
		}
	}
}

// roundTrips sends n echo calls of msg through every variant, rotating
// which goes first so that no variant always follows the same one.
func roundTrips(vs []*variant, msg string, n int, record bool) {
	for i := 0; i < n; i++ {
		for j := range vs {
			v := vs[(i+j)%len(vs)]
			if v.err != nil {
				continue
			}
			_, d, err := v.sess.echo(msg)
			if err != nil {
				v.err = err
				continue
			}
			if record {
				v.times = append(v.times, d)
			}
		}
	}
}

// latency: per-message round trip of a 1 KB tools/call.
func (b *bench) latency() section {
	logf("latency: %d round trips of 1 KB per variant", b.rounds)
	vs := b.openVariants()
	defer closeVariants(vs)
	msg := strings.Repeat("x", 1000)
	roundTrips(vs, msg, 100, false)
	roundTrips(vs, msg, b.rounds, true)
	sec := section{
		Title: "Per-message latency: 1 KB `tools/call`",
		Text: fmt.Sprintf("server-everything's `echo` tool with a 1000-character message, %d sequential round trips per variant "+
			"after 100 of warm-up, the variants taking turns; time from writing the request to reading the whole response. "+
			"All sessions run at the same time. A sandbox runs under its profile's CPU quota (one CPU) unless the row says "+
			"`--cpus 2`, which on this machine lifts the quota: that row separates the broker's cost from the quota's.", b.rounds),
		Head: []string{"variant", "p50", "p99", "p50 vs bare", "p99 vs bare", "added p50"},
	}
	if vs[0].err != nil {
		sec.Rows = append(sec.Rows, []string{vs[0].label, "—", "—", "—", "—", "failed: " + oneLine(vs[0].err)})
		return sec
	}
	b50, b99 := pct(vs[0].times, 50), pct(vs[0].times, 99)
	for i, v := range vs {
		if v.err != nil {
			sec.Rows = append(sec.Rows, []string{v.label, "—", "—", "—", "—", "failed: " + oneLine(v.err)})
			continue
		}
		p50, p99 := pct(v.times, 50), pct(v.times, 99)
		added := "—"
		if i > 0 {
			added = us(p50 - b50)
		}
		sec.Rows = append(sec.Rows, []string{v.label, us(p50), us(p99), times(ratio(p50, b50)), times(ratio(p99, b99)), added})
		if i > 0 {
			sec.Bars = append(sec.Bars, bar2{"latency", v.bar + ", p50", ratio(p50, b50)}, bar2{"latency", v.bar + ", p99", ratio(p99, b99)})
		}
	}
	return sec
}

// throughput: a 2 MiB message echoed back.
func (b *bench) throughput() section {
	const size = 2 << 20
	n := max(b.runs, 15)
	logf("throughput: %d round trips of 2 MiB per variant", n)
	vs := b.openVariants()
	defer closeVariants(vs)
	msg := strings.Repeat("x", size)
	roundTrips(vs, msg, 2, false)
	roundTrips(vs, msg, n, true)
	sec := section{
		Title: "Throughput: 2 MiB through `tools/call`",
		Text: fmt.Sprintf("`echo` of a 2 MiB message: about 2 MiB in and 2 MiB back per round trip, %d round trips per variant "+
			"after 2 of warm-up, taking turns. MiB/s counts both directions over the median round trip. "+
			"The ratio is the median round-trip time against bare (higher is slower). node parses and serialises the 2 MiB "+
			"on the CPU, so the profile's quota of one CPU weighs here; the `--cpus 2` row lifts it.", n),
		Head: []string{"variant", "median round trip", "MiB/s", "vs bare (time)"},
	}
	if vs[0].err != nil {
		sec.Rows = append(sec.Rows, []string{vs[0].label, "—", "—", "failed: " + oneLine(vs[0].err)})
		return sec
	}
	base := median(vs[0].times)
	for i, v := range vs {
		if v.err != nil {
			sec.Rows = append(sec.Rows, []string{v.label, "—", "—", "failed: " + oneLine(v.err)})
			continue
		}
		m := median(v.times)
		sec.Rows = append(sec.Rows, []string{v.label, ms(m), fmt.Sprintf("%.0f", 2*size/(1<<20)/m.Seconds()), times(ratio(m, base))})
		if i > 0 {
			sec.Bars = append(sec.Bars, bar2{"throughput", v.bar + ", 2 MiB", ratio(m, base)})
		}
	}
	return sec
}

// memory: resident memory of one idle session.
func (b *bench) memory() section {
	const reps = 3
	logf("memory: %d sessions", reps)
	var bareRSS, bareHWM, sandbox, mcpboxRSS, mcpboxHWM, shim []int64
	var failure error
	x := b.newXDG()
	for i := 0; i < reps && failure == nil; i++ {
		s, err := b.idle(b.bare())
		if err != nil {
			failure = err
			break
		}
		rss, _ := statusKB(s.cmd.Process.Pid, "VmRSS")
		hwm, _ := statusKB(s.cmd.Process.Pid, "VmHWM")
		bareRSS, bareHWM = append(bareRSS, rss), append(bareHWM, hwm)
		s.stop()

		before := b.shims()
		if s, err = b.idle(b.mcpbox(x)); err != nil {
			failure = err
			break
		}
		pid := s.cmd.Process.Pid
		rss, _ = statusKB(pid, "VmRSS")
		hwm, _ = statusKB(pid, "VmHWM")
		mcpboxRSS, mcpboxHWM = append(mcpboxRSS, rss), append(mcpboxHWM, hwm)
		var shimPid int
		for _, p := range b.shims() {
			if !contains(before, p) {
				shimPid = p
			}
		}
		if shimPid == 0 {
			failure = fmt.Errorf("no containerd-shim-runc-v2 with -namespace %s appeared for the session", b.namespace)
			s.stop()
			break
		}
		rss, _ = statusKB(shimPid, "VmRSS")
		shim = append(shim, rss)
		var inside int64
		for _, p := range descendants(shimPid) {
			kb, _ := statusKB(p, "VmRSS")
			inside += kb
		}
		sandbox = append(sandbox, inside)
		s.stop()
	}
	sec := section{
		Title: "Memory: one idle session",
		Text: fmt.Sprintf("Resident memory (VmRSS; VmHWM is the peak) %s after `tools/list`, median of %d sessions. "+
			"The shim is the session's containerd-shim-runc-v2 (its command line names the run's containerd namespace); "+
			"the sandboxed server is every process under it (mcpbox-init and node). RSS counts shared pages "+
			"(the Go runtime of the shim, node's binary) in full for each process, so sums overstate what one more session costs.",
			"one second", reps),
		Head: []string{"process", "RSS", "peak", "vs bare node (RSS)"},
	}
	if failure != nil {
		sec.Rows = append(sec.Rows, []string{"—", "—", "—", "failed: " + oneLine(failure)})
		return sec
	}
	base := medianKB(bareRSS)
	row := func(label string, rss, hwm int64, bar string) {
		peak := "—"
		if hwm > 0 {
			peak = mib(hwm)
		}
		r := float64(rss) / float64(base)
		sec.Rows = append(sec.Rows, []string{label, mib(rss), peak, times(r)})
		if bar != "" {
			sec.Bars = append(sec.Bars, bar2{"memory", bar, r})
		}
	}
	row("bare `node server.js` (baseline)", base, medianKB(bareHWM), "")
	row("server in the sandbox (mcpbox-init + node)", medianKB(sandbox), 0, "")
	row("mcpbox (broker)", medianKB(mcpboxRSS), medianKB(mcpboxHWM), "mcpbox")
	row("containerd-shim-runc-v2", medianKB(shim), 0, "shim")
	row("**mcpbox + shim** (what the sandbox adds)", medianKB(mcpboxRSS)+medianKB(shim), 0, "mcpbox + shim")
	row("whole session (mcpbox + shim + server)", medianKB(mcpboxRSS)+medianKB(shim)+medianKB(sandbox), 0, "whole session")
	return sec
}

// idle starts a session, asks for tools/list and lets it settle.
func (b *bench) idle(cmd *exec.Cmd) (*session, error) {
	s, err := start(cmd)
	if err != nil {
		return nil, err
	}
	if _, err := s.initialize(); err != nil {
		s.stop()
		return nil, err
	}
	if _, _, err := s.call("tools/list", "{}"); err != nil {
		s.stop()
		return nil, err
	}
	time.Sleep(time.Second)
	return s, nil
}

// concurrency: N sessions started at once, until all answered tools/list.
func (b *bench) concurrency() section {
	x := b.newXDG()
	// Pin the tools once, as a user's earlier session would have.
	if s, err := b.idle(b.mcpbox(x)); err == nil {
		s.stop()
	}
	sec := section{
		Title: "Concurrent sessions: N started at once, until all answered `tools/list`",
		Text: "N sessions of server-everything spawned together; the wall time from the first spawn until every one of them " +
			"has answered `initialize` and then `tools/list`. The mcpbox sessions share one user's state (tools already pinned). " +
			"Baseline: N bare node processes the same way. Median of the runs shown.",
		Head: []string{"N", "runs", "bare", "mcpbox", "vs bare", "mcpbox per session"},
	}
	for _, n := range b.sessions {
		reps := b.runs
		switch {
		case n >= 50:
			reps = min(reps, 3)
		case n >= 10:
			reps = min(reps, 5)
		}
		logf("concurrency: N=%d, %d runs", n, reps)
		var bare, boxed []time.Duration
		var failure error
		for i := 0; i < reps && failure == nil; i++ {
			d, err := wave(n, b.bare)
			if err != nil {
				failure = fmt.Errorf("bare: %w", err)
				break
			}
			bare = append(bare, d)
			if d, err = wave(n, func() *exec.Cmd { return b.mcpbox(x) }); err != nil {
				failure = fmt.Errorf("mcpbox: %w", err)
				break
			}
			boxed = append(boxed, d)
		}
		if failure != nil {
			sec.Rows = append(sec.Rows, []string{fmt.Sprint(n), fmt.Sprint(reps), "—", "—", "—", "failed: " + oneLine(failure)})
			continue
		}
		r := ratio(median(boxed), median(bare))
		sec.Rows = append(sec.Rows, []string{fmt.Sprint(n), fmt.Sprint(reps), ms(median(bare)), ms(median(boxed)), times(r),
			ms(median(boxed) / time.Duration(n))})
		sec.Bars = append(sec.Bars, bar2{"concurrency", fmt.Sprintf("N = %d", n), r})
	}
	return sec
}

// wave starts n sessions at once and returns the time until all answered
// tools/list; then it stops them all.
func wave(n int, mk func() *exec.Cmd) (time.Duration, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		sessions []*session
		failed   int
		first    error
	)
	begin := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := start(mk())
			if err == nil {
				mu.Lock()
				sessions = append(sessions, s)
				mu.Unlock()
				if _, err = s.initialize(); err == nil {
					_, _, err = s.call("tools/list", "{}")
				}
			}
			if err != nil {
				mu.Lock()
				failed++
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	d := time.Since(begin)
	var stops sync.WaitGroup
	for _, s := range sessions {
		stops.Add(1)
		go func() { defer stops.Done(); s.stop() }()
	}
	stops.Wait()
	if first != nil {
		return 0, fmt.Errorf("%d of %d sessions failed, first: %w", failed, n, first)
	}
	return d, nil
}

// shims lists the containerd-shim-runc-v2 processes of the run's namespace.
func (b *bench) shims() []int {
	var pids []int
	for _, pid := range allPids() {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if !strings.HasSuffix(args[0], "containerd-shim-runc-v2") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-namespace" && args[i+1] == b.namespace {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func median(ds []time.Duration) time.Duration { return pct(ds, 50) }

// pct is the nearest-rank percentile.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

func medianKB(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2]
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
