package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher"
)

// runInNet runs cmd, a command as the user, inside the test's network
// namespace and returns its stdout. The user cannot enter a namespace the
// host's root owns, and `ip netns exec` would remount /sys (and with it
// the cgroup tree the rootless runtime needs), so the command is forked
// from a thread that is in the namespace: the child inherits it, which is
// checked (and the command killed if not) before it gets far.
func runInNet(t *testing.T, n *testNet, cmd *exec.Cmd) ([]byte, error) {
	t.Helper()
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := n.do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	var want, got syscall.Stat_t
	errWant := syscall.Stat("/run/netns/"+n.name, &want)
	errGot := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid), &got)
	if errWant != nil || errGot != nil || want.Ino != got.Ino || want.Dev != got.Dev {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s did not start in the test's network namespace %s: %v %v", cmd.Path, n.name, errWant, errGot)
	}
	err := cmd.Wait()
	return []byte(stdout.String()), err
}

// TestRootlessSelftestProfiles runs `mcpbox selftest` as the CI user for
// every built-in profile and requires every probe of mcpbox-probe to pass:
// with the user's cgroup subtree delegated, no limit is left unenforced.
// As in TestSelftest, mcpbox runs in a network namespace of the test's
// with no route out.
func TestRootlessSelftestProfiles(t *testing.T) {
	e := newRootlessEnv(t)
	net := newTestNet(t, nil)
	list, err := exec.Command(filepath.Join(filepath.Dir(e.bin), "mcpbox-probe"), "-list", "-i-know-this-is-not-a-sandbox").Output()
	if err != nil {
		t.Fatalf("mcpbox-probe -list: %v", err)
	}
	want := strings.Count(string(list), "\n")
	if want < 40 {
		t.Fatalf("mcpbox-probe lists %d probes", want)
	}
	ps, err := launcher.Catalog(launcher.Dirs{Config: t.TempDir()}).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) < 13 {
		t.Fatalf("%d built-in profiles", len(ps))
	}
	for _, p := range ps {
		t.Run(p.Name, func(t *testing.T) {
			cmd := e.as(e.bin, "--log-level", "info", "selftest", "--json", "--profile", p.Name)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := runInNet(t, net, cmd)
			var rep launcher.SelftestReport
			if jerr := json.Unmarshal(out, &rep); jerr != nil {
				t.Fatalf("selftest: %v, %v\n%s\n%s", err, jerr, out, stderr.String())
			}
			if !strings.Contains(stderr.String(), "runtime=rootless") {
				t.Errorf("auto did not choose the rootless runtime for %s:\n%s", ciUser, stderr.String())
			}
			if strings.Contains(stderr.String(), "limits not enforced") {
				t.Errorf("limits left unenforced though the user's cgroup subtree is delegated:\n%s", stderr.String())
			}
			if rep.Profile != p.Name {
				t.Errorf("report of profile %q, want %q", rep.Profile, p.Name)
			}
			if len(rep.Results) != want || rep.Summary.Total != want || rep.Passed != want {
				t.Errorf("%d results, %d passed, the probe counted %d; want %d/%d", len(rep.Results), rep.Passed, rep.Summary.Total, want, want)
			}
			for _, r := range rep.Results {
				if !r.Pass {
					t.Errorf("%s: %s %s %s: %s", r.Name, r.Outcome, r.Errno, r.Signal, r.Detail)
				}
			}
			if err != nil && rep.OK() {
				t.Errorf("selftest exited with %v though every probe passed\n%s", err, stderr.String())
			}
			if err == nil && !rep.OK() {
				t.Error("selftest exited 0 though a probe failed")
			}
			if t.Failed() {
				t.Logf("mcpbox stderr:\n%s", stderr.String())
			}
		})
	}

	// An image root is the one thing no built-in profile asks for and the
	// rootless runtime cannot give (it has no image store): a profile with
	// one is refused before anything runs, saying what to do.
	t.Run("image-root", func(t *testing.T) {
		prof := filepath.Join(e.home, "image-root.yaml")
		writeFile(t, prof, "name: image-root\nextends: untrusted\nrootfs: image\nimage: mcpbox.local/test/none:1\n")
		e.chown(prof)
		cmd := e.as(e.bin, "selftest", "--json", "--profile", prof)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := runInNet(t, net, cmd)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || len(strings.TrimSpace(string(out))) != 0 {
			t.Errorf("selftest with an image root: %v, stdout %q", err, out)
		}
		for _, want := range []string{"image mcpbox.local/test/none:1: image roots need containerd's image store", "--runtime containerd", "rootfs host"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("the refusal lacks %q:\n%s", want, stderr.String())
			}
		}
	})
}

