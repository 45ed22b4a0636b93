package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher/trial"
)

// The tests in this file run, as the CI user, what the root tests of
// egress_test.go, trial_test.go and integration_test.go (TestGCAfterKill)
// with fault_test.go's leftover checks run as root, and assert the same.

// inNet makes cmd, prepared by e.as, run as the user inside the test's
// network namespace: root enters it (an unprivileged user may not enter a
// namespace root made) and setpriv then becomes the user with no
// supplementary groups, as e.as's credential would. With etc, the
// namespace's hosts and resolv.conf are bound over /etc's in a mount
// namespace of the command's own, as `ip netns exec` binds them; unlike
// `ip netns exec` this keeps /sys and its cgroup mounts, without which runc
// cannot create a rootless container.
func (e *rootlessEnv) inNet(tn *testNet, etc bool, cmd *exec.Cmd) *exec.Cmd {
	e.t.Helper()
	setpriv := testutil.RequiresCommand(e.t, "setpriv")
	cmd.SysProcAttr = nil
	cmd.Args = append([]string{setpriv, "--reuid", strconv.Itoa(e.uid), "--regid", strconv.Itoa(e.gid), "--clear-groups", "--"}, cmd.Args...)
	cmd.Path = setpriv
	if etc {
		unshare := testutil.RequiresCommand(e.t, "unshare")
		dir := filepath.Join("/etc/netns", tn.name)
		cmd.Args = append([]string{unshare, "--mount", "--propagation", "slave", "--", "/bin/sh", "-c",
			`mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"`,
			"sh", filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf")}, cmd.Args...)
		cmd.Path = unshare
	}
	return tn.enter(cmd)
}

// TestRootlessEgressAllowlist is TestEgressAllowlist with mcpbox run as the
// CI user in the test's network namespace: the proxy, DNS stub and
// nftables rules are made inside mcpbox's user namespace, and the same
// ways out are allowed and refused, with the same denials logged.
func TestRootlessEgressAllowlist(t *testing.T) {
	e := newRootlessEnv(t)
	node, _ := testutil.Server(t, "server-memory") // node and fixtures present
	tn := newTestNet(t, map[string]string{
		"api.test":     "10.99.0.2",
		"private.test": "10.0.0.1",
	})
	tn.addAddr("10.99.0.2/32")
	resolver := tn.dnsServer(map[string]string{"rebind.test": "127.0.0.3"})

	caPEM, cert := testCA(t, "api.test")
	httpsL := tn.listen("10.99.0.2:0")
	port := func(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }
	pHTTPS := port(httpsL)
	var evilRequests atomic.Int64
	handler := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.Host, "evil") {
				evilRequests.Add(1)
			}
			io.WriteString(w, body)
		})
	}
	go (&http.Server{Handler: handler("hello over tls")}).Serve(tls.NewListener(httpsL, &tls.Config{Certificates: []tls.Certificate{cert}}))
	httpL := tn.listen("10.99.0.2:0")
	go (&http.Server{Handler: handler("hello over http")}).Serve(httpL)
	rawL := tn.listen("10.99.0.2:0")
	go pong(rawL)
	otherL := tn.listen("10.99.0.2:0")
	otherHits := countingListener(otherL)
	rebindHits := countingListener(tn.listen("127.0.0.3:" + pHTTPS))

	// The user's mcpbox checks the grant and writes the log: both in
	// directories of the user's.
	caDir := e.userDir("ca")
	os.Chmod(caDir, 0o755)
	writeFile(t, filepath.Join(caDir, "ca.pem"), string(caPEM))
	egressLog := filepath.Join(e.userDir("log"), "egress.jsonl")
	script := filepath.Join(testutil.RepoRoot(t), "testdata", "egress", "check.js")
	checks := []string{"fetch_https", "fetch_http", "raw_tcp", "proxy_connect", "denied_name", "denied_port",
		"rebinding_loopback", "rebinding_private", "sni_mismatch", "metadata_ip", "metadata_decimal",
		"metadata_hex", "metadata_mapped", "dns_outside_resolver", "dns_random_name", "keepalive_other_host"}
	cmd := e.inNet(tn, true, e.command(append([]string{
		"--allow-host", "api.test:" + pHTTPS, "--allow-host", "api.test:" + port(httpL), "--allow-host", "api.test:" + port(rawL),
		"--allow-host", "rebind.test:" + pHTTPS, "--allow-host", "private.test:" + pHTTPS,
		"--allow-host", "cidr:10.99.0.2/32:*",
		"--egress-log", egressLog,
		"--mount", caDir, "--env", "NODE_EXTRA_CA_CERTS=" + filepath.Join(caDir, "ca.pem"),
		"--env", "CHECK_PORTS=" + strings.Join([]string{pHTTPS, port(httpL), port(rawL), port(otherL)}, ","),
		"--", node, script}, checks...)...))
	got, stderr := runChecks(t, cmd)
	if !strings.Contains(stderr, "runtime=rootless") {
		t.Errorf("auto did not choose the rootless runtime for %s:\n%s", ciUser, stderr)
	}
	result := func(name string) string { s, _ := got[name].(string); return s }

	for name, want := range map[string]string{
		"fetch_https":          "ok:hello over tls",
		"fetch_http":           "ok:hello over http",
		"raw_tcp":              "ok:pong:ping\n",
		"proxy_connect":        "ok:hello over tls",
		"keepalive_other_host": "ok:1 answer(s)",
	} {
		if result(name) != want {
			t.Errorf("%s = %q, want %q", name, result(name), want)
		}
	}
	for _, name := range []string{"denied_name", "denied_port", "rebinding_loopback", "rebinding_private", "sni_mismatch",
		"metadata_ip", "metadata_decimal", "metadata_hex", "metadata_mapped", "dns_outside_resolver", "dns_random_name"} {
		if r := result(name); !strings.HasPrefix(r, "error:") {
			t.Errorf("%s = %q, want an error", name, r)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the upstream on a port that is not allowlisted got %d connections", n)
	}
	if n := rebindHits.Load(); n != 0 {
		t.Errorf("the loopback address a name rebound to got %d connections", n)
	}
	if n := evilRequests.Load(); n != 0 {
		t.Errorf("the upstream got %d requests for evil.test", n)
	}
	random, _ := got["random_name"].(string)
	if random == "" {
		t.Error("check.js reported no random name")
	}
	if n := resolver.count(random); n != 0 {
		t.Errorf("the host resolver saw %d queries for %s; the stub must not forward", n, random)
	}
	// rebind.test is resolved by the host's resolver, through mcpbox's
	// stub: the namespace's resolv.conf reached the user's mcpbox.
	if resolver.count("rebind.test") == 0 {
		t.Error("the host resolver saw no query for rebind.test: mcpbox did not resolve through it")
	}

	all := strings.Join(egressEvents(t, egressLog, "deny"), "\n")
	for _, want := range []string{"evil.test", "169.254.169.254", "rebind.test", "private.test", "SNI", random,
		"request 2 on the connection: HTTP Host evil.test does not match api.test"} {
		if !strings.Contains(all, want) {
			t.Errorf("no denial mentioning %q in the egress log:\n%s", want, all)
		}
	}
	if !strings.Contains(stderr, "denied") {
		t.Errorf("denials are not reported on stderr:\n%s", stderr)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(egressLog, &st); err != nil || int(st.Uid) != e.uid {
		t.Errorf("the egress log is owned by uid %d (%v), want the user's %d", st.Uid, err, e.uid)
	}
}

// TestRootlessTrialNaughty is TestTrialNaughty as the CI user: seccomp user
// notification, the file, process and network recorders and the cgroup
// usage all work in the rootless runtime, and the report names everything
// the naughty server tried.
func TestRootlessTrialNaughty(t *testing.T) {
	e := newRootlessEnv(t)
	tn := newTestNet(t, nil)
	node := testutil.RequiresCommand(t, "node")
	server := filepath.Join(testutil.RepoRoot(t), "testdata", "naughty", "server.js")
	out := filepath.Join(e.userDir("trial"), "out")
	cmd := e.inNet(tn, false, e.as(e.bin, "--log-level", "info", "trial", "--out", out,
		"--duration", "8s", "--call", `echo={"message":"hi"}`, "--", node, server))
	var stderrB strings.Builder
	cmd.Stderr = &stderrB
	if err := cmd.Run(); err != nil {
		t.Fatalf("mcpbox trial: %v\n%s", err, stderrB.String())
	}
	stderr := stderrB.String()
	if !strings.Contains(stderr, "runtime=rootless") {
		t.Errorf("auto did not choose the rootless runtime for %s:\n%s", ciUser, stderr)
	}
	rep, err := trial.ReadJSON(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}

	has := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("the report does not show %s\nstderr:\n%s", what, stderr)
		}
	}
	sys := map[string]trial.Syscall{}
	for _, s := range rep.Syscalls {
		sys[s.Name] = s
	}
	for _, name := range []string{"unshare", "mount", "ptrace"} {
		has("syscall "+name, sys[name].Count > 0 && sys[name].Verdict == trial.VerdictDenied)
	}
	has("CLONE_NEWUSER", strings.Contains(strings.Join(sys["unshare"].Examples, " "), "CLONE_NEWUSER"))
	hosts := map[string]bool{}
	for _, n := range rep.Network {
		if n.Verdict == trial.VerdictDenied {
			hosts[n.Host] = true
		}
	}
	for _, h := range []string{"exfil.example.com", "api.evil.example", "collect.example.org"} {
		has("the denied lookup of "+h, hosts[h])
	}
	shell := false
	for _, p := range rep.Processes {
		shell = shell || len(p.Argv) > 0 && filepath.Base(p.Argv[0]) == "sh"
	}
	has("the shell", shell)
	files := map[string]bool{}
	for _, f := range rep.Files {
		files[f.Path] = true
	}
	for _, p := range []string{"/usr/lib/naughty", rep.Home + "/.naughty_rc", rep.Home + "/.bashrc"} {
		has("the write to "+p, files[p])
	}
	reads := map[string]bool{}
	for _, r := range rep.Reads {
		reads[r.Path] = true
	}
	has("the read of ~/.ssh/id_rsa", reads[rep.Home+"/.ssh/id_rsa"])
	var poisoned, ssh bool
	for _, tool := range rep.Tools {
		if tool.Name == "add" && len(tool.Findings) > 0 {
			poisoned = true
		}
	}
	has("the poisoned tool", poisoned)
	for _, f := range rep.Findings {
		ssh = ssh || strings.Contains(f.Summary, ".ssh")
	}
	has("the ~/.ssh reference", ssh)
	has("the call", len(rep.Calls) == 1 && rep.Calls[0].OK)
	has("the usage", rep.Usage.PeakMemoryBytes > 0 && rep.Usage.PeakPIDs > 0)
	has("a high finding first", len(rep.Findings) > 0 && rep.Findings[0].Severity == "high")
	for _, f := range []string{"report.md", "profile.yaml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	prof, _ := os.ReadFile(filepath.Join(out, "profile.yaml"))
	if strings.Contains(string(prof), "- mount") && !strings.Contains(string(prof), "never granted") {
		t.Errorf("the profile grants mount:\n%s", prof)
	}
}

