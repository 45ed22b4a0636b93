package broker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// mcpMessages is a realistic stdio session, one message per entry, in the
// order a client and a server would produce them.
var mcpMessages = []string{
	`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"claude-ai","version":"0.1.0"}}}`,
	`{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true},"logging":{}},"serverInfo":{"name":"secure-filesystem-server","version":"0.2.0"},"instructions":"Use list_allowed_directories first."}}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`,
	`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read_file","description":"Read the complete contents of a file.\nHandles \"UTF-8\" text — and more.","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false}}]}}`,
	`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"fs","data":{"msg":"ready","dirs":["/tmp/a b","C:\\Users\\x"]}}}`,
	`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/tmp/a b/notes.md"},"_meta":{"progressToken":7}}}`,
	`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":0.5,"total":1}}`,
	`{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"# Notes\n\n* \u00e9t\u00e9 \ud83d\ude00\n"}],"isError":false}}`,
	`{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Unknown tool: nope","data":null}}`,
}

func stream(msgs []string, eol string) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString(m)
		b.WriteString(eol)
	}
	return b.Bytes()
}

// choppyReader returns 1 to 7 bytes per Read, in a fixed pseudo-random pattern.
type choppyReader struct {
	r io.Reader
	n int
}

func (c *choppyReader) Read(p []byte) (int, error) {
	c.n = (c.n*5 + 3) % 7
	return c.r.Read(p[:min(len(p), c.n+1)])
}

// writeRecorder keeps each Write call separately.
type writeRecorder struct {
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func (w *writeRecorder) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Join(w.writes, nil)
}

// lockedBuffer is a bytes.Buffer safe to read while a broker writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pipeThrough feeds in to copy through an os.Pipe, written in 1 to 7 byte
// pieces by another goroutine, and returns what copy wrote, Write by Write.
func pipeThrough(t *testing.T, in []byte, copy func(dst io.Writer, src io.Reader) error) [][]byte {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	go func() {
		defer pw.Close()
		for n := 0; len(in) > 0; n++ {
			k := min(len(in), n%7+1)
			if _, err := pw.Write(in[:k]); err != nil {
				return
			}
			in = in[k:]
		}
	}()
	var out writeRecorder
	if err := copy(&out, &choppyReader{r: pr}); err != nil {
		t.Fatalf("copy: %v", err)
	}
	return out.writes
}

func newTestBroker(max int64, bufSize int, diag io.Writer) *Broker {
	b := New(Options{MaxMessage: max, Diag: diag})
	if bufSize > 0 {
		b.bufSize = bufSize
	}
	return b
}

func TestPassThrough(t *testing.T) {
	for _, tc := range []struct {
		name    string
		eol     string
		bufSize int // 16 makes every message longer than the read buffer
		noFinal bool
	}{
		{name: "LF", eol: "\n"},
		{name: "CRLF", eol: "\r\n"},
		{name: "LF small buffer", eol: "\n", bufSize: 16},
		{name: "CRLF small buffer", eol: "\r\n", bufSize: 16},
		{name: "no final newline", eol: "\n", noFinal: true},
		{name: "no final newline small buffer", eol: "\r\n", bufSize: 16, noFinal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := stream(mcpMessages, tc.eol)
			if tc.noFinal {
				in = bytes.TrimSuffix(in, []byte(tc.eol))
			}
			var diag lockedBuffer
			b := newTestBroker(0, tc.bufSize, &diag)

			t.Run("client to server", func(t *testing.T) {
				got := bytes.Join(pipeThrough(t, in, b.ClientToServer), nil)
				if !bytes.Equal(got, in) {
					t.Errorf("server received\n%q\nwant the client's bytes unchanged\n%q", got, in)
				}
			})
			t.Run("server to client", func(t *testing.T) {
				writes := pipeThrough(t, in, b.ServerToClient)
				if len(writes) != len(mcpMessages) {
					t.Fatalf("got %d writes, want one per message (%d)", len(writes), len(mcpMessages))
				}
				for i, w := range writes {
					if want := mcpMessages[i] + "\n"; string(w) != want {
						t.Errorf("write %d = %q, want %q", i, w, want)
					}
				}
				if diag.String() != "" {
					t.Errorf("diagnostics for a clean stream: %q", diag.String())
				}
			})
		})
	}
}

