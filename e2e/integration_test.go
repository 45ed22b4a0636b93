package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestFilesystemServer runs the real server-filesystem from npm through
// mcpbox with / as its allowed directory, so that only the sandbox decides
// what it can read and write.
func TestFilesystemServer(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-filesystem")
	ctx := testutil.Context(t, 2*time.Minute)

	host := t.TempDir()
	ro, rw, hidden := filepath.Join(host, "ro"), filepath.Join(host, "rw"), filepath.Join(host, "hidden")
	for _, d := range []string{ro, rw, hidden} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	// The rw grant belongs to a regular user: mcpbox runs the server as
	// that user, so its writes land with the right owner.
	if err := os.Chown(rw, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ro, "granted.txt"), "granted content")
	writeFile(t, filepath.Join(hidden, "secret.txt"), "host secret")

	cs, _ := e.connect(ctx, "--mount", ro+":ro", "--mount", rw+":rw", "--", node, server, "/")
	if got := cs.InitializeResult().ServerInfo.Name; !strings.Contains(got, "filesystem") {
		t.Errorf("server name = %q, want the filesystem server", got)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !hasTool(tools, "read_text_file") || !hasTool(tools, "write_file") {
		t.Fatalf("tools/list lacks read_text_file/write_file: %v", toolNames(tools))
	}

	call := func(name string, args map[string]any) (string, bool) {
		t.Helper()
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return text(r), r.IsError
	}

	if out, isErr := call("read_text_file", map[string]any{"path": filepath.Join(ro, "granted.txt")}); isErr || out != "granted content" {
		t.Errorf("read granted file = %q (error %v), want its content", out, isErr)
	}
	for _, p := range []string{filepath.Join(hidden, "secret.txt"), "/etc/shadow", "/root/.bashrc", os.Getenv("HOME") + "/.ssh/id_rsa"} {
		if out, isErr := call("read_text_file", map[string]any{"path": p}); !isErr || strings.Contains(out, "host secret") {
			t.Errorf("read non-granted %s = %q (error %v), want an error", p, out, isErr)
		}
	}
	if out, isErr := call("write_file", map[string]any{"path": filepath.Join(ro, "new.txt"), "content": "x"}); !isErr {
		t.Errorf("write to read-only mount succeeded: %q", out)
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); err == nil {
		t.Errorf("write to read-only mount reached the host")
	}
	if out, isErr := call("write_file", map[string]any{"path": filepath.Join(rw, "new.txt"), "content": "from the sandbox"}); isErr {
		t.Errorf("write to read-write mount failed: %s", out)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "new.txt")); err != nil || string(b) != "from the sandbox" {
		t.Errorf("host sees %q, %v after a write to the rw mount", b, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(rw, "new.txt"), &st); err != nil || st.Uid != 4321 || st.Gid != 4321 {
		t.Errorf("file written through the rw mount is owned by %d:%d (%v), want 4321:4321", st.Uid, st.Gid, err)
	}
	out, _ := call("list_directory", map[string]any{"path": "/"})
	for _, absent := range []string{"[DIR] root", "[DIR] var", "[DIR] run", "[DIR] boot", "[DIR] srv"} {
		if strings.Contains(out, absent) {
			t.Errorf("the sandbox's / lists %q:\n%s", absent, out)
		}
	}
	if err := cs.Close(); err != nil {
		t.Logf("close: %v", err)
	}
}

