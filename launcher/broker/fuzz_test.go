package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"strings"
	"testing"
)

// chunkReader returns reads of sizes cycling through sizes (each 1 to 256).
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.sizes) > 0 {
		n = min(n, int(c.sizes[c.i%len(c.sizes)])+1)
		c.i++
	}
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// splitLines splits data after each "\n"; a last piece without one is a line too.
func splitLines(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n') + 1
		if i == 0 {
			i = len(data)
		}
		lines = append(lines, data[:i])
		data = data[i:]
	}
	return lines
}

// wantServerToClient is the specification of ServerToClient written as
// plainly as possible: what reaches the client, how many lines are diverted,
// and whether the stream ends with ErrMessageTooLarge.
func wantServerToClient(data []byte, limit int) (out []byte, diverted int, tooLarge bool) {
	for _, line := range splitLines(data) {
		content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(content) > limit {
			return out, diverted, true
		}
		msg := bytes.Trim(line, " \t\r\n")
		switch {
		case len(msg) == 0:
		case msg[0] == '{' && msg[len(msg)-1] == '}' && json.Valid(msg):
			out = append(append(out, msg...), '\n')
		default:
			diverted++
		}
	}
	return out, diverted, false
}

func fuzzSeeds(f *testing.F) {
	f.Add([]byte(strings.Join(mcpMessages, "\n")+"\n"), uint16(0), false, []byte{0})
	f.Add([]byte(strings.Join(mcpMessages, "\r\n")), uint16(200), true, []byte{3, 1, 6})
	f.Add([]byte("Starting server...\n[1,2]\n\"str\"\n{broken\n\n  {\"a\":1}  \r\n{\"b\":2}"), uint16(8), true, []byte{2})
	f.Add([]byte("{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n{}\n"), uint16(20), true, []byte{0, 15})
	f.Add([]byte("{}\r\r\n{\"a\":1}\r"), uint16(7), false, []byte{1})
	f.Add([]byte("\x1b[2J{\"x\":\"\xff\"}\n{\"y\":\"\\u0000\"}\x00\n"), uint16(0), true, []byte{})
}

func FuzzServerToClient(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, smallBuf bool, reads []byte) {
		max := int64(limit)
		if max == 0 {
			max = 1 << 20
		}
		bufSize := 0
		if smallBuf {
			bufSize = 16
		}
		var diag bytes.Buffer
		b := newTestBroker(max, bufSize, &diag)
		var out writeRecorder
		err := b.ServerToClient(&out, &chunkReader{data: data, sizes: reads})

		want, diverted, tooLarge := wantServerToClient(data, int(max))
		if tooLarge != errors.Is(err, ErrMessageTooLarge) || (!tooLarge && err != nil) {
			t.Fatalf("err = %v, want too large: %v", err, tooLarge)
		}
		inputLines := map[string]bool{}
		for _, l := range splitLines(data) {
			inputLines[string(bytes.Trim(l, " \t\r\n"))] = true
		}
		for _, w := range out.writes {
			msg, ok := bytes.CutSuffix(w, []byte("\n"))
			if !ok || bytes.IndexByte(msg, '\n') >= 0 || !json.Valid(msg) || len(msg) == 0 || msg[0] != '{' {
				t.Fatalf("write %q is not one complete JSON object line", w)
			}
			if !inputLines[string(msg)] {
				t.Fatalf("write %q was not a line of the input", w)
			}
		}
		if got := out.bytes(); !bytes.Equal(got, want) {
			t.Fatalf("client received\n%q\nwant\n%q", got, want)
		}
		if got := bytes.Count(diag.Bytes(), []byte("\n")); got != diverted {
			t.Fatalf("%d diagnostic lines, want %d:\n%s", got, diverted, diag.Bytes())
		}

		// An audit log views every message but changes none.
		var audit bytes.Buffer
		ba := New(Options{MaxMessage: max, Audit: &audit})
		ba.bufSize = b.bufSize
		var outA writeRecorder
		errA := ba.ServerToClient(&outA, &chunkReader{data: data, sizes: reads})
		if !bytes.Equal(outA.bytes(), want) || (errA == nil) != (err == nil) {
			t.Fatalf("with an audit log the client received\n%q (%v)\nwant\n%q (%v)", outA.bytes(), errA, want, err)
		}
		checkAudit(t, audit.Bytes())
	})
}

// checkAudit fails unless log is lines of JSON objects.
func checkAudit(t *testing.T, log []byte) {
	t.Helper()
	for _, l := range splitLines(log) {
		if !bytes.HasSuffix(l, []byte("\n")) || !json.Valid(l) || l[0] != '{' {
			t.Fatalf("audit line %q is not a JSON object line", l)
		}
	}
}