// rootlessSession is what a live rootless session is made of on the host,
// read before it is killed.
type rootlessSession struct {
	id string
	// parent is the mcpbox the client started, child the one in the user
	// namespace that owns the session; server the container's first
	// process.
	parent, child, server int
	// netNS and userNS are the sandbox's network namespace and mcpbox's
	// user namespace, as /proc/PID/ns links read ("net:[4026532…]").
	netNS, userNS string
}

// TestRootlessKillThenGC is TestGCAfterKill as the CI user, with
// fault_test.go's leftover checks. Both mcpbox processes of a session are
// SIGKILLed (the one in the user namespace first, so that it gets no
// SIGTERM to clean up with); the server of the first session outlives
// them (it ignores EOF and SIGTERM). `mcpbox gc` as the user then removes
// the container, its session directory, its processes and its cgroups, and
// no process holds the sandbox's network namespace or mcpbox's user
// namespace any more. The next `mcpbox run` removes a second killed
// session's leftovers in the same way.
func TestRootlessKillThenGC(t *testing.T) {
	e := newRootlessEnv(t)
	node, server := testutil.Server(t, "server-memory")
	_, linger := faultServer(t, "linger.js")

	s := e.killed(t, node, linger, "ignore-sigterm")
	if gone(s.server) {
		t.Fatalf("the server %d did not outlive mcpbox: nothing left for gc to kill", s.server)
	}
	gcOut, gcErr, code := e.mcpbox("--log-level", "info", "gc")
	if code != 0 || !strings.Contains(gcErr, "removed "+s.id) {
		t.Errorf("gc: exit %d\nstdout:\n%s\nstderr:\n%s", code, gcOut, gcErr)
	}
	if !strings.Contains(gcErr, "runtime=rootless") {
		t.Errorf("gc did not use the rootless runtime:\n%s", gcErr)
	}
	e.checkSessionGone(t, s)

	s = e.killed(t, node, server)
	_, stderr, code := e.mcpbox("--log-level", "info", "run", "--", node, "-e", "1")
	if code != 0 || !strings.Contains(stderr, "removed leftovers") || !strings.Contains(stderr, s.id) {
		t.Errorf("next run: exit %d, stderr %q: want it to report removing the leftover", code, stderr)
	}
	e.checkSessionGone(t, s)
}

