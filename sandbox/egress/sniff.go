package egress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"time"
)

// maxSniff bounds what the proxy buffers from a client before it decides:
// a 16 KiB ClientHello plus record headers, or a 16 KiB HTTP request head.
const (
	maxClientHello = 16 << 10
	maxHead        = 16 << 10
	maxSniff       = maxClientHello + 1<<10
)

// sniffResult is what the first client bytes of a connection say.
type sniffResult struct {
	proto string   // "tls", "http", "other", or "" when the client sent nothing
	name  string   // TLS SNI; "" if absent
	req   *reqHead // HTTP: the first request head
	deny  string   // non-empty: refuse the connection for this reason
}

// sniff reads from c, appending to buf, until the bytes can be classified,
// the client stops sending, or time runs out. It never writes to c.
// Everything it read is in the returned buffer, to be replayed upstream.
// The first byte must arrive before firstBy (zero: no limit); from then on
// the rest gets handshake. When nothing arrived the result has an empty
// proto; eof reports that the read ended for another reason than time
// (the client closed its side, or the connection was closed).
func sniff(c net.Conn, buf []byte, firstBy time.Time, handshake time.Duration, touch func()) (out []byte, res sniffResult, eof bool) {
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	deadline := firstBy
	if len(buf) > 0 {
		deadline = time.Now().Add(handshake)
	}
	for {
		if len(buf) > 0 {
			if res, done := classify(buf, false); done {
				return buf, res, false
			}
			if len(buf) >= maxSniff {
				res, _ := classify(buf, true)
				return buf, res, false
			}
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return buf, sniffResult{proto: "error", deny: "set deadline: " + err.Error()}, true
		}
		if cap(buf)-len(buf) < 2048 {
			buf = append(buf, make([]byte, 4096)...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), maxSniff)])
		if n > 0 {
			if len(buf) == 0 {
				deadline = time.Now().Add(handshake)
			}
			if touch != nil {
				touch()
			}
		}
		buf = buf[:len(buf)+n]
		if err != nil {
			eof := !isTimeout(err)
			if len(buf) == 0 {
				return buf, sniffResult{}, eof
			}
			res, _ := classify(buf, true)
			return buf, res, eof
		}
	}
}

// classify looks at the first client bytes. With final set no more bytes
// will come, so an incomplete ClientHello or request head is refused rather
// than waited for.
func classify(b []byte, final bool) (sniffResult, bool) {
	if b[0] == 0x16 && (len(b) < 2 || b[1] == 3) {
		return classifyTLS(b, final)
	}
	if res, done, isHTTP := classifyHTTP(b, final); isHTTP {
		return res, done
	}
	return sniffResult{proto: "other"}, true
}

func classifyTLS(b []byte, final bool) (sniffResult, bool) {
	truncated := func() (sniffResult, bool) {
		if final {
			if len(b) >= maxSniff {
				return sniffResult{proto: "tls", deny: "ClientHello larger than 16 KiB"}, true
			}
			return sniffResult{proto: "tls", deny: "truncated ClientHello"}, true
		}
		return sniffResult{}, false
	}
	malformed := func(why string) (sniffResult, bool) {
		return sniffResult{proto: "tls", deny: "malformed ClientHello: " + why}, true
	}
	var hs []byte
	off := 0
	for off+5 <= len(b) {
		if b[off] != 0x16 {
			return malformed("non-handshake record before the ClientHello ended")
		}
		if b[off+1] != 3 {
			return malformed("bad record version")
		}
		rl := int(binary.BigEndian.Uint16(b[off+3:]))
		if rl == 0 || rl > 1<<14 {
			return malformed("bad record length")
		}
		if off+5+rl > len(b) {
			return truncated()
		}
		hs = append(hs, b[off+5:off+5+rl]...)
		off += 5 + rl
		if len(hs) < 4 {
			continue
		}
		if hs[0] != 1 {
			return malformed("first handshake message is not a ClientHello")
		}
		ml := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if ml > maxClientHello {
			return sniffResult{proto: "tls", deny: "ClientHello larger than 16 KiB"}, true
		}
		if len(hs) >= 4+ml {
			sni, err := parseClientHello(hs[4 : 4+ml])
			if err != nil {
				return malformed(err.Error())
			}
			return sniffResult{proto: "tls", name: sni}, true
		}
	}
	return truncated()
}

