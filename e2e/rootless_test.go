package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// ciUser is the unprivileged user the rootless tests run mcpbox as;
// scripts/setup.sh creates it with a subordinate id range and no access to
// containerd's socket.
const ciUser = "mcpbox-ci"

// delegateOnce prepares the CI user's cgroup subtree once per test binary,
// with the real `mcpbox setup rootless`, so that limits are enforced.
var (
	delegateOnce sync.Once
	delegateErr  error
)

// rootlessEnv runs mcpbox as the CI user, as an MCP client started by that
// user would: its own HOME and XDG_RUNTIME_DIR, no supplementary groups,
// no way to containerd.
type rootlessEnv struct {
	t        testing.TB
	bin      string
	uid, gid int
	// home is the user's HOME for the test, and runtimeDir its
	// XDG_RUNTIME_DIR: both the user's, 0700, removed after the test.
	home, runtimeDir string
}

// newRootlessEnv gates the test on root (to become the CI user), the CI
// user, and the built binaries, and checks after the test that no
// container, session directory or process of the user is left.
func newRootlessEnv(t testing.TB) *rootlessEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	u, err := user.Lookup(ciUser)
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("user %s is missing: scripts/setup.sh creates it (%v)", ciUser, err)
		}
		t.Skipf("user %s is missing: run `sudo make setup` (%v)", ciUser, err)
	}
	e := &rootlessEnv{t: t, bin: mcpboxBinary(t)}
	e.uid, _ = strconv.Atoi(u.Uid)
	e.gid, _ = strconv.Atoi(u.Gid)
	delegateOnce.Do(func() {
		out, err := exec.Command(e.bin, "setup", "rootless", "--user", ciUser).CombinedOutput()
		if err != nil {
			delegateErr = fmt.Errorf("mcpbox setup rootless --user %s: %v\n%s", ciUser, err, out)
		}
	})
	if delegateErr != nil {
		t.Fatal(delegateErr)
	}
	e.home = e.userDir("home")
	e.runtimeDir = e.userDir("run")
	e.socketOutOfReach()
	t.Cleanup(e.checkClean)
	return e
}

// userDir makes a 0700 directory owned by the user, removed after the test.
func (e *rootlessEnv) userDir(name string) string {
	e.t.Helper()
	dir, err := os.MkdirTemp("", "mcpbox-rootless-"+name+"-")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, e.uid, e.gid); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// chown gives path (and what is below it) to the user.
