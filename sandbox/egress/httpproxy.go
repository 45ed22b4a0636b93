package egress

import (
	"bytes"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// explicit serves a client that connected to the proxy itself because
// HTTP_PROXY/HTTPS_PROXY point at it. It reads one request head: CONNECT
// host:port opens a tunnel (the tunnelled ClientHello or request head is
// checked like a transparent connection's); an absolute-form http:// request
// is forwarded in origin form with "Connection: close", so each connection
// carries one request. Anything else is answered 400.
func (s *session) explicit() {
	p := s.p
	s.ev.Via = "explicit"
	head, rest, why := readRequestHead(s.client, time.Now().Add(p.opts.HandshakeTimeout))
	if why != "" {
		s.refuse(400, why)
		return
	}
	lines := strings.Split(head, "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	target, ok := parseRequestLine(lines[0])
	if !ok {
		s.refuse(400, "malformed request line")
		return
	}
	method, _, _ := strings.Cut(lines[0], " ")
	version := lines[0][len(lines[0])-8:]

	var host, portStr string
	var forward *url.URL
	if method == "CONNECT" {
		s.ev.Via = "connect"
		i := strings.LastIndexByte(target, ':')
		if i < 0 {
			s.refuse(400, "CONNECT needs host:port")
			return
		}
		host, portStr = target[:i], target[i+1:]
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	} else {
		s.ev.Via = "http"
		u, err := url.Parse(target)
		switch {
		case err != nil || !u.IsAbs():
			s.refuse(400, "not a proxy request: send CONNECT host:port or an absolute http:// URL")
			return
		case !strings.EqualFold(u.Scheme, "http"):
			s.refuse(400, "only http:// can be forwarded; use CONNECT for "+u.Scheme)
			return
		}
		host, portStr, forward = u.Hostname(), u.Port(), u
		if portStr == "" {
			portStr = "80"
		}
	}
	if host == "" {
		s.refuse(400, "no host in "+method+" request")
		return
	}
	port, err := parsePort(portStr)
	if err != nil || port == AnyPort {
		s.refuse(400, fmt.Sprintf("bad port %q", portStr))
		return
	}
	s.port = port
	s.ev.Port = port
	if code, why := s.setHost(host); why != "" {
		s.refuse(code, why)
		return
	}
	if !s.checkTarget() {
		s.reply(403, s.ev.Reason)
		return
	}
	addrs, ok := s.resolve()
	if !ok {
		s.replyOutcome()
		return
	}
	if !s.dial(addrs) {
		s.replyOutcome()
		return
	}
	if forward == nil {
		if _, err := s.client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			s.finish(VerdictAllow, "client gone before the tunnel opened")
			return
		}
		s.pending = rest
		s.relay(true)
		return
	}
	s.pending = append(rewriteRequest(method, forward, version, lines[1:]), rest...)
	s.relay(false)
}

// setHost sets the target from the host of an explicit request.
func (s *session) setHost(host string) (int, string) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return 400, "address with a zone: " + host
		}
		if name, ok := s.p.pool.nameFor(ip); ok {
			s.name = name
		} else {
			s.ip = ip
		}
		s.ev.Host = s.name
		return 0, ""
	}
	if ip, ok := parseLegacyIPv4(host); ok {
		s.ev.Host = host
		return 403, fmt.Sprintf("%s is the address %s in numeric form, not a name", host, ip)
	}
	name, err := normaliseName(host)
	if err != nil {
		s.ev.Host = host
		return 400, "bad host: " + err.Error()
	}
	s.name = name
	s.ev.Host = name
	return 0, ""
}

// refuse denies the request and answers it with code.
func (s *session) refuse(code int, why string) {
	s.deny(why)
	s.reply(code, why)
}

// replyOutcome answers a request that resolve or dial ended.
func (s *session) replyOutcome() {
	if s.ev.Verdict == VerdictDeny {
		s.reply(403, s.ev.Reason)
	} else {
		s.reply(502, s.ev.Reason)
	}
}

func (s *session) reply(code int, why string) {
	text := map[int]string{400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[code]
	body := "mcpbox egress: " + printable(why) + "\n"
	_ = s.client.SetWriteDeadline(time.Now().Add(s.p.opts.HandshakeTimeout))
	_, _ = fmt.Fprintf(s.client, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, text, len(body), body)
}

// printable keeps a reason on one line of printable ASCII.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// readRequestHead reads an HTTP request head from c, at most maxHead bytes,
// before deadline. It returns the head without the blank line, the bytes
// that followed it, or why it could not.
func readRequestHead(c interface {
	Read([]byte) (int, error)
	SetReadDeadline(time.Time) error
}, deadline time.Time) (string, []byte, string) {
	_ = c.SetReadDeadline(deadline)
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 0, 4096)
	for {
		if head, body, ok := splitHead(buf); ok {
			return head, body, ""
		}
		if len(buf) >= maxHead {
			return "", nil, "request head larger than 16 KiB"
		}
		if cap(buf)-len(buf) < 1024 {
			buf = append(buf, make([]byte, 4096)...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), maxHead)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if head, body, ok := splitHead(buf); ok {
				return head, body, ""
			}
			if len(buf) == 0 && !isTimeout(err) {
				return "", nil, "client closed without a request"
			}
			return "", nil, "truncated HTTP request"
		}
	}
}

// splitHead splits b after the blank line that ends a request head.
func splitHead(b []byte) (string, []byte, bool) {
	crlf := bytes.Index(b, []byte("\r\n\r\n"))
	lf := bytes.Index(b, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return string(b[:crlf]), b[crlf+4:], true
	case lf >= 0:
		return string(b[:lf]), b[lf+2:], true
	}
	return "", nil, false
}

// isHopByHop reports the headers a proxy does not forward (RFC 9110
// 7.6.1), and Host, which is rewritten from the request target.
func isHopByHop(lower string) bool {
	switch lower {
	case "connection", "proxy-connection", "keep-alive", "proxy-authorization",
		"proxy-authenticate", "upgrade", "host":
		return true
	}
	return false
}

// rewriteRequest turns an absolute-form request head into origin form for
// the upstream: Host from the URL, hop-by-hop headers dropped,
// "Connection: close". The body is not touched: it follows unchanged.
func rewriteRequest(method string, u *url.URL, version string, headers []string) []byte {
	drop := map[string]bool{}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "connection") {
			for tok := range strings.SplitSeq(v, ",") {
				drop[strings.ToLower(strings.TrimSpace(tok))] = true
			}
		}
	}
	var b strings.Builder
	b.WriteString(method + " " + u.RequestURI() + " " + version + "\r\n")
	b.WriteString("Host: " + u.Host + "\r\n")
	for _, h := range headers {
		k, _, ok := strings.Cut(h, ":")
		name := strings.ToLower(strings.TrimSpace(k))
		if !ok || isHopByHop(name) || drop[name] {
			continue
		}
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return []byte(b.String())
}