// TestEverythingServer runs server-everything: plain calls, progress
// notifications of a long-running tool, a large payload, and the
// environment the server sees.
func TestEverythingServer(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-everything")
	ctx := testutil.Context(t, 2*time.Minute)
	os.Setenv("MCPBOX_TEST_PASSED", "from-host")
	os.Setenv("MCPBOX_TEST_SECRET", "must-not-leak")
	t.Cleanup(func() { os.Unsetenv("MCPBOX_TEST_PASSED"); os.Unsetenv("MCPBOX_TEST_SECRET") })

	// Every broker policy on: tool filter, pins and scan in block mode,
	// redaction, audit with bodies.
	profile := filepath.Join(t.TempDir(), "all-policies.yaml")
	writeFile(t, profile, "name: all-policies\nextends: untrusted\ntools: { deny: [\"no-such-tool\"], pin: block, scan: block }\n")
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	cmd := e.command("--profile", profile, "--audit", audit, "--audit-bodies",
		"--env", "MCPBOX_TEST_PASSED", "--env", "LITERAL=yes", "--", node, server, "stdio")
	cmd.Env = append(cmd.Env, "MCPBOX_TEST_PASSED=from-host", "MCPBOX_TEST_SECRET=must-not-leak")
	var progress []float64
	var mu sync.Mutex
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, r.Params.Progress)
			mu.Unlock()
		},
	})
	stderr := &lockedBuilder{}
	cmd.Stderr = stderr
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr.String())
	}
	defer cs.Close()

	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello sandbox"}})
	if err != nil || !strings.Contains(text(r), "hello sandbox") {
		t.Errorf("echo = %q, %v", text(r), err)
	}

	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB
	r, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": big}})
	if err != nil || !strings.Contains(text(r), big) {
		t.Errorf("2 MiB echo came back with %d bytes, %v", len(text(r)), err)
	}

	r, err = cs.CallTool(ctx, &mcp.CallToolParams{
		Meta:      mcp.Meta{"progressToken": "p1"},
		Name:      "trigger-long-running-operation",
		Arguments: map[string]any{"duration": 2, "steps": 4},
	})
	if err != nil || r.IsError {
		t.Errorf("long-running operation: %v %q", err, text(r))
	}
	mu.Lock()
	if len(progress) < 3 {
		t.Errorf("got %d progress notifications from the long-running tool, want 4", len(progress))
	}
	mu.Unlock()

	r, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	envOut := text(r)
	// The passed variable's value is in the server's env, and redacted on
	// its way back: values passed into the sandbox never reach the client.
	if !strings.Contains(envOut, `"MCPBOX_TEST_PASSED": "[REDACTED:MCPBOX_TEST_PASSED]"`) || !strings.Contains(envOut, `"LITERAL": "yes"`) {
		t.Errorf("declared variables missing from the server's env, or not redacted: %s", envOut)
	}
	if strings.Contains(envOut, "from-host") {
		t.Errorf("a passed variable's value came back unredacted: %s", envOut)
	}
	if strings.Contains(envOut, "must-not-leak") || strings.Contains(envOut, "MCPBOX_TEST_SECRET") {
		t.Errorf("an undeclared variable reached the server: %s", envOut)
	}
	cs.Close()
	log, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"dir":"c2s","kind":"request","id":`, `"method":"tools/call","tool":"echo","args_bytes":`,
		`"redacted":{"MCPBOX_TEST_PASSED":1}`, `"body":{"result":{"content":[{"type":"text","text":"Echo: hello sandbox"}]}`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(string(log), "from-host") {
		t.Error("the audit log holds a passed-in secret value")
	}
}

// TestMemoryServer runs server-memory with its data file on the sandbox's
// tmpfs, passed by --env.
func TestMemoryServer(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-memory")
	ctx := testutil.Context(t, time.Minute)
	cs, _ := e.connect(ctx, "--env", "MEMORY_FILE_PATH=/tmp/memory.jsonl", "--", node, server)
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_entities", Arguments: map[string]any{
		"entities": []map[string]any{{"name": "mcpbox", "entityType": "project", "observations": []string{"runs servers in sandboxes"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_graph", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(text(r), "runs servers in sandboxes") {
		t.Errorf("read_graph = %q, %v", text(r), err)
	}
}

// TestConcurrentSessions starts 20 sandboxed servers at once; each must
// answer tools/list, and all must be cleaned up.
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-memory")
	ctx := testutil.Context(t, 3*time.Minute)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := e.command("--env", "MEMORY_FILE_PATH=/tmp/m.jsonl", "--", node, server)
			stderr := &lockedBuilder{}
			cmd.Stderr = stderr
			client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-test", Version: "1"}, nil)
			cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 20 * time.Second}, nil)
			if err != nil {
				errs <- errors.New(err.Error() + "\n" + stderr.String())
				return
			}
			defer cs.Close()
			tools, err := cs.ListTools(ctx, nil)
			if err == nil && !hasTool(tools, "read_graph") {
				err = errors.New("tools/list lacks read_graph")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// runScript runs a node one-liner through mcpbox with empty stdin and
// returns stdout, stderr and the exit code.
func (e *env) runScript(t *testing.T, script string, flags ...string) (string, string, int) {
	t.Helper()
	return e.runScriptInput(t, "", script, flags...)
}

// runScriptInput is runScript with input on stdin.
func (e *env) runScriptInput(t *testing.T, input, script string, flags ...string) (string, string, int) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testutil.Server(t, "server-memory") // skips or fails with the right message
	}
	args := append(flags, "--", node, "-e", script)
	cmd := e.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader(input)
	err = cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// TestExitAndOutput checks exit codes, stdout hygiene and limits with
// small node programs.
func TestExitAndOutput(t *testing.T) {
	e := newEnv(t)
	t.Run("exit code", func(t *testing.T) {
		if _, stderr, code := e.runScript(t, `process.exit(3)`); code != 3 {
			t.Errorf("exit code = %d, want 3\n%s", code, stderr)
		}
	})
	t.Run("killed by signal", func(t *testing.T) {
		if _, stderr, code := e.runScript(t, `process.kill(process.pid, "SIGSEGV")`); code != 128+11 {
			t.Errorf("exit code = %d, want 139 (128+SIGSEGV)\n%s", code, stderr)
		}
	})
	t.Run("SIGTERM reaches the server", func(t *testing.T) {
		// The server is not pid 1 (mcpbox-init is), so its handler
		// runs; stdin EOF alone does not stop it.
		_, stderr, _ := e.runScript(t, `process.on("SIGTERM", () => { console.error("server got SIGTERM"); process.exit(0) }); setInterval(() => {}, 1000)`)
		if !strings.Contains(stderr, "server got SIGTERM") {
			t.Errorf("stderr %q: want the server's SIGTERM handler to have run", stderr)
		}
	})
	t.Run("input sent just before EOF", func(t *testing.T) {
		// The client writes a request and closes at once: the server
		// must still get it.
		stdout, stderr, code := e.runScriptInput(t, `{"jsonrpc":"2.0","id":1,"method":"ping"}`+"\n",
			`let b = ""; process.stdin.on("data", d => b += d); process.stdin.on("end", () => process.stdout.write(b.replace("ping", "pong")))`)
		if code != 0 || stdout != `{"jsonrpc":"2.0","id":1,"method":"pong"}`+"\n" {
			t.Errorf("exit %d, stdout %q, stderr %q: want the request echoed back", code, stdout, stderr)
		}
	})
	t.Run("garbage on stdout", func(t *testing.T) {
		stdout, stderr, code := e.runScript(t, `console.log("Server starting..."); console.log(JSON.stringify({jsonrpc:"2.0",method:"notifications/message",params:{}})); console.log("[1,2]")`)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if stdout != `{"jsonrpc":"2.0","method":"notifications/message","params":{}}`+"\n" {
			t.Errorf("client saw %q, want only the JSON object", stdout)
		}
		if !strings.Contains(stderr, "Server starting...") {
			t.Errorf("diverted line missing from stderr: %s", stderr)
		}
	})
	t.Run("stderr flood", func(t *testing.T) {
		// The client (no input) hangs up at once: the grace period must
		// outlast writing 32 MiB on a loaded machine, or the server is
		// stopped mid-flood, which is another test's subject.
		_, stderr, code := e.runScript(t, `const s = "x".repeat(1<<20); for (let i = 0; i < 32; i++) process.stderr.write(s)`, "--stop-timeout", "2m")
		if code != 0 || strings.Count(stderr, "x") < 32<<20 {
			t.Errorf("exit %d with %d bytes of stderr, want 0 and 32 MiB", code, len(stderr))
		}
	})
	t.Run("oversized message", func(t *testing.T) {
		_, stderr, code := e.runScript(t, `process.stdout.write("{" + "x".repeat(2<<20)); setInterval(() => {}, 1000)`, "--max-message", "1Mi")
		if code == 0 || !strings.Contains(stderr, "max-message") {
			t.Errorf("exit %d, stderr %q: want a failure naming --max-message", code, tail(stderr))
		}
	})
	t.Run("out of memory", func(t *testing.T) {
		_, stderr, code := e.runScript(t, `const a = []; for (;;) a.push(Buffer.alloc(1<<20, 1))`, "--memory", "64Mi")
		// The kernel's SIGKILL shows as 128+9, as a shell would report it.
		if code != 137 || !strings.Contains(stderr, "out of memory") || !strings.Contains(stderr, "64Mi") {
			t.Errorf("exit %d, stderr %q: want 137 and an OOM report naming the 64Mi limit", code, tail(stderr))
		}
	})
	t.Run("identity inside", func(t *testing.T) {
		stdout, stderr, code := e.runScript(t, `
const fs = require("fs");
const status = fs.readFileSync("/proc/self/status", "utf8");
const field = k => (status.match(new RegExp("^" + k + ":\\s*(.*)$", "m")) || [])[1];
const tryWrite = p => { try { fs.writeFileSync(p, "x"); return "ok" } catch (e) { return e.code } };
console.log(JSON.stringify({
  uid: process.getuid(), gid: process.getgid(),
  capEff: field("CapEff"), capPrm: field("CapPrm"), capBnd: field("CapBnd"), capAmb: field("CapAmb"), capInh: field("CapInh"),
  noNewPrivs: field("NoNewPrivs"), seccomp: field("Seccomp"),
  root: fs.readdirSync("/").sort(),
  writeRoot: tryWrite("/x"), writeUsr: tryWrite("/usr/x"), writeEtc: tryWrite("/etc/passwd"),
  writeTmp: tryWrite("/tmp/x"), writeHome: tryWrite(process.env.HOME + "/x"),
  env: Object.keys(process.env).sort(),
  hostname: require("os").hostname(),
}))`)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got struct {
			UID, GID                               int
			CapEff, CapPrm, CapBnd, CapAmb, CapInh string
			NoNewPrivs, Seccomp                    string
			Root                                   []string
			WriteRoot, WriteUsr, WriteEtc          string
			WriteTmp, WriteHome                    string
			Env                                    []string
			Hostname                               string
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%v: %q", err, stdout)
		}
		if got.UID != 65534 || got.GID != 65534 {
			t.Errorf("uid/gid = %d/%d, want 65534", got.UID, got.GID)
		}
		for name, v := range map[string]string{"CapEff": got.CapEff, "CapPrm": got.CapPrm, "CapBnd": got.CapBnd, "CapAmb": got.CapAmb, "CapInh": got.CapInh} {
			if v != "0000000000000000" {
				t.Errorf("%s = %s, want all zero", name, v)
			}
		}
		if got.NoNewPrivs != "1" || got.Seccomp != "2" {
			t.Errorf("NoNewPrivs %s Seccomp %s, want 1 and 2 (filter)", got.NoNewPrivs, got.Seccomp)
		}
		for _, forbidden := range []string{"root", "var", "run", "srv", "boot", "opt", "mnt", "media", "work"} {
			for _, d := range got.Root {
				if d == forbidden {
					t.Errorf("/%s is visible inside the sandbox (root: %v)", d, got.Root)
				}
			}
		}
		for what, v := range map[string]string{"/": got.WriteRoot, "/usr": got.WriteUsr, "/etc/passwd": got.WriteEtc} {
			if v != "EROFS" && v != "EACCES" {
				t.Errorf("write to %s: %s, want EROFS or EACCES", what, v)
			}
		}
		if got.WriteTmp != "ok" || got.WriteHome != "ok" {
			t.Errorf("write to /tmp: %s, to $HOME: %s, want ok", got.WriteTmp, got.WriteHome)
		}
		if strings.Join(got.Env, ",") != "HOME,PATH,TMPDIR" {
			t.Errorf("environment has %v, want only HOME, PATH, TMPDIR", got.Env)
		}
		if got.Hostname != "mcpbox" {
			t.Errorf("hostname %q", got.Hostname)
		}
	})
}

// TestStdinEOF checks that a client closing its end stops the session
// promptly, and cleans up.
func TestStdinEOF(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-everything")
	cmd := e.command("--", node, server, "stdio")
	stdin, _ := cmd.StdinPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	start := time.Now()
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mcpbox after client EOF: %v\n%s", err, stderr.String())
		}
		// stop-timeout is 1s: EOF grace, then SIGTERM grace, then SIGKILL.
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("took %v to stop after EOF", d)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("mcpbox did not exit after the client closed stdin\n%s", stderr.String())
	}
}

// TestSignal: SIGTERM to mcpbox stops the server, cleans up and exits 143.
func TestSignal(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-memory")
	cmd := e.command("--", node, server)
	stdin, _ := cmd.StdinPipe()
	defer stdin.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 143 {
		t.Errorf("after SIGTERM: %v, want exit 143\n%s", err, stderr.String())
	}
}

// TestGCAfterKill: a SIGKILLed mcpbox leaves its container behind; `mcpbox
// gc` removes it, and so does the next `mcpbox run` (the env's cleanup
// check then finds nothing).
func TestGCAfterKill(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-memory")
	killed := func() {
		t.Helper()
		cmd := e.command("--", node, server)
		stdin, _ := cmd.StdinPipe()
		defer stdin.Close()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if entries, _ := os.ReadDir(e.runDir); len(entries) != 1 {
			t.Fatalf("want the killed session's dir in the run dir, found %d entries", len(entries))
		}
	}

	killed()
	gc := exec.Command(e.bin, "--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir, "gc")
	out, err := gc.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "removed mcpbox-server-memory-") {
		t.Errorf("gc: %v\n%s", err, out)
	}

	killed()
	if _, stderr, code := e.runScript(t, "1"); code != 0 || !strings.Contains(stderr, "removed leftovers") {
		t.Errorf("next run: exit %d, stderr %q: want it to report removing the leftover", code, stderr)
	}
}

// TestBadInput: errors found before any container exists, with clear
// messages and the right exit codes.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing command", []string{"--", "no-such-server-binary"}, 127, "not found"},
		{"missing mount source", []string{"--mount", "/no/such/dir", "--", "node", "-e", "1"}, 2, "--mount"},
		{"bad memory", []string{"--memory", "abc", "--", "node", "-e", "1"}, 2, "--memory"},
		{"unknown flag", []string{"--frobnicate", "--", "node", "-e", "1"}, 2, "frobnicate"},
		{"no command", []string{}, 2, "no server command"},
		{"bad allowlist entry", []string{"--allow-host", "*.", "--", "node", "-e", "1"}, 2, `"*."`},
		{"allowlist port out of range", []string{"--allow-host", "api.example.com:70000", "--", "node", "-e", "1"}, 2, "70000"},
		{"bad cidr", []string{"--allow-host", "cidr:10.0.0.0/33", "--", "node", "-e", "1"}, 2, "10.0.0.0/33"},
		{"none with hosts", []string{"--network", "none", "--allow-host", "api.example.com", "--", "node", "-e", "1"}, 2, "--network"},
		{"unknown network mode", []string{"--network", "bridge", "--", "node", "-e", "1"}, 2, "bridge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := e.command(tc.args...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.code {
				t.Errorf("%v, want exit %d\n%s", err, tc.code, out)
			}
			if !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "goroutine ") {
				t.Errorf("output %q: want a clear message containing %q", out, tc.want)
			}
		})
	}
}

