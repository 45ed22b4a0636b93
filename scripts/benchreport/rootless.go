package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rootlessUser is the unprivileged user the rootless variants run as, with
// what they need: a copy of mcpbox the user can run (mcpbox-init beside
// it), and a HOME and XDG_RUNTIME_DIR of the user's.
type rootlessUser struct {
	name             string
	uid, gid         int
	bin              string
	home, runtimeDir string
	// crunDir holds a "runc" that is crun, put first in PATH to measure
	// crun where mcpbox finds runc first; "" without crun.
	crunDir string
}

// setupRootless prepares the user's variants, or says why there are none.
// The cgroup subtree is delegated with `mcpbox setup rootless`, as the
// user's administrator would, so that the profile's limits hold.
func (b *bench) setupRootless(name string) (*rootlessUser, string) {
	if name == "" {
		return nil, "not measured: -rootless-user is empty"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Sprintf("not measured: no user %s (`make setup` creates it): %v", name, err)
	}
	r := &rootlessUser{name: name}
	r.uid, _ = strconv.Atoi(u.Uid)
	r.gid, _ = strconv.Atoi(u.Gid)
	if out, err := exec.Command(b.bin, "setup", "rootless", "--user", name).CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("not measured: mcpbox setup rootless --user %s: %v: %s", name, err, lastLine(out))
	}
	// The user may not reach the build's bin/: a copy with its helpers.
	dir := filepath.Join(b.tmp, "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, "not measured: " + err.Error()
	}
	for _, f := range []string{"mcpbox", "mcpbox-init", "mcpbox-probe"} {
		if err := copyExecutable(filepath.Join(filepath.Dir(b.bin), f), filepath.Join(dir, f)); err != nil {
			return nil, "not measured: " + err.Error()
		}
	}
	r.bin = filepath.Join(dir, "mcpbox")
	for _, d := range []*string{&r.home, &r.runtimeDir} {
		p, err := os.MkdirTemp(b.tmp, "rootless.")
		if err == nil {
			err = os.Chown(p, r.uid, r.gid)
		}
		if err != nil {
			return nil, "not measured: " + err.Error()
		}
		*d = p
	}
	// The server and its data must be the user's to read.
	if out, err := r.command(b, "/usr/bin/test", "-r", b.filesystem).CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("not measured: %s cannot read %s (%v %s): put the checkout where every user may read it", name, b.filesystem, err, out)
	}
	if crun, err := exec.LookPath("crun"); err == nil {
		r.crunDir = filepath.Join(b.tmp, "crun-as-runc")
		if err := os.Mkdir(r.crunDir, 0o755); err == nil {
			os.Symlink(crun, filepath.Join(r.crunDir, "runc"))
		}
	}
	return r, ""
}

// command runs path as the user, as an MCP client started by the user
// would: its HOME and XDG_RUNTIME_DIR, no supplementary groups; PATH has
// the sbin directories, where Debian puts runc.
func (r *rootlessUser) command(b *bench, path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin", "HOME=" + r.home,
		"USER=" + r.name, "LOGNAME=" + r.name, "XDG_RUNTIME_DIR=" + r.runtimeDir}
	cmd.Dir = r.home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.gid), Groups: []uint32{}}}
	return cmd
}

