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
	a, _ := ParseAllowlist([]string{"cidr:[::ffff:127.0.0.0/104]:443"})
	p, _ := New(Options{Allow: a})
	if err := p.checkDial(netip.MustParseAddrPort("[::ffff:127.0.0.1]:443"), "127.0.0.1:443"); err != nil {
		t.Errorf("granted mapped address: %v", err)
	}
	if err := p.checkDial(netip.MustParseAddrPort("127.0.0.1:443"), "127.0.0.1:443"); err == nil {
		t.Error("a mapped grant covered the plain IPv4 address")
	}
}

// The default dialer refuses a forbidden address before connect(2), and
// connects once a cidr: grant covers it.
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

	a, _ := ParseAllowlist([]string{fmt.Sprintf("cidr:127.0.0.1/32:%d", ap.Port())})
	p, _ = New(Options{Allow: a})
	c, err := p.guardedDial(ctx, "tcp", ap)
	if err != nil {
		t.Fatalf("granted dial: %v", err)
	}
	c.Close()
}

// With the default dialer, a granted bare address is reached end to end.
func TestDefaultDialerThroughProxy(t *testing.T) {
	up := tcpUpstream(t, "127.0.0.4", echo)
	tp := newTestProxy(t, []string{fmt.Sprintf("cidr:127.0.0.4/32:%d", up.port)}, func(o *Options) { o.Dial = nil })
	tp.setOrig(up.addr.String())
	c := tp.connect()
	c.Write([]byte("direct"))
	c.(*net.TCPConn).CloseWrite()
	if got := readAllTimeout(t, c); got != "direct" {
		t.Errorf("echo %q", got)
	}
	ev := tp.expect(VerdictAllow, "")
	if ev.Host != "" || ev.Addr != up.addr.String() {
		t.Errorf("event %+v", ev)
	}
	// The same address on another port has no grant.
	tp.setOrig(fmt.Sprintf("127.0.0.4:%d", up.port+1))
	readAllTimeout(t, tp.connect())
	tp.expect(VerdictDeny, "no cidr: grant for 127.0.0.4")
}