// TestContainerdUnreachable: one clear sentence and exit 125.
func TestContainerdUnreachable(t *testing.T) {
	testutil.RequiresRoot(t)
	cmd := exec.Command(mcpboxBinary(t), "--containerd-address", filepath.Join(t.TempDir(), "nope.sock"), "--run-dir", t.TempDir(), "run", "--", "node", "-e", "1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 125 {
		t.Errorf("%v, want exit 125\n%s", err, out)
	}
	if !strings.Contains(string(out), "containerd is not reachable") || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
		t.Errorf("want one line naming containerd, got:\n%s", out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to report an absent containerd", d)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func hasTool(r *mcp.ListToolsResult, name string) bool {
	for _, tool := range r.Tools {
		if tool.Name == name {
			return true
		}
	}
	return false
}

func toolNames(r *mcp.ListToolsResult) []string {
	var names []string
	for _, tool := range r.Tools {
		names = append(names, tool.Name)
	}
	return names
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// TestToolFilter: a profile's tools.deny removes a tool from tools/list and
// answers a call to it without reaching the server.
func TestToolFilter(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-everything")
	ctx := testutil.Context(t, time.Minute)
	profile := filepath.Join(t.TempDir(), "no-echo.yaml")
	writeFile(t, profile, "name: no-echo\nextends: untrusted\ntools: { deny: [\"echo\", \"get-s*\"] }\n")
	cs, _ := e.connect(ctx, "--profile", profile, "--", node, server, "stdio")
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hasTool(tools, "echo") || hasTool(tools, "get-sum") || !hasTool(tools, "get-env") {
		t.Errorf("tools/list with echo and get-s* denied: %v", toolNames(tools))
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}})
	if err == nil || !strings.Contains(err.Error(), "blocked by the profile") {
		t.Errorf("call to a denied tool: %v, want the broker's refusal", err)
	}
	if r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env", Arguments: map[string]any{}}); err != nil || r.IsError {
		t.Errorf("an allowed tool failed: %v", err)
	}
}