// killed starts a session of server as the user, with egress on (as in
// TestFaultServerCrash: the proxy's namespace and nftables rules are part
// of what must go), waits for its answer to initialize, reads what it is
// made of and SIGKILLs both mcpbox processes. The session's container and
// directory are then left behind.
func (e *rootlessEnv) killed(t *testing.T, server ...string) rootlessSession {
	t.Helper()
	state := filepath.Join(e.runtimeDir, "mcpbox")
	cmd := e.command(append([]string{"--allow-host", "api.example.com", "--"}, server...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuilder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("mcpbox stderr:\n%s", stderr.String())
		}
	}()
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n")
	if line := readLine(t, bufio.NewReader(stdout), time.Minute); !strings.Contains(line, `"id":1`) {
		t.Fatalf("initialize: %q", line)
	}
	s := e.readSession(t, cmd.Process.Pid, state)
	t.Logf("session %s: mcpbox %d, its child %d, server %d, %s, %s", s.id, s.parent, s.child, s.server, s.netNS, s.userNS)
	if len(sessionCgroups(e.uid, s.id)) == 0 {
		t.Errorf("no cgroup of session %s under the user's delegated subtree: the test would not see one left", s.id)
	}

	if err := syscall.Kill(s.child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.parent, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		t.Fatal(err)
	}
	<-exited
	for !gone(s.child) {
		time.Sleep(10 * time.Millisecond) // reaped by init in a moment
	}
	for _, sub := range []string{"runc", "sessions"} {
		if entries, _ := os.ReadDir(filepath.Join(state, sub)); len(entries) != 1 {
			t.Fatalf("want the killed session in %s, found %d entries", filepath.Join(state, sub), len(entries))
		}
	}
	return s
}

