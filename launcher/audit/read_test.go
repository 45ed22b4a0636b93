package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/launcher/audit"
)

// auditLine is one audit line at t with the given extra fields.
func auditLine(t time.Time, fields string) string {
	if fields != "" {
		fields = "," + fields
	}
	return fmt.Sprintf(`{"time":%q%s}`+"\n", t.UTC().Format(time.RFC3339Nano), fields)
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	write := func(name string, lines ...string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.jsonl.2", auditLine(at(1), `"kind":"request","tool":"echo","method":"tools/call"`), auditLine(at(3), `"kind":"response","tool":"echo"`))
	write("a.jsonl.1", auditLine(at(5), `"kind":"request","tool":"add","future_field":{"x":1}`))
	write("a.jsonl", auditLine(at(7), `"kind":"request","tool":"echo"`), "not json\n", auditLine(at(9), `"kind":"notification","method":"notifications/initialized"`), `{"time":"2026-11-26T12:00:1`)
	write("b.jsonl", auditLine(at(2), `"kind":"request","tool":"echo"`), auditLine(at(7), `"kind":"response","tool":"echo","n":"b7"`))
	write("a.jsonl.lock", "")
	write("notes.txt", "not a log\n")

	servers, err := audit.Servers(dir)
	if err != nil || strings.Join(servers, ",") != "a,b" {
		t.Fatalf("Servers = %q, %v; want a,b", servers, err)
	}

	var warns []string
	warn := func(err error) { warns = append(warns, err.Error()) }
	secs := func(rs []audit.Record) string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("%s%d", r.Server, int(r.Time.Sub(t0).Seconds())))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name string
		q    audit.Query
		want string
	}{
		{"all", audit.Query{}, "a1 b2 a3 a5 a7 b7 a9"},
		{"server", audit.Query{Server: "a"}, "a1 a3 a5 a7 a9"},
		{"since", audit.Query{Since: at(5)}, "a5 a7 b7 a9"},
		{"tool", audit.Query{Tool: "echo"}, "a1 b2 a3 a7 b7"},
		{"method", audit.Query{Method: "notifications/initialized"}, "a9"},
		{"server+tool+since", audit.Query{Server: "b", Tool: "echo", Since: at(3)}, "b7"},
		{"missing server", audit.Query{Server: "c"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warns = nil
			rs, err := audit.Read(dir, tc.q, warn)
			if err != nil {
				t.Fatal(err)
			}
			if got := secs(rs); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	warns = nil
	rs, err := audit.Read(dir, audit.Query{Server: "a"}, warn)
	if err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(dir, "a.jsonl")
	if len(warns) != 2 || !strings.HasPrefix(warns[0], cur+":2: ") || !strings.HasPrefix(warns[1], cur+":4: ") {
		t.Errorf("warnings = %q, want %s:2 and %s:4", warns, cur, cur)
	}
	if r := rs[2]; r.File != filepath.Join(dir, "a.jsonl.1") || r.Line != 1 || string(r.Fields()["future_field"]) != `{"x":1}` {
		t.Errorf("record 3 = %s:%d %s", r.File, r.Line, r.Raw)
	}
	if r := rs[4]; r.File != cur || r.Line != 3 || !bytes.HasSuffix(r.Raw, []byte(`"notifications/initialized"}`)) {
		t.Errorf("record 5 = %s:%d %s", r.File, r.Line, r.Raw)
	}

	if rs, err := audit.Read(filepath.Join(dir, "missing"), audit.Query{}, warn); err != nil || len(rs) != 0 {
		t.Errorf("missing dir: %d records, %v; want none and no error", len(rs), err)
	}
	var bad *audit.ServerError
	if _, err := audit.Read(dir, audit.Query{Server: "../a"}, warn); !errors.As(err, &bad) || !bad.Invalid {
		t.Errorf("server ../a: %v; want a *ServerError saying it is not a server name", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPrintFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	a, err := audit.Open(filepath.Join(dir, "srv.jsonl"), 300, 50)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t0 := time.Now().Add(-time.Hour)
	for i := range 5 {
		a.Write([]byte(auditLine(t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf(`"n":%d`, i))))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	var warns []string
	done := make(chan error, 1)
	go func() {
		done <- audit.Print(ctx, &out, dir, audit.Query{Server: "srv"},
			audit.Output{JSON: true, Last: 2, Follow: true}, func(err error) { warns = append(warns, err.Error()) })
	}()

	const total = 40 // ~70-byte lines in 300-byte files: several rotations
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(out.String(), "\n") < n {
			if time.Now().After(deadline) {
				t.Fatalf("after 5s the output has %d lines, want %d:\n%s", strings.Count(out.String(), "\n"), n, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(2)
	for i := 5; i < total; i++ {
		a.Write([]byte(auditLine(t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf(`"n":%d`, i))))
		if i%7 == 0 {
			time.Sleep(300 * time.Millisecond) // let some polls fall between rotations
		}
	}
	waitFor(total - 3)
	time.Sleep(2 * audit.PollInterval) // nothing more may come
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got []string
	for l := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var v struct{ N int }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		got = append(got, fmt.Sprint(v.N))
	}
	var want []string
	for i := 3; i < total; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("followed records %v, want %v", got, want)
	}
	if len(warns) > 0 {
		t.Errorf("warnings: %q", warns)
	}
}

func TestPrintUnknownServer(t *testing.T) {
	dir := t.TempDir()
	var e *audit.ServerError
	err := audit.Print(context.Background(), io.Discard, dir, audit.Query{Server: "x"}, audit.Output{Last: -1}, nil)
	if !errors.As(err, &e) || e.Invalid || len(e.Servers) != 0 || err.Error() != `no audit log for "x": no server has an audit log in `+dir+` yet` {
		t.Errorf("no logs: %v", err)
	}
	for _, name := range []string{"b.jsonl", "a.jsonl.1"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err = audit.Print(context.Background(), io.Discard, dir, audit.Query{Server: "x"}, audit.Output{Last: -1}, nil)
	if !errors.As(err, &e) || err.Error() != `no audit log for "x" in `+dir+`; servers with logs: a, b` {
		t.Errorf("other logs: %v", err)
	}
}

// BenchmarkParseRecord is what Read spends on each line.
func BenchmarkParseRecord(b *testing.B) {
	lines := [][]byte{
		[]byte(`{"time":"2026-11-26T12:00:01.123456Z","dir":"c2s","kind":"request","id":7,"method":"tools/call","tool":"search_files","args_bytes":63,"args_sha256":"e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500"}`),
		[]byte(`{"time":"2026-11-26T12:00:01.124690Z","dir":"s2c","kind":"response","id":7,"method":"tools/call","tool":"search_files","duration_ms":1.234,"redacted":{"GITHUB_TOKEN":1}}`),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := audit.ParseRecord("s", lines[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}
