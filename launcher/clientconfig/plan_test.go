package clientconfig

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/profiles"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

const cursorConfig = `{
  // one of each
  "mcpServers": {
    "fs": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"] },
    "tool": { "command": "/opt/tool/bin/tool", "args": ["--stdio"] },
    "done": { "command": "/usr/bin/mcpbox", "args": ["run", "--", "uvx", "mcp-server-fetch"] },
    "remote": { "url": "https://mcp.example.com/mcp" }
  }
}
`

// TestDetect: the files that exist are listed with their counts, a broken
// one with its error; `mcpbox clients --json` prints these fields.
func TestDetect(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".cursor", "mcp.json"), cursorConfig)
	writeFile(t, filepath.Join(home, ".codeium", "windsurf", "mcp_config.json"), `{"mcpServers": {`)
	got := Detect(Env{OS: Linux, Home: home})
	if len(got) != 2 {
		t.Fatalf("Detect found %d files, want 2: %+v", len(got), got)
	}
	cursor, windsurf := got[0], got[1]
	if cursor.Client != "cursor" || cursor.Scope != "user" || cursor.Stdio != 3 || cursor.Wrapped != 1 || cursor.Error != "" {
		t.Errorf("cursor: %+v", cursor)
	}
	if windsurf.Client != "windsurf" || !strings.Contains(windsurf.Error, "mcp_config.json: line 1, column") {
		t.Errorf("windsurf: %+v", windsurf)
	}
	b, err := json.Marshal(cursor)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{"client", "display", "path", "scope", "stdio", "wrapped"}; !slices.Equal(names, want) {
		t.Errorf("JSON keys %v, want %v", names, want)
	}
}

// TestPlanWrapUnwrap: a plan names what it wraps (with the profile run
// will pick) and what it leaves and why, writes nothing until applied;
// applying keeps a backup; unwrapping restores the original bytes.
func TestPlanWrapUnwrap(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, ".cursor", "mcp.json")
	writeFile(t, cfg, cursorConfig)
	opts := PlanOptions{Mcpbox: "/usr/local/bin/mcpbox", Env: Env{OS: Linux, Home: home}, Catalog: profiles.NewCatalog(t.TempDir())}
	changes, err := Plan(opts)
	if err != nil || len(changes) != 1 {
		t.Fatalf("Plan: %v, %d changes", err, len(changes))
	}
	ch := changes[0]
	if len(ch.Changed) != 1 || ch.Changed[0].Name != "fs" || ch.Changed[0].Section != "mcpServers" || ch.Changed[0].Profile != "filesystem" {
		t.Errorf("changed %+v, want fs with profile filesystem", ch.Changed)
	}
	why := map[string]string{}
	for _, it := range ch.Skipped {
		why[it.Name] = it.Why
	}
	for name, want := range map[string]string{"tool": "use --all", "done": "already wrapped", "remote": "remote server"} {
		if !strings.Contains(why[name], want) {
			t.Errorf("left %s because %q, want %q", name, why[name], want)
		}
	}
	if !strings.Contains(ch.Diff, `+    "fs": { "command": "/usr/local/bin/mcpbox", "args": ["run", "--", "npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp"] },`) {
		t.Errorf("diff:\n%s", ch.Diff)
	}
	if data, _ := os.ReadFile(cfg); string(data) != cursorConfig {
		t.Fatal("Plan wrote the file")
	}
	backup, err := ch.Apply()
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(backup); string(data) != cursorConfig {
		t.Errorf("backup %s holds %q", backup, data)
	}
	// Backups are named by the second; the unwrap below may come in the
	// same one.
	if err := os.Remove(backup); err != nil {
		t.Fatal(err)
	}
	if got := Detect(opts.Env); len(got) != 1 || got[0].Wrapped != 2 {
		t.Errorf("after wrap: %+v", got)
	}

	// --all with --server: only the named entry, any command.
	opts.All, opts.Servers = true, []string{"tool"}
	changes, err = Plan(opts)
	if err != nil || len(changes) != 1 || len(changes[0].Changed) != 1 || changes[0].Changed[0].Name != "tool" || len(changes[0].Skipped) != 0 {
		t.Fatalf("Plan --all --server tool: %v %+v", err, changes)
	}

	opts.All, opts.Servers, opts.Unwrap = false, nil, true
	changes, err = Plan(opts)
	if err != nil || len(changes) != 1 || len(changes[0].Changed) != 2 {
		t.Fatalf("Plan unwrap: %v %+v", err, changes)
	}
	if _, err := changes[0].Apply(); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(cursorConfig, `"command": "/usr/bin/mcpbox", "args": ["run", "--", "uvx", "mcp-server-fetch"]`, `"command": "uvx", "args": ["mcp-server-fetch"]`, 1)
	if data, _ := os.ReadFile(cfg); string(data) != want {
		t.Errorf("after unwrap:\n%s\nwant:\n%s", data, want)
	}
	// Nothing left to unwrap: a plan without a diff, and Apply writes nothing.
	changes, err = Plan(opts)
	if err != nil || len(changes) != 1 || changes[0].Diff != "" {
		t.Fatalf("second unwrap: %v %+v", err, changes)
	}
	if backup, err := changes[0].Apply(); backup != "" || err != nil {
		t.Errorf("Apply of no change: %q, %v", backup, err)
	}
}