func TestServerToClientDiverts(t *testing.T) {
	in := strings.Join([]string{
		"Starting server...",
		mcpMessages[1],
		"[1,2]",
		`"str"`,
		"{broken",
		"",
		"  \t ",
		"\r",
		`{"jsonrpc":"2.0"} trailing`,
		`{"a":1}{"b":2}`,
		`{"a":1,}`,
		"\x1b[31mred\x1b[0m\rover",
		"  " + mcpMessages[2] + " \t\r",
		"null",
		"Listening on stdio",
	}, "\n") + "\n"
	var diag lockedBuffer
	b := newTestBroker(0, 0, &diag)
	var out writeRecorder
	if err := b.ServerToClient(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if want := mcpMessages[1] + "\n" + mcpMessages[2] + "\n"; string(out.bytes()) != want {
		t.Errorf("client received\n%q\nwant only the JSON objects\n%q", out.bytes(), want)
	}
	wantDiag := []string{
		"Starting server...",
		"[1,2]",
		`"str"`,
		"{broken",
		`{"jsonrpc":"2.0"} trailing`,
		`{"a":1}{"b":2}`,
		`{"a":1,}`,
		`\x1b[31mred\x1b[0m\x0dover`,
		"null",
		"Listening on stdio",
	}
	var want strings.Builder
	for _, l := range wantDiag {
		want.WriteString(diagPrefix + l + "\n")
	}
	if diag.String() != want.String() {
		t.Errorf("diagnostics:\n%s\nwant (blank lines dropped):\n%s", diag.String(), want.String())
	}
}

func TestDivertTruncates(t *testing.T) {
	// A 3-byte rune straddles the cut at 1 KiB.
	line := strings.Repeat("x", diagShown-1) + "€" + strings.Repeat("y", 10<<10)
	var diag lockedBuffer
	b := newTestBroker(0, 0, &diag)
	if err := b.ServerToClient(io.Discard, strings.NewReader(line+"\n")); err != nil {
		t.Fatal(err)
	}
	got := diag.String()
	want := diagPrefix + strings.Repeat("x", diagShown-1) + fmt.Sprintf("… (%d bytes)\n", len(line))
	if got != want {
		t.Errorf("diagnostic = %q…%q (%d bytes), want %q…%q", got[:80], got[len(got)-40:], len(got), want[:80], want[len(want)-40:])
	}
	if !utf8.ValidString(got) {
		t.Error("truncation split a rune")
	}
}

func TestMessageLimitBoundary(t *testing.T) {
	const limit = 100
	obj := func(n int) string { // a JSON object of exactly n bytes
		return `{"a":"` + strings.Repeat("x", n-8) + `"}`
	}
	for _, bufSize := range []int{16, 64, 4096} {
		for _, eol := range []string{"\n", "\r\n", ""} {
			for _, n := range []int{limit - 1, limit, limit + 1, limit + 2, limit + 3} {
				t.Run(fmt.Sprintf("buf%d/%q/%d", bufSize, eol, n), func(t *testing.T) {
					in := obj(n) + eol
					b := newTestBroker(limit, bufSize, nil)
					var out bytes.Buffer
					err := b.ServerToClient(&out, strings.NewReader(in))
					if n <= limit {
						if err != nil || out.String() != obj(n)+"\n" {
							t.Errorf("got %q, %v; want the message forwarded", out.String(), err)
						}
					} else if !errors.Is(err, ErrMessageTooLarge) || out.Len() != 0 {
						t.Errorf("got %q, %v; want nothing and ErrMessageTooLarge", out.String(), err)
					}

					// The client side never refuses a line.
					out.Reset()
					if err := b.ClientToServer(&out, strings.NewReader(in)); err != nil || out.String() != in {
						t.Errorf("client to server: got %q, %v; want %q", out.String(), err, in)
					}
				})
			}
		}
	}
}

// genReader produces a JSON-looking line of n bytes that never ends in time:
// `{"a":"xxxx…`, then "\n" and tail.
type genReader struct {
	n, read int
	tail    []byte
}

func (g *genReader) Read(p []byte) (int, error) {
	const head = `{"a":"`
	if g.read >= g.n {
		k := copy(p, g.tail[g.read-g.n:])
		g.read += k
		if k == 0 {
			return 0, io.EOF
		}
		return k, nil
	}
	k := min(len(p), g.n-g.read)
	for i := range k {
		if pos := g.read + i; pos < len(head) {
			p[i] = head[pos]
		} else {
			p[i] = 'a' + byte(pos%26)
		}
	}
	g.read += k
	return k, nil
}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestServerToClientTooLarge(t *testing.T) {
	const limit = 1 << 20
	first := mcpMessages[1] + "\n"
	gen := &genReader{n: 50 << 20, tail: []byte("\n" + mcpMessages[2] + "\n")}
	src := io.MultiReader(strings.NewReader(first), gen)
	b := newTestBroker(limit, 0, nil)
	var out bytes.Buffer
	var err error
	alloc := allocated(func() { err = b.ServerToClient(&out, src) })

	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("err = %v, want ErrMessageTooLarge", err)
	}
	for _, s := range []string{"1Mi", "--max-message"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if out.String() != first {
		t.Errorf("client received %q, want only the message before the long line", out.String())
	}
	if gen.read > limit+2*readBufferSize {
		t.Errorf("read %d bytes of a 50 MiB line; want the broker to stop shortly after the limit", gen.read)
	}
	if alloc > 2*limit+256<<10 {
		t.Errorf("allocated %d bytes to reject a line over %d; want at most about twice the limit", alloc, limit)
	}
}

func TestServerToClientTooLargeReadsLittle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int64
		line  int
	}{
		{"1MiB limit, 50MiB line", 1 << 20, 50 << 20},
		{"1.1MiB limit, 50MiB line", 1<<20 + 100<<10, 50 << 20},
		{"1.9MiB limit, 50MiB line", 2<<20 - 100<<10, 50 << 20},
		{"default limit, 65MiB line", 0, 65 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.limit == 0 && testing.Short() {
				t.Skip("allocates about 128 MiB; skipped with -short")
			}
			gen := &genReader{n: tc.line}
			b := newTestBroker(tc.limit, 0, nil)
			var err error
			alloc := allocated(func() { err = b.ServerToClient(io.Discard, gen) })
			if !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("err = %v, want ErrMessageTooLarge", err)
			}
			limit := uint64(b.maxMessage)
			if uint64(gen.read) > limit+2*readBufferSize {
				t.Errorf("read %d bytes of the line; want the broker to stop shortly after the %d-byte limit", gen.read, limit)
			}
			// Twice the limit, plus the read buffer and a little slack.
			if alloc > 2*limit+readBufferSize+32<<10 {
				t.Errorf("allocated %d bytes (%.2f× the limit); want at most about twice the %d-byte limit", alloc, float64(alloc)/float64(limit), limit)
			} else {
				t.Logf("allocated %.2f× the limit", float64(alloc)/float64(limit))
			}
		})
	}
}