func FuzzClientToServer(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, smallBuf bool, reads []byte) {
		bufSize := 0
		if smallBuf {
			bufSize = 16
		}
		b := newTestBroker(int64(limit), bufSize, nil)
		var out bytes.Buffer
		if err := b.ClientToServer(&out, &chunkReader{data: data, sizes: reads}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("server received\n%q\nwant\n%q", out.Bytes(), data)
		}

		var audit bytes.Buffer
		ba := New(Options{MaxMessage: int64(limit), Audit: &audit})
		ba.bufSize = b.bufSize
		out.Reset()
		if err := ba.ClientToServer(&out, &chunkReader{data: data, sizes: reads}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("with an audit log the server received\n%q\nwant\n%q", out.Bytes(), data)
		}
		checkAudit(t, audit.Bytes())
	})
}

// FuzzPolicies feeds lines to both sides of one broker with every policy on
// (filter, pins, scan in block mode, redaction, audit with bodies): whatever
// the lines, nothing panics, the client only ever gets whole JSON objects,
// the audit log stays valid JSON lines, and the request trackers stay
// within their bound.
func FuzzPolicies(f *testing.F) {
	if data, err := os.ReadFile(replayFile); err == nil {
		var session []byte
		for _, l := range bytes.Split(data, []byte("\n")) {
			var r recorded
			if json.Unmarshal(l, &r) != nil {
				continue
			}
			side := byte('s')
			if r.Dir == "c2s" {
				side = 'c'
			}
			if len(r.Line) < 4<<10 {
				session = append(append(append(session, side), r.Line...), '\n')
			}
		}
		f.Add(session)
	}
	f.Add([]byte("c{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\ns" + toolsList("1", echoTool, addPoisoned) + "\nc{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"add\",\"name\":\"echo\"}}\n"))
	f.Add([]byte("c{\"id\":[1],\"method\":\"tools/list\"}\ns{\"id\":[1],\"result\":{\"tools\":[{\"name\":1},{},[]],\"tools\":{}}}\n"))
	f.Add([]byte("c{\"id\":3,\"method\":\"initialize\"}\ns{\"id\":3,\"result\":{\"instructions\":\"<IMPORTANT>x</IMPORTANT>\",\"instructions\":\"y\"}}\n"))
	f.Add([]byte("s{\"method\":\"notifications/message\",\"params\":{\"data\":\"ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \\u0067hp_\"}}\n"))
	// Issue 14: ids re-spelled, lists nobody asked for, ambiguous members,
	// client lines servers read differently, batches, secrets as keys and
	// numbers.
	admin := `{"name":"admin-x","description":"d"}`
	for _, seed := range []string{
		"c{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}\ns{\"jsonrpc\":\"2.0\",\"id\":\"2\",\"result\":{\"tools\":[" + admin + "]}}\n",
		"c{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}\ns{\"jsonrpc\":\"2.0\",\"id\":20e-1,\"result\":{\"tools\":[" + admin + "]}}\ns{\"id\":2.0,\"result\":{\"tools\":[" + admin + "]}}\n",
		"c{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"tools/list\"}\ns{\"jsonrpc\":\"2.0\",\"id\":\" \",\"result\":{\"tools\":[" + admin + "]}}\n",
		"c{\"jsonrpc\":\"2.0\",\"id\":\"0x2\",\"method\":\"ping\"}\nc{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}\ns{\"id\":\"02\",\"result\":{\"Tools\":[" + admin + "]}}\n",
		"s{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{\"tools\":[" + admin + "]}}\ns{\"id\":1,\"ID\":2,\"result\":{\"tools\":[]},\"Result\":{\"tools\":[" + admin + "]}}\n",
		"c{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\ns{\"id\":1,\"result\":{\"tools\":[{\"name\":\"ok\",\"Name\":\"admin-x\"}],\"toolſ\":[" + admin + "]},\"error\":{}}\n",
		"c{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\rc{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"admin-x\"}}\n",
		"c{\"a\":\r{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"Name\":\"admin-x\"}}\r}\nc\ufeff{\"id\":3,\"method\":\"ping\"}{\"id\":4,\"Method\":\"x\",\"paramſ\":{}}\n",
		"c[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"},{\"id\":\"1\",\"method\":\"ping\"},[true],{\"id\":null,\"method\":\"tools/call\",\"params\":{\"name\":\"admin-y\"}}]\n",
		"c{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\xe2\x80\"}}\ns{\"id\":1,\"result\":{\"s3cr3t-token-value\":12345678,\"n\":1.2345678e7}}\n",
		"c{\"id\":9007199254740993,\"method\":\"tools/list\"}\ns{\"id\":9007199254740992,\"result\":{\"tools\":[" + admin + "]}}\ns{\"id\":1e400,\"result\":{\"prompts\":[]}}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		store := &memPins{}
		var diag, audit bytes.Buffer
		b := New(Options{
			Diag: &diag, Audit: &audit, AuditBodies: true, MaxInFlight: 8,
			ToolDeny: []string{"admin-*"}, Pins: store, Identity: everything, Scan: ModeBlock,
			OtherTools: []string{"read_file"}, Redactor: NewRedactor(map[string]string{"TOKEN": "s3cr3t-token-value"}),
		})
		var toClient writeRecorder
		if err := b.client.attach(&toClient); err != nil {
			t.Fatal(err)
		}
		c := &clientStream{b: b, dst: io.Discard}
		s := &serverStream{b: b, lines: b.newLineReader(nil)}
		for _, l := range bytes.SplitAfter(data, []byte("\n")) {
			if len(l) < 2 {
				continue
			}
			if l[0] == 'c' {
				if err := c.fromClient(l[1:]); err != nil {
					t.Fatal(err)
				}
			} else if err := s.fromServer(l[1:]); err != nil {
				t.Fatal(err)
			}
		}
		for _, w := range toClient.writes {
			msg, ok := bytes.CutSuffix(w, []byte("\n"))
			if !ok || bytes.IndexByte(msg, '\n') >= 0 || !json.Valid(msg) || len(msg) == 0 || (msg[0] != '{' && msg[0] != '[') {
				t.Fatalf("write %q is not one complete JSON line", w)
			}
			if name, ok := deniedToolShown(msg); ok {
				t.Fatalf("the client got the denied tool %q: %s", name, msg)
			}
		}
		checkAudit(t, audit.Bytes())
		if n, m := b.clientReqs.len(), b.serverReqs.len(); n > 8 || m > 8 {
			t.Fatalf("trackers hold %d and %d requests, bound 8", n, m)
		}
	})
}

