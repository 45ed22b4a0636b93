package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/launcher/audit"
)

// record is what Read makes of line, in server-everything's log.
func record(t *testing.T, line string) audit.Record {
	t.Helper()
	r, err := audit.ParseRecord("server-everything", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFormat(t *testing.T) {
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
		audit.Format{}.Fprint(&b, record(t, tc.line))
		if want := clock + " " + tc.want + "\n"; b.String() != want {
			t.Errorf("Fprint(%s)\n got %q\nwant %q", tc.line, b.String(), want)
		}
	}

	var b bytes.Buffer
	audit.Format{Date: true}.Fprint(&b, record(t, `{"time":"`+ts+`","dir":"c2s","kind":"request"}`))
	if date := time.Date(2026, 11, 26, 12, 0, 1, 123456000, time.UTC).Local().Format("2006-01-02 15:04:05.000 "); !strings.HasPrefix(b.String(), date) {
		t.Errorf("with Date: %q, want prefix %q", b.String(), date)
	}
}

func TestFormatEscapes(t *testing.T) {
	evil := "ev\x1b[31mil\U000E0041\u202Etxt.exe\u200b\x07\u0085\\"
	line, _ := json.Marshal(map[string]any{
		"time": "2026-11-26T12:00:01Z", "dir": "c2s", "kind": "request", "method": "tools/call",
		"tool": evil, "x\x1bkey": evil, "detail": evil,
	})
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		audit.Format{Color: color}.Fprint(&b, record(t, string(line)))
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
	if got := audit.Escape("a\xffb\u00e9"); got != `a\xffb`+"\u00e9" {
		t.Errorf("Escape = %q", got)
	}
}

// TestFormatFields: fields a line's layout does not show (a policy
// line's method, a request's policy and detail, a direction it does not
// know) are shown as key=value; values of an unexpected type too.
func TestFormatFields(t *testing.T) {
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
		{`{` + ts + `,"dir":"s2c","kind":"policy","policy":"pin","finding":5,"severity":"low"}`, `! pin [low] finding=5`},
		{`{` + ts + `,"dir":"up","kind":"policy","policy":"pin"}`, `! pin`},
		{`{` + ts + `,"dir":"c2s","kind":5,"tool":5,"method":["m"],"blocked":"yes","redacted":{}}`,
			`→ ?        blocked="yes" kind=5 method=["m"] redacted={} tool=5`},
		{`{` + ts + `,"dir":"c2s","kind":"request","redacted":null,"redacted2":{"a":1}}`, `→ request  redacted=null redacted2={"a":1}`},
		{`{` + ts + `,"dir":"c2s","kind":"request","args_bytes":0,"args_sha256":""}`, `→ request  args=0B sha256:`},
		{`{` + ts + `,"dir":"c2s","kind":"request","tool":null,"id":null,"args_bytes":null,"duration_ms":null,"blocked":null}`, `→ request  #null args=0B 0.0ms`},
		{`{` + ts + `,"dir":"s2c","kind":"response","args_bytes":2048,"duration_ms":12345,"error_code":"E"}`, `← response args=2.0KiB 12.35s code="E"`},
		// Sizes and counts mcpbox writes are integers; others are shown as written.
		{`{` + ts + `,"dir":"c2s","kind":"request","args_bytes":17.5,"redacted":{"a":1.5}}`, `→ request  args_bytes=17.5 redacted={"a":1.5}`},
		{`{` + ts + `,"dir":"s2c","kind":"response","body":` + body + `}`,
			`← response body={"text":"` + strings.Repeat("é", 251) + `…(` + fmt.Sprint(len(body)) + `B)`},
	} {
		var b bytes.Buffer
		audit.Format{}.Fprint(&b, record(t, tc.line))
		if want := clock + " server-everything " + tc.want + "\n"; b.String() != want {
			t.Errorf("Fprint(%s)\n got %q\nwant %q", tc.line, b.String(), want)
		}
	}
}