// TestPlanInputErrors: what stops a plan is an *InputError naming the
// option at fault, and no file is touched.
func TestPlanInputErrors(t *testing.T) {
	home := t.TempDir()
	broken := filepath.Join(home, ".cursor", "mcp.json")
	writeFile(t, broken, `{"mcpServers": {"a": {"command": "npx",}`)
	catalog := profiles.NewCatalog(t.TempDir())
	for _, tc := range []struct {
		name   string
		opts   PlanOptions
		option string
		want   string
	}{
		{"unknown client", PlanOptions{Clients: []string{"emacs"}}, "client", `unknown client "emacs"; clients: claude-desktop, claude-code, cursor`},
		{"missing --config", PlanOptions{Config: filepath.Join(home, "none.json")}, "config", "none.json: no such file or directory"},
		{"broken --config", PlanOptions{Config: broken}, "config", "mcp.json: line 1, column"},
		{"broken detected file", PlanOptions{Env: Env{OS: Linux, Home: home}}, "", "(fix the file, nothing was changed)"},
		{"no file", PlanOptions{Env: Env{OS: Linux, Home: t.TempDir()}}, "", "no client config file found; name one with --config FILE"},
		{"no file of that client", PlanOptions{Clients: []string{"zed"}, Env: Env{OS: Linux, Home: home}}, "", "no client config file found"},
	} {
		tc.opts.Catalog = catalog
		_, err := Plan(tc.opts)
		var input *InputError
		if !errors.As(err, &input) || input.Option != tc.option || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (option %q), want an InputError for %q saying %q", tc.name, err, optionOf(input), tc.option, tc.want)
		}
	}
	_, err := Plan(PlanOptions{Config: filepath.Join(home, "none.json"), Catalog: catalog})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing --config file: %v, want fs.ErrNotExist through the InputError", err)
	}
	if data, _ := os.ReadFile(broken); string(data) != `{"mcpServers": {"a": {"command": "npx",}` {
		t.Errorf("the broken file was changed: %q", data)
	}
}

func optionOf(e *InputError) string {
	if e == nil {
		return "<none>"
	}
	return e.Option
}

// TestGuessSpec: a file given by --config is read by its extension and the
// key that holds its servers.
func TestGuessSpec(t *testing.T) {
	for _, tc := range []struct {
		path, data string
		format     Format
		sections   [][]string
	}{
		{"/x/config.toml", "", TOML, [][]string{{"mcp_servers"}}},
		{"/x/settings.json", `{"context_servers": {}}`, JSONC, [][]string{{"context_servers"}}},
		{"/x/mcp.json", `{"servers": {}}`, JSONC, [][]string{{"servers"}}},
		{"/x/mcp.json", `{"mcpServers": {"servers": {}}}`, JSONC, [][]string{{"mcpServers"}}},
		{"/x/.claude.json", `{}`, JSONC, [][]string{{"mcpServers"}, {"projects", "*", "mcpServers"}}},
	} {
		s := guessSpec(tc.path, []byte(tc.data))
		if s.Format != tc.format || s.Scope != "file" || !slices.EqualFunc(s.Sections, tc.sections, slices.Equal) {
			t.Errorf("guessSpec(%s, %s) = %+v", tc.path, tc.data, s)
		}
	}
}
