package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
