package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// xdgEnv points mcpbox's config, state and cache at fresh directories.
func xdgEnv(t *testing.T) (env []string, root string) {
	root = t.TempDir()
	for _, d := range []string{"XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"} {
		dir := filepath.Join(root, strings.ToLower(strings.TrimPrefix(d, "XDG_")))
		env = append(env, d+"="+dir)
	}
	return env, root
}

// TestNpxFromRegistry: the command users have in their configs, npx -y
// with a real package from the registry, installed in a sandbox on first
// use and then run from the cache; the second run works with no network at
// all, proving it makes no registry request.
func TestNpxFromRegistry(t *testing.T) {
	e := newEnv(t)
	testutil.Server(t, "server-memory") // node and npm present
	testutil.RequiresCommand(t, "npm")
	xdg, root := xdgEnv(t)
	ctx := testutil.Context(t, 3*time.Minute)
	args := []string{"--", "npx", "-y", "@modelcontextprotocol/server-memory@2026.8.31"}

	cmd := e.command(args...)
	cmd.Env = append(cmd.Env, xdg...)
	cmd.Env = append(cmd.Env, trustEnv()...)
	cs, stderr := e.connectCmd(ctx, cmd)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_entities", Arguments: map[string]any{
		"entities": []map[string]any{{"name": "mcpbox", "entityType": "project", "observations": []string{"installed by npx"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	if !strings.Contains(stderr.String(), "installing @modelcontextprotocol/server-memory") {
		t.Errorf("first run did not report the install:\n%s", stderr.String())
	}
	// The memory profile keeps the server's data in its state directory.
	data := filepath.Join(root, "state_home", "mcpbox", "servers", "memory", "memory.jsonl")
	if b, err := os.ReadFile(data); err != nil || !strings.Contains(string(b), "installed by npx") {
		t.Errorf("state file %s: %q, %v", data, b, err)
	}

	// Second run, inside a namespace with loopback only: no registry.
	tn := newTestNet(t, nil)
	cmd = tn.wrap(e.command(args...))
	cmd.Env = append(cmd.Env, xdg...)
	start := time.Now()
	cs, stderr = e.connectCmd(ctx, cmd)
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_graph", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(text(r), "installed by npx") {
		t.Errorf("read_graph on the second run = %q, %v", text(r), err)
	}
	if strings.Contains(stderr.String(), "installing") {
		t.Errorf("second run installed again:\n%s", stderr.String())
	}
	t.Logf("second run connected in %v", time.Since(start))
}

// trustEnv passes the host's extra CA bundle, if it has one, as a client's
// config env block would: some machines reach the registry through a
// TLS-inspecting forwarder.
func trustEnv() []string {
	if v := os.Getenv("NODE_EXTRA_CA_CERTS"); v != "" {
		return []string{"NODE_EXTRA_CA_CERTS=" + v}
	}
	return nil
}

// TestPathArgs: with the filesystem profile, the server's path arguments
// become mounts, and nothing else from home is visible; a credential
// directory as a path argument is refused before anything starts.
func TestPathArgs(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-filesystem")
	ctx := testutil.Context(t, time.Minute)
	home := t.TempDir()
	os.Chmod(home, 0o755)
	notes, other := filepath.Join(home, "notes"), filepath.Join(home, "other")
	for _, d := range []string{notes, other, filepath.Join(home, ".ssh")} {
		os.MkdirAll(d, 0o755)
	}
	os.Chown(notes, 4321, 4321)
	writeFile(t, filepath.Join(notes, "a.txt"), "granted by path argument")
	writeFile(t, filepath.Join(other, "b.txt"), "not granted")
	xdg, _ := xdgEnv(t)

	cmd := e.command("--profile", "filesystem", "--", node, server, notes)
	cmd.Env = append(cmd.Env[:1], append([]string{"HOME=" + home}, xdg...)...)
	cs, _ := e.connectCmd(ctx, cmd)
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_text_file", Arguments: map[string]any{"path": filepath.Join(notes, "a.txt")}})
	if err != nil || r.IsError || text(r) != "granted by path argument" {
		t.Errorf("read through the path argument = %q, %v", text(r), err)
	}
	r, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": filepath.Join(notes, "new.txt"), "content": "rw"}})
	if err != nil || r.IsError {
		t.Errorf("write under the rw path argument: %q, %v", text(r), err)
	}
	// The server itself would refuse paths outside its argument; the
	// sandbox must not even have them. list_allowed_directories shows the
	// argument, and the sibling directory does not exist inside.
	r, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_directory", Arguments: map[string]any{"path": notes}})
	if strings.Contains(text(r), "b.txt") {
		t.Errorf("a file outside the path argument is listed: %s", text(r))
	}

	// From inside: exactly the path argument is there, its sibling is not.
	probe := e.command("--profile", "filesystem", "--", node, "-e",
		`const fs = require("fs"); const r = p => { try { return fs.readFileSync(p, "utf8") } catch (e) { return e.code } };
		 console.log(JSON.stringify({granted: r(process.argv[1] + "/a.txt"), sibling: r(process.argv[1] + "/../other/b.txt")}))`,
		notes)
	probe.Env = append(probe.Env[:1], append([]string{"HOME=" + home}, xdg...)...)
	if out, err := probe.Output(); err != nil || !strings.Contains(string(out), `{"granted":"granted by path argument","sibling":"ENOENT"}`) {
		t.Errorf("inside the sandbox: %s, %v; want the argument's file and ENOENT for the sibling", out, err)
	}

	// A credential directory as a path argument: refused, exit 2.
	cmd = e.command("--profile", "filesystem", "--", node, server, filepath.Join(home, ".ssh"))
	cmd.Env = append(cmd.Env[:1], append([]string{"HOME=" + home}, xdg...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "holds credentials") || !strings.Contains(string(out), "--mount") {
		t.Errorf("~/.ssh as a path argument: %v\n%s", err, out)
	}
}

// TestBrokenUserProfile: a user profile with an error is reported with its
// file and line, and never replaced by a weaker one.
func TestBrokenUserProfile(t *testing.T) {
	e := newEnv(t)
	xdg, root := xdgEnv(t)
	dir := filepath.Join(root, "config_home", "mcpbox", "profiles")
	os.MkdirAll(dir, 0o755)
	writeFile(t, filepath.Join(dir, "memory.yaml"), "name: memory\nmatch: { npm: \"@modelcontextprotocol/server-memory\" }\nlimits:\n  memory: lots\n")
	cmd := e.command("--", "npx", "-y", "@modelcontextprotocol/server-memory")
	cmd.Env = append(cmd.Env, xdg...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "memory.yaml:4") || !strings.Contains(string(out), "limits.memory") {
		t.Errorf("broken user profile: %v\n%s", err, out)
	}
}
