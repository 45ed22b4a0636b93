package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestDialGuard(t *testing.T) {
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want, address, err string
	}{
		{"169.254.169.254:80", "169.254.169.254:80", "refusing 169.254.169.254:80: link-local (cloud metadata service)"},
		{"[fd00:ec2::254]:80", "[fd00:ec2::254]:80", "unique local (cloud metadata service)"},
		{"8.8.8.8:443", "127.0.0.1:443", "refusing 127.0.0.1:443: the policy checked 8.8.8.8:443"},
		{"8.8.8.8:443", "8.8.8.8:444", "the policy checked"},
		{"8.8.8.8:443", "nonsense", "unparsable address"},
		{"8.8.8.8:443", "8.8.8.8:443", ""},
		{"[::ffff:8.8.8.8]:443", "8.8.8.8:443", "IPv4-mapped"}, // mapped needs a grant of its own
		{"[::ffff:127.0.0.1]:443", "127.0.0.1:443", "IPv4-mapped"},
	} {
		// checkDial is a pure function of its arguments: nothing is sent.
		err := p.checkDial(netip.MustParseAddrPort(tc.want), tc.address)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("checkDial(%s, %s) = %v, want %q", tc.want, tc.address, err, tc.err)
		}
	}
}

func TestDialGuardMappedGrant(t *testing.T) {
	a, _ := ParseAllowlist([]string{"cidr:[::ffff:10.0.0.0/104]:443", "cidr:[::ffff:0:0/96]:80"})
	p, _ := New(Options{Allow: a})
	if err := p.checkDial(netip.MustParseAddrPort("[::ffff:10.0.0.1]:443"), "10.0.0.1:443"); err != nil {
		t.Errorf("granted mapped address: %v", err)
	}
	if err := p.checkDial(netip.MustParseAddrPort("10.0.0.1:443"), "10.0.0.1:443"); err == nil {
		t.Error("a mapped grant covered the plain IPv4 address")
	}
	// A range that contains mapped loopback never covers it.
	if err := p.checkDial(netip.MustParseAddrPort("[::ffff:127.0.0.1]:80"), "127.0.0.1:80"); err == nil {
		t.Error("cidr:[::ffff:0:0/96] covered mapped loopback")
	}
}

