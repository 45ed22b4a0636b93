package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// session is one proxied connection from the sandbox.
type session struct {
	p        *Proxy
	client   net.Conn
	upstream net.Conn
	ev       Event
	done     bool

	name         string     // target host name; "" for a bare address
	ip           netip.Addr // target address when name is ""
	hostLoopback bool       // ip:port is the host's loopback through a localhost:PORT grant
	port         int
	proto        string    // what the client's first bytes are: "tls", "http", "other", "" (unknown yet)
	pending      []byte    // client bytes read but not yet forwarded
	http         *exchange // the HTTP/1.x requests and responses, once the stream is known to be HTTP to a name
}

func (p *Proxy) handleConn(c net.Conn) {
	s := &session{p: p, client: c, ev: Event{Time: time.Now(), Kind: KindConnect}}
	defer func() {
		if s.upstream != nil {
			_ = s.upstream.Close()
			p.untrack(s.upstream)
		}
		if !s.done { // only after a panic
			s.finish(VerdictError, "internal error")
		}
	}()
	orig, err := p.opts.OriginalDst(c)
	if err != nil {
		s.ev.Via = "transparent"
		s.deny(fmt.Sprintf("original destination unknown: %v", err))
		return
	}
	if p.isOwn(orig, c) {
		s.explicit()
		return
	}
	s.ev.Via = "transparent"
	s.port = int(orig.Port())
	if name, ok := p.pool.nameFor(orig.Addr()); ok {
		s.name = name
	} else {
		s.ip = orig.Addr()
	}
	s.ev.Host, s.ev.Port = s.name, s.port
	if !s.checkTarget() {
		return
	}
	// Wait briefly for the first client bytes so that a ClientHello or a
	// request head is judged before anything is dialled. If none come
	// (the server may speak first), relay checks them when they do.
	buf, res, eof := sniff(c, nil, time.Now().Add(p.opts.PeekWait), p.opts.HandshakeTimeout, nil)
	if res.proto != "" {
		if why := s.judge(res); why != "" {
			s.deny(why)
			return
		}
	}
	s.proto = res.proto
	s.pending = buf
	checked := res.proto != "" || eof
	addrs, ok := s.resolve()
	if !ok {
		return
	}
	if !s.dial(addrs) {
		return
	}
	s.relay(!checked)
}

// checkTarget applies the allowlist to the target before any DNS lookup.
func (s *session) checkTarget() bool {
	a := s.p.allow
	if s.name != "" {
		if a.AllowsName(s.name, s.port) {
			return true
		}
		if a.AllowsNameAnyPort(s.name) {
			s.deny(fmt.Sprintf("port %d is not allowed for %s", s.port, s.name))
		} else {
			s.deny(s.name + " is not in the allowlist")
		}
		return false
	}
	ap := netip.AddrPortFrom(s.ip, uint16(s.port))
	s.ev.Addr = ap.String()
	if a.isHostLoopbackTarget(ap) {
		// The sandbox's 127.0.0.1:PORT or [::1]:PORT, which the netns
		// sends here only for a localhost:PORT grant; the proxy asks for
		// it (CONNECT localhost:PORT) lands here too.
		s.hostLoopback = true
		s.ev.Host = "localhost"
		return true
	}
	if a.AllowsAddr(s.ip, s.port) {
		return true
	}
	why := "no cidr: grant for " + s.ev.Addr
	switch bad, kind := Forbidden(s.ip); {
	case s.ip.Is4() && fakePrefix.Contains(s.ip):
		why = s.ip.String() + " is not a current sandbox DNS answer (forgotten or never handed out)"
	case isHostLocal(s.ip):
		why = fmt.Sprintf("no localhost:%d grant for %s (%s): only localhost:PORT reaches this machine's loopback, one port at a time", s.port, s.ev.Addr, kind)
	case bad:
		why += " (" + kind + ")"
	default:
		why += " (connections by address need an explicit grant)"
	}
	s.deny(why)
	return false
}

// judge applies what the first client bytes say to the target and returns
// why the connection is refused, or "".
func (s *session) judge(res sniffResult) string {
	if res.proto == "http" {
		if s.name == "" {
			return "" // a granted address: no name to hold requests to
		}
		if res.deny != "" {
			return res.deny
		}
		return s.checkRequest(res.req)
	}
	if res.deny != "" {
		return res.deny
	}
	if s.name == "" || res.name == "" || sameName(res.name, s.name) {
		return ""
	}
	return fmt.Sprintf("SNI %s does not match %s", res.name, s.name)
}