// checkSessionGone fails the test if anything of the session is left: its
// container or directory, its processes, a process in or holding its
// namespaces (the server's descendants are all in its network namespace),
// a cgroup, a mount. e.checkClean then checks that no process of the user
// is left at all.
func (e *rootlessEnv) checkSessionGone(t *testing.T, s rootlessSession) {
	t.Helper()
	state := filepath.Join(e.runtimeDir, "mcpbox")
	for _, sub := range []string{"runc", "sessions"} {
		entries, _ := os.ReadDir(filepath.Join(state, sub))
		for _, ent := range entries {
			t.Errorf("%s left behind in %s", ent.Name(), filepath.Join(state, sub))
		}
	}
	// Processes exit, and namespaces are let go, a moment after gc. Only
	// the session's own are looked at: other tests may run as the user.
	var procs, holders []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		procs, holders = nil, nsHolders(s.netNS, s.userNS)
		for _, pid := range []int{s.parent, s.child, s.server} {
			if !gone(pid) {
				procs = append(procs, strconv.Itoa(pid))
			}
		}
		if len(procs)+len(holders) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(procs) > 0 {
		t.Errorf("processes of the killed session left behind: %s", strings.Join(procs, " "))
	}
	if len(holders) > 0 {
		t.Errorf("processes still in, or holding, the killed session's namespaces: %s", strings.Join(holders, "; "))
	}
	if left := sessionCgroups(e.uid, s.id); len(left) > 0 {
		t.Errorf("cgroups of the killed session left: %s", strings.Join(left, " "))
	}
	markers := []string{s.id, e.runtimeDir}
	if procs := processesMentioning(markers); len(procs) > 0 {
		t.Errorf("processes left behind: %s", strings.Join(procs, "; "))
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if mentions(line, markers) {
				t.Errorf("mount left behind: %s", line)
			}
		}
	}
}

