package egress

import (
	"fmt"
	"strings"
	"testing"
)

// feed gives the exchange's request side the stream in pieces of at most
// step bytes, as reads would, and returns how much it approved and why it
// stopped.
func feed(x *exchange, stream string, step int) (int, string) {
	approved := 0
	var pending []byte
	for i := 0; i < len(stream); i += step {
		pending = append(pending, stream[i:min(i+step, len(stream))]...)
		n, why := x.requests(pending)
		approved += n
		pending = pending[n:]
		if why != "" {
			return approved, why
		}
	}
	return approved, ""
}

func hostIs(name string) func(*reqHead) string {
	return func(h *reqHead) string {
		if h.form == formAuthority || !sameName(h.host, name) {
			return "HTTP Host " + h.host + " does not match " + name
		}
		return ""
	}
}

// However the stream is cut, the request side approves the same bytes:
// everything up to the first refused request, nothing of it.
func TestRequestFramingSplits(t *testing.T) {
	smuggled := "/x HTTP/1.1\r\nHost: evil.test\r\n\r\n"
	good := "POST /a HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("4;name=value\r\nGET \r\n%X\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n", len(smuggled), smuggled) +
		"\r\n" + // an empty line between requests
		"PUT /b HTTP/1.1\r\nHost: A.TEST:80\r\nContent-Length: 31\r\n\r\nGET / HTTP/1.1\r\nHost: evil\r\n\r\n" +
		"GET /c HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n" +
		"HEAD http://a.test/d HTTP/1.1\r\n\r\n"
	bad := "GET /e HTTP/1.1\r\nHost: evil.test\r\n\r\n"
	for step := 1; step <= len(good)+len(bad); step++ {
		x := newExchange(hostIs("a.test"), 0)
		n, why := feed(x, good, step)
		if n != len(good) || why != "" {
			t.Fatalf("step %d: approved %d of %d, %q", step, n, len(good), why)
		}
		if x.nreq != 4 || x.req.st != stHead {
			t.Fatalf("step %d: %d requests, state %d", step, x.nreq, x.req.st)
		}
		x = newExchange(hostIs("a.test"), 0)
		n, why = feed(x, good+bad, step)
		if n != len(good) || why != "request 5 on the connection: HTTP Host evil.test does not match a.test" {
			t.Fatalf("step %d: approved %d of %d, %q", step, n, len(good), why)
		}
	}
}

