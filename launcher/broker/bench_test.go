package broker

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repeatReader yields line n times, as many copies per Read as fit, like a
// pipe with a fast writer on the other end.
type repeatReader struct {
	line []byte
	n    int
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	total := 0
	for r.n > 0 && total < len(p) {
		k := copy(p[total:], r.line[r.off:])
		total += k
		r.off += k
		if r.off == len(r.line) {
			r.off = 0
			r.n--
		}
	}
	return total, nil
}

// lineCounter counts Write calls and bytes.
type lineCounter struct{ writes, bytes int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.writes++
	c.bytes += len(p)
	return len(p), nil
}

func benchCopy(b *testing.B, msg []byte, copy func(*Broker) func(io.Writer, io.Reader) error) {
	benchCopyOpts(b, msg, Options{}, copy)
}

func benchCopyOpts(b *testing.B, msg []byte, opts Options, copy func(*Broker) func(io.Writer, io.Reader) error) {
	line := append(bytes.Clone(msg), '\n')
	br := New(opts)
	src := &repeatReader{line: line, n: b.N}
	var dst lineCounter
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	if err := copy(br)(&dst, src); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if dst.bytes != b.N*len(line) {
		b.Fatalf("forwarded %d bytes, want %d", dst.bytes, b.N*len(line))
	}
}

// answering sends results server → client, each one answering a tools/call
// the client has in flight: with policies on, the broker withholds a
// result that answers nothing. Read yields one line per call, so that the
// broker has handled the previous answer (and forgotten its request)
// before the next request goes in flight; id is the results' id.
func answering(id string) func(*Broker) func(io.Writer, io.Reader) error {
	return func(br *Broker) func(io.Writer, io.Reader) error {
		return func(w io.Writer, r io.Reader) error {
			return br.ServerToClient(w, &inFlightReader{br: br, id: []byte(id), src: r.(*repeatReader)})
		}
	}
}

type inFlightReader struct {
	br  *Broker
	id  []byte
	key []byte
	src *repeatReader
}

func (r *inFlightReader) Read(p []byte) (int, error) {
	if r.src.off == 0 && r.src.n > 0 {
		var added bool
		r.key, added = r.br.remember(r.br.clientReqs, "client", r.key, r.id, pending{method: "tools/call", tool: "read_file", start: time.Now()}, true)
		if !added {
			return 0, errors.New("bench: the previous answer's request is still in flight")
		}
	}
	if rest := len(r.src.line) - r.src.off; len(p) > rest {
		p = p[:rest]
	}
	return r.src.Read(p)
}

func serverToClient(b *Broker) func(io.Writer, io.Reader) error { return b.ServerToClient }
func clientToServer(b *Broker) func(io.Writer, io.Reader) error { return b.ClientToServer }

func BenchmarkServerToClient1KB(b *testing.B) { benchCopy(b, mcp1KB(), serverToClient) }
func BenchmarkClientToServer1KB(b *testing.B) { benchCopy(b, mcp1KB(), clientToServer) }

// BenchmarkServerToClient10MB forwards a 10 MB tools/call result, the size
// of a large file read.
func BenchmarkServerToClient10MB(b *testing.B) {
	head := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"`
	tail := `"}],"isError":false}}`
	chunk := `lorem ipsum dolor sit amet, \"quoted\" and\n `
	text := strings.Repeat(chunk, (10<<20-len(head)-len(tail))/len(chunk))
	benchCopy(b, []byte(head+text+tail), serverToClient)
}

// policyOpts turns on every policy this package has, writing the audit log
// to io.Discard: tool filter, audit, pins, poisoning scan (block) and
// redaction of two passed-in values and the token shapes.
var policyOpts = Options{ToolDeny: []string{"write_*", "delete_*"}, ToolAllow: []string{"*"}, Audit: io.Discard,
	Pins: &memPins{}, Identity: everything, Scan: ModeBlock,
	Redactor: NewRedactor(map[string]string{"GITHUB_TOKEN": "ghp_0123456789abcdefghij0123456789abcdef", "API_KEY": "k-8f3a9c2e7b1d"})}

