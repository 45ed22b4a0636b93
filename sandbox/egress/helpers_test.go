package egress

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Every test in this package talks to loopback only. Names resolve through
// fakeResolver, upstream connections go through testProxy.dial, which
// fails the test on any address outside 127.0.0.0/8 and ::1.

type fakeResolver struct {
	mu    sync.Mutex
	names map[string][]netip.Addr
	calls []string
}

func (r *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, host)
	if addrs, ok := r.names[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *fakeResolver) set(name string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = map[string][]netip.Addr{}
	}
	r.names[name] = nil
	for _, a := range addrs {
		r.names[name] = append(r.names[name], netip.MustParseAddr(a))
	}
}

func (r *fakeResolver) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

type eventLog struct {
	mu     sync.Mutex
	events []Event
	ch     chan struct{}
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// connects returns the connect events, waiting up to 5 s for at least n.
func (l *eventLog) connects(t testing.TB, n int) []Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []Event
		for _, ev := range l.all() {
			if ev.Kind == KindConnect {
				out = append(out, ev)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) < n {
				t.Fatalf("got %d connect events, want %d: %+v", len(out), n, out)
			}
			return out
		}
		select {
		case <-l.ch:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastConnect waits for the n-th connect event and returns it.
func (l *eventLog) lastConnect(t testing.TB, n int) Event {
	t.Helper()
	evs := l.connects(t, n)
	return evs[n-1]
}

type testProxy struct {
	t        testing.TB
	p        *Proxy
	addr     string // the proxy listener
	res      *fakeResolver
	events   *eventLog
	dials    atomic.Int64
	orig     atomic.Pointer[netip.AddrPort] // nil: the client dialled the proxy itself
	nconnect int                            // connect events seen so far by expect*
}

// testAllowlist parses entries; "trusted:ADDR:PORT" (the form
// Allowlist.String prints) stands for Allowlist.Trusting, which is how an
// allowed test name may resolve to an upstream on 127.0.0.x: no entry
// grants loopback.
func testAllowlist(t testing.TB, entries []string) *Allowlist {
	t.Helper()
	var plain []string
	var trusted []netip.AddrPort
	for _, e := range entries {
		if rest, ok := strings.CutPrefix(e, "trusted:"); ok {
			trusted = append(trusted, netip.MustParseAddrPort(rest))
			continue
		}
		plain = append(plain, e)
	}
	a, err := ParseAllowlist(plain)
	if err == nil {
		a, err = a.Trusting(trusted...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newTestProxy(t testing.TB, allow []string, mod func(*Options)) *testProxy {
	t.Helper()
	a := testAllowlist(t, allow)
	var err error
	tp := &testProxy{t: t, res: &fakeResolver{}, events: &eventLog{ch: make(chan struct{}, 1)}}
	opts := Options{
		Allow:    a,
		Resolver: tp.res,
		Dial:     tp.dial,
		OriginalDst: func(c net.Conn) (netip.AddrPort, error) {
			if o := tp.orig.Load(); o != nil {
				return *o, nil
			}
			return netip.MustParseAddrPort(c.LocalAddr().String()), nil
		},
		Events:           tp.events.add,
		Logger:           testLogger(t),
		HandshakeTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	tp.p, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp.addr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- tp.p.ServeTCP(l) }()
	t.Cleanup(func() {
		_ = tp.p.Close()
		if err := <-served; err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
	})
	return tp
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// dial is the guarded upstream dialer: loopback only, counted.
func (tp *testProxy) dial(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
	tp.dials.Add(1)
	if !ap.Addr().IsLoopback() {
		tp.t.Errorf("proxy dialled non-loopback %s", ap)
		return nil, errors.New("test: non-loopback dial refused")
	}
	d := net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		if got, err := netip.ParseAddrPort(address); err != nil || !got.Addr().IsLoopback() {
			tp.t.Errorf("socket about to connect to non-loopback %q", address)
			return errors.New("test: non-loopback connect refused")
		}
		return nil
	}}
	return d.DialContext(ctx, network, ap.String())
}

// setOrig makes the next connections look redirected from orig; "" means
// a direct connection to the proxy (explicit proxy mode).
func (tp *testProxy) setOrig(orig string) {
	if orig == "" {
		tp.orig.Store(nil)
		return
	}
	ap := netip.MustParseAddrPort(orig)
	tp.orig.Store(&ap)
}

// fake asks the DNS stub for name's A record and returns the fake address.
func (tp *testProxy) fake(name string) netip.Addr {
	tp.t.Helper()
	msg := dnsAsk(tp.t, tp.p, name, dnsmessage.TypeA)
	if msg.RCode != dnsmessage.RCodeSuccess || len(msg.Answers) != 1 {
		tp.t.Fatalf("A %s: rcode %v, %d answers", name, msg.RCode, len(msg.Answers))
	}
	return netip.AddrFrom4(msg.Answers[0].Body.(*dnsmessage.AResource).A)
}

// redirectTo makes the next connections look like connections to name:port
// redirected by the netns.
func (tp *testProxy) redirectTo(name string, port int) {
	tp.t.Helper()
	tp.setOrig(netip.AddrPortFrom(tp.fake(name), uint16(port)).String())
}

func (tp *testProxy) connect() net.Conn {
	tp.t.Helper()
	c, err := net.Dial("tcp", tp.addr)
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(func() { c.Close() })
	return c
}

// expect waits for the next connect event and checks its verdict and
// reason (a substring).
func (tp *testProxy) expect(verdict, reason string) Event {
	tp.t.Helper()
	tp.nconnect++
	ev := tp.events.lastConnect(tp.t, tp.nconnect)
	if ev.Verdict != verdict || !strings.Contains(ev.Reason, reason) {
		tp.t.Errorf("event %+v: want verdict %s, reason containing %q", ev, verdict, reason)
	}
	return ev
}

func dnsAsk(t testing.TB, p *Proxy, name string, typ dnsmessage.Type) dnsmessage.Message {
	t.Helper()
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x1234, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: typ, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	resp := p.answerDNS(b)
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("unpack answer to %s %v: %v", name, typ, err)
	}
	if m.ID != 0x1234 || !m.Response {
		t.Fatalf("answer header %+v", m.Header)
	}
	return m
}

// selfSigned returns a certificate for name and a pool trusting it.
func selfSigned(t testing.TB, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// upstream is a test server on a loopback address.
type upstream struct {
	addr netip.AddrPort
	port int
	pool *x509.CertPool // for TLS upstreams
}

// tlsUpstream starts an HTTPS server for name on ip (127.0.0.x) that
// answers "hello from NAME PATH".
func tlsUpstream(t testing.TB, ip, name string) upstream {
	t.Helper()
	cert, pool := selfSigned(t, name)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s %s", name, r.URL.Path)
	}))
	l, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the proxy hangs up on refused tunnels
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ap := netip.MustParseAddrPort(l.Addr().String())
	return upstream{addr: ap, port: int(ap.Port()), pool: pool}
}

// httpUpstream starts a plain HTTP server on ip.
func httpUpstream(t testing.TB, ip string, h http.HandlerFunc) upstream {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	l, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	ap := netip.MustParseAddrPort(l.Addr().String())
	return upstream{addr: ap, port: int(ap.Port())}
}

// tcpUpstream starts a TCP server on ip that runs serve for every
// connection.
func tcpUpstream(t testing.TB, ip string, serve func(net.Conn)) upstream {
	t.Helper()
	l, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	ap := netip.MustParseAddrPort(l.Addr().String())
	return upstream{addr: ap, port: int(ap.Port())}
}

func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// readAllTimeout reads c until EOF or error, failing the test after 5 s.
func readAllTimeout(t testing.TB, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("read: %v (got %q)", err, b)
	}
	return string(b)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}

// readResponse reads an HTTP response head and body from c.
func readResponse(t testing.TB, c net.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// clientHello returns the first flight crypto/tls sends for serverName.
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		_ = tls.Client(a, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""}).Handshake()
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}
