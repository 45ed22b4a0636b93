package clientconfig

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testMcpbox = "/usr/local/bin/mcpbox"

// TestGolden wraps every client format's sample (comments, odd spacing,
// Windows paths, env blocks, remote, docker and already-wrapped entries)
// and checks the result against testdata/*.wrapped.*, then unwraps it and
// requires the original bytes back.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file   string
		client string
		scope  string
		all    bool
		wrap   []string // entries expected to be wrapped
	}{
		{"claude-desktop.json", "claude-desktop", "user", false, []string{"filesystem", "github", "fetch", "windows-npx", "no-args"}},
		{"claude-code.json", "claude-code", "user", false, []string{"memory", "sqlite"}},
		{"vscode-mcp.json", "vscode", "project", false, []string{"fs", "time"}},
		{"zed-settings.json", "zed", "user", false, []string{"brave", "deno-one"}},
		{"codex-config.toml", "codex", "user", false, []string{"docs", "my server", "bare"}},
		{"gemini-settings.json", "gemini", "user", false, []string{"pythonTools"}},
		{"cursor-mcp.json", "cursor", "project", false, []string{"playwright", "sqlite"}},
		{"windsurf-mcp_config.json", "windsurf", "user", false, []string{"playwright", "sqlite"}},
		{"claude-desktop.json", "claude-desktop", "user", true, []string{"filesystem", "github", "fetch", "windows-npx", "no-args", "mine"}},
	} {
		name := tc.file
		if tc.all {
			name += "/all"
		}
		t.Run(name, func(t *testing.T) {
			spec := specFor(t, tc.client, tc.scope)
			orig, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(tc.file, orig, spec)
			if err != nil {
				t.Fatal(err)
			}
			var wrapped []string
			for _, e := range f.Entries() {
				if ok, _ := e.Wrappable(tc.all); ok {
					if err := f.Wrap(e, testMcpbox); err != nil {
						t.Fatalf("wrap %s: %v", e.Name, err)
					}
					wrapped = append(wrapped, e.Name)
				}
			}
			if strings.Join(wrapped, ",") != strings.Join(tc.wrap, ",") {
				t.Errorf("wrapped %v, want %v", wrapped, tc.wrap)
			}
			out := f.Bytes()
			ext := filepath.Ext(tc.file)
			golden := filepath.Join("testdata", strings.TrimSuffix(tc.file, ext)+map[bool]string{false: "", true: ".all"}[tc.all]+".wrapped"+ext)
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("wrapped file differs from %s:\n%s", golden, Diff(golden, want, out))
			}

			// The wrapped file parses, and every wrapped entry runs the
			// original command through `mcpbox run`, passing its env names.
			g, err := Parse(golden, out, spec)
			if err != nil {
				t.Fatalf("the wrapped file does not parse: %v", err)
			}
			before := map[string]Entry{}
			for _, e := range f0(t, tc.file, orig, spec).Entries() {
				before[e.Name] = e
			}
			for _, e := range g.Entries() {
				b := before[e.Name]
				if ok, _ := b.Wrappable(tc.all); !ok {
					continue
				}
				cmd, args, ok := e.Inner()
				if !ok || e.Command != testMcpbox || cmd != b.Command || strings.Join(args, "\x00") != strings.Join(b.Args, "\x00") {
					t.Errorf("%s wrapped as %q %q", e.Name, e.Command, e.Args)
				}
				for _, n := range b.EnvNames {
					if !strings.Contains(strings.Join(e.Args, " "), "--env "+n+" ") {
						t.Errorf("%s: --env %s missing from %q", e.Name, n, e.Args)
					}
				}
			}

			// Unwrap is the exact inverse.
			for _, e := range g.Entries() {
				if e.Wrapped() && contains(tc.wrap, e.Name) {
					if err := g.Unwrap(e); err != nil {
						t.Fatalf("unwrap %s: %v", e.Name, err)
					}
				}
			}
			if tc.all {
				// The one inexact case: an empty "args": [] is dropped.
				orig = bytes.Replace(orig, []byte(`"mine": { "command": "/usr/local/bin/my-server", "args": [] }`), []byte(`"mine": { "command": "/usr/local/bin/my-server" }`), 1)
			}
			if back := g.Bytes(); !bytes.Equal(back, orig) {
				t.Errorf("wrap then unwrap changed the file:\n%s", Diff(tc.file, orig, back))
			}
		})
	}
}

