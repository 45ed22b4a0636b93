package broker

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestParseView(t *testing.T) {
	for _, tc := range []struct {
		line   string
		kind   kind
		ok     bool
		id     string
		method string
		dup    bool
	}{
		{line: mcpMessages[0], kind: kindRequest, ok: true, id: "0", method: `"initialize"`},
		{line: mcpMessages[1], kind: kindResponse, ok: true, id: "0"},
		{line: mcpMessages[2], kind: kindNotification, ok: true, method: `"notifications/initialized"`},
		{line: mcpMessages[9], kind: kindError, ok: true, id: "3"},
		{line: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`, kind: kindError, ok: true, id: "null"},
		{line: `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"}}`, kind: kindError, ok: true},
		{line: ` { "id" : "a\"}b" , "method" : "tools\/call" , "params" : { "x" : [ 1 , { } ] } } `, kind: kindRequest, ok: true, id: `"a\"}b"`, method: `"tools\/call"`},
		{line: `{"method":"x","params":{"a":"}]\\"},"id":123456789012345678901234567890}`, kind: kindRequest, ok: true, id: "123456789012345678901234567890", method: `"x"`},
		{line: `{"id":1,"method":"a","method":"b"}`, kind: kindRequest, ok: true, id: "1", method: `"b"`, dup: true},
		{line: `{"\u0069d":7,"result":{}}`, kind: kindResponse, ok: true, id: "7"},
		{line: `{"id":1,"result":NaN}`, kind: kindResponse, ok: true, id: "1"},
		{line: `[{"id":1,"method":"a"}]`, kind: kindBatch},
		{line: `{"id":1,"method":"a","result":{}}`, id: "1", method: `"a"`},
		{line: `{"id":1,"method":2}`, id: "1", method: "2"},
		{line: `{"Method":"tools/call","id":1}`, kind: kindUnknown, id: "1", dup: true},
		{line: `{"method":"ping","METHOD":"tools/call","id":1}`, kind: kindRequest, ok: true, id: "1", method: `"ping"`, dup: true},
		{line: `{"method":"ping","paramſ":{},"id":1}`, kind: kindRequest, ok: true, id: "1", method: `"ping"`, dup: true},
		{line: `{"method":"ping","\u0050arams":{},"id":1}`, kind: kindRequest, ok: true, id: "1", method: `"ping"`, dup: true},
		{line: `{"method":"ping","Paramsx":{},"id":1,"jsonrpc":"2.0","JSONRPC":"1"}`, kind: kindRequest, ok: true, id: "1", method: `"ping"`},
		{line: `{"result":{}}`},
		{line: `{}`},
		{line: `{"id":1,"method":"a"`},
		{line: `{"id":1,"method":"a"} x`},
		{line: `{"id":1,,"method":"a"}`},
		{line: `{"id":1 "method":"a"}`},
		{line: `{"id":"unterminated}`},
		{line: `"str"`},
		{line: `{"id":1,"method":"a","params":{"x":[1,2}`},
		{line: ``},
	} {
		v, ok := parseView(trimSpace([]byte(tc.line)))
		if ok != tc.ok || v.kind != tc.kind || string(v.id) != tc.id || string(v.method) != tc.method || v.dup != tc.dup {
			t.Errorf("parseView(%s) = kind %v id %q method %q dup %v ok %v; want kind %v id %q method %q dup %v ok %v",
				tc.line, v.kind, v.id, v.method, v.dup, ok, tc.kind, tc.id, tc.method, tc.dup, tc.ok)
		}
	}
}

// wantView is the specification of parseView for valid JSON, written with
// encoding/json.
func wantView(msg []byte) (kind, map[string]json.RawMessage) {
	if bytes.HasPrefix(msg, []byte("[")) {
		return kindBatch, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil || m == nil {
		return kindUnknown, nil
	}
	_, hasID := m["id"]
	method, hasMethod := m["method"]
	_, hasResult := m["result"]
	_, hasErr := m["error"]
	switch {
	case hasMethod && !hasResult && !hasErr:
		if method[0] != '"' {
			return kindUnknown, m
		}
		if hasID {
			return kindRequest, m
		}
		return kindNotification, m
	case !hasMethod && hasResult && !hasErr && hasID:
		return kindResponse, m
	case !hasMethod && hasErr && !hasResult:
		return kindError, m
	}
	return kindUnknown, m
}

func FuzzMessageView(f *testing.F) {
	for _, m := range mcpMessages {
		f.Add([]byte(m))
	}
	for _, m := range replay {
		f.Add([]byte(m.line))
	}
	f.Add([]byte(`{"id":1,"method":"a","method":"b"}`))
	f.Add([]byte(`{"\u0069d":"x\u0000","result":{"tools":[{"name":"a"},{"name":"b","name":"write_file"},3]}}`))
	f.Add([]byte(`[{"id":1}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := trimSpace(data)
		v, ok := parseView(msg)
		if !ok && v.kind != kindUnknown && v.kind != kindBatch {
			t.Fatalf("not ok but kind %v", v.kind)
		}
		// Whatever the input, the tool filter's rewrite of a valid message
		// is valid JSON.
		if ok && v.kind == kindResponse {
			f := newToolFilter(nil, []string{"write_*"})
			out, removed := f.filterToolsList(nil, msg, &v)
			if removed != nil && json.Valid(msg) && !json.Valid(out) {
				t.Fatalf("filtered %s into invalid JSON %s", msg, out)
			}
		}
		if !json.Valid(msg) {
			return
		}
		want, m := wantView(msg)
		if want == kindUnknown && !ok {
			return
		}
		if v.kind != want {
			t.Fatalf("parseView(%s).kind = %v, want %v", msg, v.kind, want)
		}
		if !ok {
			return
		}
		for key, got := range map[string][]byte{"id": v.id, "method": v.method, "params": v.params, "result": v.result, "error": v.err} {
			w, has := m[key]
			if has != (got != nil) || !bytes.Equal(w, got) {
				t.Fatalf("parseView(%s): %s = %q, want %q", msg, key, got, w)
			}
		}
		if v.result != nil && !bytes.Equal(msg[v.resultAt:v.resultAt+len(v.result)], v.result) {
			t.Fatalf("resultAt %d does not point at the result", v.resultAt)
		}
		if v.method != nil && utf8.Valid(v.method) {
			var name string
			if json.Unmarshal(v.method, &name) == nil && methodName(v.method) != name {
				t.Fatalf("methodName(%s) = %q, want %q", v.method, methodName(v.method), name)
			}
		}
	})
}