// checkRequest holds a request on a plain-HTTP connection to s.name: it
// must name that host (by its absolute target, else its Host) and, if it
// names a port, the connection's, and it may not be a CONNECT.
func (s *session) checkRequest(h *reqHead) string {
	if h.form == formAuthority {
		return "CONNECT sent to " + s.name + " itself: only mcpbox's proxy takes CONNECT"
	}
	if !sameName(h.host, s.name) {
		return fmt.Sprintf("HTTP Host %s does not match %s", h.host, s.name)
	}
	if h.port != 0 && h.port != s.port {
		return fmt.Sprintf("HTTP Host %s:%d names another port than the connection's %d", h.host, h.port, s.port)
	}
	return ""
}

// resolve returns the addresses the proxy may dial for the target.
func (s *session) resolve() ([]netip.Addr, bool) {
	if s.hostLoopback {
		// The host's localhost: the family the client used first, then
		// the other, since a local service may listen on either.
		v4, v6 := netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()
		if s.ip.Is6() {
			return []netip.Addr{v6, v4}, true
		}
		return []netip.Addr{v4, v6}, true
	}
	if s.name == "" {
		return []netip.Addr{s.ip}, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.p.opts.HandshakeTimeout)
	defer cancel()
	found, err := s.p.opts.Resolver.LookupNetIP(ctx, "ip", s.name)
	if err != nil {
		s.finish(VerdictError, fmt.Sprintf("resolve %s: %v", s.name, err))
		return nil, false
	}
	var ok, refused []netip.Addr
	var reasons []string
	for _, a := range found {
		// A resolver may return A records as ::ffff:a.b.c.d; the IPv4
		// address is what would be dialled, and is what is checked.
		a = a.Unmap().WithZone("")
		if slices.Contains(ok, a) || slices.Contains(refused, a) {
			continue
		}
		if allowed, why := permitted(s.p.allow, a, s.port); allowed {
			ok = append(ok, a)
		} else {
			refused = append(refused, a)
			reasons = append(reasons, a.String()+": "+why)
		}
	}
	if len(ok) == 0 {
		if len(found) == 0 {
			s.finish(VerdictError, "resolve "+s.name+": no addresses")
			return nil, false
		}
		if len(reasons) > 4 {
			reasons = append(reasons[:4], "...")
		}
		why := fmt.Sprintf("%s resolves only to forbidden addresses (%s)", s.name, strings.Join(reasons, ", "))
		if slices.ContainsFunc(refused, isHostLocal) {
			why += fmt.Sprintf("; this machine's loopback is reached only through a localhost:%d grant, by connecting to localhost", s.port)
		}
		s.deny(why)
		return nil, false
	}
	slices.SortStableFunc(ok, func(a, b netip.Addr) int {
		switch {
		case a.Is4() == b.Is4():
			return 0
		case a.Is4():
			return -1
		}
		return 1
	})
	return ok, true
}

// dial connects to the first of addrs that answers.
func (s *session) dial(addrs []netip.Addr) bool {
	var lastErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(s.port))
		ctx, cancel := context.WithTimeout(context.Background(), s.p.opts.HandshakeTimeout)
		c, err := s.p.dial(ctx, ap)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if !s.p.track(c) {
			_ = c.Close()
			s.finish(VerdictError, "proxy closed")
			return false
		}
		s.upstream = c
		s.ev.Addr = ap.String()
		return true
	}
	s.finish(VerdictError, fmt.Sprintf("dial %s: %v", s.target(), lastErr))
	return false
}

// dial checks ap against the policy once more and connects to it.
func (p *Proxy) dial(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	if ok, why := mayDial(p.allow, ap); !ok {
		return nil, fmt.Errorf("egress: refusing to dial %s: %s", ap, why)
	}
	return p.opts.Dial(ctx, "tcp", ap)
}

func (s *session) target() string {
	if s.name != "" {
		return net.JoinHostPort(s.name, strconv.Itoa(s.port))
	}
	return netip.AddrPortFrom(s.ip, uint16(s.port)).String()
}

func (s *session) deny(reason string) { s.finish(VerdictDeny, reason) }

// finish records the outcome and emits the session's event, once.
func (s *session) finish(verdict, reason string) {
	if s.done {
		return
	}
	s.done = true
	s.ev.Verdict, s.ev.Reason = verdict, reason
	s.ev.Duration = time.Since(s.ev.Time)
	s.p.emit(s.ev)
}
