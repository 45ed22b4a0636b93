package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTransparentTLS(t *testing.T) {
	up := tlsUpstream(t, "127.0.0.2", "api.test")
	tp := newTestProxy(t, []string{fmt.Sprintf("api.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.2:%d", up.port)}, nil)
	tp.res.set("api.test", "127.0.0.2")

	tp.redirectTo("api.test", up.port)
	c := tls.Client(tp.connect(), &tls.Config{ServerName: "api.test", RootCAs: up.pool})
	fmt.Fprintf(c, "GET /hello HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
	got := readAllTimeout(t, c)
	c.Close()
	if !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.HasSuffix(got, "hello from api.test /hello") {
		t.Fatalf("response %q", got)
	}
	ev := tp.expect(VerdictAllow, "")
	if ev.Host != "api.test" || ev.Port != up.port || ev.Addr != up.addr.String() || ev.Via != "transparent" ||
		ev.BytesUp < 200 || ev.BytesDown < 500 || ev.Duration <= 0 {
		t.Errorf("event %+v", ev)
	}
	if tp.res.callCount() != 1 || tp.dials.Load() != 1 {
		t.Errorf("resolver calls %v, dials %d", tp.res.calls, tp.dials.Load())
	}
}

func TestExplicitConnect(t *testing.T) {
	up := tlsUpstream(t, "127.0.0.2", "api.test")
	tp := newTestProxy(t, []string{fmt.Sprintf("api.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.2:%d", up.port)}, nil)
	tp.res.set("api.test", "127.0.0.2")
	proxyURL, _ := url.Parse("http://" + tp.addr)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:             http.ProxyURL(proxyURL),
		TLSClientConfig:   &tls.Config{RootCAs: up.pool},
		DisableKeepAlives: true,
	}}
	resp, err := client.Get(fmt.Sprintf("https://api.test:%d/tunnel", up.port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from api.test /tunnel" {
		t.Errorf("body %q", body)
	}
	ev := tp.expect(VerdictAllow, "")
	if ev.Via != "connect" || ev.Host != "api.test" || ev.Addr != up.addr.String() || ev.BytesUp == 0 || ev.BytesDown == 0 {
		t.Errorf("event %+v", ev)
	}

	// A client that sends its ClientHello right behind the CONNECT request
	// gets it checked all the same.
	c := tp.connect()
	req := fmt.Sprintf("CONNECT api.test:%d HTTP/1.1\r\nHost: api.test\r\n\r\n", up.port)
	c.Write(append([]byte(req), clientHello(t, "evil.test")...))
	got := readAllTimeout(t, c)
	if got != "HTTP/1.1 200 Connection established\r\n\r\n" {
		t.Errorf("got %q", got)
	}
	tp.expect(VerdictDeny, "SNI evil.test does not match api.test")
}

func TestExplicitHTTPForward(t *testing.T) {
	up := httpUpstream(t, "127.0.0.3", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s host=%s pc=%q auth=%q body=%s", r.Method, r.RequestURI, r.Host,
			r.Header.Get("Proxy-Connection"), r.Header.Get("Proxy-Authorization"), b)
	})
	tp := newTestProxy(t, []string{fmt.Sprintf("web.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.3:%d", up.port)}, nil)
	tp.res.set("web.test", "127.0.0.3")

	c := tp.connect()
	body := "payload=1"
	fmt.Fprintf(c, "POST http://web.test:%d/path?q=1 HTTP/1.1\r\nHost: web.test:%d\r\nProxy-Connection: keep-alive\r\n"+
		"Proxy-Authorization: Basic eDp5\r\nContent-Length: %d\r\n\r\n%s", up.port, up.port, len(body), body)
	code, got := readResponse(t, c)
	c.Close()
	want := fmt.Sprintf(`POST /path?q=1 host=web.test:%d pc="" auth="" body=payload=1`, up.port)
	if code != 200 || got != want {
		t.Errorf("got %d %q, want %q", code, got, want)
	}
	ev := tp.expect(VerdictAllow, "")
	if ev.Via != "http" || ev.Host != "web.test" || ev.Port != up.port {
		t.Errorf("event %+v", ev)
	}

	// And through net/http's own proxy support.
	proxyURL, _ := url.Parse("http://" + tp.addr)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := client.Get(fmt.Sprintf("http://web.test:%d/x", up.port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "GET /x host=web.test") {
		t.Errorf("body %q", b)
	}
}

