package egress

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// explicit serves a client that connected to the proxy itself because
// HTTP_PROXY/HTTPS_PROXY point at it. It reads one request head, held to
// the same strict parsing as every request on a plain connection: CONNECT
// host:port opens a tunnel (whatever goes through it is checked like a
// transparent connection: the ClientHello, or every request head); an
// absolute-form http:// request is forwarded in origin form with
// "Connection: close", and the connection carries that one request only: a
// second one, to whatever host, is never read, and the connection closes
// once the response is in. Anything else is answered 400.
func (s *session) explicit() {
	p := s.p
	s.ev.Via = "explicit"
	head, rest, why := readRequestHead(s.client, time.Now().Add(p.opts.HandshakeTimeout))
	if why != "" {
		s.refuse(400, why)
		return
	}
	h, why := parseRequestHead(head)
	if why != "" {
		s.refuse(400, why)
		return
	}

	var host string
	var port int
	if h.method == "CONNECT" {
		s.ev.Via = "connect"
		i := strings.LastIndexByte(h.target, ':')
		if i < 0 {
			s.refuse(400, "CONNECT needs host:port")
			return
		}
		host = h.target[:i]
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
		var err error
		if port, err = parsePort(h.target[i+1:]); err != nil || port == AnyPort {
			s.refuse(400, fmt.Sprintf("bad port %q", h.target[i+1:]))
			return
		}
	} else {
		s.ev.Via = "http"
		scheme, _, _ := strings.Cut(h.target, "://")
		switch {
		case h.form != formAbsolute:
			s.refuse(400, "not a proxy request: send CONNECT host:port or an absolute http:// URL")
			return
		case !strings.EqualFold(scheme, "http"):
			s.refuse(400, "only http:// can be forwarded; use CONNECT for "+scheme)
			return
		}
		host, port = h.host, h.port
		if port == 0 {
			port = 80
		}
	}
	if host == "" {
		s.refuse(400, "no host in "+h.method+" request")
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
	if h.method == "CONNECT" {
		if _, err := s.client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			s.finish(VerdictAllow, "client gone before the tunnel opened")
			return
		}
		s.pending = rest
		s.relay(true)
		return
	}
	fwd := rewriteRequest(h, head)
	s.http = newExchange(nil, 1)
	s.http.begin(h, len(fwd))
	s.pending = append(fwd, rest...)
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
	if name == "localhost" {
		// The sandbox's own name for loopback: the host's, on a port a
		// localhost:PORT entry grants (checkTarget).
		s.ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		s.ev.Host = name
		return 0, ""
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
// before deadline. It returns the head with its blank line, the bytes that
// followed it, or why it could not.
func readRequestHead(c interface {
	Read([]byte) (int, error)
	SetReadDeadline(time.Time) error
}, deadline time.Time) ([]byte, []byte, string) {
	_ = c.SetReadDeadline(deadline)
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 0, 4096)
	for {
		end, why := scanHead(buf)
		switch {
		case why != "":
			return nil, nil, why
		case end >= 0:
			return buf[:end], buf[end:], ""
		}
		if cap(buf)-len(buf) < 1024 {
			buf = append(buf, make([]byte, 4096)...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), maxHead+1)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if end, why := scanHead(buf); why == "" && end >= 0 {
				return buf[:end], buf[end:], ""
			}
			if len(buf) == 0 && !isTimeout(err) {
				return nil, nil, "client closed without a request"
			}
			return nil, nil, "truncated HTTP request"
		}
	}
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
// "Connection: close". The body is not touched: it follows unchanged, and
// its framing headers (Content-Length, Transfer-Encoding) are kept.
func rewriteRequest(h *reqHead, head []byte) []byte {
	lines := strings.Split(string(head[:len(head)-4]), "\r\n")[1:]
	drop := map[string]bool{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ":")
		if strings.EqualFold(k, "connection") {
			for tok := range strings.SplitSeq(v, ",") {
				drop[strings.ToLower(strings.TrimSpace(tok))] = true
			}
		}
	}
	_, rest, _ := strings.Cut(h.target, "://")
	authority, path := rest, "/"
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	path, _, _ = strings.Cut(path, "#")
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var b strings.Builder
	b.WriteString(h.method + " " + path + " " + h.version + "\r\n")
	b.WriteString("Host: " + authority + "\r\n")
	for _, l := range lines {
		k, _, _ := strings.Cut(l, ":")
		name := strings.ToLower(k)
		if isHopByHop(name) || drop[name] {
			continue
		}
		b.WriteString(l + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return []byte(b.String())
}
