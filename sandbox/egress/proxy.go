package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// Event kinds and verdicts.
const (
	KindDNS     = "dns"
	KindConnect = "connect"

	VerdictAllow = "allow" // policy allowed it (for connect: the upstream was reached)
	VerdictDeny  = "deny"  // policy refused it
	VerdictError = "error" // policy allowed it, but the name did not resolve, no address answered, or the proxy failed
)

// Event is one entry of a session's egress decision log: one per DNS
// question and one per proxied connection (when it ends, with byte counts;
// a denial is reported at once).
type Event struct {
	Time      time.Time     `json:"time"`
	Kind      string        `json:"kind"`          // KindDNS or KindConnect
	Via       string        `json:"via,omitempty"` // connect: "transparent" (redirected), "connect" (HTTP CONNECT), "http" (absolute-form request), "explicit" (unparsable proxy request)
	Host      string        `json:"host,omitempty"`
	Port      int           `json:"port,omitempty"`
	DNSType   string        `json:"dns_type,omitempty"` // dns: "A", "AAAA", ...
	Addr      string        `json:"addr,omitempty"`     // dns: the fake address; connect: the address dialled (or refused)
	Verdict   string        `json:"verdict"`            // VerdictAllow, VerdictDeny or VerdictError
	Reason    string        `json:"reason,omitempty"`
	BytesUp   int64         `json:"bytes_up,omitempty"`   // client to upstream
	BytesDown int64         `json:"bytes_down,omitempty"` // upstream to client
	Duration  time.Duration `json:"duration_ns,omitempty"`
}

// Resolver looks up host names on the host. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configure a Proxy. The zero value of every field but Allow is
// usable; a nil Allow allows nothing.
type Options struct {
	// Allow is what the sandbox may reach.
	Allow *Allowlist
	// Resolver resolves allowed names on the host. Default net.DefaultResolver.
	Resolver Resolver
	// Dial connects to an upstream address that has passed the policy.
	// Default: a net.Dialer whose Control function checks the exact address
	// of the socket against the policy once more before connect(2).
	Dial func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error)
	// OriginalDst returns where a redirected connection was headed before
	// the netns's nftables redirect. Default: SO_ORIGINAL_DST (Linux), with
	// the connection's own local address when conntrack knows nothing of it
	// (the client connected to the proxy directly).
	OriginalDst func(c net.Conn) (netip.AddrPort, error)
	// ListenAddrs are further addresses of the proxy itself (ServeTCP adds
	// its listener's address when it is not a wildcard). A connection
	// whose original destination is one of them, or is its own local
	// address, is a client using the proxy explicitly (HTTP_PROXY).
	ListenAddrs []netip.AddrPort
	// Events receives the decision log. It is called from many goroutines
	// at once, must not block for long and must not call Close. Nil drops
	// events.
	Events func(Event)
	// Logger gets one Warn line per denial and Debug lines otherwise.
	// Default: discard.
	Logger *slog.Logger
	// IdleTimeout closes a connection on which nothing moved in either
	// direction for this long. Default 5 minutes.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds reading an explicit proxy request, reading a
	// whole ClientHello or HTTP request head once its first byte is in,
	// resolving, and dialling. Default 10 seconds.
	HandshakeTimeout time.Duration
	// PeekWait is how long a transparent connection waits for the client's
	// first bytes before dialling, so that the ClientHello or request head
	// is checked before any upstream connection exists. Protocols where
	// the server speaks first (SMTP, SSH, MySQL) proceed after it without
	// client bytes; their first client bytes are still checked before they
	// are forwarded. Default 300 ms.
	PeekWait time.Duration
	// MaxConns caps concurrent connections (proxy and DNS over TCP); more
	// are closed at once and logged as denials. Default 512.
	MaxConns int
	// MaxNames caps the names held by the fake DNS pool; the least recently
	// used is forgotten first. Default 4096.
	MaxNames int
}

// Proxy is the egress proxy and DNS stub of one sandbox.
type Proxy struct {
	opts  Options
	allow *Allowlist
	log   *slog.Logger
	pool  *fakePool
	sem   chan struct{}

	mu      sync.Mutex
	closed  bool
	own     map[netip.AddrPort]struct{} // the proxy's own listener addresses
	closers map[io.Closer]struct{}      // listeners and live connections
	wg      sync.WaitGroup              // connection handlers
}

