package egress

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

func TestClassifyTLS(t *testing.T) {
	hello := clientHello(t, "API.test")
	res, done := classify(hello, false)
	if !done || res.proto != "tls" || res.name != "API.test" || res.deny != "" {
		t.Fatalf("classify(ClientHello) = %+v, %v", res, done)
	}
	// Every prefix waits for more, and is truncated once nothing follows.
	for _, n := range []int{1, 2, 5, 6, 9, 40, len(hello) - 1} {
		if res, done := classify(hello[:n], false); done {
			t.Errorf("prefix %d: decided %+v", n, res)
		}
		if res, _ := classify(hello[:n], true); res.deny != "truncated ClientHello" {
			t.Errorf("final prefix %d: %+v", n, res)
		}
	}
	// The same handshake message split over two records.
	body := hello[5:]
	split := append(record(body[:100]), record(body[100:])...)
	if res, done := classify(split, false); !done || res.name != "API.test" {
		t.Errorf("split records: %+v %v", res, done)
	}
	if res, done := classify(split[:len(split)-3], false); done {
		t.Errorf("split records, short: %+v", res)
	}
	// No SNI at all.
	if res, _ := classify(clientHello(t, ""), false); res.proto != "tls" || res.name != "" || res.deny != "" {
		t.Errorf("no SNI: %+v", res)
	}
	// Malformed.
	for name, b := range map[string][]byte{
		"alert record":       append([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 200}, append([]byte{0x15, 3, 3, 0, 2}, 2, 40)...),
		"zero-length record": {0x16, 3, 1, 0, 0},
		"not a ClientHello":  record([]byte{2, 0, 0, 1, 0}),
		"short body":         record([]byte{1, 0, 0, 3, 3, 3, 0}),
		"bad extension len":  record(append([]byte{1, 0, 0, 41}, append(make([]byte, 38), 0, 0, 5)...)),
		"huge ClientHello":   record([]byte{1, 0xff, 0xff, 0xff}),
		"two SNI extensions": record(helloWith(sniExt("a.test"), sniExt("b.test"))),
		"two names in one":   record(helloWith(sniExt("a.test", "b.test"))),
		"empty server name":  record(helloWith(sniExt(""))),
	} {
		if res, done := classify(b, false); !done || res.deny == "" {
			t.Errorf("%s: %+v, %v; want a denial", name, res, done)
		}
	}
	if res, _ := classify(record(helloWith(sniExt("ok.test"))), false); res.name != "ok.test" || res.deny != "" {
		t.Errorf("hand-made hello: %+v", res)
	}
	if res, _ := classify(record(helloWith()), false); res.name != "" || res.deny != "" {
		t.Errorf("hello without extensions: %+v", res)
	}
}

func record(fragment []byte) []byte {
	b := []byte{0x16, 3, 1, 0, 0}
	binary.BigEndian.PutUint16(b[3:], uint16(len(fragment)))
	return append(b, fragment...)
}

// helloWith builds a minimal ClientHello handshake message with exts.
func helloWith(exts ...[]byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // one cipher suite
	body = append(body, 1, 0)                // null compression
	if len(exts) > 0 {
		var all []byte
		for _, e := range exts {
			all = append(all, e...)
		}
		body = binary.BigEndian.AppendUint16(body, uint16(len(all)))
		body = append(body, all...)
	}
	msg := []byte{1, 0, 0, 0}
	msg[1], msg[2], msg[3] = byte(len(body)>>16), byte(len(body)>>8), byte(len(body))
	return append(msg, body...)
}

func sniExt(names ...string) []byte {
	var list []byte
	for _, n := range names {
		list = append(list, 0)
		list = binary.BigEndian.AppendUint16(list, uint16(len(n)))
		list = append(list, n...)
	}
	data := binary.BigEndian.AppendUint16(nil, uint16(len(list)))
	data = append(data, list...)
	ext := []byte{0, 0}
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(data)))
	return append(ext, data...)
}