// mcpbox is the user's `mcpbox run ARGS -- node server-filesystem DATA`,
// logging its phases; with crun, crun stands where mcpbox looks for runc.
func (r *rootlessUser) mcpbox(b *bench, crun bool, args ...string) *exec.Cmd {
	full := append([]string{"--log-level", "debug", "run", "--stop-timeout", "1s"}, args...)
	full = append(full, "--mount", b.fsData, "--", b.node, b.filesystem, b.fsData)
	cmd := r.command(b, r.bin, full...)
	if crun {
		cmd.Env[0] = "PATH=" + r.crunDir + ":" + strings.TrimPrefix(cmd.Env[0], "PATH=")
	}
	return cmd
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// phased is one run's time to the initialize response and the phases
// mcpbox logged on the way.
type phased struct {
	total  time.Duration
	phases map[string]time.Duration
}

// phasedSamples collects phased runs of one variant; after its first
// failure the variant is not run again.
type phasedSamples struct {
	runs []phased
	err  error
}

func (p *phasedSamples) times() []time.Duration {
	var ds []time.Duration
	for _, r := range p.runs {
		ds = append(ds, r.total)
	}
	return ds
}

// startup times cmd from spawn to its initialize response, stops it, and
// reads the phases from its log.
func (p *phasedSamples) startup(cmd *exec.Cmd) {
	if p.err != nil {
		return
	}
	sess, err := start(cmd)
	if err != nil {
		p.err = err
		return
	}
	if _, err := sess.initialize(); err != nil {
		p.err = err
		sess.stop()
		return
	}
	total := time.Since(sess.began)
	sess.stop()
	p.runs = append(p.runs, phased{total: total, phases: phasesOf(sess.logs.all(), total)})
}

// The phases of the start-up table, in the order they happen.
const (
	phStart   = "mcpbox starts: exec, Go runtime and package init, flags, runtime choice"
	phUserns  = "user namespace: clone and exec (stage 1), newuidmap, newgidmap"
	phAgain   = "mcpbox again inside it: exec, Go init, flags (rootless); profile (both)"
	phPrepare = "session set-up: resolve, seccomp filter, open the runtime, spec"
	phCreate  = "create the container (rootless: `runc create`; containerd: shim and runc)"
	phStartC  = "start it (rootless: `runc start`)"
	phServer  = "the server: node to its first response, in the sandbox"
	phRest    = "the rest: the response through the broker to the client"
)

var phaseOrder = []string{phStart, phUserns, phAgain, phPrepare, phCreate, phStartC, phServer, phRest}

var phaseLine = regexp.MustCompile(`msg=phase name=(?:"([^"]*)"|(\S+)) took=(\S+)(?: since_start=(\S+))?`)

// phasesOf places mcpbox's log on the client's clock. Before the session
// starts there are no timed phases: what the first process logged ("runtime"),
// the user namespace phase and the session's first phase, each minus its own
// duration, mark where one step ends and the next begins. The launcher's
// phases are timed by mcpbox itself.
func phasesOf(lines []stamped, total time.Duration) map[string]time.Duration {
	var runtimeAt, usernsAt, sessionAt time.Duration = -1, -1, -1
	took := map[string]time.Duration{}
	var since time.Duration
	for _, l := range lines {
		if runtimeAt < 0 && strings.Contains(l.line, " msg=runtime ") {
			runtimeAt = l.at
		}
		m := phaseLine.FindStringSubmatch(l.line)
		if m == nil {
			continue
		}
		name := m[1] + m[2]
		d, err := time.ParseDuration(m[3])
		if err != nil {
			continue
		}
		took[name] = d
		if s, err := time.ParseDuration(m[4]); err == nil {
			since = max(since, s)
		}
		switch {
		case name == "user namespace":
			usernsAt = l.at
		case name == "resolve" && sessionAt < 0:
			sessionAt = l.at - d
		}
	}
	if runtimeAt < 0 || sessionAt < 0 || took["first byte"] == 0 {
		return nil
	}
	p := map[string]time.Duration{phStart: runtimeAt}
	if usernsAt >= 0 {
		p[phUserns] = usernsAt - runtimeAt
		p[phAgain] = sessionAt - usernsAt
	} else {
		p[phAgain] = sessionAt - runtimeAt
	}
	p[phPrepare] = took["resolve"] + took["seccomp"] + took["connect"] + took["network"] + took["spec"]
	p[phCreate] = took["create"]
	p[phStartC] = took["start"]
	p[phServer] = took["first byte"]
	p[phRest] = total - sessionAt - since
	return p
}

// rootlessStart: cold start as an unprivileged user, the rootless runtime
// against bare node and the containerd runtime, and where the time goes.
func (b *bench) rootlessStart() []section {
	n := b.rootlessRuns
	logf("start-up as %s: %d runs", b.rootlessUserName, n)
	sec := section{
		Title: "Start-up as an unprivileged user: the rootless runtime",
		Text: fmt.Sprintf("server-filesystem (@modelcontextprotocol/server-filesystem from testdata/servers, one directory granted "+
			"read-only), spawn to its first `initialize` response, %d runs of each variant after one untimed run, alternating. "+
			"The baseline and the rootless variants run as the unprivileged user `%s`, who cannot reach containerd's socket, "+
			"with its own HOME and XDG_RUNTIME_DIR; the cgroup subtree was delegated with `mcpbox setup rootless` so that the "+
			"profile's limits (256 MiB, one CPU, 64 processes) hold. The containerd row is the same command as root. "+
			"Every mcpbox runs at `--log-level debug`, which the phases below come from. State is warm: pins and audit log exist.",
			n, b.rootlessUserName),
		Head: []string{"variant", "median", "p90", "vs bare (median)"},
	}
	r := b.rootless
	if r == nil {
		sec.Rows = append(sec.Rows, []string{"—", "—", "—", b.rootlessWhy})
		return []section{sec}
	}
	type variant struct {
		label, bar string
		cmd        func() *exec.Cmd
		s          phasedSamples
		why        string
	}
	x := b.newXDG()
	vs := []*variant{
		{label: "bare `node server.js` as " + r.name + " (baseline)", cmd: func() *exec.Cmd { return r.command(b, b.node, b.filesystem, b.fsData) }},
		{label: "mcpbox, containerd runtime, as root", bar: "server-filesystem, containerd (root)", cmd: func() *exec.Cmd { return b.filesystemAsRoot(x) }},
		{label: "mcpbox, rootless runtime (runc), as " + r.name, bar: "server-filesystem, rootless (runc)", cmd: func() *exec.Cmd { return r.mcpbox(b, false) }},
		{label: "mcpbox, rootless runtime (crun), as " + r.name, bar: "server-filesystem, rootless (crun)", cmd: func() *exec.Cmd { return r.mcpbox(b, true) }},
		{label: "mcpbox, rootless (runc), `--cpus 2` (no CPU quota on this machine)", bar: "server-filesystem, rootless, --cpus 2", cmd: func() *exec.Cmd { return r.mcpbox(b, false, "--cpus", "2") }},
	}
	if r.crunDir == "" {
		vs[3].why = "not measured: crun is not installed"
	}
	for i := -1; i < n; i++ {
		for _, v := range vs {
			if v.why != "" {
				continue
			}
			if i < 0 {
				// Warm: pins, audit log, page cache. A failure here
				// is the variant's result.
				var warm phasedSamples
				warm.startup(v.cmd())
				v.s.err = warm.err
				continue
			}
			v.s.startup(v.cmd())
		}
	}
	if e := vs[0].s.err; e != nil {
		sec.Rows = append(sec.Rows, []string{vs[0].label, "—", "—", "failed: " + oneLine(e)})
		return []section{sec}
	}
	base := median(vs[0].s.times())
	for _, v := range vs {
		switch {
		case v.why != "":
			sec.Rows = append(sec.Rows, []string{v.label, "—", "—", v.why})
		case v.s.err != nil:
			sec.Rows = append(sec.Rows, []string{v.label, "—", "—", "failed: " + runtimeSaid(v.s.err)})
		default:
			ts := v.s.times()
			rt := ratio(median(ts), base)
			sec.Rows = append(sec.Rows, []string{v.label, ms(median(ts)), ms(pct(ts, 90)), times(rt)})
			if v.bar != "" {
				sec.Bars = append(sec.Bars, bar2{"start-up (user)", v.bar, rt})
			}
		}
	}
	return []section{sec, phaseSection(n, map[string]*phasedSamples{"containerd": &vs[1].s, "rootless": &vs[2].s})}
}

// phaseSection is the median of each phase, containerd and rootless (runc).
func phaseSection(n int, by map[string]*phasedSamples) section {
	sec := section{
		Title: "Where the start-up goes",
		Text: fmt.Sprintf("The runs above, phase by phase: the median of each over the %d runs (so the column need not add up to "+
			"the median total). mcpbox logs each step of a session at debug level (`msg=phase name=… took=…`); the steps before "+
			"the session — the process starting, and for the rootless runtime the user namespace: a first mcpbox decides, starts "+
			"itself again in a new user namespace, maps ids with newuidmap and newgidmap, and that second mcpbox runs the session — "+
			"are timed by when their log lines reached the client.", n),
		Head: []string{"phase", "containerd (root)", "rootless (runc)"},
	}
	cols := []string{"containerd", "rootless"}
	totals := make([]string, len(cols))
	rows := map[string][]string{}
	for i, c := range cols {
		s := by[c]
		if s.err != nil || len(s.runs) == 0 {
			for _, ph := range phaseOrder {
				rows[ph] = append(rows[ph], "—")
			}
			totals[i] = "—"
			continue
		}
		totals[i] = ms(median(s.times()))
		for _, ph := range phaseOrder {
			var ds []time.Duration
			for _, r := range s.runs {
				if d, ok := r.phases[ph]; ok {
					ds = append(ds, d)
				}
			}
			cell := "—"
			if len(ds) > 0 {
				cell = ms(median(ds))
			}
			rows[ph] = append(rows[ph], cell)
		}
	}
	for _, ph := range phaseOrder {
		sec.Rows = append(sec.Rows, append([]string{ph}, rows[ph]...))
	}
	sec.Rows = append(sec.Rows, append([]string{"**total** (median)"}, totals...))
	return sec
}

// filesystemAsRoot is the containerd variant: root's mcpbox with the run's
// containerd namespace and XDG directories, logging its phases.
func (b *bench) filesystemAsRoot(x xdg) *exec.Cmd {
	args := []string{"--containerd-address", b.addr, "--namespace", b.namespace, "--run-dir", b.runDir, "--log-level", "debug",
		"run", "--stop-timeout", "1s", "--mount", b.fsData, "--", b.node, b.filesystem, b.fsData}
	cmd := exec.Command(b.bin, args...)
	cmd.Env = b.mcpbox(x).Env
	cmd.Dir = b.tmp
	return cmd
}

// gcRootless removes what the user's sessions may have left.
func (b *bench) gcRootless() {
	r := b.rootless
	if r == nil {
		return
	}
	if out, err := r.command(b, r.bin, "gc").CombinedOutput(); err != nil {
		logf("warning: mcpbox gc as %s: %v: %s", r.name, err, lastLine(out))
	}
}

// filesystemData makes the directory server-filesystem serves.
func (b *bench) filesystemData() error {
	var err error
	if b.filesystem, err = fixture("server-filesystem"); err != nil {
		return err
	}
	b.fsData = filepath.Join(b.tmp, "fsdata")
	if err := os.Mkdir(b.fsData, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.fsData, "notes.txt"), []byte("hello\n"), 0o644)
}

// runtimeSaid is what the OCI runtime answered when it refused to create
// the container, else the whole error.
func runtimeSaid(err error) string {
	msg := oneLine(err)
	if _, said, ok := strings.Cut(msg, "did not terminate successfully: "); ok {
		return strings.TrimSuffix(said, ")")
	}
	return msg
}