// readSession finds, for the mcpbox the test started (parent), its child in
// the user namespace, the session's container and its namespaces.
func (e *rootlessEnv) readSession(t *testing.T, parent int, state string) rootlessSession {
	t.Helper()
	s := rootlessSession{parent: parent}
	for _, p := range userProcesses(e.uid) {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		staged := bytes.Contains(env, []byte("\x00MCPBOX_USERNS_STAGE=2:")) || bytes.HasPrefix(env, []byte("MCPBOX_USERNS_STAGE=2:"))
		if staged && ppid(pid) == parent {
			s.child = pid
		}
	}
	if s.child == 0 {
		t.Fatalf("no child of mcpbox %d in its user namespace among %v", parent, userProcesses(e.uid))
	}
	entries, err := os.ReadDir(filepath.Join(state, "runc"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one container in %s: %v %v", filepath.Join(state, "runc"), entries, err)
	}
	s.id = entries[0].Name()
	b, err := os.ReadFile(filepath.Join(state, "runc", s.id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		InitProcessPid int `json:"init_process_pid"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.InitProcessPid <= 0 {
		t.Fatalf("runc state of %s: %v %s", s.id, err, b)
	}
	s.server = st.InitProcessPid
	if s.netNS, err = os.Readlink("/proc/" + strconv.Itoa(s.server) + "/ns/net"); err != nil {
		t.Fatal(err)
	}
	if s.userNS, err = os.Readlink("/proc/" + strconv.Itoa(s.child) + "/ns/user"); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Readlink("/proc/self/ns/net")
	if s.netNS == host {
		t.Fatalf("the server runs in the host's network namespace %s", host)
	}
	return s
}

// ppid reads the parent of pid; 0 when it is gone.
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// gone reports whether pid no longer exists (a zombie still does).
func gone(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return os.IsNotExist(err)
}

// nsHolders lists the processes that hold one of the namespaces, as
// /proc/PID/ns links name them: by being in it (any of their threads), by
// an open file of it, or by a mount of it.
func nsHolders(namespaces ...string) []string {
	held := func(link string) bool {
		target, err := os.Readlink(link)
		return err == nil && mentions(target, namespaces) && strings.Contains(target, ":[")
	}
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		var why []string
		tasks, _ := filepath.Glob(proc + "/task/*/ns/*")
		fds, _ := filepath.Glob(proc + "/fd/*")
		for _, l := range append(tasks, fds...) {
			if held(l) {
				why = append(why, l)
			}
		}
		if mi, err := os.ReadFile(proc + "/mountinfo"); err == nil {
			for _, line := range strings.Split(string(mi), "\n") {
				if _, post, ok := strings.Cut(line, " - "); ok && strings.HasPrefix(post, "nsfs ") && mentions(line, namespaces) {
					why = append(why, "mount "+line)
				}
			}
		}
		if len(why) > 0 {
			comm, _ := os.ReadFile(proc + "/comm")
			out = append(out, filepath.Base(proc)+" "+strings.TrimSpace(string(comm))+": "+strings.Join(why, ", "))
		}
	}
	return out
}

// sessionCgroups lists the cgroups named after session id under the
// user's delegated subtree, in every hierarchy.
func sessionCgroups(uid int, id string) []string {
	var out []string
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/mcpbox-uid-" + strconv.Itoa(uid))
	if own, err := filepath.Glob("/sys/fs/cgroup/mcpbox-uid-" + strconv.Itoa(uid)); err == nil {
		dirs = append(dirs, own...)
	}
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.Contains(d.Name(), id) {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// TestRootlessHostNftablesUnchanged: a rootless session with an egress
// allowlist puts its nftables rules in the sandbox's network namespace,
// inside mcpbox's user namespace; the host's ruleset is byte for byte the
// same while it runs and after it.
func TestRootlessHostNftablesUnchanged(t *testing.T) {
	e := newRootlessEnv(t)
	nft := testutil.RequiresCommand(t, "nft")
	node, server := testutil.Server(t, "server-memory")
	ruleset := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// A table of the test's own, with a chain no hook calls (it changes
	// no traffic): the ruleset compared is not empty, so that a flush
	// would show.
	table := "mcpbox_t_" + strconv.Itoa(os.Getpid())
	add := exec.Command(nft, "-f", "-")
	add.Stdin = strings.NewReader("table inet " + table + " {\n chain sentinel {\n  tcp dport 9 counter drop\n }\n}\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("nft add table: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(nft, "delete", "table", "inet", table).Run() })
	before := ruleset(nft, "list", "ruleset")

	ctx := testutil.Context(t, 2*time.Minute)
	cs, stderr := e.connect(ctx, "--allow-host", "api.example.com", "--", node, server)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_graph", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "runtime=rootless") {
		t.Errorf("auto did not choose the rootless runtime for %s:\n%s", ciUser, stderr.String())
	}
	// The rules exist, in the sandbox's namespace: the comparison below
	// is of a session that made some.
	entries, err := os.ReadDir(filepath.Join(e.runtimeDir, "mcpbox", "runc"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one container: %v %v", entries, err)
	}
	b, err := os.ReadFile(filepath.Join(e.runtimeDir, "mcpbox", "runc", entries[0].Name(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		InitProcessPid int `json:"init_process_pid"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.InitProcessPid <= 0 {
		t.Fatalf("runc state: %v %s", err, b)
	}
	inside := ruleset("nsenter", "--net=/proc/"+strconv.Itoa(st.InitProcessPid)+"/ns/net", nft, "list", "ruleset")
	if !strings.Contains(inside, "redirect") {
		t.Errorf("no redirect rule in the sandbox's network namespace:\n%s", inside)
	}
	if during := ruleset(nft, "list", "ruleset"); during != before {
		t.Errorf("the host's nftables ruleset changed while the session ran:\nbefore:\n%s\nduring:\n%s", before, during)
	}
	cs.Close()
	if after := ruleset(nft, "list", "ruleset"); after != before {
		t.Errorf("the host's nftables ruleset changed after the session:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
