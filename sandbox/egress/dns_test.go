package egress

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func newDNSProxy(t *testing.T, allow []string, mod func(*Options)) (*Proxy, *fakeResolver, *eventLog) {
	t.Helper()
	a, err := ParseAllowlist(allow)
	if err != nil {
		t.Fatal(err)
	}
	res := &fakeResolver{}
	log := &eventLog{ch: make(chan struct{}, 1)}
	opts := Options{Allow: a, Resolver: res, Events: log.add, Logger: testLogger(t),
		Dial: func(context.Context, string, netip.AddrPort) (net.Conn, error) {
			t.Error("the DNS stub dialled")
			return nil, fmt.Errorf("no")
		}}
	if mod != nil {
		mod(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, res, log
}

func TestDNSFakeA(t *testing.T) {
	p, res, log := newDNSProxy(t, []string{"api.test:8443", "*.cdn.test:*"}, nil)
	m := dnsAsk(t, p, "api.test", dnsmessage.TypeA)
	if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 1 || !m.RecursionAvailable || !m.RecursionDesired {
		t.Fatalf("A api.test: %+v", m)
	}
	ans := m.Answers[0]
	a := netip.AddrFrom4(ans.Body.(*dnsmessage.AResource).A)
	if !fakePrefix.Contains(a) || ans.Header.TTL != 60 || ans.Header.Name.String() != "api.test." {
		t.Errorf("answer %v %v", a, ans.Header)
	}
	// Stable per name, whatever the case; distinct between names.
	if again := dnsAsk(t, p, "API.Test", dnsmessage.TypeA); netip.AddrFrom4(again.Answers[0].Body.(*dnsmessage.AResource).A) != a {
		t.Error("second answer differs")
	}
	if again := dnsAsk(t, p, "API.Test", dnsmessage.TypeA); again.Questions[0].Name.String() != "API.Test." {
		t.Errorf("question not echoed as asked (0x20 case randomisation): %v", again.Questions[0].Name)
	}
	b := dnsAsk(t, p, "x.y.cdn.test", dnsmessage.TypeA)
	if len(b.Answers) != 1 || netip.AddrFrom4(b.Answers[0].Body.(*dnsmessage.AResource).A) == a {
		t.Errorf("x.y.cdn.test: %+v", b)
	}
	if name, ok := p.pool.nameFor(a); !ok || name != "api.test" {
		t.Errorf("pool maps %v to %q, %v", a, name, ok)
	}
	if res.callCount() != 0 {
		t.Errorf("the stub resolved on the host: %v", res.calls)
	}
	evs := log.all()
	if len(evs) != 4 || evs[0].Kind != KindDNS || evs[0].Verdict != VerdictAllow || evs[0].Host != "api.test" || evs[0].Addr != a.String() || evs[0].DNSType != "A" {
		t.Errorf("events %+v", evs)
	}
}

func TestDNSNoDataForOtherTypes(t *testing.T) {
	p, _, _ := newDNSProxy(t, []string{"api.test"}, nil)
	for _, typ := range []dnsmessage.Type{dnsmessage.TypeAAAA, dnsmessage.TypeMX, dnsmessage.TypeTXT, 65 /* HTTPS */} {
		m := dnsAsk(t, p, "api.test", typ)
		if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 || len(m.Questions) != 1 {
			t.Errorf("%v api.test: rcode %v, %d answers; want NODATA", typ, m.RCode, len(m.Answers))
		}
	}
}

func TestDNSNXDomain(t *testing.T) {
	p, res, log := newDNSProxy(t, []string{"api.test", "*.cdn.test"}, nil)
	for _, name := range []string{"evil.test", "cdn.test", "api.test.evil.test", "x.api.test", "2852039166", "169.254.169.254", "254.169.254.169.in-addr.arpa", "localhost"} {
		for _, typ := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA, dnsmessage.TypeTXT} {
			if m := dnsAsk(t, p, name, typ); m.RCode != dnsmessage.RCodeNameError || len(m.Answers) != 0 {
				t.Errorf("%v %s: rcode %v, %d answers; want NXDOMAIN", typ, name, m.RCode, len(m.Answers))
			}
		}
	}
	if res.callCount() != 0 {
		t.Errorf("resolver called: %v", res.calls)
	}
	if p.pool.len() != 0 {
		t.Errorf("denied names took pool entries: %d", p.pool.len())
	}
	for _, ev := range log.all() {
		if ev.Verdict != VerdictDeny || ev.Reason != "not in allowlist" {
			t.Errorf("event %+v", ev)
		}
	}
}

func TestDNSOddQueries(t *testing.T) {
	p, _, _ := newDNSProxy(t, []string{"api.test"}, nil)
	name := dnsmessage.MustNewName("api.test.")
	pack := func(m dnsmessage.Message) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	q := dnsmessage.Question{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	for _, tc := range []struct {
		name string
		msg  []byte
		want dnsmessage.RCode
	}{
		{"class CH", pack(dnsmessage.Message{Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassCHAOS}}}), dnsmessage.RCodeNotImplemented},
		{"opcode NOTIFY", pack(dnsmessage.Message{Header: dnsmessage.Header{OpCode: 4}, Questions: []dnsmessage.Question{q}}), dnsmessage.RCodeNotImplemented},
		{"no question", pack(dnsmessage.Message{}), dnsmessage.RCodeFormatError},
		{"two questions", pack(dnsmessage.Message{Questions: []dnsmessage.Question{q, q}}), dnsmessage.RCodeFormatError},
		{"truncated question", pack(dnsmessage.Message{Questions: []dnsmessage.Question{q}})[:16], dnsmessage.RCodeFormatError},
	} {
		resp := p.answerDNS(tc.msg)
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Errorf("%s: unpack answer: %v", tc.name, err)
			continue
		}
		if m.RCode != tc.want || len(m.Answers) != 0 {
			t.Errorf("%s: rcode %v, %d answers; want %v", tc.name, m.RCode, len(m.Answers), tc.want)
		}
	}
	// Ignored outright: not even a header, or a response.
	for _, msg := range [][]byte{nil, {1, 2, 3}, pack(dnsmessage.Message{Header: dnsmessage.Header{Response: true}, Questions: []dnsmessage.Question{q}})} {
		if resp := p.answerDNS(msg); resp != nil {
			t.Errorf("answerDNS(%x) = %x, want no answer", msg, resp)
		}
	}
	// A label containing a dot must not pass for two labels.
	evil := pack(dnsmessage.Message{Questions: []dnsmessage.Question{q}})
	copy(evil[12:], []byte{8, 'a', 'p', 'i', '.', 't', 'e', 's', 't', 0})
	if resp := p.answerDNS(evil[:12+10+4]); resp != nil {
		var m dnsmessage.Message
		if m.Unpack(resp) == nil && len(m.Answers) != 0 {
			t.Errorf("label with a dot answered: %+v", m)
		}
	}
}

