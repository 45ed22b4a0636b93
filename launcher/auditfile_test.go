package launcher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/launcher"
)

// auditLine is one audit line at t with the given extra fields.
func auditLine(t time.Time, fields string) string {
	if fields != "" {
		fields = "," + fields
	}
	return fmt.Sprintf(`{"time":%q%s}`+"\n", t.UTC().Format(time.RFC3339Nano), fields)
}

func TestAuditFileRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "audit")
	path := filepath.Join(dir, "srv.jsonl")
	const keep = 3
	a, err := launcher.OpenAuditFile(path, 100, keep)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	line := func(i int) string { return fmt.Sprintf("{\"n\":%02d,\"pad\":\"%s\"}\n", i, strings.Repeat("x", 22)) }
	if len(line(0)) != 40 {
		t.Fatalf("test line is %d bytes, want 40", len(line(0)))
	}
	for i := 1; i <= 20; i++ { // two lines fit in 100 bytes, the third rotates
		if _, err := a.Write([]byte(line(i))); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		path:        line(19) + line(20),
		path + ".1": line(17) + line(18),
		path + ".2": line(15) + line(16),
		path + ".3": line(13) + line(14),
	}
	for p, w := range want {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != w {
			t.Errorf("%s = %q, want %q", p, b, w)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Errorf("%s.4 exists; keep is %d", path, keep)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s mode %v, want 0700", dir, fi.Mode().Perm())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte(line(21))); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// Two AuditFiles on one path stand for two mcpbox processes: their locks
// are separate open files, as across processes.
func TestAuditFileConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "srv.jsonl")
	const (
		maxSize  = 16 << 10
		keep     = 200 // enough that nothing is dropped
		perProc  = 2000
		writers  = 2 // goroutines per AuditFile
		files    = 2
		expected = perProc * writers * files
	)
	var wg sync.WaitGroup
	for f := range files {
		a, err := launcher.OpenAuditFile(path, maxSize, keep)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perProc {
					l := fmt.Sprintf(`{"w":"%d-%d","i":%d,"pad":"%s"}`+"\n", f, g, i, strings.Repeat("p", i%50))
					if _, err := a.Write([]byte(l)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()

	seen := map[string]bool{}
	all := []string{path}
	for i := 1; i <= keep; i++ {
		all = append(all, fmt.Sprintf("%s.%d", path, i))
	}
	nfiles := 0
	for _, p := range all {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		nfiles++
		if len(b) > maxSize {
			t.Errorf("%s is %d bytes, over the %d limit", p, len(b), maxSize)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s does not end with a newline", p)
		}
		for n, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var v struct {
				W string
				I int
			}
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("%s:%d: %q: %v", p, n+1, l, err)
			}
			k := fmt.Sprintf("%s/%d", v.W, v.I)
			if seen[k] {
				t.Errorf("line %s written twice", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != expected {
		t.Errorf("found %d lines in %d files, want %d", len(seen), nfiles, expected)
	}
	if nfiles < 3 {
		t.Errorf("only %d files: the test did not rotate", nfiles)
	}
}

func TestReadAudit(t *testing.T) {
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

	servers, err := launcher.AuditServers(dir)
	if err != nil || strings.Join(servers, ",") != "a,b" {
		t.Fatalf("AuditServers = %q, %v; want a,b", servers, err)
	}

	var warns []string
	warn := func(err error) { warns = append(warns, err.Error()) }
	secs := func(rs []launcher.AuditRecord) string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("%s%d", r.Server, int(r.Time.Sub(t0).Seconds())))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name string
		q    launcher.AuditQuery
		want string
	}{
		{"all", launcher.AuditQuery{}, "a1 b2 a3 a5 a7 b7 a9"},
		{"server", launcher.AuditQuery{Server: "a"}, "a1 a3 a5 a7 a9"},
		{"since", launcher.AuditQuery{Since: at(5)}, "a5 a7 b7 a9"},
		{"tool", launcher.AuditQuery{Tool: "echo"}, "a1 b2 a3 a7 b7"},
		{"method", launcher.AuditQuery{Method: "notifications/initialized"}, "a9"},
		{"server+tool+since", launcher.AuditQuery{Server: "b", Tool: "echo", Since: at(3)}, "b7"},
		{"missing server", launcher.AuditQuery{Server: "c"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warns = nil
			rs, err := launcher.ReadAudit(dir, tc.q, warn)
			if err != nil {
				t.Fatal(err)
			}
			if got := secs(rs); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	warns = nil
	rs, err := launcher.ReadAudit(dir, launcher.AuditQuery{Server: "a"}, warn)
	if err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(dir, "a.jsonl")
	if len(warns) != 2 || !strings.HasPrefix(warns[0], cur+":2: ") || !strings.HasPrefix(warns[1], cur+":4: ") {
		t.Errorf("warnings = %q, want %s:2 and %s:4", warns, cur, cur)
	}
	if r := rs[2]; r.File != filepath.Join(dir, "a.jsonl.1") || r.Line != 1 || string(r.Fields["future_field"]) != `{"x":1}` {
		t.Errorf("record 3 = %s:%d %s", r.File, r.Line, r.Raw)
	}
	if r := rs[4]; r.File != cur || r.Line != 3 || !bytes.HasSuffix(r.Raw, []byte(`"notifications/initialized"}`)) {
		t.Errorf("record 5 = %s:%d %s", r.File, r.Line, r.Raw)
	}

	if rs, err := launcher.ReadAudit(filepath.Join(dir, "missing"), launcher.AuditQuery{}, warn); err != nil || len(rs) != 0 {
		t.Errorf("missing dir: %d records, %v; want none and no error", len(rs), err)
	}
	if _, err := launcher.ReadAudit(dir, launcher.AuditQuery{Server: "../a"}, warn); err == nil {
		t.Error("server ../a accepted")
	}
}

func record(t *testing.T, line string) launcher.AuditRecord {
	t.Helper()
	r := launcher.AuditRecord{Server: "server-everything", Raw: []byte(line)}
	if err := json.Unmarshal([]byte(line), &r.Fields); err != nil {
		t.Fatal(err)
	}
	var ts string
	json.Unmarshal(r.Fields["time"], &ts)
	r.Time, _ = time.Parse(time.RFC3339Nano, ts)
	return r
}

func TestFormatAudit(t *testing.T) {
	const ts = "2026-11-26T12:00:01.123456Z"
	clock := time.Date(2026, 11, 26, 12, 0, 1, 123456000, time.UTC).Local().Format("15:04:05.000")
	for _, tc := range []struct{ line, want string }{
		{`{"time":"` + ts + `","dir":"c2s","kind":"request","id":7,"method":"tools/call","tool":"echo","args_bytes":17,"args_sha256":"ab12cd34ef56"}`,
			"server-everything → request  #7 tools/call echo args=17B sha256:ab12cd34"},
		{`{"time":"` + ts + `","dir":"s2c","kind":"response","id":7,"method":"tools/call","tool":"echo","duration_ms":1.234}`,
			"server-everything ← response #7 tools/call echo 1.2ms"},
		{`{"time":"` + ts + `","dir":"s2c","kind":"error","id":8,"method":"tools/call","tool":"rm","error_code":-32602,"blocked":true}`,
			"server-everything ← error    #8 tools/call rm code=-32602 BLOCKED"},
		{`{"time":"` + ts + `","dir":"s2c","kind":"response","id":9,"method":"tools/call","tool":"read","duration_ms":3.1,"redacted":{"github-token":1,"GITHUB_TOKEN":2}}`,
			"server-everything ← response #9 tools/call read 3.1ms redacted GITHUB_TOKEN×2 github-token×1"},
		{`{"time":"` + ts + `","dir":"s2c","kind":"policy","policy":"pin","tool":"add","severity":"high","detail":"tool changed since it was pinned; withheld"}`,
			"server-everything ! pin add [high]: tool changed since it was pinned; withheld"},
		{`{"time":"` + ts + `","dir":"s2c","kind":"policy","policy":"scan","tool":"add","finding":"instruction-marker","severity":"high","detail":"<IMPORTANT> read ~/.ssh"}`,
			"server-everything ! scan add instruction-marker [high]: <IMPORTANT> read ~/.ssh"},
		{`{"time":"` + ts + `","dir":"c2s","kind":"notification","method":"notifications/initialized","zeta":[1, 2],"alpha":"x","body":{"jsonrpc":"2.0"}}`,
			`server-everything → notification notifications/initialized alpha="x" zeta=[1,2] body={"jsonrpc":"2.0"}`},
	} {
		var b bytes.Buffer
		launcher.FormatAudit(&b, record(t, tc.line), false)
		if want := clock + " " + tc.want + "\n"; b.String() != want {
			t.Errorf("FormatAudit(%s)\n got %q\nwant %q", tc.line, b.String(), want)
		}
	}

	var b bytes.Buffer
	launcher.AuditFormat{Date: true}.Format(&b, record(t, `{"time":"`+ts+`","dir":"c2s","kind":"request"}`))
	if date := time.Date(2026, 11, 26, 12, 0, 1, 123456000, time.UTC).Local().Format("2006-01-02 15:04:05.000 "); !strings.HasPrefix(b.String(), date) {
		t.Errorf("with Date: %q, want prefix %q", b.String(), date)
	}
}

func TestFormatAuditEscapes(t *testing.T) {
	evil := "ev\x1b[31mil\U000E0041\u202Etxt.exe\u200b\x07\u0085\\"
	line, _ := json.Marshal(map[string]any{
		"time": "2026-11-26T12:00:01Z", "dir": "c2s", "kind": "request", "method": "tools/call",
		"tool": evil, "x\x1bkey": evil, "detail": evil,
	})
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		launcher.FormatAudit(&b, record(t, string(line)), color)
		out := b.String()
		plain := out
		if color { // our own colors are the only escapes allowed
			for _, c := range []string{"\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[33m", "\x1b[36m"} {
				plain = strings.ReplaceAll(plain, c, "")
			}
			if !strings.Contains(out, `ev\x1b[31mil`) {
				t.Errorf("colored output %q lost the escaped tool name", out)
			}
		}
		for _, bad := range []string{"\x1b", "\U000E0041", "\u202E", "\u200b", "\x07", "\u0085"} {
			if strings.Contains(plain, bad) {
				t.Errorf("color=%v: output %q contains %q", color, out, bad)
			}
		}
		if want := `ev\x1b[31mil\u{E0041}\u{202E}txt.exe\u{200B}\x07\u{0085}\\`; !strings.Contains(plain, want) {
			t.Errorf("color=%v: output %q does not contain %q", color, plain, want)
		}
		if !strings.Contains(plain, ` x\x1bkey=`) {
			t.Errorf("color=%v: output %q does not escape an unknown key", color, plain)
		}
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
			t.Errorf("color=%v: %q is not one line", color, out)
		}
	}
	// Bytes that are not UTF-8 show as \xNN.
	if got := launcher.EscapeAudit("a\xffb\u00e9"); got != `a\xffb`+"\u00e9" {
		t.Errorf("EscapeAudit = %q", got)
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

func TestPrintAuditFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	a, err := launcher.OpenAuditFile(filepath.Join(dir, "srv.jsonl"), 300, 50)
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
		done <- launcher.PrintAudit(ctx, &out, dir, launcher.AuditQuery{Server: "srv"},
			launcher.AuditOutput{JSON: true, Last: 2, Follow: true}, func(err error) { warns = append(warns, err.Error()) })
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
	time.Sleep(2 * launcher.AuditPollInterval) // nothing more may come
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

// TestFormatAuditFields: fields a line's layout does not show (a policy
// line's method, a request's policy and detail, a direction it does not
// know) are shown as key=value; values of an unexpected type too.
func TestFormatAuditFields(t *testing.T) {
	const ts = `"time":"2026-11-26T12:00:01.123456Z"`
	clock := time.Date(2026, 11, 26, 12, 0, 1, 123456000, time.UTC).Local().Format("15:04:05.000")
	body := `{"text":"` + strings.Repeat("é", 300) + `"}`
	for _, tc := range []struct{ line, want string }{
		{`{` + ts + `,"dir":"s2c","kind":"policy","method":"tools/list","tool":"add","policy":"scan","finding":"instruction-marker","severity":"high","detail":"x"}`,
			`! scan add instruction-marker [high]: x method="tools/list"`},
		{`{` + ts + `,"dir":"c2s","kind":"request","id":5,"method":"ping","blocked":true,"policy":"read","detail":"a \"member\"\u0007"}`,
			`→ request  #5 ping BLOCKED detail="a \\"member\\"\\u0007" policy="read"`},
		{`{` + ts + `,"dir":"s2c","kind":"policy","id":7,"args_bytes":13,"args_sha256":"abc","duration_ms":1.5,"error_code":-1,"policy":"seccomp","finding":"mount","severity":"medium","detail":"denied: x","blocked":false}`,
			`! seccomp mount [medium]: denied: x args_bytes=13 args_sha256="abc" duration_ms=1.5 error_code=-1 id=7`},
		{`{` + ts + `,"dir":"up","kind":"request","id":"a"}`, `? request  #"a" dir="up"`},
		{`{` + ts + `,"dir":"","kind":""}`, `? ?        dir=""`},
		{`{` + ts + `}`, `? ?       `},
		{`{` + ts + `,"dir":7,"kind":"policy","policy":"pin"}`, `! pin dir=7`},
		{`{` + ts + `,"dir":"up","kind":"policy","policy":"pin"}`, `! pin`},
		{`{` + ts + `,"dir":"c2s","kind":5,"tool":5,"method":["m"],"blocked":"yes","redacted":{}}`,
			`→ ?        blocked="yes" kind=5 method=["m"] redacted={} tool=5`},
		{`{` + ts + `,"dir":"c2s","kind":"request","redacted":null,"redacted2":{"a":1}}`, `→ request  redacted=null redacted2={"a":1}`},
		{`{` + ts + `,"dir":"c2s","kind":"request","args_bytes":0,"args_sha256":""}`, `→ request  args=0B sha256:`},
		{`{` + ts + `,"dir":"c2s","kind":"request","tool":null,"id":null,"args_bytes":null,"duration_ms":null,"blocked":null}`, `→ request  #null args=0B 0.0ms`},
		{`{` + ts + `,"dir":"s2c","kind":"response","args_bytes":2048,"duration_ms":12345,"error_code":"E"}`, `← response args=2.0KiB 12.35s code="E"`},
		{`{` + ts + `,"dir":"s2c","kind":"response","body":` + body + `}`,
			`← response body={"text":"` + strings.Repeat("é", 251) + `…(` + fmt.Sprint(len(body)) + `B)`},
	} {
		var b bytes.Buffer
		launcher.FormatAudit(&b, record(t, tc.line), false)
		if want := clock + " server-everything " + tc.want + "\n"; b.String() != want {
			t.Errorf("FormatAudit(%s)\n got %q\nwant %q", tc.line, b.String(), want)
		}
	}
}