// The guard lets the proxy reach the host's loopback only on a port that a
// localhost:PORT entry grants, and only at 127.0.0.1 and ::1.
func TestDialGuardHostLoopback(t *testing.T) {
	a, err := ParseAllowlist([]string{"localhost:5432", "cidr:0.0.0.0/0:*", "cidr:[::/0]:*"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := New(Options{Allow: a})
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:5432", true},
		{"[::1]:5432", true},
		{"127.0.0.1:5433", false},
		{"127.0.0.2:5432", false},
		{"[::ffff:127.0.0.1]:5432", false},
		{"0.0.0.0:5432", false},
		{"[::]:5432", false},
		{"10.0.0.1:5432", true}, // the cidr: grant, which covers no loopback
	} {
		ap := netip.MustParseAddrPort(tc.addr)
		if err := p.checkDial(ap, tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkDial(%s) = %v, want allowed %v", tc.addr, err, tc.ok)
		}
	}
}

// The default dialer refuses a forbidden address before connect(2), and
// connects once the allowlist opens it (here: Trusting).
func TestGuardedDialLoopback(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ap := netip.MustParseAddrPort(l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	p, _ := New(Options{})
	if c, err := p.guardedDial(ctx, "tcp", ap); err == nil {
		c.Close()
		t.Fatal("dialled loopback without a grant")
	} else if !strings.Contains(err.Error(), "dial guard: refusing "+ap.String()+": loopback") {
		t.Errorf("error %v", err)
	}
	l.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if c, err := l.Accept(); err == nil {
		c.Close()
		t.Error("the refused dial reached the listener")
	}
	l.(*net.TCPListener).SetDeadline(time.Time{})

	p, _ = New(Options{Allow: testAllowlist(t, []string{fmt.Sprintf("trusted:127.0.0.1:%d", ap.Port())})})
	c, err := p.guardedDial(ctx, "tcp", ap)
	if err != nil {
		t.Fatalf("granted dial: %v", err)
	}
	c.Close()
}

// With the default dialer, the host's loopback is reached end to end
// through a localhost:PORT grant: the sandbox's 127.0.0.1:PORT (or
// [::1]:PORT) redirected to the proxy, which dials 127.0.0.1:PORT here.
func TestDefaultDialerThroughProxy(t *testing.T) {
	up := tcpUpstream(t, "127.0.0.1", echo)
	tp := newTestProxy(t, []string{fmt.Sprintf("localhost:%d", up.port)}, func(o *Options) { o.Dial = nil })
	for _, orig := range []string{up.addr.String(), fmt.Sprintf("[::1]:%d", up.port)} {
		tp.setOrig(orig)
		c := tp.connect()
		c.Write([]byte("direct"))
		c.(*net.TCPConn).CloseWrite()
		if got := readAllTimeout(t, c); got != "direct" {
			t.Errorf("%s: echo %q", orig, got)
		}
		// The upstream listens on 127.0.0.1 only: from [::1] the proxy
		// tries ::1, then 127.0.0.1.
		ev := tp.expect(VerdictAllow, "")
		if ev.Host != "localhost" || ev.Port != up.port || ev.Addr != up.addr.String() || ev.Via != "transparent" {
			t.Errorf("%s: event %+v", orig, ev)
		}
	}
	// A client that sends everything to HTTP_PROXY asks for it by name or
	// address: the same grant, the same single port.
	tp.setOrig("")
	for _, target := range []string{fmt.Sprintf("localhost:%d", up.port), fmt.Sprintf("LOCALHOST.:%d", up.port),
		fmt.Sprintf("127.0.0.1:%d", up.port), fmt.Sprintf("[::1]:%d", up.port)} {
		c := tp.connect()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\n\r\ntunnelled", target)
		c.(*net.TCPConn).CloseWrite()
		if got := readAllTimeout(t, c); got != "HTTP/1.1 200 Connection established\r\n\r\ntunnelled" {
			t.Errorf("CONNECT %s: %q", target, got)
		}
		if ev := tp.expect(VerdictAllow, ""); ev.Host != "localhost" || ev.Via != "connect" || ev.Addr != up.addr.String() {
			t.Errorf("CONNECT %s: event %+v", target, ev)
		}
	}
	for target, why := range map[string]string{
		fmt.Sprintf("localhost:%d", up.port+1):        fmt.Sprintf("no localhost:%d grant for 127.0.0.1:%d (loopback): only localhost:PORT reaches this machine's loopback", up.port+1, up.port+1),
		fmt.Sprintf("127.0.0.2:%d", up.port):          fmt.Sprintf("no localhost:%d grant for 127.0.0.2", up.port),
		fmt.Sprintf("[::ffff:127.0.0.1]:%d", up.port): "IPv4-mapped",
		fmt.Sprintf("0.0.0.0:%d", up.port):            "unspecified",
	} {
		c := tp.connect()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\n\r\n", target)
		if code, body := readResponse(t, c); code != 403 || !strings.Contains(body, why) {
			t.Errorf("CONNECT %s: %d %q, want 403 %q", target, code, body, why)
		}
		tp.expect(VerdictDeny, why)
	}

	// Another port of the host's loopback has no grant; nor has another
	// loopback address on the granted port.
	for orig, why := range map[string]string{
		fmt.Sprintf("127.0.0.1:%d", up.port+1): fmt.Sprintf("no localhost:%d grant", up.port+1),
		fmt.Sprintf("127.0.0.4:%d", up.port):   fmt.Sprintf("no localhost:%d grant for 127.0.0.4", up.port),
	} {
		tp.setOrig(orig)
		readAllTimeout(t, tp.connect())
		tp.expect(VerdictDeny, why)
	}
}