// deniedToolShown reports a tool the fuzzed session denies (admin-*) in a
// tools list of msg, read as each client reads it: by JavaScript and
// Python (exact keys, the last duplicate winning) and by Go's
// encoding/json (keys in any case, the last one winning).
func deniedToolShown(msg []byte) (string, bool) {
	denied := func(n string) bool { ok, _ := path.Match("admin-*", n); return ok }
	var exact struct {
		Result map[string]json.RawMessage `json:"result"`
	}
	var folded struct {
		Result struct{ Tools []struct{ Name string } }
	}
	if json.Unmarshal(msg, &folded) == nil {
		for _, t := range folded.Result.Tools {
			if denied(t.Name) {
				return t.Name, true
			}
		}
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil || json.Unmarshal(m["result"], &exact.Result) != nil {
		return "", false
	}
	var tools []map[string]any
	json.Unmarshal(exact.Result["tools"], &tools)
	for _, t := range tools {
		if n, _ := t["name"].(string); denied(n) {
			return n, true
		}
	}
	return "", false
}

// FuzzParseView checks the one-pass view of a server message against the
// two passes it replaces: validJSON, then parseView.
func FuzzParseView(f *testing.F) {
	for _, r := range replay {
		f.Add([]byte(r.line))
	}
	f.Add([]byte(`{"id":1,"id":2,"result":{"a":[1,{"b":"}"}]},"x":"\""}`))
	f.Add([]byte(`{"method":"m","params":[{"id":3}],"error":null}`))
	f.Add([]byte(`{ "id" : 1 , "result" : { } }`))
	f.Add([]byte(`{"id":1,"ID":2,"Result":{"Tools":[]},"result":{"toolſ":[],"\u0074ools":{}}}`))
	f.Add([]byte(`{"method":"x","paramſ":{"tools":[]},"params":{},"result":{"prompts":1},"result":{"resourceTemplates":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := trimSpace(data)
		v2, ok2, valid := parseValidView(msg)
		want := len(msg) > 0 && isObject(msg)
		if valid != want {
			t.Fatalf("valid = %v, want %v", valid, want)
		}
		if !valid {
			return
		}
		v1, ok1 := parseView(msg)
		if ok1 != ok2 || v1.kind != v2.kind || v1.dup != v2.dup || v1.rpc != v2.rpc || v1.lists != v2.lists || v1.resultAt != v2.resultAt ||
			!bytes.Equal(v1.id, v2.id) || !bytes.Equal(v1.method, v2.method) || !bytes.Equal(v1.params, v2.params) ||
			!bytes.Equal(v1.result, v2.result) || !bytes.Equal(v1.err, v2.err) {
			t.Fatalf("one-pass view %+v %v, two-pass %+v %v", v2, ok2, v1, ok1)
		}
	})
}
