package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/audit"
)

// runApp runs mcpbox with args and returns what it wrote to stdout and
// stderr. The audit commands write to os.Stdout, which this swaps for a
// pipe, so tests that use it must not run in parallel.
func runApp(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	capture := func(f **os.File) func() string {
		r, w, perr := os.Pipe()
		if perr != nil {
			t.Fatal(perr)
		}
		old := *f
		*f = w
		got := make(chan string)
		go func() {
			b, _ := io.ReadAll(r)
			got <- string(b)
		}()
		return func() string {
			*f = old
			w.Close()
			defer r.Close()
			return <-got
		}
	}
	outDone, errDone := capture(&os.Stdout), capture(&os.Stderr)
	app := newApp()
	app.Writer, app.ErrWriter = os.Stderr, os.Stderr
	err = app.RunContext(ctx, append([]string{"mcpbox"}, args...))
	return outDone(), errDone(), err
}

const (
	fixtureA = `{"time":"2026-11-26T12:00:01.123456Z","dir":"c2s","kind":"request","id":7,"method":"tools/call","tool":"echo","args_bytes":17,"args_sha256":"ab12cd34ef567890"}
{"time":"2026-11-26T12:00:01.124690Z","dir":"s2c","kind":"response","id":7,"method":"tools/call","tool":"echo","duration_ms":1.234}
{"time":"2026-11-26T12:00:03Z","dir":"s2c","kind":"error","id":8,"method":"tools/call","tool":"rm","error_code":-32602,"blocked":true}
{"time":"2026-11-26T12:00:04Z","dir":"s2c","kind":"policy","policy":"pin","tool":"add","severity":"high","detail":"tool changed since it was pinned; withheld","new_field":42}
{"time":"2026-11-26T12:00:0`
	fixtureB = `{"time":"2026-11-26T12:00:02Z","dir":"s2c","kind":"response","id":9,"method":"tools/call","tool":"read","duration_ms":3.1,"redacted":{"github-token":1,"GITHUB_TOKEN":2}}
`
)

func auditFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, s := range map[string]string{"server-everything.jsonl": fixtureA, "fs.jsonl": fixtureB} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAuditCommand(t *testing.T) {
	old := time.Local
	time.Local = time.UTC // the readable times are local
	t.Cleanup(func() { time.Local = old })
	dir := auditFixture(t)
	torn := filepath.Join(dir, "server-everything.jsonl") + ":5: "

	for _, tc := range []struct {
		name       string
		args       []string
		want       string
		wantStderr string
	}{
		{
			name: "show",
			args: []string{"audit", "show", "--dir", dir},
			want: `12:00:01.123 server-everything → request  #7 tools/call echo args=17B sha256:ab12cd34
12:00:01.124 server-everything ← response #7 tools/call echo 1.2ms
12:00:02.000 fs ← response #9 tools/call read 3.1ms redacted GITHUB_TOKEN×2 github-token×1
12:00:03.000 server-everything ← error    #8 tools/call rm code=-32602 BLOCKED
12:00:04.000 server-everything ! pin add [high]: tool changed since it was pinned; withheld new_field=42
`,
			wantStderr: torn,
		},
		{
			name: "show server and tool",
			args: []string{"audit", "show", "--dir", dir, "--server", "server-everything", "--tool", "echo"},
			want: `12:00:01.123 server-everything → request  #7 tools/call echo args=17B sha256:ab12cd34
12:00:01.124 server-everything ← response #7 tools/call echo 1.2ms
`,
		},
		{
			name: "show since time",
			args: []string{"audit", "show", "--dir", dir, "--since", "2026-11-26T12:00:03Z", "--json"},
			want: `{"time":"2026-11-26T12:00:03Z","dir":"s2c","kind":"error","id":8,"method":"tools/call","tool":"rm","error_code":-32602,"blocked":true}
{"time":"2026-11-26T12:00:04Z","dir":"s2c","kind":"policy","policy":"pin","tool":"add","severity":"high","detail":"tool changed since it was pinned; withheld","new_field":42}
`,
		},
		{
			name: "show since date",
			args: []string{"audit", "show", "--dir", dir, "--since", "2026-11-27"},
			want: "",
		},
		{
			name: "show method json",
			args: []string{"audit", "show", "--dir", dir, "--server", "fs", "--json", "--method", "tools/call"},
			want: fixtureB,
		},
		{
			name: "tail",
			args: []string{"audit", "tail", "--dir", dir, "-n", "2"},
			want: `12:00:03.000 server-everything ← error    #8 tools/call rm code=-32602 BLOCKED
12:00:04.000 server-everything ! pin add [high]: tool changed since it was pinned; withheld new_field=42
`,
		},
		{
			name: "tail json",
			args: []string{"audit", "tail", "--dir", dir, "-n", "1", "--json", "--server", "fs"},
			want: fixtureB,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := runApp(t, context.Background(), tc.args...)
			if err != nil {
				t.Fatalf("%v\nstderr: %s", err, stderr)
			}
			if out != tc.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tc.want)
			}
			if tc.wantStderr != "" && !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.wantStderr)
			}
		})
	}
}

