package egress

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// transcript is what an upstream connection carried, reported when it
// ended: every byte the upstream received, and the requests Go's server
// parser read from them ("METHOD host target").
type transcript struct {
	raw  string
	reqs []string
}

// webUpstream is an HTTP/1.1 server that parses requests with net/http's
// own parser, as a real upstream would, and answers each with
// "got METHOD host target body=BODY" and keep-alive. serve, when set, may
// take over a request (upgrades, odd responses): it returns false to end
// the connection. Each connection's transcript arrives on the channel.
func webUpstream(t testing.TB, ip string, serve func(c net.Conn, br *bufio.Reader, r *http.Request, body []byte) bool) (upstream, <-chan transcript) {
	t.Helper()
	out := make(chan transcript, 16)
	up := tcpUpstream(t, ip, func(c net.Conn) {
		var raw bytes.Buffer
		var mu sync.Mutex
		tr := transcript{}
		defer func() {
			mu.Lock()
			tr.raw = raw.String()
			mu.Unlock()
			out <- tr
		}()
		br := bufio.NewReader(io.TeeReader(c, writerFunc(func(b []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return raw.Write(b)
		})))
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				_, _ = io.Copy(io.Discard, br) // keep the transcript complete
				return
			}
			body, _ := io.ReadAll(r.Body)
			tr.reqs = append(tr.reqs, r.Method+" "+r.Host+" "+r.RequestURI)
			if serve != nil {
				if !serve(c, br, r, body) {
					return
				}
				continue
			}
			msg := fmt.Sprintf("got %s %s %s body=%s", r.Method, r.Host, r.RequestURI, body)
			if r.Method == "HEAD" {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(msg))
			} else {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
			}
			if r.Close {
				return
			}
		}
	})
	return up, out
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// webProxy is a proxy that allows web.test on up's port.
func webProxy(t *testing.T, up upstream) *testProxy {
	tp := newTestProxy(t, []string{fmt.Sprintf("web.test:%d", up.port), fmt.Sprintf("trusted:%s", up.addr)}, nil)
	tp.res.set("web.test", up.addr.Addr().String())
	return tp
}

