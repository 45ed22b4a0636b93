package broker

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"slices"
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
	line := append(bytes.Clone(msg), '\n')
	br := New(Options{})
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
