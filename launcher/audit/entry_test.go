package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
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
	odd := "a\"\\\n\r\x00\x7f\xff\u2028\u2029\u0085</script>"
	e := audit.Entry{Dir: odd, Kind: odd, ID: []byte(`"a` + "\n" + `"`), Method: odd, Tool: odd, ErrorCode: []byte(`{`),
		Redacted: map[string]int{odd: 1}, Policy: odd, Finding: odd, Severity: odd, Detail: odd}
	line := audit.AppendEntry(nil, &e)
	if !json.Valid(line) || strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("not one JSON line: %q", line)
	}
	// No line break of any reader's (JavaScript's, Python's splitlines)
	// inside the line.
	if strings.ContainsAny(string(line[:len(line)-1]), "\r\u2028\u2029\u0085") {
		t.Errorf("a line break inside the line: %q", line)
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

// TestEntryReadBack: what AppendEntry writes, Read decodes into the same
// Entry (the json tags name the fields AppendEntry writes), and a record
// encodes as the line it was read from.
func TestEntryReadBack(t *testing.T) {
	e := audit.Entry{Time: time.Date(2026, 11, 26, 12, 0, 1, 5000, time.UTC), Dir: audit.ServerToClient, Kind: "error",
		ID: []byte(`"a"`), Method: "tools/call", Tool: "t", Args: []byte(`{"x":1}`), ErrorCode: []byte(`-32602`),
		Blocked: true, Redacted: map[string]int{"TOKEN": 2}, Policy: "p", Finding: "f", Severity: "high", Detail: "d", Body: []byte(`{"b":[1]}`)}
	e.SetDuration(1500 * time.Microsecond)
	line := audit.AppendEntry(nil, &e)
	r, err := audit.ParseRecord("s", line[:len(line)-1])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(e.Args)
	want := e
	want.Args, want.ArgsBytes, want.ArgsSHA256 = nil, 7, hex.EncodeToString(sum[:])
	if !reflect.DeepEqual(r.Entry, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", r.Entry, want)
	}
	if again := audit.AppendEntry(nil, &r.Entry); string(again) != string(line) {
		t.Errorf("read back and written again:\n%s\nwant\n%s", again, line)
	}
	var tags []string
	for f := range reflect.TypeFor[audit.Entry]().Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "-" {
			tags = append(tags, name)
		}
	}
	if written := slices.Sorted(maps.Keys(r.Fields())); !slices.Equal(written, slices.Sorted(slices.Values(tags))) {
		t.Errorf("AppendEntry writes the fields %q; Entry's json tags are %q", written, tags)
	}
	r, err = audit.ParseRecord("s", []byte(`{"time":"2026-11-26T12:00:01Z","tool":"t","extra":1}`))
	if b, merr := json.Marshal(r); err != nil || merr != nil || string(b) != string(r.Raw) || r.Tool != "t" {
		t.Errorf("json.Marshal(record) = %s, %v, %v; want the line as written", b, err, merr)
	}
}