// exchangeOn sends first, reads its response, then sends second (or,
// pipelined, sends both at once) and reads the rest of the stream. It
// returns the first response's body ("" if none came) and what followed.
func exchangeOn(t *testing.T, c net.Conn, first, second string, pipelined bool) (string, string) {
	t.Helper()
	br := bufio.NewReader(c)
	readOne := func() string {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return ""
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	var got string
	if pipelined {
		io.WriteString(c, first+second)
		got = readOne()
	} else {
		io.WriteString(c, first)
		got = readOne()
		io.WriteString(c, second)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	rest, _ := io.ReadAll(br)
	return got, string(rest)
}

// Every request on a kept-alive plain-HTTP connection is checked, however
// it arrives, and a refused one never reaches the upstream.
func TestHTTPEveryRequestChecked(t *testing.T) {
	up, transcripts := webUpstream(t, "127.0.0.3", nil)
	tp := webProxy(t, up)
	hostOK := fmt.Sprintf("Host: web.test:%d\r\n", up.port)
	first := "GET /1 HTTP/1.1\r\n" + hostOK + "\r\n"

	t.Run("allowed requests share the connection", func(t *testing.T) {
		tp.redirectTo("web.test", up.port)
		c := tp.connect()
		got, rest := exchangeOn(t, c, first, "HEAD /2 HTTP/1.1\r\n"+hostOK+"\r\nGET /3 HTTP/1.1\r\nHost: WEB.test.\r\n\r\n", false)
		if !strings.HasPrefix(got, "got GET web.test") {
			t.Errorf("first response %q", got)
		}
		// The HEAD response has a Content-Length and no body: the third
		// response follows it directly.
		if !strings.Contains(rest, "\r\n\r\nHTTP/1.1 200 OK") || !strings.HasSuffix(rest, "got GET WEB.test. /3 body=") {
			t.Errorf("then %q", rest)
		}
		tr := <-transcripts
		if want := []string{"GET web.test:" + fmt.Sprint(up.port) + " /1", "HEAD web.test:" + fmt.Sprint(up.port) + " /2", "GET WEB.test. /3"}; strings.Join(tr.reqs, "|") != strings.Join(want, "|") {
			t.Errorf("upstream read %q, want %q", tr.reqs, want)
		}
		tp.expect(VerdictAllow, "")
	})

	for _, tc := range []struct {
		name, first, second, why string
	}{
		{"another Host", first, "GET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n", "request 2 on the connection: HTTP Host evil.test does not match web.test"},
		{"another Host, by case and dot", first, "GET /2 HTTP/1.1\r\nHost: evil.test.\r\n\r\n", "HTTP Host evil.test. does not match web.test"},
		{"absolute-form to another host", first, "GET http://evil.test/2 HTTP/1.1\r\n" + hostOK + "\r\n", "request target evil.test and Host web.test differ"},
		{"absolute-form without Host", first, "GET http://evil.test/2 HTTP/1.1\r\n\r\n", "HTTP Host evil.test does not match web.test"},
		{"no Host", first, "GET /2 HTTP/1.1\r\n\r\n", "request 2 on the connection: no Host header"},
		{"two Hosts", first, "GET /2 HTTP/1.1\r\n" + hostOK + "Host: evil.test\r\n\r\n", "more than one Host header"},
		{"Host on another port", first, "GET /2 HTTP/1.1\r\nHost: web.test:8080\r\n\r\n", "names another port"},
		{"CONNECT", first, "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n", "CONNECT sent to web.test itself"},
		{"HTTP/1.0 keep-alive", "GET /1 HTTP/1.0\r\n" + hostOK + "Connection: keep-alive\r\n\r\n",
			"GET /2 HTTP/1.0\r\nHost: evil.test\r\nConnection: keep-alive\r\n\r\n", "HTTP Host evil.test does not match"},
		{"HTTP/0.9 after 1.1", first, "GET /evil\r\n\r\n", "malformed request line"},
		{"another method", first, "PROPFIND /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n", "HTTP Host evil.test does not match"},
		{"h2c upgrade", first, "GET /2 HTTP/1.1\r\n" + hostOK + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", "h2c"},
		{"HTTP/2 preface", first, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 connection preface"},
		{"obs-fold", first, "GET /2 HTTP/1.1\r\nX: a\r\n Host: evil.test\r\n" + hostOK + "\r\n", "obs-fold"},
		{"bare LF", first, "GET /2 HTTP/1.1\nHost: evil.test\n\n", "bare LF"},
		{"space before colon", first, "GET /2 HTTP/1.1\r\nHost : evil.test\r\n" + hostOK + "\r\n", "white space between a header name and its colon"},
		{"not HTTP", first, "\x00\x01 not HTTP\r\n\r\n", "malformed request line"},
		// Framing the proxy and the upstream could read differently.
		{"TE and CL", first, "POST /2 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\nContent-Length: 41\r\n\r\n0\r\n\r\nGET /3 HTTP/1.1\r\nHost: evil.test\r\n\r\n", "both Transfer-Encoding and Content-Length"},
		{"chunked, identity", first, "POST /2 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", `only a single "chunked"`},
		{"two Content-Lengths", first, "POST /2 HTTP/1.1\r\n" + hostOK + "Content-Length: 0\r\nContent-Length: 41\r\n\r\n", "more than one Content-Length"},
		{"TE in HTTP/1.0", "GET /1 HTTP/1.0\r\n" + hostOK + "Connection: keep-alive\r\n\r\n",
			"POST /2 HTTP/1.0\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 request"},
		{"a request after a chunked body", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
			"GET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n", "HTTP Host evil.test does not match"},
		{"a request after a sized body", "POST /1 HTTP/1.1\r\n" + hostOK + "Content-Length: 5\r\n\r\nhello",
			"GET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n", "HTTP Host evil.test does not match"},
		{"body framing: chunk longer than its size", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n",
			"3\r\nhello\r\n0\r\n\r\nGET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n", "chunk data longer than its chunk size"},
		{"body framing: chunk size with a space", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n",
			"5 \r\nhello\r\n0\r\n\r\n", "bad chunk size"},
		{"body framing: chunk size in 0x", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n",
			"0x5\r\nhello\r\n0\r\n\r\n", "bad chunk size"},
		{"body framing: chunk size with a bare LF", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n",
			"5\nhello\r\n0\r\n\r\n", "bare LF in body framing"},
		{"body framing: quoted chunk extension", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n",
			"5;a=\"b\"\r\nhello\r\n0\r\n\r\n", "bad chunk extension"},
		{"body framing: obs-fold in a trailer", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n",
			"0\r\nX: a\r\n b\r\n\r\n", "trailer: obs-fold"},
	} {
		for _, pipelined := range []bool{false, true} {
			if !pipelined && strings.HasPrefix(tc.name, "body framing:") {
				continue // one request split in two: nothing to answer before the rest
			}
			t.Run(fmt.Sprintf("%s/pipelined=%v", tc.name, pipelined), func(t *testing.T) {
				tp.redirectTo("web.test", up.port)
				c := tp.connect()
				got, rest := exchangeOn(t, c, tc.first, tc.second, pipelined)
				// The requests before the refused one get their answers.
				if !strings.HasPrefix(tc.name, "body framing:") && (!strings.HasPrefix(got, "got ") || rest != "") {
					t.Errorf("first response %q, then %q", got, rest)
				}
				tr := <-transcripts
				if strings.Contains(tr.raw, "evil") || len(tr.reqs) > 1 {
					t.Errorf("the upstream got %q (requests %q)", tr.raw, tr.reqs)
				}
				tp.expect(VerdictDeny, tc.why)
			})
		}
	}

	// Requests in bodies are bodies: the proxy frames them as the upstream
	// does, so what follows is the next request, checked.
	for _, tc := range []struct{ name, req string }{
		{"sized body", "POST /1 HTTP/1.1\r\n" + hostOK + "Content-Length: 36\r\n\r\nGET /x HTTP/1.1\r\nHost: evil.test\r\n\r\n"},
		{"chunked body", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: chunked\r\n\r\n24\r\nGET /x HTTP/1.1\r\nHost: evil.test\r\n\r\n\r\n0\r\n\r\n"},
		{"chunk split across segments", "POST /1 HTTP/1.1\r\n" + hostOK + "Transfer-Encoding: CHUNKED\r\n\r\n1\r\nG\r\n23;ext=1\r\nET /x HTTP/1.1\r\nHost: evil.test\r\n\r\n\r\n0\r\n\r\n"},
	} {
		t.Run("body: "+tc.name, func(t *testing.T) {
			tp.redirectTo("web.test", up.port)
			c := &trickleConn{Conn: tp.connect()}
			got, rest := exchangeOn(t, c, tc.req, "GET /2 HTTP/1.1\r\n"+hostOK+"Connection: close\r\n\r\n", false)
			if !strings.Contains(got, "body=GET /x HTTP/1.1\r\nHost: evil.test\r\n\r\n") || !strings.Contains(rest, "got GET web.test") {
				t.Errorf("responses %q, then %q", got, rest)
			}
			if tr := <-transcripts; len(tr.reqs) != 2 || !strings.HasPrefix(tr.reqs[1], "GET web.test") {
				t.Errorf("upstream read %q", tr.reqs)
			}
			tp.expect(VerdictAllow, "")
		})
	}
}

// trickleConn (proxy_test.go) writes in 50-byte segments; it must be a
// *net.TCPConn underneath for CloseWrite.
func (c *trickleConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// After 101 Switching Protocols to a websocket request the stream is the
// upstream's protocol, opaque both ways; a request that asked for an
// upgrade and did not get one leaves the connection HTTP, checked.
func TestHTTPUpgrade(t *testing.T) {
	up, transcripts := webUpstream(t, "127.0.0.3", func(c net.Conn, br *bufio.Reader, r *http.Request, _ []byte) bool {
		switch {
		case r.Header.Get("Upgrade") == "websocket" && r.URL.Path == "/ws":
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_, _ = io.Copy(c, br) // echo the frames
			return false
		case r.Method == "HEAD":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
		case r.URL.Path == "/c": // a 1xx first, then a chunked answer with a trailer
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\nX-T: 1\r\n\r\n")
		default:
			io.WriteString(c, "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno")
		}
		return true
	})
	tp := webProxy(t, up)
	hostOK := fmt.Sprintf("Host: web.test:%d\r\n", up.port)
	ws := "GET /ws HTTP/1.1\r\n" + hostOK + "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

	t.Run("101: opaque", func(t *testing.T) {
		tp.redirectTo("web.test", up.port)
		c := tp.connect()
		// Earlier responses (one without a body, one chunked after an
		// interim one) are framed, so the 101 is found where it is.
		io.WriteString(c, "HEAD /h HTTP/1.1\r\n"+hostOK+"\r\nGET /c HTTP/1.1\r\n"+hostOK+"\r\n"+ws)
		br := bufio.NewReader(c)
		for _, want := range []struct {
			method string
			status int
		}{{"HEAD", 200}, {"GET", 103}, {"GET", 200}, {"GET", 101}} {
			resp, err := http.ReadResponse(br, &http.Request{Method: want.method})
			if err != nil || resp.StatusCode != want.status {
				t.Fatalf("response: %v %v, want %d", resp, err, want.status)
			}
			if want.status == 200 {
				io.ReadAll(resp.Body)
			}
		}
		// Frames, and bytes that look like a request: not HTTP any more.
		frames := "\x81\x05hello GET / HTTP/1.1\r\nHost: other.test\r\n\r\n"
		io.WriteString(c, frames)
		c.(*net.TCPConn).CloseWrite()
		if rest, _ := io.ReadAll(br); string(rest) != frames {
			t.Errorf("echo %q", rest)
		}
		<-transcripts
		tp.expect(VerdictAllow, "")
	})
	t.Run("upgrade refused: still HTTP", func(t *testing.T) {
		tp.redirectTo("web.test", up.port)
		c := tp.connect()
		noUp := "GET /no HTTP/1.1\r\n" + hostOK + "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		got, _ := exchangeOn(t, c, noUp, "GET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n", true)
		if got != "no" {
			t.Errorf("response %q", got)
		}
		if tr := <-transcripts; strings.Contains(tr.raw, "evil") {
			t.Errorf("the upstream got %q", tr.raw)
		}
		tp.expect(VerdictDeny, "request 2 on the connection: HTTP Host evil.test does not match web.test")
	})
}

// A response that ends before its request's body was all forwarded means
// the upstream may read the rest as something else: nothing more is
// forwarded, and the connection closes after the response.
func TestHTTPEarlyResponse(t *testing.T) {
	rawSeen := make(chan string, 1)
	up := tcpUpstream(t, "127.0.0.3", func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		// Answer without reading the declared body, as a server that
		// rejects an upload might, and keep reading.
		io.WriteString(c, "HTTP/1.1 413 Too Large\r\nContent-Length: 2\r\n\r\nno")
		rest, _ := io.ReadAll(br)
		rawSeen <- string(rest)
	})
	tp := webProxy(t, up)
	tp.redirectTo("web.test", up.port)
	c := tp.connect()
	got, rest := exchangeOn(t, c, fmt.Sprintf("POST /up HTTP/1.1\r\nHost: web.test:%d\r\nContent-Length: 100\r\n\r\n", up.port),
		"GET /evil HTTP/1.1\r\nHost: evil.test\r\n\r\n"+strings.Repeat("x", 100), false)
	if got != "no" || rest != "" {
		t.Errorf("response %q, then %q", got, rest)
	}
	if s := <-rawSeen; s != "" {
		t.Errorf("the upstream got %q after its response", s)
	}
	tp.expect(VerdictAllow, "")
}

// Through the proxy's own port (HTTP_PROXY), an http:// request gets one
// request per connection: a second one on the reused connection, to any
// host, is never read, and the connection ends with the first response
// even if the upstream keeps it open.
func TestExplicitHTTPOneRequest(t *testing.T) {
	up, transcripts := webUpstream(t, "127.0.0.3", func(c net.Conn, _ *bufio.Reader, r *http.Request, body []byte) bool {
		msg := fmt.Sprintf("got %s %s close=%v body=%s", r.URL.Path, r.Host, r.Close, body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg) // ignores Connection: close
		return true
	})
	tp := webProxy(t, up)
	for _, second := range []string{
		"GET http://evil.test/2 HTTP/1.1\r\nHost: evil.test\r\n\r\n",
		fmt.Sprintf("GET http://web.test:%d/2 HTTP/1.1\r\nHost: evil.test\r\n\r\n", up.port),
		"GET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n",
		"CONNECT evil.test:443 HTTP/1.1\r\n\r\n",
	} {
		for _, pipelined := range []bool{false, true} {
			tp.setOrig("")
			c := tp.connect()
			first := fmt.Sprintf("POST http://web.test:%d/1 HTTP/1.1\r\nHost: web.test:%d\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", up.port, up.port)
			got, rest := exchangeOn(t, c, first, second, pipelined)
			if got != fmt.Sprintf("got /1 web.test:%d close=true body=abc", up.port) || rest != "" {
				t.Errorf("%q pipelined=%v: response %q, then %q", second, pipelined, got, rest)
			}
			if tr := <-transcripts; strings.Contains(tr.raw, "evil") || len(tr.reqs) != 1 {
				t.Errorf("%q: the upstream got %q", second, tr.raw)
			}
			ev := tp.expect(VerdictAllow, "")
			if ev.Via != "http" {
				t.Errorf("event %+v", ev)
			}
		}
	}
	// The request is rewritten for the upstream, hop-by-hop headers
	// dropped: a Connection header may not make its framing one of them,
	// or its body would reach the upstream as a request of its own.
	tp.setOrig("")
	c := tp.connect()
	smuggled := "GET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n"
	fmt.Fprintf(c, "POST http://web.test:%d/1 HTTP/1.1\r\nContent-Length: %d\r\nConnection: Content-Length\r\n\r\n%s", up.port, len(smuggled), smuggled)
	if code, body := readResponse(t, c); code != 400 || !strings.Contains(body, "Connection header names content-length") {
		t.Errorf("Connection: Content-Length: %d %q", code, body)
	}
	tp.expect(VerdictDeny, "Connection header names content-length")
}

// Plain HTTP inside a CONNECT tunnel is checked request by request too.
func TestConnectTunnelEveryRequest(t *testing.T) {
	up, transcripts := webUpstream(t, "127.0.0.3", nil)
	tp := webProxy(t, up)
	tp.setOrig("")
	c := tp.connect()
	fmt.Fprintf(c, "CONNECT web.test:%d HTTP/1.1\r\n\r\n", up.port)
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("CONNECT: %q %v", line, err)
	}
	br.ReadString('\n')
	fmt.Fprintf(c, "GET /1 HTTP/1.1\r\nHost: web.test\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fmt.Fprintf(c, "GET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(br)
	if tr := <-transcripts; strings.Contains(tr.raw, "evil") {
		t.Errorf("the upstream got %q", tr.raw)
	}
	ev := tp.expect(VerdictDeny, "request 2 on the connection: HTTP Host evil.test does not match web.test")
	if ev.Via != "connect" {
		t.Errorf("event %+v", ev)
	}
}

// A server that speaks first cannot be followed by HTTP: its responses
// could not be matched to requests.
func TestHTTPAfterServerSpoke(t *testing.T) {
	up := tcpUpstream(t, "127.0.0.5", func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
		io.Copy(io.Discard, c)
	})
	tp := newTestProxy(t, []string{fmt.Sprintf("web.test:%d", up.port), fmt.Sprintf("trusted:%s", up.addr)}, nil)
	tp.res.set("web.test", "127.0.0.5")
	tp.setOrig("")
	c := tp.connect()
	fmt.Fprintf(c, "CONNECT web.test:%d HTTP/1.1\r\n\r\n", up.port)
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "HTTP/1.1 101") {
			break // the upstream's banner, relayed before any request
		}
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: web.test\r\nUpgrade: websocket\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(br)
	tp.expect(VerdictDeny, "the server sent bytes before the first HTTP request")
}
