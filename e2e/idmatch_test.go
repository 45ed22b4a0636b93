package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestIDSpoofRealClients runs a hostile server (testdata/idspoof) that
// answers tools/list under its request's id spelled another way, through
// mcpbox with a profile that denies one of its tools and pins the others,
// and drives it with the official TypeScript SDK client (pinned in
// testdata/servers) and the official Go SDK client. Each client matches the
// re-spelled id to its request, as mcpbox must too: neither sees the denied
// tool nor the changed one, calls to them are refused, and the second copy
// of each answer, under yet another spelling, is judged as an answer too.
func TestIDSpoofRealClients(t *testing.T) {
	e := newEnv(t)
	node, _ := testutil.Server(t, "server-everything") // node, and the npm fixtures with the SDK
	root := testutil.RepoRoot(t)
	server := filepath.Join(root, "testdata", "idspoof", "server.js")
	tsClient := filepath.Join(root, "testdata", "servers", "sdk-client.mjs")
	if _, err := os.Stat(filepath.Join(root, "testdata", "servers", "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		t.Fatalf("the TypeScript SDK is missing from the npm fixtures (run `make fixtures`): %v", err)
	}
	profile := filepath.Join(t.TempDir(), "idspoof.yaml")
	if err := os.WriteFile(profile, []byte("name: idspoof\nextends: untrusted\ntools:\n  deny: [exfiltrate]\n  pin: block\n  scan: warn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t, 3*time.Minute)

	// check reads what the client saw: two lists, then calls to the
	// changed and the denied tool.
	check := func(t *testing.T, lists [][]string, callErrs map[string]string, stderr string) {
		t.Helper()
		if len(lists) != 2 || !slices.Equal(lists[0], []string{"add", "echo"}) || !slices.Equal(lists[1], []string{"echo"}) {
			t.Errorf("tools/list gave %v, want [add echo] then [echo] (add changed, exfiltrate denied)", lists)
		}
		if err := callErrs["add"]; !strings.Contains(err, "tool add is withheld by mcpbox: tool changed since it was pinned") {
			t.Errorf("call to the changed tool: %q", err)
		}
		if err := callErrs["exfiltrate"]; !strings.Contains(err, "tool exfiltrate is blocked by the profile (tools.deny)") {
			t.Errorf("call to the denied tool: %q", err)
		}
	}

	t.Run("go sdk", func(t *testing.T) {
		cmd := e.command("--profile", profile, "--env", "IDSPOOF=exp", "--", node, server)
		cs, stderr := e.connectCmd(ctx, cmd)
		var lists [][]string
		for range 2 {
			r, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			var names []string
			for _, tool := range r.Tools {
				names = append(names, tool.Name)
			}
			lists = append(lists, names)
		}
		callErrs := map[string]string{}
		for _, name := range []string{"add", "exfiltrate"} {
			r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{"a": 1, "b": 2}})
			switch {
			case err != nil:
				callErrs[name] = err.Error()
			default:
				callErrs[name] = "the call went through: " + text(r)
			}
		}
		cs.Close()
		check(t, lists, callErrs, stderr.String())
	})

	t.Run("typescript sdk", func(t *testing.T) {
		args := append([]string{tsClient}, e.command("--profile", profile, "--env", "IDSPOOF=string", "--", node, server).Args...)
		cmd := exec.CommandContext(ctx, node, args...)
		cmd.Dir = filepath.Join(root, "testdata", "servers")
		cmd.Env = append(e.environ(), "CALL_TOOLS=add,exfiltrate")
		var stdout, stderr lockedBuilder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("TypeScript SDK client: %v\nstderr:\n%s", err, stderr.String())
		}
		var report struct {
			Lists [][]string
			Calls map[string]struct{ Text, Error string }
		}
		if err := json.Unmarshal([]byte(stdout.String()), &report); err != nil {
			t.Fatalf("client report %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
		}
		callErrs := map[string]string{}
		for name, c := range report.Calls {
			callErrs[name] = c.Error
			if c.Text != "" {
				callErrs[name] = "the call went through: " + c.Text
			}
		}
		check(t, report.Lists, callErrs, stderr.String())
	})

	// Both sessions' audit logs attribute every answer, the re-spelled ones
	// included, to the tools/list it answers: each went through the filter
	// and the pins (the request stays in flight until an answer spelled as
	// it was, so a second spelling is judged as well, never passed unread).
	logs, _ := filepath.Glob(filepath.Join(e.stateDir, "mcpbox", "audit", "*.jsonl"))
	var audit []byte
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		audit = append(audit, data...)
	}
	n := 0
	for _, l := range bytes.Split(audit, []byte("\n")) {
		if bytes.Contains(l, []byte(`"dir":"s2c"`)) && bytes.Contains(l, []byte(`"method":"tools/list"`)) {
			n++
		}
	}
	if n < 8 {
		t.Errorf("%d answers attributed to tools/list, want at least 8 (two lists answered twice, per session):\n%s", n, audit)
	}
}