func f0(t *testing.T, name string, data []byte, spec *FileSpec) File {
	f, err := Parse(name, data, spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func specFor(t *testing.T, client, scope string) *FileSpec {
	c := Find(client)
	if c == nil {
		t.Fatalf("no client %s", client)
	}
	for i := range c.Files {
		if c.Files[i].Scope == scope {
			return &c.Files[i]
		}
	}
	t.Fatalf("%s has no %s file", client, scope)
	return nil
}

func TestEntriesAndReasons(t *testing.T) {
	data, _ := os.ReadFile("testdata/claude-desktop.json")
	f, err := Parse("x", data, specFor(t, "claude-desktop", "user"))
	if err != nil {
		t.Fatal(err)
	}
	why := map[string]string{}
	for _, e := range f.Entries() {
		_, why[e.Name] = e.Wrappable(false)
	}
	for name, want := range map[string]string{
		"remote":  "remote server",
		"docker":  "runs in a container already (docker)",
		"wrapped": "already wrapped",
		"mine":    "use --all",
		"github":  "",
	} {
		if !strings.Contains(why[name], want) || (want == "" && why[name] != "") {
			t.Errorf("%s: %q, want %q", name, why[name], want)
		}
	}
}

// TestBrokenFiles: a file that does not parse is an error naming the file,
// line and column.
func TestBrokenFiles(t *testing.T) {
	for _, tc := range []struct{ file, client, want string }{
		{"broken.json", "claude-desktop", "broken.json: line 3, column"},
		{"broken.toml", "codex", "broken.toml: line 2, column"},
	} {
		data, _ := os.ReadFile(filepath.Join("testdata", tc.file))
		_, err := Parse(tc.file, data, specFor(t, tc.client, "user"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.file, err, tc.want)
		}
	}
}

// TestPaths covers every client's path table on all three systems.
func TestPaths(t *testing.T) {
	envs := map[string]Env{
		Linux:   {OS: Linux, Home: "/home/u", Project: "/home/u/app"},
		Darwin:  {OS: Darwin, Home: "/Users/u", Project: "/Users/u/app"},
		Windows: {OS: Windows, Home: `C:\Users\u`, AppData: `C:\Users\u\AppData\Roaming`, Project: `C:\src\app`},
	}
	want := map[string][]string{
		Linux: {"/home/u/.config/Claude/claude_desktop_config.json", "/home/u/.claude.json", "/home/u/app/.mcp.json",
			"/home/u/.cursor/mcp.json", "/home/u/app/.cursor/mcp.json", "/home/u/.config/Code/User/mcp.json", "/home/u/app/.vscode/mcp.json",
			"/home/u/.codeium/windsurf/mcp_config.json", "/home/u/.gemini/settings.json", "/home/u/app/.gemini/settings.json",
			"/home/u/.codex/config.toml", "/home/u/.config/zed/settings.json"},
		Darwin: {"/Users/u/Library/Application Support/Claude/claude_desktop_config.json", "/Users/u/.claude.json", "/Users/u/app/.mcp.json",
			"/Users/u/.cursor/mcp.json", "/Users/u/app/.cursor/mcp.json", "/Users/u/Library/Application Support/Code/User/mcp.json", "/Users/u/app/.vscode/mcp.json",
			"/Users/u/.codeium/windsurf/mcp_config.json", "/Users/u/.gemini/settings.json", "/Users/u/app/.gemini/settings.json",
			"/Users/u/.codex/config.toml", "/Users/u/.config/zed/settings.json"},
		Windows: {`C:\Users\u\AppData\Roaming\Claude\claude_desktop_config.json`, `C:\Users\u\.claude.json`, `C:\src\app\.mcp.json`,
			`C:\Users\u\.cursor\mcp.json`, `C:\src\app\.cursor\mcp.json`, `C:\Users\u\AppData\Roaming\Code\User\mcp.json`, `C:\src\app\.vscode\mcp.json`,
			`C:\Users\u\.codeium\windsurf\mcp_config.json`, `C:\Users\u\.gemini\settings.json`, `C:\src\app\.gemini\settings.json`,
			`C:\Users\u\.codex\config.toml`, `C:\Users\u\AppData\Roaming\Zed\settings.json`},
	}
	for os, env := range envs {
		var got []string
		for _, c := range Candidates(env) {
			got = append(got, c.Path)
		}
		if strings.Join(got, "\n") != strings.Join(want[os], "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", os, strings.Join(got, "\n"), strings.Join(want[os], "\n"))
		}
	}
	xdg := Env{OS: Linux, Home: "/home/u", XDGConfig: "/cfg"}
	if p := xdg.Resolve("$XDG_CONFIG_HOME/zed/settings.json"); p != "/cfg/zed/settings.json" {
		t.Errorf("XDG_CONFIG_HOME: %s", p)
	}
}

// TestWriteSafety: backup, mode kept, refuses a file changed since read.
func TestWriteSafety(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mcp.json")
	orig := []byte(`{"mcpServers":{}}`)
	if err := os.WriteFile(p, orig, 0o640); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	backup, err := Write(p, orig, []byte(`{"mcpServers":{"a":{}}}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(backup); !bytes.Equal(b, orig) || !strings.HasSuffix(backup, ".mcpbox-backup-20261126T130000Z") {
		t.Errorf("backup %s: %q", backup, b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	// Changed under our feet: refused, nothing written.
	if _, err := Write(p, orig, []byte("{}"), now.Add(time.Second)); err == nil || !strings.Contains(err.Error(), "changed since it was read") {
		t.Errorf("write over a changed file: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != `{"mcpServers":{"a":{}}}` {
		t.Errorf("file now %q", b)
	}
}

func TestDiff(t *testing.T) {
	a := []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nl\n")
	b := []byte("a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nl\nk\n")
	want := "--- f\n+++ f (wrapped)\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n@@ -9,3 +9,4 @@\n i\n j\n l\n+k\n"
	if got := Diff("f", a, b); got != want {
		t.Errorf("diff:\n%s\nwant\n%s", got, want)
	}
}