// New returns a Proxy. It fails on negative limits.
func New(opts Options) (*Proxy, error) {
	if opts.IdleTimeout < 0 || opts.HandshakeTimeout < 0 || opts.PeekWait < 0 || opts.MaxConns < 0 || opts.MaxNames < 0 {
		return nil, fmt.Errorf("egress: new proxy: negative timeout or limit")
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.HandshakeTimeout == 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.PeekWait == 0 {
		opts.PeekWait = 300 * time.Millisecond
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 512
	}
	if opts.MaxNames == 0 {
		opts.MaxNames = 4096
	}
	p := &Proxy{
		opts:    opts,
		allow:   opts.Allow,
		log:     opts.Logger,
		pool:    newFakePool(opts.MaxNames),
		sem:     make(chan struct{}, opts.MaxConns),
		own:     make(map[netip.AddrPort]struct{}),
		closers: make(map[io.Closer]struct{}),
	}
	if p.allow == nil {
		p.allow = &Allowlist{}
	}
	if p.opts.Dial == nil {
		p.opts.Dial = p.guardedDial
	}
	if p.opts.OriginalDst == nil {
		p.opts.OriginalDst = originalDst
	}
	for _, a := range opts.ListenAddrs {
		p.own[unmapAP(a)] = struct{}{}
	}
	return p, nil
}

// ServeTCP proxies the connections accepted on l, each in its own
// goroutine, until l is closed; then it returns nil.
func (p *Proxy) ServeTCP(l net.Listener) error {
	if ap, err := netip.ParseAddrPort(l.Addr().String()); err == nil && !ap.Addr().IsUnspecified() {
		p.mu.Lock()
		p.own[unmapAP(ap)] = struct{}{}
		p.mu.Unlock()
	}
	return p.serve(l, "proxy", p.handleConn)
}

// serve is the accept loop shared by ServeTCP and ServeDNSTCP.
func (p *Proxy) serve(l net.Listener, what string, handle func(net.Conn)) error {
	if !p.track(l) {
		return fmt.Errorf("egress: serve %s: %w", what, net.ErrClosed)
	}
	defer p.untrack(l)
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if isTemporary(err) {
				backoff = nextBackoff(backoff)
				p.log.Warn("egress: accept", "listener", what, "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("egress: serve %s on %s: %w", what, l.Addr(), err)
		}
		backoff = 0
		select {
		case p.sem <- struct{}{}:
		default:
			_ = c.Close()
			p.emit(Event{Time: time.Now(), Kind: KindConnect, Verdict: VerdictDeny,
				Reason: "too many connections (MaxConns " + strconv.Itoa(p.opts.MaxConns) + ")"})
			continue
		}
		if !p.spawn(func() {
			defer func() { <-p.sem }()
			p.runConn(c, what, handle)
		}) {
			<-p.sem
			_ = c.Close()
			return nil
		}
	}
}

// runConn runs one connection handler, tracks the connection so Close can
// end it, and turns a panic into a logged, closed connection.
func (p *Proxy) runConn(c net.Conn, what string, handle func(net.Conn)) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("egress: panic in connection handler", "listener", what, "panic", r, "stack", string(debug.Stack()))
		}
		_ = c.Close()
		p.untrack(c)
	}()
	if !p.track(c) {
		return
	}
	handle(c)
}

// Close stops every Serve loop, closes every connection and waits for the
// connection handlers to return. It closes the listeners given to Serve*.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	cs := make([]io.Closer, 0, len(p.closers))
	for c := range p.closers {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	p.wg.Wait()
	return nil
}

func (p *Proxy) spawn(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

func (p *Proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.closers[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c io.Closer) {
	p.mu.Lock()
	delete(p.closers, c)
	p.mu.Unlock()
}

func (p *Proxy) isOwn(orig netip.AddrPort, c net.Conn) bool {
	orig = unmapAP(orig)
	if local, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil && unmapAP(local) == orig {
		return true // no NAT happened: the client dialled the proxy itself
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.own[orig]
	return ok
}

// emit logs an event and hands it to the Events sink.
func (p *Proxy) emit(ev Event) {
	attrs := []any{"kind", ev.Kind, "host", ev.Host, "port", ev.Port, "addr", ev.Addr, "verdict", ev.Verdict, "reason", ev.Reason}
	if ev.Via != "" {
		attrs = append(attrs, "via", ev.Via)
	}
	if ev.DNSType != "" {
		attrs = append(attrs, "dns_type", ev.DNSType)
	}
	switch ev.Verdict {
	case VerdictDeny:
		p.log.Warn("egress: denied", attrs...)
	case VerdictError:
		p.log.Warn("egress: upstream failed", attrs...)
	default:
		p.log.Debug("egress: allowed", append(attrs, "bytes_up", ev.BytesUp, "bytes_down", ev.BytesDown, "duration", ev.Duration)...)
	}
	if p.opts.Events != nil {
		p.opts.Events(ev)
	}
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	return isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}