// Random and mutated packets never crash the stub and never yield an
// answer for a name that is not allowed.
func TestDNSGarbage(t *testing.T) {
	p, _, _ := newDNSProxy(t, []string{"api.test"}, nil)
	valid, _ := (&dnsmessage.Message{Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("api.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}).Pack()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var msg []byte
		if i%2 == 0 {
			msg = make([]byte, r.IntN(64))
			for j := range msg {
				msg[j] = byte(r.UintN(256))
			}
		} else {
			msg = append([]byte(nil), valid...)
			for range 1 + r.IntN(4) {
				msg[r.IntN(len(msg))] = byte(r.UintN(256))
			}
			msg = msg[:r.IntN(len(msg)+1)]
		}
		resp := p.answerDNS(msg)
		if resp == nil {
			continue
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("answer to %x does not parse: %v", msg, err)
		}
		for _, a := range m.Answers {
			if n := a.Header.Name.String(); !p.allow.AllowsNameAnyPort(n) {
				t.Fatalf("answer for %q (query %x)", n, msg)
			}
		}
	}
}

func FuzzAnswerDNS(f *testing.F) {
	valid, _ := (&dnsmessage.Message{Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("api.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}).Pack()
	f.Add(valid)
	f.Add([]byte{})
	a, _ := ParseAllowlist([]string{"api.test", "*.cdn.test"})
	p, _ := New(Options{Allow: a})
	f.Fuzz(func(t *testing.T, msg []byte) {
		if resp := p.answerDNS(msg); resp != nil {
			var m dnsmessage.Message
			if err := m.Unpack(resp); err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
		}
	})
}

func TestFakePoolCap(t *testing.T) {
	p, _, _ := newDNSProxy(t, []string{"*.pool.test"}, func(o *Options) { o.MaxNames = 3 })
	addr := func(n int) netip.Addr {
		m := dnsAsk(t, p, fmt.Sprintf("n%d.pool.test", n), dnsmessage.TypeA)
		return netip.AddrFrom4(m.Answers[0].Body.(*dnsmessage.AResource).A)
	}
	a0, a1, a2 := addr(0), addr(1), addr(2)
	if p.pool.len() != 3 {
		t.Fatalf("pool holds %d", p.pool.len())
	}
	addr(0)       // n0 is now the most recently used
	a3 := addr(3) // evicts n1, the least recently used
	if _, ok := p.pool.nameFor(a1); ok {
		t.Error("n1 still mapped after eviction")
	}
	for a, want := range map[netip.Addr]string{a0: "n0.pool.test", a2: "n2.pool.test", a3: "n3.pool.test"} {
		if got, ok := p.pool.nameFor(a); !ok || got != want {
			t.Errorf("nameFor(%v) = %q, %v; want %s", a, got, ok, want)
		}
	}
	if a3 == a1 {
		t.Error("an evicted address was handed out again at once")
	}
	for i := range 10000 {
		addr(100 + i)
	}
	if p.pool.len() != 3 {
		t.Errorf("pool grew to %d", p.pool.len())
	}
}

func TestFakePoolWraps(t *testing.T) {
	f := newFakePool(2)
	seen := map[netip.Addr]bool{}
	first := f.addrFor("keep") // kept in use throughout
	for i := range fakePoolAddrs + 10 {
		f.nameFor(first) // touch, so it is never evicted
		a := f.addrFor(fmt.Sprint(i))
		if a == first {
			t.Fatalf("address %v of a live name handed out again", a)
		}
		if !fakePrefix.Contains(a) || a == fakePrefix.Addr() || a == netip.MustParseAddr("198.19.255.255") {
			t.Fatalf("bad fake address %v", a)
		}
		seen[a] = true
	}
	if len(seen) != fakePoolAddrs-3 {
		t.Errorf("used %d distinct addresses, want %d", len(seen), fakePoolAddrs-3)
	}
}

// The stub works over real sockets for a real resolver client.
func TestServeDNSUDPAndTCP(t *testing.T) {
	p, res, _ := newDNSProxy(t, []string{"api.test"}, nil)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpDone, tcpDone := make(chan error, 1), make(chan error, 1)
	go func() { udpDone <- p.ServeDNS(pc) }()
	go func() { tcpDone <- p.ServeDNSTCP(l) }()

	for _, network := range []string{"udp", "tcp"} {
		stub := pc.LocalAddr().String()
		if network == "tcp" {
			stub = l.Addr().String()
		}
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			// Whatever resolv.conf says, ask the stub on loopback.
			var d net.Dialer
			return d.DialContext(ctx, network, stub)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addrs, err := r.LookupNetIP(ctx, "ip4", "api.test.")
		cancel()
		if err != nil || len(addrs) != 1 || !fakePrefix.Contains(addrs[0]) {
			t.Errorf("%s: LookupNetIP(api.test) = %v, %v", network, addrs, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		_, err = r.LookupNetIP(ctx, "ip", "evil.test.")
		cancel()
		if dnsErr, ok := err.(*net.DNSError); !ok || !dnsErr.IsNotFound {
			t.Errorf("%s: LookupNetIP(evil.test) error %v, want not found", network, err)
		}
	}
	// Garbage over TCP drops that connection only.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], 3)
	c.Write(append(b[:], 1, 2, 3))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(b[:]); err == nil {
		t.Errorf("garbage answered with %d bytes", n)
	}
	c.Close()
	// Garbage over UDP is ignored; the stub still answers afterwards.
	u, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte{0xff})
	q, _ := (&dnsmessage.Message{Header: dnsmessage.Header{ID: 7}, Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("api.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}).Pack()
	u.Write(q)
	buf := make([]byte, 512)
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := u.Read(buf)
	var m dnsmessage.Message
	if err != nil || m.Unpack(buf[:n]) != nil || m.ID != 7 || len(m.Answers) != 1 {
		t.Errorf("after garbage: %v %+v", err, m)
	}
	u.Close()

	if res.callCount() != 0 {
		t.Errorf("resolver called: %v", res.calls)
	}
	p.Close()
	if err := <-udpDone; err != nil {
		t.Errorf("ServeDNS: %v", err)
	}
	if err := <-tcpDone; err != nil {
		t.Errorf("ServeDNSTCP: %v", err)
	}
}
