package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher/trial"
)

// enter makes cmd run in the test's network namespace without the mount
// namespace `ip netns exec` adds (which hides /sys/fs/cgroup, where the
// trial reads the sandbox's usage).
func (n *testNet) enter(cmd *exec.Cmd) *exec.Cmd {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		n.t.Fatalf("nsenter: %v", err)
	}
	cmd.Args = append([]string{"nsenter", "--net=/run/netns/" + n.name}, cmd.Args...)
	cmd.Path = nsenter
	return cmd
}

// trialRun runs `mcpbox trial` in a network namespace with no route out
// (the naughty server reaches for outside names) and reads its report.
func trialRun(t *testing.T, e *env, tn *testNet, args ...string) (*trial.Report, string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "trial")
	full := append([]string{"--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir, "trial", "--out", out}, args...)
	cmd := exec.Command(e.bin, full...)
	cmd.Env = e.environ()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := tn.enter(cmd).Run(); err != nil {
		t.Fatalf("mcpbox trial: %v\n%s", err, stderr.String())
	}
	rep, err := trial.ReadJSON(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	return rep, out, stderr.String()
}

// TestTrialNaughty: a server that reads ~/.ssh, reaches for outside names,
// runs unshare, mount and strace, spawns a shell, writes under /usr and
// $HOME and has a poisoned tool — the trial report lists every one.
func TestTrialNaughty(t *testing.T) {
	e := newEnv(t)
	tn := newTestNet(t, nil)
	node := testutil.RequiresCommand(t, "node")
	server := filepath.Join(testutil.RepoRoot(t), "testdata", "naughty", "server.js")
	rep, out, stderr := trialRun(t, e, tn, "--duration", "8s", "--call", `echo={"message":"hi"}`, "--", node, server)

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
	// Never-grantable syscalls are not offered in the profile.
	prof, _ := os.ReadFile(filepath.Join(out, "profile.yaml"))
	if strings.Contains(string(prof), "- mount") && !strings.Contains(string(prof), "never granted") {
		t.Errorf("the profile grants mount:\n%s", prof)
	}
}

// TestTrialMemory: a well-behaved real server (server-memory from npm)
// through a trial; its generated profile then runs it with
// --report-violations under the Go SDK client with zero violations, and a
// trial with --enforce on that profile denies nothing.
func TestTrialMemory(t *testing.T) {
	e := newEnv(t)
	tn := newTestNet(t, nil)
	node, server := testutil.Server(t, "server-memory")
	create := `create_entities={"entities":[{"name":"mcpbox","entityType":"tool","observations":["sandboxes servers"]}]}`
	rep, out, stderr := trialRun(t, e, tn, "--duration", "6s", "--env", "MEMORY_FILE_PATH=/tmp/memory.json",
		"--call", create, "--call", `read_graph={}`, "--", node, server)
	if len(rep.Calls) != 2 || !rep.Calls[0].OK || !rep.Calls[1].OK {
		t.Fatalf("calls: %+v\n%s", rep.Calls, stderr)
	}
	if len(rep.Tools) < 5 {
		t.Errorf("%d tools", len(rep.Tools))
	}
	profile := filepath.Join(out, "profile.yaml")

	ctx := testutil.Context(t, time.Minute)
	cs, runErr := e.connect(ctx, "--profile", profile, "--report-violations", "--env", "MEMORY_FILE_PATH=/tmp/memory.json", "--", node, server)
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_entities", Arguments: json.RawMessage(strings.TrimPrefix(create, "create_entities="))})
	if err != nil || r.IsError {
		t.Fatalf("create_entities under the generated profile: %v", err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_graph", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	if strings.Contains(runErr.String(), "denied syscall") {
		t.Errorf("violations under the generated profile:\n%s", runErr.String())
	}

	enforced, _, stderr := trialRun(t, e, tn, "--profile", profile, "--enforce", "--duration", "5s", "--env", "MEMORY_FILE_PATH=/tmp/memory.json",
		"--call", create, "--", node, server)
	if len(enforced.Syscalls) != 0 || len(enforced.Calls) != 1 || !enforced.Calls[0].OK {
		t.Errorf("--enforce with the generated profile: syscalls %+v calls %+v\n%s", enforced.Syscalls, enforced.Calls, stderr)
	}
}

// TestTrialClient: with --client a real client (the Go SDK) drives the
// session through the trial, which records its tools and the server's
// behaviour.
func TestTrialClient(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-memory")
	ctx := testutil.Context(t, time.Minute)
	out := filepath.Join(t.TempDir(), "trial")
	cmd := exec.Command(e.bin, "--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir,
		"trial", "--client", "--out", out, "--env", "MEMORY_FILE_PATH=/tmp/m.json", "--", node, server)
	cmd.Env = e.environ()
	cs, _ := e.connectCmd(ctx, cmd)
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_graph", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	var rep *trial.Report
	var err error
	for i := 0; i < 50; i++ { // the trial writes its report after the client hangs up
		if rep, err = trial.ReadJSON(filepath.Join(out, "report.json")); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tools) < 5 || rep.Usage.PeakMemoryBytes == 0 {
		t.Errorf("report of a client-driven trial: %d tools, usage %+v", len(rep.Tools), rep.Usage)
	}
}
