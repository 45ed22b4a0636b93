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
)

// TestWrapClaudeDesktop wraps a Claude Desktop config in a temp HOME with
// `mcpbox wrap --yes`, starts the wrapped entry exactly as Claude Desktop
// would (command, args and env from the file; mcpbox's test isolation
// through its MCPBOX_* variables), calls tools through it with the Go SDK
// client, and unwraps the file back to its original bytes.
func TestWrapClaudeDesktop(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-everything")
	ctx := testutil.Context(t, 2*time.Minute)
	home := t.TempDir()
	cfg := filepath.Join(home, ".config", "Claude", "claude_desktop_config.json")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	orig := `{
  "mcpServers": {
    "everything": {
      "command": "` + node + `",
      "args": ["` + server + `", "stdio"],
      "env": { "E2E_TOKEN": "token-value-1234" }
    },
    "remote": { "url": "https://mcp.example.com/mcp" }
  }
}
`
	if err := os.WriteFile(cfg, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(e.bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_STATE_HOME=" + e.stateDir}
		cmd.Dir = home
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("mcpbox %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	out, errOut := cli("clients", "--json")
	var clients []struct {
		Client         string
		Stdio, Wrapped int
	}
	if err := json.Unmarshal([]byte(out), &clients); err != nil || len(clients) != 1 || clients[0].Client != "claude-desktop" || clients[0].Stdio != 1 || clients[0].Wrapped != 0 {
		t.Fatalf("clients: %v %s %s", err, out, errOut)
	}
	diff, errOut := cli("wrap", "--yes")
	if !strings.Contains(diff, `+      "command": "`+e.bin+`",`) || !strings.Contains(errOut, "leave remote: remote server") ||
		!strings.Contains(errOut, "wrap everything (profile untrusted") {
		t.Errorf("wrap printed:\n%s\n%s", diff, errOut)
	}
	backups, _ := filepath.Glob(cfg + ".mcpbox-backup-*")
	if len(backups) != 1 {
		t.Errorf("backups: %v", backups)
	}

	// Start the entry as the client would.
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
	entry := file.MCPServers["everything"]
	cmd := exec.Command(entry.Command, entry.Args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_STATE_HOME=" + e.stateDir,
		"MCPBOX_CONTAINERD_ADDRESS=" + e.addr, "MCPBOX_NAMESPACE=" + e.namespace, "MCPBOX_RUN_DIR=" + e.runDir}
	for k, v := range entry.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cs, _ := e.connectCmd(ctx, cmd)
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "wrapped"}})
	if err != nil || !strings.Contains(text(r), "wrapped") {
		t.Errorf("echo: %v", err)
	}
	r, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(text(r), `"E2E_TOKEN": "[REDACTED:E2E_TOKEN]"`) {
		t.Errorf("the entry's env did not reach the server (or came back unredacted): %v %.300s", err, text(r))
	}
	cs.Close()

	out, _ = cli("clients", "--json")
	json.Unmarshal([]byte(out), &clients)
	if len(clients) != 1 || clients[0].Wrapped != 1 {
		t.Errorf("clients after wrap: %s", out)
	}
	cli("unwrap", "--yes")
	if data, _ := os.ReadFile(cfg); string(data) != orig {
		t.Errorf("unwrap did not restore the file:\n%s", data)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}