func TestClientToServerStreamsLongLine(t *testing.T) {
	const limit = 1 << 20
	tail := []byte("\n" + mcpMessages[3] + "\n")
	want := sha256.New()
	if _, err := io.Copy(want, &genReader{n: 50 << 20, tail: tail}); err != nil {
		t.Fatal(err)
	}
	b := newTestBroker(limit, 0, nil)
	got := sha256.New()
	gen := &genReader{n: 50 << 20, tail: tail}
	var err error
	alloc := allocated(func() { err = b.ClientToServer(got, gen) })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("the server did not receive the client's bytes unchanged")
	}
	if alloc > 2*limit+256<<10 {
		t.Errorf("allocated %d bytes to pass a 50 MiB line; want it streamed, within about twice the %d-byte limit", alloc, limit)
	}
}

func TestClientToServerPassesGarbage(t *testing.T) {
	in := "not json\n{broken\n\n\r\n[1,2]\n\x00\xff\xfe binary\r\n" + mcpMessages[0] + "\n  {\"a\":1}  \nno final newline"
	for _, bufSize := range []int{16, 0} {
		b := newTestBroker(20, bufSize, nil)
		var out bytes.Buffer
		if err := b.ClientToServer(&out, &choppyReader{r: strings.NewReader(in)}); err != nil {
			t.Fatal(err)
		}
		if out.String() != in {
			t.Errorf("bufSize %d: server received\n%q\nwant\n%q", bufSize, out.String(), in)
		}
	}
}