func TestClassifyHTTP(t *testing.T) {
	const h = "Host: a.test\r\n"
	for _, tc := range []struct {
		in    string
		proto string
		host  string // the first request's host, when accepted
		port  int
		deny  string
	}{
		{"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "http", "a.test", 0, ""},
		{"POST /x HTTP/1.0\r\nhost:  A.test:8080 \r\nContent-Length: 3\r\n\r\nabc", "http", "A.test", 8080, ""},
		{"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", "http", "::1", 80, ""},
		{"\r\n\r\nGET / HTTP/1.1\r\n" + h + "\r\n", "http", "a.test", 0, ""}, // empty lines first
		{"GET http://b.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n", "http", "b.test", 0, ""},
		{"GET http://b.test:81/x HTTP/1.1\r\n\r\n", "http", "b.test", 81, ""},
		{"OPTIONS * HTTP/1.1\r\n" + h + "\r\n", "http", "a.test", 0, ""},
		{"POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: Chunked\r\n\r\n", "http", "a.test", 0, ""},
		{"GET / HTTP/1.1\r\n" + h + "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "http", "a.test", 0, ""},
		// Any method is a request to a server, so it is held to the rules.
		{"PROPFIND / HTTP/1.1\r\nHost: evil.test\r\n\r\n", "http", "evil.test", 0, ""},
		{"get / HTTP/1.1\r\nHost: evil.test\r\n\r\n", "http", "evil.test", 0, ""},
		{"CONNECT evil.test:443 HTTP/1.1\r\n\r\n", "http", "", 0, ""}, // refused by the session (checkRequest)

		// Host: absent, twice, empty, odd, or not the target's.
		{"GET http://b.test/ HTTP/1.1\r\nHost: c.test\r\n\r\n", "http", "", 0, "request target b.test and Host c.test differ"},
		{"GET http://b.test:81/ HTTP/1.1\r\nHost: b.test:82\r\n\r\n", "http", "", 0, "differ"},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "http", "", 0, "more than one Host header"},
		{"GET / HTTP/1.1\r\n\r\n", "http", "", 0, "no Host header"},
		{"GET / HTTP/1.0\r\n\r\n", "http", "", 0, "no Host header"},
		{"get / HTTP/1.1\r\n\r\n", "http", "", 0, "no Host header"},
		{"GET / HTTP/1.1\r\nHost:\r\n\r\n", "http", "", 0, `bad Host "": empty host`},
		{"GET / HTTP/1.1\r\nHost: a.test@evil.test\r\n\r\n", "http", "", 0, "bad Host"},
		{"GET / HTTP/1.1\r\nHost: a.test:80:81\r\n\r\n", "http", "", 0, "bad Host"},
		{"GET / HTTP/1.1\r\nHost: a.test:0x50\r\n\r\n", "http", "", 0, "bad Host"},
		{"GET / HTTP/1.1\r\nHost: a.test\x00evil\r\n\r\n", "http", "", 0, "control character in header Host"},
		{"GET http://a.test@evil.test/ HTTP/1.1\r\n\r\n", "http", "", 0, "user information in the request target"},
		{"GET ftp://a.test/ HTTP/1.1\r\n" + h + "\r\n", "http", "", 0, "bad request target"},
		{"GET * HTTP/1.1\r\n" + h + "\r\n", "http", "", 0, "request target * is only for OPTIONS"},

		// Line endings and header syntax servers read differently.
		{"GET / HTTP/1.1\nHost: a.test\n\n", "http", "", 0, "bare LF"},
		{"GET / HTTP/1.1\r\nHost: a.test\n\r\n", "http", "", 0, "bare LF"},
		{"\nGET / HTTP/1.1\r\n" + h + "\r\n", "http", "", 0, "bare LF"},
		{"GET / HTTP/1.1\r\nHost: a.test\rX: y\r\n\r\n", "http", "", 0, "bare CR"},
		{"GET / HTTP/1.1\r\nX: y\r\n Host: evil.test\r\n" + h + "\r\n", "http", "", 0, "obs-fold"},
		{"GET / HTTP/1.1\r\nHost : evil.test\r\n\r\n", "http", "", 0, "white space between a header name and its colon"},
		{"GET / HTTP/1.1\r\n" + h + "X-Y\r\n\r\n", "http", "", 0, "header line without a colon"},
		{"GET / HTTP/1.1 \r\n" + h + "\r\n", "http", "", 0, `HTTP version "HTTP/1.1 " not supported`},
		{"GET\t/\tHTTP/1.1\r\n" + h + "\r\n", "http", "", 0, "malformed request line"},
		{" GET / HTTP/1.1\r\n" + h + "\r\n", "http", "", 0, "malformed request line"},
		{"GET / http/1.1\r\n" + h + "\r\n", "http", "", 0, `HTTP version "http/1.1" not supported`},
		{"GET / HTTP/1.2\r\n" + h + "\r\n", "http", "", 0, `HTTP version "HTTP/1.2" not supported`},
		{"GET x\r\n", "http", "", 0, "HTTP/0.9 request"},
		{"GET /index.html\r\n", "http", "", 0, "HTTP/0.9 request"},

		// Framing two servers could disagree on.
		{"POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "http", "", 0, "both Transfer-Encoding and Content-Length"},
		{"POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "http", "", 0, "both Transfer-Encoding and Content-Length"},
		{"POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, identity\r\n\r\n", "http", "", 0, `Transfer-Encoding "chunked, identity": only a single "chunked"`},
		{"POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: identity, chunked\r\n\r\n", "http", "", 0, `only a single "chunked"`},
		{"POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "http", "", 0, `only a single "chunked"`},
		{"POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\n\r\n", "http", "", 0, `only a single "chunked"`},
		{"POST / HTTP/1.0\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n", "http", "", 0, "Transfer-Encoding in an HTTP/1.0 request"},
		{"POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nContent-Length: 3\r\n\r\n", "http", "", 0, "more than one Content-Length"},
		{"POST / HTTP/1.1\r\n" + h + "Content-Length: 3, 3\r\n\r\n", "http", "", 0, `bad Content-Length "3, 3"`},
		{"POST / HTTP/1.1\r\n" + h + "Content-Length: +3\r\n\r\n", "http", "", 0, "bad Content-Length"},
		{"POST / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", "http", "", 0, "bad Content-Length"},
		{"POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nConnection: keep-alive, Content-Length\r\n\r\n", "http", "", 0, "Connection header names content-length"},
		{"POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n", "http", "", 0, "Connection header names transfer-encoding"},
		{"GET / HTTP/1.1\r\n" + h + "Connection: Host\r\n\r\n", "http", "", 0, "Connection header names host"},

		// HTTP/2 over a plain connection: its streams name hosts of their own.
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http", "", 0, "HTTP/2 connection preface"},
		{"GET / HTTP/1.1\r\n" + h + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", "http", "", 0, "h2c upgrade"},
		{"GET / HTTP/1.1\r\n" + h + "Upgrade: h2c\r\n\r\n", "http", "", 0, "Upgrade to h2c"},
		{"GET / HTTP/1.1\r\n" + h + "Upgrade: websocket, h2c\r\n\r\n", "http", "", 0, "Upgrade to h2c"},
		{"GET / HTTP/1.1\r\n" + h + "Upgrade: TLS/1.0\r\n\r\n", "http", "", 0, `Upgrade to "TLS/1.0": only websocket`},
		{"GET / HTTP/1.1\r\n" + h + "Upgrade: websocket\r\nUpgrade: websocket\r\n\r\n", "http", "", 0, "more than one Upgrade header"},

		// Other protocols pass unread.
		{"CONNECT {\"verbose\":false}\r\nPING\r\n", "other", "", 0, ""}, // NATS
		{"EHLO mail.test\r\n", "other", "", 0, ""},
		{"get key\r\n", "other", "", 0, ""},          // memcached
		{"*1\r\n$4\r\nPING\r\n", "other", "", 0, ""}, // Redis
		{"SSH-2.0-x\r\n", "other", "", 0, ""},
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", "other", "", 0, ""}, // Postgres SSLRequest
		{"\x16\x01", "other", "", 0, ""},                         // not a TLS record version
	} {
		res, done := classify([]byte(tc.in), false)
		ok := done && res.proto == tc.proto && res.deny == "" == (tc.deny == "") && strings.Contains(res.deny, tc.deny)
		if ok && tc.proto == "http" && tc.deny == "" {
			ok = res.req != nil && res.req.host == tc.host && res.req.port == tc.port
		}
		if !ok {
			t.Errorf("classify(%q) = %+v (%+v), %v; want %s %s:%d %q", tc.in, res, res.req, done, tc.proto, tc.host, tc.port, tc.deny)
		}
	}
	// Incomplete: wait for more, then refuse as truncated, or (when it
	// never became a request line) relay as another protocol.
	for in, final := range map[string]string{
		"G": "truncated HTTP request", "GE": "truncated HTTP request", "GET": "truncated HTTP request",
		"GET ": "truncated HTTP request", "GET / HTTP/1.1": "truncated HTTP request",
		"GET / HTTP/1.1\r\nHost: a.test\r\n": "truncated HTTP request", "CONNECT a:1 HTTP/1.1\r\n": "truncated HTTP request",
		"PROPF": "other", "PROPFIND / HTTP/1.1": "truncated HTTP request", "XYZ / http/1": "truncated HTTP request",
		"FOO bar": "other", "\r\n": "other", "\r\nGE": "truncated HTTP request",
	} {
		if res, done := classify([]byte(in), false); done {
			t.Errorf("classify(%q) decided early: %+v", in, res)
		}
		res, _ := classify([]byte(in), true)
		if final == "other" && (res.proto != "other" || res.deny != "") || final != "other" && res.deny != final {
			t.Errorf("classify(%q, final) = %+v, want %s", in, res, final)
		}
	}
	big := "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxHead)
	if res, _ := classify([]byte(big), true); res.deny != "HTTP request head larger than 16 KiB" {
		t.Errorf("oversized head: %+v", res)
	}
}

// sniff waits PeekWait for a first byte, then HandshakeTimeout for the rest.
func TestSniffDeadlines(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	start := time.Now()
	buf, res, eof := sniff(a, nil, time.Now().Add(50*time.Millisecond), time.Second, nil)
	if len(buf) != 0 || res.proto != "" || eof || time.Since(start) > time.Second {
		t.Fatalf("silent client: %q %+v %v after %v", buf, res, eof, time.Since(start))
	}
	hello := clientHello(t, "a.test")
	go func() {
		b.Write(hello[:10])
		time.Sleep(200 * time.Millisecond) // longer than the first-byte wait
		b.Write(hello[10:])
	}()
	buf, res, _ = sniff(a, nil, time.Now().Add(100*time.Millisecond), time.Second, nil)
	if res.name != "a.test" || string(buf) != string(hello) {
		t.Errorf("slow ClientHello: %+v (%d of %d bytes)", res, len(buf), len(hello))
	}
	go b.Write(hello[:10])
	_, res, _ = sniff(a, nil, time.Now().Add(100*time.Millisecond), 100*time.Millisecond, nil)
	if res.deny != "truncated ClientHello" {
		t.Errorf("stalled ClientHello: %+v", res)
	}
}
