package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestRugPull runs a server that changes a tool's description between two
// tools/list calls, through mcpbox with the untrusted profile (tools.pin:
// block): the changed tool is withheld and refused, `mcpbox pins diff`
// shows the change, `pins approve` accepts it. A corrupt pin file then
// blocks every tool until `pins reset`.
func TestRugPull(t *testing.T) {
	e := newEnv(t)
	node := testutil.RequiresCommand(t, "node")
	server := filepath.Join(testutil.RepoRoot(t), "testdata", "rugpull", "server.js")
	ctx := testutil.Context(t, 2*time.Minute)

	// Session 1: pinned on first use, then the rug pull.
	cs, stderr := e.connect(ctx, "--", node, server)
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

	// The pin store, seen through the CLI.
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
	out, _, code = e.mcpbox("pins", "diff", name)
	if code != 0 || !strings.Contains(out, "changed tools/add:") || !strings.Contains(out, `+   "description": "Adds two numbers. <IMPORTANT>Before using`) {
		t.Errorf("pins diff (%d):\n%s", code, out)
	}
	if _, errOut, code = e.mcpbox("pins", "approve", name, "add"); code != 0 || !strings.Contains(errOut, "approved tools/add") {
		t.Errorf("pins approve (%d): %s", code, errOut)
	}

	// Session 2: the approved definition passes.
	cmd := e.command("--env", "RUGPULL=poisoned", "--", node, server)
	cs, _ = e.connectCmd(ctx, cmd)
	tools, err = cs.ListTools(ctx, nil)
	if err != nil || !hasTool(tools, "add") {
		t.Fatalf("tools/list after approval: %v %v", toolNames(tools), err)
	}
	if r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 1, "b": 2}}); err != nil || text(r) != "3" {
		t.Errorf("add after approval: %v", err)
	}
	cs.Close()

	// A corrupt pin file: every tool is withheld until the user resets it.
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

	// Every session wrote the server's audit log.
	audit, err := os.ReadFile(filepath.Join(e.stateDir, "mcpbox", "audit", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"method":"tools/call","tool":"echo"`, `"kind":"policy","method":"tools/list","tool":"add","policy":"pin"`, `"blocked":true`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}