// endless repeats a message forever.
type endless struct {
	msg []byte
	off int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], e.msg[e.off:])
		n += k
		e.off = (e.off + k) % len(e.msg)
	}
	return n, nil
}

func TestWriteErrorStops(t *testing.T) {
	msg := []byte(mcpMessages[4] + "\n")
	for _, dir := range []struct {
		name string
		copy func(b *Broker) func(io.Writer, io.Reader) error
	}{
		{"server to client", func(b *Broker) func(io.Writer, io.Reader) error { return b.ServerToClient }},
		{"client to server", func(b *Broker) func(io.Writer, io.Reader) error { return b.ClientToServer }},
	} {
		t.Run(dir.name+"/EPIPE", func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			pr.Close() // the peer went away
			defer pw.Close()
			done := make(chan error, 1)
			go func() { done <- dir.copy(New(Options{}))(pw, &endless{msg: msg}) }()
			select {
			case err := <-done:
				if !errors.Is(err, syscall.EPIPE) {
					t.Errorf("err = %v, want EPIPE", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still copying 10s after the reader went away")
			}
		})
		t.Run(dir.name+"/write error", func(t *testing.T) {
			boom := errors.New("boom")
			w := &failingWriter{after: 3, err: boom}
			err := dir.copy(New(Options{}))(w, &endless{msg: msg})
			if !errors.Is(err, boom) {
				t.Errorf("err = %v, want the write error", err)
			}
		})
	}
	t.Run("client to server/write error in an over-long line", func(t *testing.T) {
		boom := errors.New("boom")
		w := &failingWriter{after: 3, err: boom}
		err := newTestBroker(64, 16, nil).ClientToServer(w, &genReader{n: 1 << 20})
		if !errors.Is(err, boom) {
			t.Errorf("err = %v, want the write error", err)
		}
	})
}

type failingWriter struct {
	after int
	err   error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after == 0 {
		return 0, w.err
	}
	w.after--
	return len(p), nil
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	in := mcpMessages[0] + "\n" + `{"jsonrpc":"2.0","id":9,`

	var out bytes.Buffer
	err := New(Options{}).ServerToClient(&out, &failingReader{data: []byte(in), err: boom})
	if !errors.Is(err, boom) {
		t.Errorf("server to client: err = %v, want the read error", err)
	}
	if out.String() != mcpMessages[0]+"\n" {
		t.Errorf("client received %q, want the complete message only", out.String())
	}

	out.Reset()
	err = New(Options{}).ClientToServer(&out, &failingReader{data: []byte(in), err: boom})
	if !errors.Is(err, boom) {
		t.Errorf("client to server: err = %v, want the read error", err)
	}
	if out.String() != in {
		t.Errorf("server received %q, want every byte read, %q", out.String(), in)
	}
}

// mcp1KB returns a tools/call result of about 1 KiB.
func mcp1KB() []byte {
	head := `{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"`
	tail := `"}],"isError":false}}`
	text := strings.Repeat(`lorem ipsum \"dolor\" sit amet\n`, (1024-len(head)-len(tail))/31)
	return []byte(head + text + tail)
}

func TestNewDefaults(t *testing.T) {
	b := New(Options{MaxMessage: -1})
	if b.maxMessage != DefaultMaxMessage || b.diag == nil || b.log == nil {
		t.Errorf("New(Options{MaxMessage: -1}) = %+v, want the defaults", b)
	}
	if got := formatSize(64 << 20); got != "64Mi" {
		t.Errorf("formatSize(64Mi) = %q", got)
	}
	if got := formatSize(1000); got != "1000" {
		t.Errorf("formatSize(1000) = %q", got)
	}
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
