package audit_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/launcher/audit"
)

// TestAppendEntry pins the time and duration formats and the fields a
// session rarely reaches: ids and error codes too long or not JSON are
// left out, redaction counts are sorted by kind. (The lines a broker
// session writes are pinned in launcher/broker's TestAuditBytes.)
func TestAppendEntry(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 1, 123456789, time.FixedZone("CET", 3600))
	withDuration := func(e audit.Entry, d time.Duration) audit.Entry {
		e.SetDuration(d)
		return e
	}
	for _, tc := range []struct {
		e    audit.Entry
		want string
	}{
		{withDuration(audit.Entry{Dir: "s2c", Kind: "response", ID: []byte(`"a"`), Method: "tools/call", Tool: "t"}, 1234567*time.Nanosecond),
			`{"time":"2026-11-26T11:00:01.123456789Z","dir":"s2c","kind":"response","id":"a","method":"tools/call","tool":"t","duration_ms":1.234}`},
		{audit.Entry{Dir: "s2c", Kind: "error", ID: []byte(`7`), ErrorCode: []byte(`"x"`), HasDuration: true},
			`{"time":"2026-11-26T11:00:01.123456789Z","dir":"s2c","kind":"error","id":7,"duration_ms":0}`},
		{withDuration(audit.Entry{Dir: "s2c", Kind: "error", ID: []byte(strings.Repeat("1", 257)), ErrorCode: []byte(strings.Repeat("1", 33))}, 3*time.Second),
			`{"time":"2026-11-26T11:00:01.123456789Z","dir":"s2c","kind":"error","duration_ms":3000}`},
		{audit.Entry{Dir: "c2s", Kind: "request", ID: []byte(`{`), Method: "x\xffy", Args: []byte{}},
			`{"time":"2026-11-26T11:00:01.123456789Z","dir":"c2s","kind":"request","method":"x\ufffdy","args_bytes":0,"args_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}`},
		{audit.Entry{Dir: "s2c", Kind: "policy", Redacted: map[string]int{"b": 2, "a": 1, "\x7f": 3}, Policy: "p", Finding: "f", Severity: "s", Detail: "d\n", Blocked: true, Body: []byte(`{"x":1}`)},
			`{"time":"2026-11-26T11:00:01.123456789Z","dir":"s2c","kind":"policy","blocked":true,"redacted":{"a":1,"b":2,"\u007f":3},"policy":"p","finding":"f","severity":"s","detail":"d\u000a","body":{"x":1}}`},
	} {
		tc.e.Time = now
		if got := string(audit.AppendEntry(nil, &tc.e)); got != tc.want+"\n" {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
		if got, err := json.Marshal(tc.e); err != nil || string(got) != tc.want {
			t.Errorf("json.Marshal = %s, %v\nwant %s", got, err, tc.want)
		}
	}
}

// TestAppendEntryValid: whatever a peer put in the fields, the line is
// one JSON object on one line.
func TestAppendEntryValid(t *testing.T) {
	odd := "a\"\\\n\x00\x7f\xff\u2028</script>"
	e := audit.Entry{Dir: odd, Kind: odd, ID: []byte(`"a` + "\n" + `"`), Method: odd, Tool: odd, ErrorCode: []byte(`{`),
		Redacted: map[string]int{odd: 1}, Policy: odd, Finding: odd, Severity: odd, Detail: odd}
	line := audit.AppendEntry(nil, &e)
	if !json.Valid(line) || strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("not one JSON line: %q", line)
	}
	var back map[string]any
	json.Unmarshal(line, &back)
	for _, k := range []string{"dir", "kind", "method", "tool", "policy", "finding", "severity", "detail"} {
		if want := strings.ToValidUTF8(odd, "\ufffd"); back[k] != want {
			t.Errorf("%s = %q, want %q", k, back[k], want)
		}
	}
	if _, ok := back["id"]; ok {
		t.Errorf("an id that is not valid JSON was written: %s", line)
	}
}
