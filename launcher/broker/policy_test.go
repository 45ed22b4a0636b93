package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// replay is a realistic session in both directions: c is true for the
// client's lines.
var replay = []struct {
	c    bool
	line string
}{
	{true, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{}},"clientInfo":{"name":"claude-ai","version":"0.1.0"}}}`},
	{false, `{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true},"logging":{}},"serverInfo":{"name":"fs","version":"0.2.0"}}}`},
	{true, `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
	{true, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`},
	{false, toolsListResult},
	{false, `{"jsonrpc":"2.0","id":"srv-1","method":"roots/list"}`},
	{true, `{"jsonrpc":"2.0","id":"srv-1","result":{"roots":[{"uri":"file:///home/u/notes","name":"notes"}]}}`},
	{true, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/home/u/notes/a.md"},"_meta":{"progressToken":"p2"}}}`},
	{false, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p2","progress":0.5,"total":1,"message":"reading"}}`},
	{false, `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"# Notes\n\n* \u00e9t\u00e9 \ud83d\ude00\n"}],"structuredContent":{"size":42},"isError":false}}`},
	{false, `{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"Summarize"}}],"maxTokens":100}}`},
	{true, `{"jsonrpc":"2.0","id":7,"result":{"role":"assistant","content":{"type":"text","text":"A summary."},"model":"claude","stopReason":"endTurn"}}`},
	{true, `{"jsonrpc":"2.0","id":"c-3","method":"tools/call","params":{"name":"search_files","arguments":{"path":"/home/u","pattern":"*.md"}}}`},
	{false, `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"warning","logger":"fs","data":"slow disk"}}`},
	{false, `{"jsonrpc":"2.0","id":"c-3","error":{"code":-32603,"message":"Internal error","data":{"errno":-5}}}`},
	{true, `{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"file:///home/u/notes/a.md"}}`},
	{true, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4,"reason":"user"}}`},
	{true, `{"jsonrpc":"2.0","id":5,"method":"ping"}`},
	{false, `{"jsonrpc":"2.0","id":5,"result":{}}`},
	{false, `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`},
	{true, `{"jsonrpc":"2.0","id":6,"method":"x-vendor/unknown","params":{"a":[1,2,{"b":null}]}}`},
	{false, `{"jsonrpc":"2.0","id":6,"error":{"code":-32601,"message":"Method not found"}}`},
}

const toolsListResult = `{"jsonrpc":"2.0","id":1,"result":{"tools":[` +
	`{"name":"read_file","title":"Read file","description":"Read a file.","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]},"annotations":{"readOnlyHint":true}},` +
	`{"name":"write_file","description":"Write a file.\nOverwrites.","inputSchema":{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}}},"annotations":{"destructiveHint":true,"idempotentHint":true}},` +
	`{"name":"search_files","description":"Find files <b>by</b> glob & name.","inputSchema":{"type":"object"},"outputSchema":{"type":"object","properties":{"matches":{"type":"array","items":{"type":"string"}}}}},` +
	`{"name":"delete_file","description":"Delete.","inputSchema":{"type":"object"},"_meta":{"x":1}}` +
	`],"nextCursor":"abc","_meta":{"server":"fs"}}}`

// session drives one Broker line by line, both directions sharing it as
// in a real session, without goroutines, so the order is exact.
type session struct {
	t        *testing.T
	b        *Broker
	c        *clientStream
	s        *serverStream
	toServer bytes.Buffer
	toClient writeRecorder
	audit    bytes.Buffer
	logs     bytes.Buffer
}

func newSession(t *testing.T, opts Options) *session {
	x := &session{t: t}
	opts.Audit = &x.audit
	opts.Logger = slog.New(slog.NewTextHandler(&x.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	x.b = New(opts)
	x.c = &clientStream{b: x.b, dst: &x.toServer}
	x.s = &serverStream{b: x.b, lines: x.b.newLineReader(nil)}
	if err := x.b.client.attach(&x.toClient); err != nil {
		t.Fatal(err)
	}
	return x
}

func (x *session) client(line string) {
	x.t.Helper()
	if err := x.c.fromClient([]byte(line + "\n")); err != nil {
		x.t.Fatal(err)
	}
}

func (x *session) server(line string) {
	x.t.Helper()
	if err := x.s.fromServer([]byte(line + "\n")); err != nil {
		x.t.Fatal(err)
	}
}

// auditLines parses the audit log.
func (x *session) auditLines() []map[string]any {
	x.t.Helper()
	var out []map[string]any
	for _, l := range strings.SplitAfter(x.audit.String(), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			x.t.Fatalf("audit line %q: %v", l, err)
		}
		if !strings.HasSuffix(l, "}\n") || strings.Count(l, "\n") != 1 {
			x.t.Fatalf("audit line %q is not one line", l)
		}
		out = append(out, m)
	}
	return out
}

func TestReplayUnchanged(t *testing.T) {
	x := newSession(t, Options{ToolDeny: []string{"not_a_tool", "admin_*"}})
	var wantServer, wantClient bytes.Buffer
	for _, r := range replay {
		if r.c {
			x.client(r.line)
			wantServer.WriteString(r.line + "\n")
		} else {
			x.server(r.line)
			wantClient.WriteString(r.line + "\n")
		}
	}
	if got := x.toServer.String(); got != wantServer.String() {
		t.Errorf("server received\n%s\nwant\n%s", got, wantServer.String())
	}
	if got := string(x.toClient.bytes()); got != wantClient.String() {
		t.Errorf("client received\n%s\nwant\n%s", got, wantClient.String())
	}
	if got := len(x.toClient.writes); got != len(replay)-strings.Count(wantServer.String(), "\n") {
		t.Errorf("%d writes to the client", got)
	}
	lines := x.auditLines()
	if len(lines) != len(replay) {
		t.Fatalf("%d audit lines, want %d", len(lines), len(replay))
	}
	if x.b.clientReqs.len() != 1 || x.b.serverReqs.len() != 0 {
		// resources/read (id 4) was cancelled and never answered.
		t.Errorf("in flight: %d client, %d server requests; want 1 and 0", x.b.clientReqs.len(), x.b.serverReqs.len())
	}
	want := []map[string]any{
		{"dir": "c2s", "kind": "request", "id": 0.0, "method": "initialize"},
		{"dir": "s2c", "kind": "response", "id": 0.0, "method": "initialize"},
		{"dir": "c2s", "kind": "notification", "method": "notifications/initialized"},
		{"dir": "c2s", "kind": "request", "id": 1.0, "method": "tools/list"},
		{"dir": "s2c", "kind": "response", "id": 1.0, "method": "tools/list"},
		{"dir": "s2c", "kind": "request", "id": "srv-1", "method": "roots/list"},
		{"dir": "c2s", "kind": "response", "id": "srv-1", "method": "roots/list"},
		{"dir": "c2s", "kind": "request", "id": 2.0, "method": "tools/call", "tool": "read_file", "args_bytes": float64(len(`{"path":"/home/u/notes/a.md"}`)),
			"args_sha256": fmt.Sprintf("%x", sha256Sum(`{"path":"/home/u/notes/a.md"}`))},
		{"dir": "s2c", "kind": "notification", "method": "notifications/progress"},
		{"dir": "s2c", "kind": "response", "id": 2.0, "method": "tools/call", "tool": "read_file"},
		{"dir": "s2c", "kind": "request", "id": 7.0, "method": "sampling/createMessage"},
		{"dir": "c2s", "kind": "response", "id": 7.0, "method": "sampling/createMessage"},
		{"dir": "c2s", "kind": "request", "id": "c-3", "method": "tools/call", "tool": "search_files"},
		{"dir": "s2c", "kind": "notification", "method": "notifications/message"},
		{"dir": "s2c", "kind": "error", "id": "c-3", "method": "tools/call", "tool": "search_files", "error_code": -32603.0},
	}
	for i, w := range want {
		got := lines[i]
		if _, ok := got["time"].(string); !ok {
			t.Errorf("audit line %d has no time: %v", i, got)
		}
		for k, v := range w {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("audit line %d: %s = %#v, want %#v (%v)", i, k, got[k], v, got)
			}
		}
		_, hasDur := got["duration_ms"]
		if want := w["kind"] == "response" || w["kind"] == "error"; hasDur != want {
			t.Errorf("audit line %d: duration_ms present %v, want %v", i, hasDur, want)
		}
		if _, ok := got["blocked"]; ok {
			t.Errorf("audit line %d blocked: %v", i, got)
		}
	}
}

func TestToolsListFiltered(t *testing.T) {
	x := newSession(t, Options{ToolDeny: []string{"write_*", "delete_file"}})
	x.client(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
	x.server(toolsListResult)
	got := x.toClient.bytes()

	var orig, filtered map[string]any
	if err := json.Unmarshal([]byte(toolsListResult), &orig); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &filtered); err != nil {
		t.Fatalf("filtered result %s: %v", got, err)
	}
	res := orig["result"].(map[string]any)
	tools := res["tools"].([]any)
	res["tools"] = []any{tools[0], tools[2]}
	if !reflect.DeepEqual(orig, filtered) {
		t.Errorf("client received\n%s\nwant the result without write_file and delete_file, all else equal", got)
	}
	if len(x.toClient.writes) != 1 || !bytes.HasSuffix(got, []byte("}\n")) || bytes.Count(got, []byte("\n")) != 1 {
		t.Errorf("want one write of one line, got %q", x.toClient.writes)
	}
	// Bytes outside the removed tools are kept as they were, escapes too.
	for _, keep := range []string{`"description":"Find files <b>by</b> glob & name."`, `"nextCursor":"abc","_meta":{"server":"fs"}}}`} {
		if !bytes.Contains(got, []byte(keep)) {
			t.Errorf("filtered result lost %s:\n%s", keep, got)
		}
	}
	if !strings.Contains(x.logs.String(), "removed blocked tools") {
		t.Errorf("no log of the removal:\n%s", x.logs.String())
	}

	t.Run("allow list", func(t *testing.T) {
		x := newSession(t, Options{ToolAllow: []string{"read_*", "search_files"}, ToolDeny: []string{"search_*"}})
		x.client(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		x.server(toolsListResult)
		var m struct {
			Result struct{ Tools []struct{ Name string } }
		}
		if err := json.Unmarshal(x.toClient.bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Result.Tools) != 1 || m.Result.Tools[0].Name != "read_file" {
			t.Errorf("tools = %+v, want read_file only", m.Result.Tools)
		}
	})
	t.Run("all removed", func(t *testing.T) {
		x := newSession(t, Options{ToolDeny: []string{"*"}})
		x.client(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		x.server(toolsListResult)
		if !bytes.Contains(x.toClient.bytes(), []byte(`{"tools":[],"nextCursor"`)) {
			t.Errorf("got %s", x.toClient.bytes())
		}
	})
	t.Run("not a tools/list response", func(t *testing.T) {
		// A tools list answering resources/list, or nothing, would reach
		// the client unfiltered: it is withheld, and the request waiting
		// for it gets an error.
		x := newSession(t, Options{ToolDeny: []string{"*"}})
		x.client(`{"jsonrpc":"2.0","id":1,"method":"resources/list"}`)
		x.server(toolsListResult) // answers resources/list
		x.server(toolsListResult) // answers nothing
		want := `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"mcpbox withheld the server's answer: it carries a tool list but answers no tools/list request in flight"}}` + "\n"
		if got := string(x.toClient.bytes()); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("duplicate names", func(t *testing.T) {
		x := newSession(t, Options{ToolDeny: []string{"evil"}})
		x.client(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		x.server(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"evil","name":"ok"},{"name":"ok","name":"evil"},{"name":"fine"}],"tools":[{"name":"evil"}]}}`)
		want := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"fine"}],"tools":[]}}` + "\n"
		if got := string(x.toClient.bytes()); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
}

func TestToolsCallBlocked(t *testing.T) {
	for _, id := range []string{`"abc"`, `17`, `123456789012345678901234567890`, `"x\"y\u00e9"`, `-0.5e3`} {
		t.Run(id, func(t *testing.T) {
			x := newSession(t, Options{ToolDeny: []string{"write_*"}})
			x.client(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/etc/x","content":"y"}}}`)
			if x.toServer.Len() != 0 {
				t.Fatalf("the server received %s", x.toServer.String())
			}
			got := x.toClient.bytes()
			want := `{"jsonrpc":"2.0","id":` + id + `,"error":{"code":-32602,"message":"tool write_file is blocked by the profile (tools.deny)"}}` + "\n"
			if string(got) != want {
				t.Errorf("client received\n%s\nwant\n%s", got, want)
			}
			var m struct {
				ID json.RawMessage
			}
			if err := json.Unmarshal(got, &m); err != nil || string(m.ID) != id {
				t.Errorf("reply id %s (%v), want the raw %s", m.ID, err, id)
			}
			lines := x.auditLines()
			if len(lines) != 2 || lines[0]["blocked"] != true || lines[0]["tool"] != "write_file" || lines[0]["kind"] != "request" ||
				lines[1]["blocked"] != true || lines[1]["kind"] != "error" || lines[1]["error_code"] != -32602.0 || lines[1]["dir"] != "s2c" {
				t.Errorf("audit = %v", lines)
			}
			if x.b.clientReqs.len() != 0 {
				t.Error("a blocked request is tracked")
			}
		})
	}
	for _, tc := range []struct {
		name    string
		opts    Options
		line    string
		blocked bool
	}{
		{"allowed", Options{ToolDeny: []string{"write_*"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}}`, false},
		{"escaped name", Options{ToolDeny: []string{"write_*"}}, `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"wr\u0069te_file"}}`, true},
		{"duplicate name", Options{ToolDeny: []string{"write_*"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","name":"read_file"}}`, true},
		{"duplicate params", Options{ToolDeny: []string{"write_*"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"},"params":{"name":"read_file"}}`, true},
		{"not in allow list", Options{ToolAllow: []string{"read_*"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file"}}`, true},
		{"in allow list", Options{ToolAllow: []string{"read_*"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}}`, false},
		{"bad pattern fails closed", Options{ToolDeny: []string{"[x"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}}`, true},
		{"notification dropped", Options{ToolDeny: []string{"write_*"}}, `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"write_file"}}`, true},
		{"no filter", Options{}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file"}}`, false},
		{"duplicate method", Options{ToolDeny: []string{"write_*"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file"},"method":"ping"}`, true},
		{"duplicates without a filter", Options{Audit: io.Discard}, `{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}`, false},
		{"batch", Options{ToolDeny: []string{"write_*"}}, `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file"}}]`, true},
		{"batch allowed", Options{ToolDeny: []string{"write_*"}}, `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file"}}]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newSession(t, tc.opts)
			x.client(tc.line)
			if got := x.toServer.Len() == 0; got != tc.blocked {
				t.Errorf("blocked = %v, want %v; server got %q, client got %q", got, tc.blocked, x.toServer.String(), x.toClient.bytes())
			}
			if tc.blocked && !strings.Contains(tc.line, `"id"`) && len(x.toClient.writes) != 0 {
				t.Errorf("a notification got an answer: %q", x.toClient.writes)
			}
			if tc.blocked && strings.Contains(tc.line, `"id"`) && !json.Valid(x.toClient.bytes()) {
				t.Errorf("answer %q is not JSON", x.toClient.bytes())
			}
		})
	}
}

func TestBatchBlockedAnswer(t *testing.T) {
	x := newSession(t, Options{ToolDeny: []string{"write_*"}})
	x.client(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"write_file"}}]`)
	var replies []struct {
		ID    json.RawMessage
		Error struct{ Code int }
	}
	if err := json.Unmarshal(x.toClient.bytes(), &replies); err != nil {
		t.Fatalf("answer %q: %v", x.toClient.bytes(), err)
	}
	if len(replies) != 2 || string(replies[0].ID) != "1" || string(replies[1].ID) != `"b"` || replies[1].Error.Code != CodeToolBlocked {
		t.Errorf("answer = %s", x.toClient.bytes())
	}
	if x.toServer.Len() != 0 {
		t.Errorf("server got %s", x.toServer.String())
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{ToolAllow: []string{"a*", "b?"}, ToolDeny: []string{"[a-z]x"}}).Validate(); err != nil {
		t.Errorf("valid patterns: %v", err)
	}
	if err := (Options{ToolDeny: []string{"ok", "[x"}}).Validate(); err == nil || !strings.Contains(err.Error(), `tools.deny pattern "[x"`) {
		t.Errorf("bad pattern: err = %v", err)
	}
}

// oddLines are client lines that are not well-formed JSON-RPC.
var oddLines = []string{
	`{"jsonrpc":"2.0","id":99,"result":{"unknown":"id"}}`,
	`{"jsonrpc":"2.0","id":"nope","error":{"code":1,"message":"x"}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file"}}]`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file"`,
	"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\xfe\",\"method\":\"\xc3\x28\"}",
	`{"jsonrpc":"2.0","id":{"a":1},"method":"x"}`,
	`{"jsonrpc":"2.0","id":null,"method":"x"}`,
	`{"jsonrpc":"2.0","id":true,"result":1}`,
	`not json at all`,
	``,
	`{"id":1,"result":NaN}`,
}

// TestOddLinesPassThrough: with no policy that refuses anything (an audit
// log only), odd client lines reach the server byte for byte, so that it
// answers them itself.
func TestOddLinesPassThrough(t *testing.T) {
	x := newSession(t, Options{})
	var want bytes.Buffer
	for _, l := range oddLines {
		x.client(l)
		want.WriteString(l + "\n")
	}
	if x.toServer.String() != want.String() {
		t.Errorf("server received\n%q\nwant\n%q", x.toServer.String(), want.String())
	}
	for _, l := range oddLines {
		if json.Valid([]byte(l)) && strings.HasPrefix(l, "{") {
			x.server(l)
		}
	}
	if !strings.Contains(x.logs.String(), "batch") {
		t.Errorf("no debug log for the batch:\n%s", x.logs.String())
	}
	for _, l := range x.auditLines() {
		if _, ok := l["duration_ms"]; ok {
			t.Errorf("an unmatched response has a duration: %v", l)
		}
	}
}

// TestOddLinesRefused: with a tool filter, the same lines are not
// forwarded unread: those the broker cannot read as the server will are
// refused, the others (well-formed answers to requests the server never
// made, even with an id no one could match, and a batch of allowed calls)
// pass. Every answer the client gets
// is valid JSON that names an id it could have sent.
func TestOddLinesRefused(t *testing.T) {
	x := newSession(t, Options{ToolDeny: []string{"zzz"}})
	for _, l := range oddLines {
		x.client(l)
	}
	want := oddLines[0] + "\n" + oddLines[1] + "\n" + oddLines[2] + "\n" + oddLines[7] + "\n\n"
	if x.toServer.String() != want {
		t.Errorf("server received\n%q\nwant\n%q", x.toServer.String(), want)
	}
	for _, w := range x.toClient.writes {
		if !json.Valid(w) || !utf8.Valid(w) || bytes.Contains(w, []byte(`"id":null`)) {
			t.Errorf("answer %q", w)
		}
	}
	if n := strings.Count(x.audit.String(), `"policy":"read"`); n != 6 {
		t.Errorf("%d refusals audited, want 6:\n%s", n, x.audit.String())
	}
}

func TestInFlightBound(t *testing.T) {
	x := newSession(t, Options{MaxInFlight: 4, Audit: io.Discard})
	for i := range 6 {
		x.client(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i))
	}
	if n := x.b.clientReqs.len(); n != 4 {
		t.Errorf("%d requests tracked, want 4", n)
	}
	if n := strings.Count(x.logs.String(), "forgetting the oldest"); n != 2 {
		t.Errorf("%d eviction warnings, want 2:\n%s", n, x.logs.String())
	}
	x.server(`{"jsonrpc":"2.0","id":0,"result":{}}`) // evicted: unknown
	x.server(`{"jsonrpc":"2.0","id":5,"result":{}}`)
	lines := x.auditLines()
	if _, ok := lines[6]["method"]; ok {
		t.Errorf("the evicted request matched: %v", lines[6])
	}
	if lines[7]["method"] != "ping" {
		t.Errorf("the newest request did not match: %v", lines[7])
	}

	// Answered requests do not pile up in the eviction order.
	for i := range 10000 {
		x.client(fmt.Sprintf(`{"jsonrpc":"2.0","id":"r%d","method":"ping"}`, i))
		x.server(fmt.Sprintf(`{"jsonrpc":"2.0","id":"r%d","result":{}}`, i))
	}
	if n := len(x.b.clientReqs.order); n > 2*4+64+1 {
		t.Errorf("eviction order holds %d entries for %d requests in flight", n, x.b.clientReqs.len())
	}
	if n := strings.Count(x.logs.String(), "forgetting the oldest"); n != 2 {
		t.Errorf("%d eviction warnings, want still 2", n)
	}
}

func TestIDKeyNormalizes(t *testing.T) {
	x := newSession(t, Options{ToolDeny: []string{"zzz"}})
	x.client(`{"jsonrpc":"2.0","id":"ab","method":"tools/list"}`)
	x.server(`{"jsonrpc":"2.0","id":"a\u0062","result":{"tools":[]}}`)
	if l := x.auditLines()[1]; l["method"] != "tools/list" {
		t.Errorf("an escaped string id did not match: %v", l)
	}
	if x.b.clientReqs.len() != 0 {
		t.Error("request still in flight")
	}
}

func TestAuditOff(t *testing.T) {
	b := New(Options{})
	if b.policies || b.audit != nil || b.filter != nil {
		t.Errorf("zero Options turned policies on: %+v", b)
	}
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// TestSDKClientToolFilter runs the fake server under a broker that denies
// its only tool, with both copies running concurrently as in a session: the
// official SDK client sees no tools and gets the broker's error for a call.
func TestSDKClientToolFilter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=fake-mcp-server")
	serverIn, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	serverOut, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	clientIn, toClient := io.Pipe()
	fromClient, clientOut := io.Pipe()
	var audit lockedBuffer
	b := New(Options{ToolDeny: []string{"ech?"}, Audit: &audit})
	c2s := make(chan error, 1)
	go func() {
		err := b.ClientToServer(serverIn, fromClient)
		serverIn.Close()
		c2s <- err
	}()
	s2c := make(chan error, 1)
	go func() {
		err := b.ServerToClient(toClient, serverOut)
		toClient.Close()
		s2c <- err
	}()

	client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-test", Version: "v0.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.IOTransport{Reader: clientIn, Writer: clientOut}, nil)
	if err != nil {
		t.Fatalf("initialize through the broker: %v", err)
	}
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	if len(tools.Tools) != 0 {
		t.Errorf("tools = %+v, want echo filtered out", tools.Tools)
	}
	_, err = session.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err == nil || !strings.Contains(err.Error(), "tool echo is blocked by the profile (tools.deny)") {
		t.Errorf("tools/call echo: err = %v, want the broker's refusal", err)
	}
	if err := session.Close(); err != nil {
		t.Errorf("close session: %v", err)
	}
	if err := <-c2s; err != nil {
		t.Errorf("ClientToServer: %v", err)
	}
	if err := <-s2c; err != nil {
		t.Errorf("ServerToClient: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("fake server: %v", err)
	}
	if got := audit.String(); !strings.Contains(got, `"method":"tools/call","tool":"echo"`) || !strings.Contains(got, `"blocked":true`) {
		t.Errorf("audit log misses the blocked call:\n%s", got)
	}
}

// TestReplyBeforeServerToClient checks that an answer the broker makes
// before ServerToClient starts is written first thing when it does.
func TestReplyBeforeServerToClient(t *testing.T) {
	b := New(Options{ToolDeny: []string{"*"}})
	var toServer bytes.Buffer
	in := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}` + "\n"
	if err := b.ClientToServer(&toServer, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	var out writeRecorder
	if err := b.ServerToClient(&out, strings.NewReader(mcpMessages[2]+"\n")); err != nil {
		t.Fatal(err)
	}
	if toServer.Len() != 0 || len(out.writes) != 2 || !bytes.Contains(out.writes[0], []byte(`"id":1,"error"`)) {
		t.Errorf("server got %q; client got %q", toServer.String(), out.writes)
	}
}

// TestFilterDropsOverlongClientLine: the filter cannot check a line it does
// not hold, so with a filter an over-long client line does not reach the
// server; without one it is streamed as before.
func TestFilterDropsOverlongClientLine(t *testing.T) {
	long := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"x":"` + strings.Repeat("a", 200) + `"},"name":"write_file"}}` + "\n"
	in := long + mcpMessages[3] + "\n"
	var out bytes.Buffer
	if err := newTestBroker(64, 16, nil).ClientToServer(&out, strings.NewReader(in)); err != nil || out.String() != in {
		t.Errorf("without a filter: %v, server got %q", err, out.String())
	}
	b := New(Options{MaxMessage: 64, ToolDeny: []string{"write_*"}})
	b.bufSize = 16
	out.Reset()
	if err := b.ClientToServer(&out, strings.NewReader(in)); err != nil || out.String() != mcpMessages[3]+"\n" {
		t.Errorf("with a filter: %v, server got %q", err, out.String())
	}
}