func BenchmarkServerToClient1KBPolicies(b *testing.B) {
	benchCopyOpts(b, mcp1KB(), policyOpts, answering("42"))
}

func BenchmarkClientToServer1KBPolicies(b *testing.B) {
	benchCopyOpts(b, mcp1KB(), policyOpts, clientToServer)
}

func BenchmarkServerToClient10MBAudit(b *testing.B) {
	head := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"`
	tail := `"}],"isError":false}}`
	chunk := `lorem ipsum dolor sit amet, \"quoted\" and\n `
	text := strings.Repeat(chunk, (10<<20-len(head)-len(tail))/len(chunk))
	benchCopyOpts(b, []byte(head+text+tail), Options{Audit: io.Discard}, serverToClient)
}

// BenchmarkServerToClient10MBAllPolicies is the 10 MB result with every
// policy on, redaction included: redaction must look at every byte.
func BenchmarkServerToClient10MBAllPolicies(b *testing.B) {
	head := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"`
	tail := `"}],"isError":false}}`
	chunk := `lorem ipsum dolor sit amet, \"quoted\" and\n `
	text := strings.Repeat(chunk, (10<<20-len(head)-len(tail))/len(chunk))
	benchCopyOpts(b, []byte(head+text+tail), policyOpts, answering("7"))
}

// echoServer answers each line from r with the same line on w.
func echoServer(w io.Writer, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if _, err := w.Write(line); err != nil {
			return
		}
	}
}

func pipe(b *testing.B) (*os.File, *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// roundTripper is the client's end of a stdio session: it writes a request
// and waits for the whole response line.
type roundTripper struct {
	w io.Writer
	r *bufio.Reader
}

func (rt *roundTripper) do(b *testing.B, req []byte) time.Duration {
	start := time.Now()
	if _, err := rt.w.Write(req); err != nil {
		b.Fatal(err)
	}
	resp, err := rt.r.ReadSlice('\n')
	d := time.Since(start)
	if err != nil || len(resp) != len(req) {
		b.Fatalf("response %d bytes, %v", len(resp), err)
	}
	return d
}

// BenchmarkRoundTrip1KB measures one 1 KB request and its response through
// kernel pipes, with and without a broker in between, alternating so both
// see the same machine noise. The bare path is client ⇄ server over two
// pipes; the brokered path adds mcpbox in the middle (four pipes, both copy
// directions), as a real session does. ns/op covers one round trip of each.
func BenchmarkRoundTrip1KB(b *testing.B) {
	req := append(mcp1KB(), '\n')

	// Bare: client → server → client.
	srvIn, cliOut := pipe(b)
	cliIn, srvOut := pipe(b)
	go echoServer(srvOut, srvIn)
	bare := &roundTripper{w: cliOut, r: bufio.NewReaderSize(cliIn, 64<<10)}

	// Brokered: client → broker → server → broker → client.
	brIn, cliOut2 := pipe(b)
	srvIn2, brToSrv := pipe(b)
	brFromSrv, srvOut2 := pipe(b)
	cliIn2, brOut := pipe(b)
	br := New(Options{})
	go br.ClientToServer(brToSrv, brIn)
	go echoServer(srvOut2, srvIn2)
	go br.ServerToClient(brOut, brFromSrv)
	brokered := &roundTripper{w: cliOut2, r: bufio.NewReaderSize(cliIn2, 64<<10)}

	for range 100 { // warm up both paths
		bare.do(b, req)
		brokered.do(b, req)
	}
	bareTimes := make([]time.Duration, b.N)
	brokerTimes := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			bareTimes[i] = bare.do(b, req)
			brokerTimes[i] = brokered.do(b, req)
		} else {
			brokerTimes[i] = brokered.do(b, req)
			bareTimes[i] = bare.do(b, req)
		}
	}
	b.StopTimer()

	slices.Sort(bareTimes)
	slices.Sort(brokerTimes)
	pct := func(d []time.Duration, p int) float64 { return float64(d[(len(d)-1)*p/100].Nanoseconds()) }
	b.ReportMetric(pct(bareTimes, 50), "bare-p50-ns")
	b.ReportMetric(pct(bareTimes, 99), "bare-p99-ns")
	b.ReportMetric(pct(brokerTimes, 50), "p50-ns")
	b.ReportMetric(pct(brokerTimes, 99), "p99-ns")
	b.ReportMetric(pct(brokerTimes, 50)-pct(bareTimes, 50), "added-p50-ns")
	b.ReportMetric(pct(brokerTimes, 99)-pct(bareTimes, 99), "added-p99-ns")
}