func TestRequestFramingLimits(t *testing.T) {
	x := newExchange(nil, 0)
	if _, why := feed(x, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+strings.Repeat("a", maxChunkLine+10), 100); why != "line in body framing too long" {
		t.Errorf("long chunk line: %q", why)
	}
	x = newExchange(nil, 0)
	if _, why := feed(x, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 100); why != "chunk size too large" {
		t.Errorf("huge chunk: %q", why)
	}
	x = newExchange(nil, 0)
	if _, why := feed(x, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"+strings.Repeat("X: y\r\n", 3000), 100); why != "trailer section larger than 16 KiB" {
		t.Errorf("huge trailer: %q", why)
	}
	x = newExchange(nil, 0)
	if _, why := feed(x, "GET / HTTP/1.1\r\nHost: a\r\nX: "+strings.Repeat("a", maxHead), 1000); why != "HTTP request head larger than 16 KiB" {
		t.Errorf("huge head: %q", why)
	}
	// One request per connection: what follows it is not even read.
	x = newExchange(nil, 1)
	n, why := feed(x, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE", 1)
	if n != 27 || why != "" || x.req.st != stDone {
		t.Errorf("limit 1: approved %d, %q, state %d", n, why, x.req.st)
	}
}

// responsesOf feeds a response stream to an exchange whose requests were
// the given methods, all forwarded with their bodies.
func responsesOf(methods []string, upgradeAt int, limit int, stream string) (n int, finished bool, why string, x *exchange) {
	x = newExchange(nil, limit)
	x.mode = modeHTTP
	for i, m := range methods {
		r := &request{method: m, bodyDone: true}
		if i == upgradeAt {
			r.upgrade = &upgrade{done: make(chan struct{})}
		}
		x.pending = append(x.pending, r)
		x.sent++
	}
	n, finished, why = x.responses([]byte(stream))
	return n, finished, why, x
}

func TestResponseFraming(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		name     string
		methods  []string
		stream   string
		n        int // approved; -1: all
		finished bool
		why      string
	}{
		{"sized", []string{"GET", "GET"}, ok + ok, -1, false, ""},
		{"HEAD has no body", []string{"HEAD", "GET"}, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + ok, -1, false, ""},
		{"204 and 304 have none", []string{"GET", "GET", "GET"}, "HTTP/1.1 204 No\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Same\r\n\r\n" + ok, -1, false, ""},
		{"interim first", []string{"POST"}, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Hints\r\nLink: <x>\r\n\r\n" + ok, -1, false, ""},
		{"LF line endings", []string{"GET"}, "HTTP/1.0 200 OK\nContent-Length: 2\n\nok", -1, false, ""},
		{"chunked, with a trailer", []string{"GET", "GET"}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\nT: 1\r\n\r\n" + ok, -1, false, ""},
		{"until close", []string{"GET", "GET"}, "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n", -1, false, ""},
		{"TE not chunked: until close", []string{"GET"}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nHTTP/1.1 200", -1, false, ""},
		{"identical Content-Lengths", []string{"GET"}, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", -1, false, ""},
		{"incomplete head waits", []string{"GET"}, "HTTP/1.1 200 OK\r\nContent-Len", 0, false, ""},

		{"TE and CL", []string{"GET"}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 0, false, "both Transfer-Encoding and Content-Length"},
		{"differing Content-Lengths", []string{"GET"}, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 0, false, "differing Content-Lengths"},
		{"bad Content-Length", []string{"GET"}, "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n", 0, false, "bad Content-Length"},
		{"no request", []string{"GET"}, ok + ok, len(ok), false, "a response to no request"},
		{"101 unasked", []string{"GET"}, "HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, false, "101 Switching Protocols to a request that asked for no upgrade"},
		{"not a status line", []string{"GET"}, "GET / HTTP/1.1\r\n\r\n", 0, false, "malformed status line"},
		{"HTTP/2 status line", []string{"GET"}, "HTTP/2 200\r\n\r\n", 0, false, "malformed status line"},
		{"obs-fold", []string{"GET"}, "HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nok", 0, false, "obs-fold"},
		{"leading empty line", []string{"GET"}, "\r\n" + ok, 0, false, "response starts with an empty line"},
		{"chunk too long", []string{"GET"}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 51, false, "chunk data longer than its chunk size"},
	} {
		n, finished, why, _ := responsesOf(tc.methods, -1, 0, tc.stream)
		want := tc.n
		if want < 0 {
			want = len(tc.stream)
		}
		if n != want || finished != tc.finished || !strings.Contains(why, tc.why) || (why == "") != (tc.why == "") {
			t.Errorf("%s: approved %d of %d (want %d), finished %v, %q; want %q", tc.name, n, len(tc.stream), want, finished, why, tc.why)
		}
	}

	// An upgrade is settled by its response: 101 makes both sides opaque,
	// anything final leaves HTTP.
	stream := ok + "HTTP/1.1 101 Switching Protocols\r\n\r\nframes, or anything"
	n, _, why, x := responsesOf([]string{"GET", "GET"}, 1, 0, stream)
	if n != len(stream) || why != "" || x.resp.st != stOpaque || len(x.pending) != 0 {
		t.Errorf("101: approved %d, %q, state %d", n, why, x.resp.st)
	}
	_, _, _, x = responsesOf([]string{"GET"}, 0, 0, "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n")
	if x.resp.st != stHead {
		t.Errorf("426: state %d", x.resp.st)
	}

	// With one request per connection, its response ends the exchange.
	if _, finished, _, _ := responsesOf([]string{"GET"}, -1, 1, ok); !finished {
		t.Error("the one response did not finish the exchange")
	}
}

func TestParseChunkSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "a": 10, "FF": 255, "1;x": 1, "1 ;x=y": 1, "1\t;x": 1, "7ffffffffffffff": 0x7ffffffffffffff} {
		if n, why := parseChunkSize([]byte(in)); why != "" || n != want {
			t.Errorf("parseChunkSize(%q) = %d, %q; want %d", in, n, why, want)
		}
	}
	for _, in := range []string{"", " 1", "1 ", "0x1", "+1", "-1", "1x", "g", "1;\"q\"", "1;\x01", "1000000000000000"} {
		if n, why := parseChunkSize([]byte(in)); why == "" {
			t.Errorf("parseChunkSize(%q) = %d, want an error", in, n)
		}
	}
}

// However a client cuts its stream, the proxy approves the same bytes and
// refuses for the same reason; and no response stream makes the response
// side panic.
func FuzzRequestFraming(f *testing.F) {
	for _, s := range []string{
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\r\n\r\nHEAD http://a/ HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
		"GET / HTTP/1.1\nHost: a\n\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		whole := newExchange(hostIs("a"), 0)
		n1, why1 := feed(whole, string(stream), len(stream)+1)
		split := newExchange(hostIs("a"), 0)
		n2, why2 := feed(split, string(stream), int(step%32)+1)
		if n1 != n2 || why1 != why2 {
			t.Errorf("whole: %d %q; in pieces of %d: %d %q", n1, why1, step%32+1, n2, why2)
		}
		if n1 > len(stream) {
			t.Errorf("approved %d of %d bytes", n1, len(stream))
		}
		for _, upgradeAt := range []int{-1, 0} {
			n, _, _, _ := responsesOf([]string{"GET", "HEAD"}, upgradeAt, 0, string(stream))
			if n > len(stream) {
				t.Errorf("responses: approved %d of %d bytes", n, len(stream))
			}
		}
	})
}