func TestAuditCommandSinceDuration(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339Nano)
	recent := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339Nano)
	lines := `{"time":"` + old + `","dir":"c2s","kind":"request","id":1,"method":"ping"}
{"time":"` + recent + `","dir":"c2s","kind":"request","id":2,"method":"ping"}
`
	if err := os.WriteFile(filepath.Join(dir, "s.jsonl"), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runApp(t, context.Background(), "audit", "show", "--dir", dir, "--since", "1h", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if want := lines[strings.Index(lines, "\n")+1:]; out != want {
		t.Errorf("--since 1h printed %q, want %q", out, want)
	}
}

func TestAuditCommandDates(t *testing.T) {
	dir := t.TempDir()
	lines := `{"time":"2026-11-25T23:00:00Z","dir":"c2s","kind":"request","id":1,"method":"ping"}
{"time":"2026-11-27T01:00:00Z","dir":"s2c","kind":"response","id":1,"method":"ping"}
`
	if err := os.WriteFile(filepath.Join(dir, "s.jsonl"), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runApp(t, context.Background(), "audit", "show", "--dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range []string{"2026-11-25T23:00:00Z", "2026-11-27T01:00:00Z"} {
		tm, _ := time.Parse(time.RFC3339, ts)
		if want := tm.Local().Format("2006-01-02 15:04:05.000"); !strings.Contains(out, want) {
			t.Errorf("output %q lacks the full date %q", out, want)
		}
	}
}

func TestAuditCommandErrors(t *testing.T) {
	dir := auditFixture(t)
	_, _, err := runApp(t, context.Background(), "audit", "show", "--dir", dir, "--server", "nope")
	var usage *launcher.UsageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "fs, server-everything") {
		t.Errorf("unknown server: %v; want a usage error naming the servers", err)
	}

	_, _, err = runApp(t, context.Background(), "audit", "tail", "--dir", dir, "--server", "../fs")
	if !errors.As(err, &usage) || err.Error() != "--server: \"../fs\" is not a server name: use a name from `mcpbox audit show` or the file names in the audit directory" {
		t.Errorf("server ../fs: %v; want a usage error saying it is not a server name", err)
	}

	_, _, err = runApp(t, context.Background(), "audit", "show", "--dir", dir, "--since", "yesterday")
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--since") {
		t.Errorf("bad --since: %v; want a usage error", err)
	}

	empty := filepath.Join(t.TempDir(), "none")
	out, stderr, err := runApp(t, context.Background(), "audit", "tail", "--dir", empty)
	if err != nil || out != "" || !strings.Contains(stderr, "no audit logs in "+empty+" yet") {
		t.Errorf("missing dir: out %q, stderr %q, err %v", out, stderr, err)
	}
}

func TestAuditTailFollow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.jsonl")
	a, err := audit.Open(path, 200, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	line := func(id string) string {
		return `{"time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","dir":"c2s","kind":"request","id":` + id + `,"method":"ping"}` + "\n"
	}
	a.Write([]byte(line("1")))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	go func() {
		time.Sleep(400 * time.Millisecond)
		for _, id := range []string{"2", "3", "4", "5"} { // rotates: ~110-byte lines, 200-byte files
			a.Write([]byte(line(id)))
		}
	}()
	out, stderr, err := runApp(t, ctx, "audit", "tail", "--dir", dir, "-f", "--json")
	if err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.Index(l, `"id":`)
		if i < 0 {
			t.Fatalf("line %q has no id", l)
		}
		ids = append(ids, l[i+5:i+6])
	}
	if got := strings.Join(ids, ","); got != "1,2,3,4,5" {
		t.Errorf("followed ids %s, want 1,2,3,4,5\nstderr: %s", got, stderr)
	}
}
