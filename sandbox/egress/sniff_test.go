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
	for _, tc := range []struct {
		in          string
		proto, name string
		deny        string
	}{
		{"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "http", "a.test", ""},
		{"POST /x HTTP/1.0\r\nhost:  A.test:8080 \r\nContent-Length: 3\r\n\r\nabc", "http", "A.test", ""},
		{"GET / HTTP/1.1\nHost: [::1]:80\n\n", "http", "::1", ""},
		{"GET / HTTP/1.1\r\n\r\n", "http", "", ""},
		{"GET http://b.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n", "http", "b.test", ""},
		{"GET http://b.test/ HTTP/1.1\r\nHost: c.test\r\n\r\n", "http", "", "request target b.test and Host c.test differ"},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "http", "", "more than one Host header"},
		{"GET x\r\n", "other", "", ""},
		{"get / HTTP/1.1\r\n\r\n", "other", "", ""},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "other", "", ""},
		{"SSH-2.0-x\r\n", "other", "", ""},
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", "other", "", ""}, // Postgres SSLRequest
		{"\x16\x01", "other", "", ""},                         // not a TLS record version
	} {
		res, done := classify([]byte(tc.in), false)
		if !done || res.proto != tc.proto || res.name != tc.name || res.deny != tc.deny {
			t.Errorf("classify(%q) = %+v, %v; want %s %q %q", tc.in, res, done, tc.proto, tc.name, tc.deny)
		}
	}
	for _, in := range []string{"G", "GE", "GET", "GET ", "GET / HTTP/1.1", "GET / HTTP/1.1\r\nHost: a.test\r\n", "CONNECT a:1 HTTP/1.1\r\n"} {
		if res, done := classify([]byte(in), false); done {
			t.Errorf("classify(%q) decided early: %+v", in, res)
		}
		if res, _ := classify([]byte(in), true); res.deny != "truncated HTTP request" {
			t.Errorf("classify(%q, final) = %+v", in, res)
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