// parseClientHello returns the server_name of a ClientHello body (RFC 8446
// 4.1.2, RFC 6066 3), or "" when it has none.
func parseClientHello(b []byte) (string, error) {
	r := reader{b: b}
	r.skip(2 + 32) // legacy_version, random
	r.skip(int(r.u8()))
	r.skip(int(r.u16()))
	r.skip(int(r.u8()))
	if r.err == nil && len(r.b) == 0 {
		return "", nil // no extensions
	}
	exts := reader{b: r.bytes(int(r.u16()))}
	if r.err != nil || len(r.b) != 0 {
		return "", errors.New("bad lengths")
	}
	sni, seen := "", false
	for len(exts.b) > 0 && exts.err == nil {
		typ := exts.u16()
		data := reader{b: exts.bytes(int(exts.u16()))}
		if typ != 0 { // server_name
			continue
		}
		if seen {
			return "", errors.New("two server_name extensions")
		}
		seen = true
		list := reader{b: data.bytes(int(data.u16()))}
		if data.err != nil || len(data.b) != 0 {
			return "", errors.New("bad server_name extension")
		}
		for len(list.b) > 0 && list.err == nil {
			nameType := list.u8()
			name := list.bytes(int(list.u16()))
			if nameType != 0 || list.err != nil {
				continue
			}
			if sni != "" {
				return "", errors.New("two host names in server_name")
			}
			if len(name) == 0 {
				return "", errors.New("empty server_name")
			}
			sni = string(name)
		}
		if list.err != nil {
			return "", errors.New("bad server_name list")
		}
	}
	if exts.err != nil {
		return "", errors.New("bad extensions")
	}
	return sni, nil
}

// reader reads big-endian fields; after the first short read every call
// returns zero values and err is set.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errors.New("short")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) skip(n int) { r.bytes(n) }

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// classifyHTTP recognises an HTTP/1.x request. isHTTP is false when b
// cannot be the start of one.
//
// A stream is HTTP when it starts with a word and white space on a first
// line that says "HTTP/" (in any case), whatever the word: a server reads
// "get / HTTP/1.1" or "PROPFIND / HTTP/1.1" as a request too, and a request
// line servers might read leniently ("GET / HTTP/1.1 " or a tab for a
// space) must be refused, not relayed unread. "GET /path" alone is an
// HTTP/0.9 request, which some servers still answer, from whatever site
// they default to: refused. Empty lines and white space before the word
// are skipped here, as lenient servers skip them. Another protocol is told
// apart as soon as its first line is (NATS's "CONNECT {...}", SMTP's
// "EHLO host"), and at once when its first byte cannot start a word; only
// a first segment of nothing but word characters waits for more.
func classifyHTTP(b []byte, final bool) (res sniffResult, done, isHTTP bool) {
	truncated := sniffResult{proto: "http", deny: "truncated HTTP request"}
	wait := func() (sniffResult, bool, bool) {
		if final || len(b) >= maxHead {
			return truncated, true, true
		}
		return sniffResult{}, false, true
	}
	i := 0
	for i < len(b) && (b[i] == '\r' || b[i] == '\n' || b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && isTchar(b[j]) {
		j++
	}
	if j == len(b) {
		if j > i && isKnownMethodPrefix(b[i:j]) || !final && len(b) < maxHead {
			return wait()
		}
		return sniffResult{}, false, false
	}
	if j == i || b[j] != ' ' && b[j] != '\t' {
		return sniffResult{}, false, false
	}
	eol := bytes.IndexByte(b[j:], '\n')
	if eol < 0 {
		if isKnownMethod(b[i:j]) || bytes.Contains(bytes.ToUpper(b[j:]), []byte("HTTP/")) {
			return wait()
		}
		if !final && len(b) < maxHead {
			return sniffResult{}, false, true // the line may still say HTTP/
		}
		return sniffResult{}, false, false
	}
	line := bytes.TrimSuffix(b[j:j+eol], []byte("\r"))
	if !bytes.Contains(bytes.ToUpper(line), []byte("HTTP/")) {
		if string(b[i:j]) == "GET" && len(bytes.Fields(line)) == 1 {
			return sniffResult{proto: "http", deny: "HTTP/0.9 request (it names no host): not allowed to a name"}, true, true
		}
		return sniffResult{}, false, false
	}
	start := skipEmptyLines(b)
	end, why := scanHead(b[start:])
	if why != "" {
		return sniffResult{proto: "http", deny: why}, true, true
	}
	if end < 0 {
		return wait()
	}
	h, why := parseRequestHead(b[start : start+end])
	if why != "" {
		return sniffResult{proto: "http", deny: why}, true, true
	}
	return sniffResult{proto: "http", req: h}, true, true
}

// sameName compares host names case-insensitively, ignoring a trailing dot.
func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}