// TestRootlessRugPull is TestRugPull as the CI user: a server that changes
// a tool's description between two tools/list calls, with the untrusted
// profile (tools.pin: block), has the changed tool withheld and refused;
// the user's `mcpbox pins diff` shows the change and `pins approve`
// accepts it; a corrupt pin file blocks every tool until `pins reset`.
// Pins and audit log are the user's, in the user's home.
func TestRootlessRugPull(t *testing.T) {
	e := newRootlessEnv(t)
	node := testutil.RequiresCommand(t, "node")
	server := filepath.Join(testutil.RepoRoot(t), "testdata", "rugpull", "server.js")
	ctx := testutil.Context(t, 2*time.Minute)

	// Session 1: pinned on first use, then the rug pull.
	cs, stderr := e.connect(ctx, "--", node, server)
	if !strings.Contains(stderr.String(), "runtime=rootless") {
		t.Errorf("auto did not choose the rootless runtime for %s:\n%s", ciUser, stderr.String())
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || !hasTool(tools, "add") || !hasTool(tools, "echo") {
		t.Fatalf("first tools/list: %v %v", toolNames(tools), err)
	}
	if r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}}); err != nil || text(r) != "Echo: hi" {
		t.Fatalf("echo: %v", err)
	}
	tools, err = cs.ListTools(ctx, nil)
	if err != nil || hasTool(tools, "add") || !hasTool(tools, "echo") {
		t.Fatalf("tools/list after the rug pull: %v %v (want add withheld)", toolNames(tools), err)
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 1, "b": 2}})
	if err == nil || !strings.Contains(err.Error(), "tool add is withheld by mcpbox: tool changed since it was pinned") {
		t.Errorf("call to the changed tool: %v", err)
	}
	cs.Close()
	for _, want := range []string{"changed since it was pinned; withheld from the client", "mcpbox pins diff ", "looks poisoned"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}

	// The pin store, seen through the user's CLI.
	out, errOut, code := e.mcpbox("pins", "list", "--json")
	var list []struct {
		Server  string `json:"server"`
		Pinned  int    `json:"pinned"`
		Pending int    `json:"pending"`
		File    string `json:"file"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list) != 1 {
		t.Fatalf("pins list: %v, %d: %s %s", err, code, out, errOut)
	}
	name := list[0].Server
	if list[0].Pinned != 2 || list[0].Pending != 1 {
		t.Errorf("pins list: %+v", list[0])
	}
	pinsDir := filepath.Join(e.home, ".local", "state", "mcpbox", "pins")
	if filepath.Dir(list[0].File) != pinsDir {
		t.Errorf("pin file %s is not in the user's pin store %s", list[0].File, pinsDir)
	}
	e.ownedByUser(list[0].File)
	out, _, code = e.mcpbox("pins", "diff", name)
	if code != 0 || !strings.Contains(out, "changed tools/add:") || !strings.Contains(out, `+   "description": "Adds two numbers. <IMPORTANT>Before using`) {
		t.Errorf("pins diff (%d):\n%s", code, out)
	}
	if _, errOut, code = e.mcpbox("pins", "approve", name, "add"); code != 0 || !strings.Contains(errOut, "approved tools/add") {
		t.Errorf("pins approve (%d): %s", code, errOut)
	}

	// Session 2: the approved definition passes.
	cs, _ = e.connect(ctx, "--env", "RUGPULL=poisoned", "--", node, server)
	tools, err = cs.ListTools(ctx, nil)
	if err != nil || !hasTool(tools, "add") {
		t.Fatalf("tools/list after approval: %v %v", toolNames(tools), err)
	}
	if r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 1, "b": 2}}); err != nil || text(r) != "3" {
		t.Errorf("add after approval: %v", err)
	}
	cs.Close()

	// A corrupt pin file: every tool is withheld until the user resets it.
	// Truncating the user's file keeps its owner.
	if err := os.WriteFile(list[0].File, []byte(`{"format":1,"server":`), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, stderr = e.connect(ctx, "--", node, server)
	tools, err = cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 0 {
		t.Errorf("tools/list with a corrupt pin file: %v %v", toolNames(tools), err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}}); err == nil {
		t.Error("a call went through with a corrupt pin file")
	}
	cs.Close()
	if !strings.Contains(stderr.String(), "mcpbox pins reset "+name) {
		t.Errorf("stderr does not say how to recover:\n%s", stderr.String())
	}
	if data, _ := os.ReadFile(list[0].File); string(data) != `{"format":1,"server":` {
		t.Errorf("the corrupt pin file was overwritten: %q", data)
	}
	if out, _, _ := e.mcpbox("pins", "list"); !strings.Contains(out, "unreadable") {
		t.Errorf("pins list does not flag the corrupt file:\n%s", out)
	}
	if _, errOut, code := e.mcpbox("pins", "reset", name); code != 0 {
		t.Fatalf("pins reset (%d): %s", code, errOut)
	}
	cs, _ = e.connect(ctx, "--", node, server)
	if tools, err = cs.ListTools(ctx, nil); err != nil || len(tools.Tools) != 2 {
		t.Errorf("tools/list after reset: %v %v", toolNames(tools), err)
	}
	cs.Close()

	// Every session wrote the server's audit log, in the user's home.
	auditLog := filepath.Join(e.home, ".local", "state", "mcpbox", "audit", name+".jsonl")
	audit, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"method":"tools/call","tool":"echo"`, `"kind":"policy","method":"tools/list","tool":"add","policy":"pin"`, `"blocked":true`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	e.ownedByUser(auditLog)
}

// ownedByUser fails the test unless path belongs to the user.
func (e *rootlessEnv) ownedByUser(path string) {
	e.t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		e.t.Error(err)
		return
	}
	if int(st.Uid) != e.uid || int(st.Gid) != e.gid {
		e.t.Errorf("%s is owned by %d:%d, want the user's %d:%d", path, st.Uid, st.Gid, e.uid, e.gid)
	}
}

// TestRootlessWrap is TestWrapClaudeDesktop as the CI user: the user's
// Claude Desktop config, in the user's home, wrapped by the user's `mcpbox
// wrap --yes`; each wrapped entry started exactly as Claude Desktop would
// start it (command, args and env from the file, as the user, in the
// user's home, with nothing of mcpbox's test isolation: auto must find the
// rootless runtime) and called through the Go SDK client; then `mcpbox
// unwrap` restores the file byte for byte. server-memory keeps its graph
// where the entry's env says (the sandbox's tmpfs, as in
// TestMemoryServer); server-everything shows the entry's env reaching the
// server, redacted on the way back. The entries name no runtime and log
// at the default level: that they run at all, for a user who cannot reach
// containerd, is the rootless runtime chosen by auto.
func TestRootlessWrap(t *testing.T) {
	e := newRootlessEnv(t)
	_, memory := testutil.Server(t, "server-memory")
	_, everything := testutil.Server(t, "server-everything")
	ctx := testutil.Context(t, 2*time.Minute)
	cfg := filepath.Join(e.home, ".config", "Claude", "claude_desktop_config.json")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	orig := `{
  "mcpServers": {
    "memory": {
      "command": "node",
      "args": ["` + memory + `"],
      "env": { "MEMORY_FILE_PATH": "/tmp/memory.jsonl" }
    },
    "everything": {
      "command": "node",
      "args": ["` + everything + `", "stdio"],
      "env": { "E2E_TOKEN": "token-value-1234" }
    },
    "remote": { "url": "https://mcp.example.com/mcp" }
  }
}
`
	if err := os.WriteFile(cfg, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	e.chown(filepath.Join(e.home, ".config"))
	cli := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, code := e.mcpbox(args...)
		if code != 0 {
			t.Fatalf("mcpbox %v: exit %d\n%s", args, code, errOut)
		}
		return out, errOut
	}

	out, errOut := cli("clients", "--json")
	var clients []struct {
		Client         string
		Path           string
		Stdio, Wrapped int
	}
	if err := json.Unmarshal([]byte(out), &clients); err != nil || len(clients) != 1 || clients[0].Client != "claude-desktop" ||
		clients[0].Path != cfg || clients[0].Stdio != 2 || clients[0].Wrapped != 0 {
		t.Fatalf("clients: %v %s %s", err, out, errOut)
	}
	diff, errOut := cli("wrap", "--client", "claude-desktop", "--yes")
	if !strings.Contains(diff, `+      "command": "`+e.bin+`",`) || !strings.Contains(errOut, "leave remote: remote server") ||
		!strings.Contains(errOut, "wrap memory (profile untrusted") || !strings.Contains(errOut, "wrap everything (profile untrusted") {
		t.Errorf("wrap printed:\n%s\n%s", diff, errOut)
	}
	backups, _ := filepath.Glob(cfg + ".mcpbox-backup-*")
	if len(backups) != 1 {
		t.Errorf("backups: %v", backups)
	} else {
		e.ownedByUser(backups[0])
	}
	e.ownedByUser(cfg)

	// Start the entries as the client would.
	var file struct {
		MCPServers map[string]struct {
			Command string
			Args    []string
			Env     map[string]string
		}
	}
	data, _ := os.ReadFile(cfg)
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	start := func(name string) (*mcp.ClientSession, *lockedBuilder) {
		t.Helper()
		entry, ok := file.MCPServers[name]
		if !ok || entry.Command != e.bin || len(entry.Args) == 0 || entry.Args[0] != "run" {
			t.Fatalf("wrapped entry %s: %+v", name, entry)
		}
		cmd := e.as(entry.Command, entry.Args...)
		for k, v := range entry.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		stderr := &lockedBuilder{}
		cmd.Stderr = stderr
		client := mcp.NewClient(&mcp.Implementation{Name: "claude-desktop", Version: "1"}, nil)
		cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
		if err != nil {
			t.Fatalf("connect to the wrapped %s entry: %v\nstderr:\n%s", name, err, stderr.String())
		}
		t.Cleanup(func() {
			cs.Close()
			if t.Failed() {
				t.Logf("mcpbox stderr (%s):\n%s", name, stderr.String())
			}
		})
		return cs, stderr
	}

	cs, _ := start("memory")
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_entities", Arguments: map[string]any{
		"entities": []map[string]any{{"name": "mcpbox", "entityType": "project", "observations": []string{"runs servers in sandboxes"}}},
	}})
	if err != nil || r.IsError {
		t.Fatalf("create_entities: %v %q", err, text(r))
	}
	r, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_graph", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(text(r), "runs servers in sandboxes") {
		t.Errorf("read_graph = %q, %v", text(r), err)
	}
	cs.Close()
	cs, _ = start("everything")
	r, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "wrapped"}})
	if err != nil || !strings.Contains(text(r), "wrapped") {
		t.Errorf("echo: %v", err)
	}
	r, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(text(r), `"E2E_TOKEN": "[REDACTED:E2E_TOKEN]"`) {
		t.Errorf("the entry's env did not reach the server (or came back unredacted): %v %.300s", err, text(r))
	}
	cs.Close()

	out, _ = cli("clients", "--json")
	if err := json.Unmarshal([]byte(out), &clients); err != nil || len(clients) != 1 || clients[0].Wrapped != 2 {
		t.Errorf("clients after wrap: %v %s", err, out)
	}
	cli("unwrap", "--client", "claude-desktop", "--yes")
	if data, _ := os.ReadFile(cfg); string(data) != orig {
		t.Errorf("unwrap did not restore the file:\n%s", data)
	}
	if st, err := os.Stat(cfg); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after unwrap: %v %v", st.Mode(), err)
	}
	e.ownedByUser(cfg)
}