// Each refusal is logged with its reason, dials and resolves only what it
// must, and leaves the proxy serving.
func TestDenials(t *testing.T) {
	tlsUp := tlsUpstream(t, "127.0.0.2", "api.test")
	echoUp := tcpUpstream(t, "127.0.0.4", echo)
	tp := newTestProxy(t, []string{
		fmt.Sprintf("api.test:%d", tlsUp.port),
		fmt.Sprintf("rebind.test:%d", tlsUp.port),
		fmt.Sprintf("echo.test:%d", echoUp.port),
		"echo.test:7",
		"mapped.test:443",
		fmt.Sprintf("trusted:127.0.0.2:%d", tlsUp.port),
		fmt.Sprintf("trusted:127.0.0.4:%d", echoUp.port),
	}, func(o *Options) { o.HandshakeTimeout = 300 * time.Millisecond })
	tp.res.set("api.test", "127.0.0.2")
	tp.res.set("rebind.test", "127.0.0.1", "::1")
	tp.res.set("mapped.test", "::ffff:169.254.169.254")
	tp.res.set("echo.test", "127.0.0.4")

	// good checks that the proxy still serves: a TLS request through it.
	good := func() {
		t.Helper()
		tp.redirectTo("api.test", tlsUp.port)
		c := tls.Client(tp.connect(), &tls.Config{ServerName: "api.test", RootCAs: tlsUp.pool})
		fmt.Fprintf(c, "GET /ok HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
		if got := readAllTimeout(t, c); !strings.HasSuffix(got, "hello from api.test /ok") {
			t.Errorf("proxy stopped serving: %q", got)
		}
		c.Close()
		tp.expect(VerdictAllow, "")
	}
	// nothing checks that a step neither resolved nor dialled anything.
	nothing := func(what string, f func()) {
		t.Helper()
		r0, d0 := tp.res.callCount(), tp.dials.Load()
		f()
		if r, d := tp.res.callCount()-r0, tp.dials.Load()-d0; r != 0 || d != 0 {
			t.Errorf("%s: %d lookups, %d dials; want none", what, r, d)
		}
	}
	connectReq := func(target string) (int, string) {
		t.Helper()
		tp.setOrig("")
		c := tp.connect()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		return readResponse(t, c)
	}

	t.Run("name not in allowlist", func(t *testing.T) {
		nothing("CONNECT evil.test", func() {
			code, body := connectReq("evil.test:443")
			if code != 403 || !strings.Contains(body, "evil.test is not in the allowlist") {
				t.Errorf("%d %q", code, body)
			}
			tp.expect(VerdictDeny, "evil.test is not in the allowlist")
		})
		good()
	})
	t.Run("allowed host, other port", func(t *testing.T) {
		nothing("transparent api.test:9999", func() {
			tp.redirectTo("api.test", 9999)
			c := tp.connect()
			if got := readAllTimeout(t, c); got != "" {
				t.Errorf("read %q", got)
			}
			tp.expect(VerdictDeny, "port 9999 is not allowed for api.test")
		})
		nothing("CONNECT api.test:9999", func() {
			if code, _ := connectReq("api.test:9999"); code != 403 {
				t.Errorf("code %d", code)
			}
			tp.expect(VerdictDeny, "port 9999 is not allowed for api.test")
		})
		good()
	})
	t.Run("name resolving to loopback (rebinding)", func(t *testing.T) {
		d0 := tp.dials.Load()
		code, body := connectReq(fmt.Sprintf("rebind.test:%d", tlsUp.port))
		if code != 403 || !strings.Contains(body, "rebind.test resolves only to forbidden addresses (127.0.0.1: loopback, ::1: loopback)"+
			fmt.Sprintf("; this machine's loopback is reached only through a localhost:%d grant, by connecting to localhost", tlsUp.port)) {
			t.Errorf("%d %q", code, body)
		}
		tp.expect(VerdictDeny, "resolves only to forbidden addresses (127.0.0.1: loopback")
		if tp.dials.Load() != d0 {
			t.Error("dialled")
		}
		code, body = connectReq("mapped.test:443")
		if code != 403 || !strings.Contains(body, "169.254.169.254: link-local (cloud metadata service)") {
			t.Errorf("%d %q", code, body)
		}
		tp.expect(VerdictDeny, "resolves only to forbidden addresses")
		good()
	})
	t.Run("SNI mismatch", func(t *testing.T) {
		nothing("transparent", func() {
			tp.redirectTo("api.test", tlsUp.port)
			c := tls.Client(tp.connect(), &tls.Config{ServerName: "other.test", InsecureSkipVerify: true})
			if err := c.Handshake(); err == nil {
				t.Error("handshake succeeded")
			}
			tp.expect(VerdictDeny, "SNI other.test does not match api.test")
		})
		// In a CONNECT tunnel the SNI must match the CONNECT host too.
		tp.setOrig("")
		raw := tp.connect()
		fmt.Fprintf(raw, "CONNECT api.test:%d HTTP/1.1\r\n\r\n", tlsUp.port)
		buf := make([]byte, len("HTTP/1.1 200 Connection established\r\n\r\n"))
		if _, err := io.ReadFull(raw, buf); err != nil || !bytes.HasPrefix(buf, []byte("HTTP/1.1 200")) {
			t.Fatalf("CONNECT: %q %v", buf, err)
		}
		c := tls.Client(raw, &tls.Config{ServerName: "evil.test", InsecureSkipVerify: true})
		if err := c.Handshake(); err == nil {
			t.Error("handshake succeeded")
		}
		tp.expect(VerdictDeny, "SNI evil.test does not match api.test")
		good()
	})
	t.Run("HTTP Host mismatch", func(t *testing.T) {
		nothing("transparent", func() {
			tp.redirectTo("echo.test", echoUp.port)
			c := tp.connect()
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")
			if got := readAllTimeout(t, c); got != "" {
				t.Errorf("read %q", got)
			}
			tp.expect(VerdictDeny, "HTTP Host evil.test does not match echo.test")
		})
		nothing("two Host headers", func() {
			c := tp.connect()
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: echo.test\r\nHost: evil.test\r\n\r\n")
			readAllTimeout(t, c)
			tp.expect(VerdictDeny, "more than one Host header")
		})
		nothing("Host on another port", func() {
			c := tp.connect()
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: echo.test:80\r\n\r\n")
			readAllTimeout(t, c)
			tp.expect(VerdictDeny, fmt.Sprintf("HTTP Host echo.test:80 names another port than the connection's %d", echoUp.port))
		})
		// A matching Host is relayed. The echo server sends the request
		// back, which is no HTTP response: the proxy stops there.
		c := tp.connect()
		req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: ECHO.test.:%d\r\n\r\n", echoUp.port)
		fmt.Fprint(c, req)
		c.(*net.TCPConn).CloseWrite()
		if got := readAllTimeout(t, c); got != "" {
			t.Errorf("echo %q", got)
		}
		ev := tp.expect(VerdictError, `upstream's HTTP response: malformed status line "GET / HTTP/1.1"`)
		if ev.BytesUp != int64(len(req)) {
			t.Errorf("event %+v: want %d bytes up", ev, len(req))
		}
	})
	t.Run("metadata address without a grant", func(t *testing.T) {
		for _, orig := range []string{"169.254.169.254:80", "[::ffff:169.254.169.254]:80", "[fd00:ec2::254]:80", "[64:ff9b::a9fe:a9fe]:80", "8.8.8.8:443"} {
			nothing(orig, func() {
				tp.setOrig(orig)
				c := tp.connect()
				fmt.Fprintf(c, "GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
				if got := readAllTimeout(t, c); got != "" {
					t.Errorf("read %q", got)
				}
				ev := tp.expect(VerdictDeny, "no cidr: grant for "+orig)
				if ev.Host != "" || ev.Addr != orig {
					t.Errorf("event %+v", ev)
				}
			})
		}
		// The same through the explicit proxy, in every notation a client
		// might use: never a name, never dialled.
		for target, reason := range map[string]string{
			"169.254.169.254:80":          "no cidr: grant for 169.254.169.254:80 (link-local (cloud metadata service))",
			"[::ffff:169.254.169.254]:80": "IPv4-mapped IPv6 address (169.254.169.254",
			"2852039166:80":               "2852039166 is the address 169.254.169.254 in numeric form",
			"0xa9fea9fe:80":               "0xa9fea9fe is the address 169.254.169.254 in numeric form",
			"0251.0376.0251.0376:80":      "is the address 169.254.169.254 in numeric form",
			"[fd00:ec2::254]:80":          "unique local (cloud metadata service)",
			"198.18.200.200:443":          "198.18.200.200 is not a current sandbox DNS answer",
		} {
			nothing("CONNECT "+target, func() {
				code, body := connectReq(target)
				if code != 403 || !strings.Contains(body, reason) {
					t.Errorf("CONNECT %s: %d %q, want 403 %q", target, code, body, reason)
				}
				tp.expect(VerdictDeny, reason)
			})
		}
		good()
	})
	t.Run("garbage instead of a ClientHello", func(t *testing.T) {
		// Allowed name and port: it is a TCP proxy, the bytes are relayed.
		tp.redirectTo("echo.test", echoUp.port)
		c := tp.connect()
		fmt.Fprint(c, "\x00\x01 not TLS, not HTTP\n")
		c.(*net.TCPConn).CloseWrite()
		if got := readAllTimeout(t, c); got != "\x00\x01 not TLS, not HTTP\n" {
			t.Errorf("echo %q", got)
		}
		ev := tp.expect(VerdictAllow, "")
		if ev.BytesUp != 21 || ev.BytesDown != 21 {
			t.Errorf("bytes %d/%d", ev.BytesUp, ev.BytesDown)
		}
		// Denied target: refused before anything is read or dialled.
		nothing("denied target", func() {
			tp.redirectTo("echo.test", 8)
			c := tp.connect()
			fmt.Fprint(c, "garbage")
			if got := readAllTimeout(t, c); got != "" {
				t.Errorf("read %q", got)
			}
			tp.expect(VerdictDeny, "port 8 is not allowed for echo.test")
		})
		good()
	})
	t.Run("truncated ClientHello", func(t *testing.T) {
		hello := clientHello(t, "api.test")
		nothing("truncated", func() {
			tp.redirectTo("api.test", tlsUp.port)
			c := tp.connect()
			c.Write(hello[:len(hello)/2]) // then stall
			if got := readAllTimeout(t, c); got != "" {
				t.Errorf("read %q", got)
			}
			tp.expect(VerdictDeny, "truncated ClientHello")
		})
		nothing("truncated then closed", func() {
			c := tp.connect()
			c.Write(hello[:3])
			c.(*net.TCPConn).CloseWrite()
			readAllTimeout(t, c)
			tp.expect(VerdictDeny, "truncated ClientHello")
		})
		nothing("malformed", func() {
			c := tp.connect()
			bad := append([]byte(nil), hello...)
			bad[5] = 2 // ServerHello
			c.Write(bad)
			readAllTimeout(t, c)
			tp.expect(VerdictDeny, "malformed ClientHello: first handshake message is not a ClientHello")
		})
		// A ClientHello in 50-byte segments is fine.
		tp.redirectTo("api.test", tlsUp.port)
		c := tls.Client(&trickleConn{Conn: tp.connect()}, &tls.Config{ServerName: "api.test", RootCAs: tlsUp.pool})
		fmt.Fprintf(c, "GET /split HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
		if got := readAllTimeout(t, c); !strings.HasSuffix(got, "hello from api.test /split") {
			t.Errorf("split ClientHello: %q", got)
		}
		c.Close()
		tp.expect(VerdictAllow, "")
		good()
	})
	t.Run("explicit proxy: bad requests", func(t *testing.T) {
		for req, reason := range map[string]string{
			"CONNECT api.test:443 HTTP/1.1\r\nHost: api": "truncated HTTP request",
			"CONNECT :443 HTTP/1.1\r\n\r\n":              "no host in CONNECT request",
			"CONNECT api.test HTTP/1.1\r\n\r\n":          "CONNECT needs host:port",
			"CONNECT api.test:0 HTTP/1.1\r\n\r\n":        `bad port "0"`,
			"CONNECT api.test:99999 HTTP/1.1\r\n\r\n":    `bad port "99999"`,
			"CONNECT api.test:* HTTP/1.1\r\n\r\n":        `bad port "*"`,
			"CONNECT a..b:443 HTTP/1.1\r\n\r\n":          "bad host: empty label",
			"CONNECT  HTTP/1.1\r\n\r\n":                  "malformed request line",
			"GET / HTTP/1.1\r\nHost: api.test\r\n\r\n":   "not a proxy request",
			"GET https://api.test/ HTTP/1.1\r\n\r\n":     "only http:// can be forwarded",
			"\x16\x03\x01\x00\x05hello\r\n\r\n":          "malformed request line",
			"SSH-2.0-OpenSSH_9.2\r\n":                    "truncated HTTP request",
		} {
			nothing(fmt.Sprintf("%q", req), func() {
				tp.setOrig("")
				c := tp.connect()
				fmt.Fprint(c, req)
				code, body := readResponse(t, c)
				if code != 400 || !strings.Contains(body, reason) {
					t.Errorf("%q: %d %q, want 400 %q", req, code, body, reason)
				}
				tp.expect(VerdictDeny, reason)
			})
		}
		nothing("oversized head", func() {
			c := tp.connect()
			fmt.Fprintf(c, "CONNECT api.test:443 HTTP/1.1\r\nX: %s\r\n\r\n", strings.Repeat("a", 20<<10))
			code, _ := readResponse(t, c)
			if code != 400 {
				t.Errorf("code %d", code)
			}
			tp.expect(VerdictDeny, "request head larger than 16 KiB")
		})
		good()
	})
}

// trickleConn writes in 50-byte segments.
type trickleConn struct{ net.Conn }

func (c *trickleConn) Write(b []byte) (int, error) {
	for i := 0; i < len(b); i += 50 {
		if _, err := c.Conn.Write(b[i:min(i+50, len(b))]); err != nil {
			return i, err
		}
		time.Sleep(time.Millisecond)
	}
	return len(b), nil
}

// A server that speaks first gets its banner through without waiting for
// the client; the client's first bytes are still checked when they come.
func TestServerSpeaksFirst(t *testing.T) {
	banner := tcpUpstream(t, "127.0.0.5", func(c net.Conn) {
		fmt.Fprint(c, "220 smtp.test ready\r\n")
		echo(c)
	})
	tp := newTestProxy(t, []string{fmt.Sprintf("smtp.test:%d", banner.port), fmt.Sprintf("trusted:127.0.0.5:%d", banner.port)},
		func(o *Options) { o.PeekWait = 50 * time.Millisecond })
	tp.res.set("smtp.test", "127.0.0.5")

	tp.redirectTo("smtp.test", banner.port)
	c := tp.connect()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, len("220 smtp.test ready\r\n"))
	if err != nil || string(buf[:n]) != "220 smtp.test ready\r\n" {
		t.Fatalf("banner %q %v", buf[:n], err)
	}
	fmt.Fprint(c, "EHLO me\r\n")
	c.(*net.TCPConn).CloseWrite()
	if got := readAllTimeout(t, c); got != "EHLO me\r\n" {
		t.Errorf("echo %q", got)
	}
	tp.expect(VerdictAllow, "")

	// Late ClientHello with the wrong name: not forwarded.
	c = tp.connect()
	io.ReadAtLeast(c, buf, len("220 smtp.test ready\r\n"))
	c.Write(clientHello(t, "evil.test"))
	if got := readAllTimeout(t, c); got != "" {
		t.Errorf("a ClientHello for evil.test reached the upstream: echo %q", got)
	}
	tp.expect(VerdictDeny, "SNI evil.test does not match smtp.test")
}

func TestLoadConcurrent(t *testing.T) {
	up := tcpUpstream(t, "127.0.0.4", echo)
	tp := newTestProxy(t, []string{fmt.Sprintf("echo.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.4:%d", up.port)}, nil)
	tp.res.set("echo.test", "127.0.0.4")
	tp.redirectTo("echo.test", up.port)

	const conns = 200
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", tp.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte(fmt.Sprintf("conn %03d;", i)), 3000) // 27 KB, distinct per connection
			go func() {
				c.Write(msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("conn %d: got %d bytes (%v), want %d", i, len(got), err, len(msg))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	evs := tp.events.connects(t, conns)
	time.Sleep(50 * time.Millisecond)
	if n := len(tp.events.connects(t, conns)); n != conns {
		t.Errorf("%d connect events for %d connections", n, conns)
	}
	for _, ev := range evs {
		if ev.Verdict != VerdictAllow || ev.BytesUp != 27000 || ev.BytesDown != 27000 {
			t.Errorf("event %+v", ev)
			break
		}
	}
}

func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	up := tcpUpstream(t, "127.0.0.4", echo)
	tp := newTestProxy(t, []string{fmt.Sprintf("echo.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.4:%d", up.port)},
		func(o *Options) { o.HandshakeTimeout = 5 * time.Second })
	tp.res.set("echo.test", "127.0.0.4")
	tp.redirectTo("echo.test", up.port)

	// Slow clients: one byte that may start an HTTP request or a TLS
	// record, then nothing; and an explicit request that never ends.
	for _, b := range []string{"G", "\x16"} {
		c := tp.connect()
		c.Write([]byte(b))
	}
	tp.setOrig("")
	tp.connect().Write([]byte("CONNECT echo.test:1 HTTP/1.1\r\n"))
	time.Sleep(100 * time.Millisecond)
	tp.redirectTo("echo.test", up.port)

	start := time.Now()
	for i := range 20 {
		c := tp.connect()
		fmt.Fprintf(c, "ping %d", i)
		c.(*net.TCPConn).CloseWrite()
		if got := readAllTimeout(t, c); got != fmt.Sprintf("ping %d", i) {
			t.Fatalf("echo %q", got)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20 connections took %v next to stalled clients", d)
	}
}

// IdleTimeout holds both when the relay splices TCP to TCP (the kernel
// says when data last arrived) and when it copies through a buffer (a
// wrapped upstream conn, as an injected Dial may return).
func TestIdleTimeout(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrapped=%v", wrap), func(t *testing.T) { testIdleTimeout(t, wrap) })
	}
}

type wrappedConn struct{ net.Conn }

func testIdleTimeout(t *testing.T, wrap bool) {
	up := tcpUpstream(t, "127.0.0.4", echo)
	var tp *testProxy
	tp = newTestProxy(t, []string{fmt.Sprintf("echo.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.4:%d", up.port)},
		func(o *Options) {
			o.IdleTimeout = 300 * time.Millisecond
			if wrap {
				o.Dial = func(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
					c, err := tp.dial(ctx, network, ap)
					if err != nil {
						return nil, err
					}
					return wrappedConn{c}, nil
				}
			}
		})
	tp.res.set("echo.test", "127.0.0.4")
	tp.redirectTo("echo.test", up.port)

	c := tp.connect()
	// Activity keeps it open past the timeout...
	buf := make([]byte, 4)
	var start time.Time
	for i := range 6 {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		// Not a word alone: "tick" could still become "tickle / HTTP/1.1".
		c.Write([]byte("tic\n"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("closed while active: %v", err)
		}
		start = time.Now()
	}
	// ...silence closes it.
	readAllTimeout(t, c)
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}
	ev := tp.expect(VerdictAllow, "closed after 300ms idle")
	if ev.BytesUp != 24 || ev.BytesDown != 24 {
		t.Errorf("event %+v", ev)
	}
}

func TestMaxConns(t *testing.T) {
	up := tcpUpstream(t, "127.0.0.4", echo)
	tp := newTestProxy(t, []string{fmt.Sprintf("echo.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.4:%d", up.port)},
		func(o *Options) { o.MaxConns = 2 })
	tp.res.set("echo.test", "127.0.0.4")
	tp.redirectTo("echo.test", up.port)
	a, b := tp.connect(), tp.connect()
	for _, c := range []net.Conn{a, b} {
		c.Write([]byte("x"))
		io.ReadFull(c, make([]byte, 1))
	}
	if got := readAllTimeout(t, tp.connect()); got != "" {
		t.Errorf("third connection got %q", got)
	}
	ev := tp.expect(VerdictDeny, "too many connections (MaxConns 2)")
	_ = ev
	a.Close()
	b.Close()
	tp.events.connects(t, 3)
	c := tp.connect()
	c.Write([]byte("y"))
	c.(*net.TCPConn).CloseWrite()
	if got := readAllTimeout(t, c); got != "y" {
		t.Errorf("after the others closed: %q", got)
	}
}

func TestPanicInHandlerIsContained(t *testing.T) {
	up := tcpUpstream(t, "127.0.0.4", echo)
	var once sync.Once
	tp := newTestProxy(t, []string{fmt.Sprintf("echo.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.4:%d", up.port)}, func(o *Options) {
		orig := o.OriginalDst
		o.OriginalDst = func(c net.Conn) (netip.AddrPort, error) {
			panicked := false
			once.Do(func() { panicked = true })
			if panicked {
				panic("boom")
			}
			return orig(c)
		}
	})
	tp.res.set("echo.test", "127.0.0.4")
	tp.redirectTo("echo.test", up.port)
	readAllTimeout(t, tp.connect())
	tp.expect(VerdictError, "internal error")
	c := tp.connect()
	c.Write([]byte("still here"))
	c.(*net.TCPConn).CloseWrite()
	if got := readAllTimeout(t, c); got != "still here" {
		t.Errorf("after a panic: %q", got)
	}
}

func TestOriginalDstError(t *testing.T) {
	tp := newTestProxy(t, nil, func(o *Options) {
		o.OriginalDst = func(net.Conn) (netip.AddrPort, error) { return netip.AddrPort{}, fmt.Errorf("no conntrack") }
	})
	readAllTimeout(t, tp.connect())
	tp.expect(VerdictDeny, "original destination unknown: no conntrack")
}

func TestCloseEndsEverything(t *testing.T) {
	up := tcpUpstream(t, "127.0.0.4", echo)
	tp := newTestProxy(t, []string{fmt.Sprintf("echo.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.4:%d", up.port)}, nil)
	tp.res.set("echo.test", "127.0.0.4")
	tp.redirectTo("echo.test", up.port)
	c := tp.connect()
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	done := make(chan struct{})
	go func() { tp.p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	readAllTimeout(t, c)
	if _, err := net.Dial("tcp", tp.addr); err == nil {
		t.Error("listener still open after Close")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := tp.p.ServeTCP(l); err == nil {
		t.Error("ServeTCP after Close succeeded")
	}
}

func TestEventJSON(t *testing.T) {
	ev := Event{Time: time.Unix(0, 0).UTC(), Kind: KindConnect, Via: "connect", Host: "api.test", Port: 443,
		Addr: "1.2.3.4:443", Verdict: VerdictAllow, BytesUp: 1, BytesDown: 2, Duration: time.Second}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"1970-01-01T00:00:00Z","kind":"connect","via":"connect","host":"api.test","port":443,"addr":"1.2.3.4:443","verdict":"allow","bytes_up":1,"bytes_down":2,"duration_ns":1000000000}`
	if string(b) != want {
		t.Errorf("json\n got %s\nwant %s", b, want)
	}
}

func TestNewRejectsNegative(t *testing.T) {
	if _, err := New(Options{IdleTimeout: -1}); err == nil {
		t.Error("negative IdleTimeout accepted")
	}
}