func (e *rootlessEnv) chown(path string) {
	e.t.Helper()
	err := filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, e.uid, e.gid)
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// socketOutOfReach proves that the user cannot use containerd: connecting
// to its socket as the user is refused.
func (e *rootlessEnv) socketOutOfReach() {
	e.t.Helper()
	addr := testutil.ContainerdAddress()
	if _, err := os.Stat(addr); err != nil {
		return // no socket at all: nothing to reach
	}
	// The test binary lives where the user cannot go: python3 dials.
	out, err := e.as("/usr/bin/python3", "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError as e:
    print("dial refused:", e); sys.exit(0)
print("dial did not fail with EACCES"); sys.exit(1)`, addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dial refused: ") {
		e.t.Fatalf("containerd's socket %s must be out of the user's reach: %v\n%s", addr, err, out)
	}
}

// as returns a command that runs name as the user.
func (e *rootlessEnv) as(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = e.home
	cmd.Env = e.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid), Groups: []uint32{}}}
	return cmd
}

// environ is what a client started by the user passes its servers.
func (e *rootlessEnv) environ() []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin", "HOME=" + e.home, "USER=" + ciUser, "LOGNAME=" + ciUser, "XDG_RUNTIME_DIR=" + e.runtimeDir}
}

// command returns `mcpbox --log-level info run --stop-timeout 1s ARGS` as
// the user, with no runtime chosen: auto must find rootless.
func (e *rootlessEnv) command(args ...string) *exec.Cmd {
	return e.as(e.bin, append([]string{"--log-level", "info", "run", "--stop-timeout", "1s"}, args...)...)
}

// mcpbox runs a non-session command as the user and returns its stdout,
// stderr and exit code.
func (e *rootlessEnv) mcpbox(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.as(e.bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			e.t.Fatalf("mcpbox %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// connect starts `mcpbox run ARGS` as the user and connects the MCP Go SDK
// client to it.
func (e *rootlessEnv) connect(ctx context.Context, args ...string) (*mcp.ClientSession, *lockedBuilder) {
	e.t.Helper()
	cmd := e.command(args...)
	stderr := &lockedBuilder{}
	cmd.Stderr = stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		e.t.Fatalf("connect through rootless mcpbox: %v\nstderr:\n%s", err, stderr.String())
	}
	e.t.Cleanup(func() {
		cs.Close()
		if e.t.Failed() {
			e.t.Logf("mcpbox stderr:\n%s", stderr.String())
		}
	})
	return cs, stderr
}

// checkClean fails the test if a container, a session directory or a
// process of the user is left.
func (e *rootlessEnv) checkClean() {
	t := e.t
	state := filepath.Join(e.runtimeDir, "mcpbox")
	for _, sub := range []string{"runc", "sessions"} {
		entries, _ := os.ReadDir(filepath.Join(state, sub))
		for _, ent := range entries {
			t.Errorf("%s left behind in %s", ent.Name(), filepath.Join(state, sub))
		}
	}
	// Processes exit a moment after the client has its answer. The
	// server may run as the user or as the two subordinate ids the
	// rootless runtime maps (the container's root and its nobody).
	uids := []int{e.uid}
	if start, err := subordinateStart(ciUser); err == nil {
		uids = append(uids, start, start+1)
	} else {
		t.Errorf("subordinate ids of %s: %v", ciUser, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var procs []string
		for _, uid := range uids {
			procs = append(procs, userProcesses(uid)...)
		}
		if len(procs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of %s left behind: %s", ciUser, strings.Join(procs, "; "))
			for _, p := range procs {
				if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// subordinateStart is the first id of name's range in /etc/subuid.
func subordinateStart(name string) (int, error) {
	b, err := os.ReadFile("/etc/subuid")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ":"); len(f) == 3 && f[0] == name {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no line for %s in /etc/subuid", name)
}

// userProcesses lists "PID COMMAND" of the live processes whose real uid
// is uid.
func userProcesses(uid int) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "status"))
		if err != nil {
			continue
		}
		var name, state string
		var ruid = -1
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "Name:":
				name = f[1]
			case len(f) >= 2 && f[0] == "State:":
				state = f[1]
			case len(f) >= 2 && f[0] == "Uid:":
				ruid, _ = strconv.Atoi(f[1])
			}
		}
		if ruid == uid && state != "Z" {
			out = append(out, fmt.Sprintf("%d %s", pid, name))
		}
	}
	return out
}

// TestRootlessFilesystem runs server-filesystem as the CI user through the
// Go SDK client: a granted directory is read, an ungranted path refused, a
// read-only grant not written, and what the server writes into a
// read-write grant belongs to the user on the host.
func TestRootlessFilesystem(t *testing.T) {
	e := newRootlessEnv(t)
	node, server := testutil.Server(t, "server-filesystem")
	ctx := testutil.Context(t, 2*time.Minute)

	notes := filepath.Join(e.home, "notes")
	ref := filepath.Join(e.home, "ref")
	secret := filepath.Join(e.home, "secret")
	for _, d := range []string{notes, ref, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(notes, "todo.txt"), "buy milk")
	writeFile(t, filepath.Join(ref, "manual.txt"), "read me")
	writeFile(t, filepath.Join(secret, "key.txt"), "do not read")
	e.chown(e.home)

	// The server may use all of /: only the sandbox decides.
	cs, stderr := e.connect(ctx, "--mount", notes+":rw", "--mount", ref+":ro", "--", node, server, "/")
	if !strings.Contains(stderr.String(), "runtime=rootless") {
		t.Errorf("auto did not choose the rootless runtime for %s:\n%s", ciUser, stderr.String())
	}
	call := func(tool string, args map[string]any) (string, bool) {
		t.Helper()
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return text(r), r.IsError
	}
	if out, isErr := call("read_text_file", map[string]any{"path": filepath.Join(notes, "todo.txt")}); isErr || !strings.Contains(out, "buy milk") {
		t.Errorf("read granted file = %q (error %v)", out, isErr)
	}
	if out, isErr := call("read_text_file", map[string]any{"path": filepath.Join(secret, "key.txt")}); !isErr || strings.Contains(out, "do not read") {
		t.Errorf("read of an ungranted file = %q (error %v), want refused", out, isErr)
	}
	if out, isErr := call("write_file", map[string]any{"path": filepath.Join(ref, "new.txt"), "content": "x"}); !isErr {
		t.Errorf("write into a read-only grant succeeded: %q", out)
	}
	if _, err := os.Stat(filepath.Join(ref, "new.txt")); err == nil {
		t.Error("a file appeared in the read-only grant")
	}
	written := filepath.Join(notes, "done.txt")
	if out, isErr := call("write_file", map[string]any{"path": written, "content": "milk bought"}); isErr {
		t.Fatalf("write into the read-write grant: %q", out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(written, &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Uid) != e.uid || int(st.Gid) != e.gid {
		t.Errorf("the server's file is owned by %d:%d on the host, want the user's %d:%d", st.Uid, st.Gid, e.uid, e.gid)
	}
}

// TestRootlessReadOnlyGrantIsNotYou: a read-only grant of the user's shows
// the server what others may see, nothing more. The server runs as the
// sandbox's own nobody, not as the user: the user's 0600 file, 0600 FIFO
// and 0600 listening socket inside the grant are refused to it, as on the
// containerd runtime (a server running as the user would connect to the
// socket and act for the user outside the sandbox).
func TestRootlessReadOnlyGrantIsNotYou(t *testing.T) {
	e := newRootlessEnv(t)
	node, _ := testutil.Server(t, "server-filesystem")
	ctx := testutil.Context(t, time.Minute)
	dir := filepath.Join(e.home, "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "secret"), "TOKEN=s3cr3t\n")
	os.Chmod(filepath.Join(dir, "secret"), 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	os.Chmod(filepath.Join(dir, "sock"), 0o600)
	e.chown(e.home)
	// A reader, so that a permitted open for writing would succeed.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	script := `const fs = require("fs"), net = require("net"), d = process.argv[1], r = [];
try { fs.readFileSync(d + "/secret"); r.push("read:allowed") } catch (e) { r.push("read:" + e.code) }
try { fs.openSync(d + "/fifo", fs.constants.O_WRONLY | fs.constants.O_NONBLOCK); r.push("fifo:allowed") } catch (e) { r.push("fifo:" + e.code) }
const s = net.connect(d + "/sock");
s.on("connect", () => { r.push("sock:allowed"); done() });
s.on("error", (e) => { r.push("sock:" + e.code); done() });
function done() { console.error("RESULT " + r.join(" ")); process.exit(0) }`
	cmd := e.command("--mount", dir+":ro", "--", node, "-e", script, dir)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() == nil {
		t.Logf("mcpbox: %v", err)
	}
	got := ""
	for _, line := range strings.Split(string(out), "\n") {
		if _, res, ok := strings.Cut(line, "RESULT "); ok {
			got = res
		}
	}
	if got != "read:EACCES fifo:EACCES sock:EACCES" {
		t.Errorf("from the sandbox, the user's private file, FIFO and socket in a read-only grant: %q, want all refused (EACCES)\n%s", got, out)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the user's socket accepted %d connections from the sandbox", n)
	}
}