// callServer answers each tools/call line from r with a 1 KB result that
// carries the request's id, as a real server does.
func callServer(w io.Writer, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	head := []byte(`{"jsonrpc":"2.0","id":`)
	body := mcp1KB()
	body = body[bytes.Index(body, []byte(`,"result"`)):]
	var out []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		v, _ := parseView(trimSpace(line))
		out = append(append(append(append(out[:0], head...), v.id...), body...), '\n')
		if _, err := w.Write(out); err != nil {
			return
		}
	}
}

// BenchmarkRoundTrip1KBPolicies is BenchmarkRoundTrip1KB with a realistic
// exchange (a 1 KB tools/call request, a 1 KB result with its id) and three
// paths measured alternately: bare, the broker passing through, and the
// broker with the tool filter and the audit log (to io.Discard) on. The
// added-* metrics are against the bare path; policy-over-pass-p50-ns is the
// policies' own cost.
func BenchmarkRoundTrip1KBPolicies(b *testing.B) {
	args := strings.Repeat("x", 1024-160)
	request := func(id int) []byte {
		return []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/tmp/notes.md","pad":"` + args + `"},"_meta":{"progressToken":1}}}` + "\n")
	}

	srvIn, cliOut := pipe(b)
	cliIn, srvOut := pipe(b)
	go callServer(srvOut, srvIn)
	bare := &roundTripper{w: cliOut, r: bufio.NewReaderSize(cliIn, 64<<10)}

	brokered := func(opts Options) *roundTripper {
		brIn, cliOut := pipe(b)
		srvIn, brToSrv := pipe(b)
		brFromSrv, srvOut := pipe(b)
		cliIn, brOut := pipe(b)
		br := New(opts)
		go br.ClientToServer(brToSrv, brIn)
		go callServer(srvOut, srvIn)
		go br.ServerToClient(brOut, brFromSrv)
		return &roundTripper{w: cliOut, r: bufio.NewReaderSize(cliIn, 64<<10)}
	}
	paths := []*roundTripper{bare, brokered(Options{}), brokered(policyOpts)}
	do := func(rt *roundTripper, req []byte) time.Duration {
		start := time.Now()
		if _, err := rt.w.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := rt.r.ReadSlice('\n')
		d := time.Since(start)
		if err != nil || !bytes.Contains(resp, []byte(`"result"`)) {
			b.Fatalf("response %q, %v", resp, err)
		}
		return d
	}

	for i := range 100 {
		for _, p := range paths {
			do(p, request(i))
		}
	}
	times := [3][]time.Duration{make([]time.Duration, b.N), make([]time.Duration, b.N), make([]time.Duration, b.N)}
	reqs := make([][]byte, b.N)
	for i := range reqs {
		reqs[i] = request(1000 + i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for k := range 3 {
			j := (i + k) % 3 // rotate who goes first
			times[j][i] = do(paths[j], reqs[i])
		}
	}
	b.StopTimer()

	pct := func(d []time.Duration, p int) float64 { return float64(d[(len(d)-1)*p/100].Nanoseconds()) }
	for _, d := range times {
		slices.Sort(d)
	}
	b.ReportMetric(pct(times[0], 50), "bare-p50-ns")
	b.ReportMetric(pct(times[1], 50)-pct(times[0], 50), "added-pass-p50-ns")
	b.ReportMetric(pct(times[1], 99)-pct(times[0], 99), "added-pass-p99-ns")
	b.ReportMetric(pct(times[2], 50)-pct(times[0], 50), "added-policy-p50-ns")
	b.ReportMetric(pct(times[2], 99)-pct(times[0], 99), "added-policy-p99-ns")
	b.ReportMetric(pct(times[2], 50)-pct(times[1], 50), "policy-over-pass-p50-ns")
}
