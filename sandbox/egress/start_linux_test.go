package egress

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// startTest starts a Network for allow whose events arrive on the returned
// channel, and closes it at the end of the test.
func startTest(t *testing.T, allow *Allowlist) (*Network, <-chan Event) {
	t.Helper()
	testutil.RequiresRoot(t)
	events := make(chan Event, 256)
	n, err := Start(allow, func(ev Event) { events <- ev }, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, events
}

// nextEvent returns the next event of kind, skipping others. The timeout
// only bounds a failing test.
func nextEvent(t *testing.T, events <-chan Event, kind string) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// dialIn connects from inside the sandbox's namespace.
func dialIn(t *testing.T, n *Network, network, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	err := n.ns.Do(func() (err error) {
		c, err = net.DialTimeout(network, addr, 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dial %s %s in the sandbox: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// lookupIn asks the DNS the sandbox's resolv.conf names for name's A
// record, over UDP from inside the namespace.
func lookupIn(t *testing.T, n *Network, name string) dnsmessage.Message {
	t.Helper()
	var server string
	for _, line := range strings.Split(string(n.ResolvConf()), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
			server = f[1]
		}
	}
	if server == "" {
		t.Fatalf("resolv.conf names no nameserver:\n%s", n.ResolvConf())
	}
	c := dialIn(t, n, "udp", net.JoinHostPort(server, "53"))
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x4242, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	k, err := c.Read(buf)
	if err != nil {
		t.Fatalf("DNS answer for %s: %v", name, err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:k]); err != nil || m.ID != 0x4242 {
		t.Fatalf("DNS answer for %s: %v (id %#x)", name, err, m.ID)
	}
	return m
}

// Start gives a sandbox a namespace of its own whose DNS and TCP reach the
// proxy and the stub; each decision comes to the callback as a value, and
// Env and ResolvConf point the sandbox at them.
func TestStart(t *testing.T) {
	n, events := startTest(t, testAllowlist(t, []string{"allowed.test:443"}))

	host, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if sandbox, err := os.Readlink(n.NetNSPath()); err != nil || sandbox == host {
		t.Errorf("NetNSPath %s is %q, %v; want a namespace other than mcpbox's %s", n.NetNSPath(), sandbox, err, host)
	}

	if m := lookupIn(t, n, "denied.test"); m.RCode != dnsmessage.RCodeNameError {
		t.Errorf("A denied.test: rcode %v, want NXDOMAIN", m.RCode)
	}
	if ev := nextEvent(t, events, KindDNS); ev.Host != "denied.test" || ev.Verdict != VerdictDeny || ev.DNSType != "A" {
		t.Errorf("event %+v, want a denied A question for denied.test", ev)
	}
	if m := lookupIn(t, n, "allowed.test"); m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 1 {
		t.Errorf("A allowed.test: rcode %v, %d answers; want a fake address", m.RCode, len(m.Answers))
	}
	if ev := nextEvent(t, events, KindDNS); ev.Host != "allowed.test" || ev.Verdict != VerdictAllow {
		t.Errorf("event %+v, want an allowed A question for allowed.test", ev)
	}

	// TEST-NET-1: redirected to the proxy, which refuses a bare address
	// without a cidr: grant. The namespace has no way out anyway.
	c := dialIn(t, n, "tcp", "192.0.2.1:443")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the proxy answered a connection to 192.0.2.1:443")
	}
	if ev := nextEvent(t, events, KindConnect); ev.Addr != "192.0.2.1:443" || ev.Verdict != VerdictDeny || ev.Via != "transparent" {
		t.Errorf("event %+v, want a denied transparent connection to 192.0.2.1:443", ev)
	}

	// HTTP_PROXY is the proxy itself: an explicit CONNECT is decided too.
	var names []string
	proxy := ""
	for _, kv := range n.Env() {
		k, v, _ := strings.Cut(kv, "=")
		names = append(names, k)
		if k == "HTTP_PROXY" {
			proxy = v
		}
	}
	if !slices.Equal(names, EnvNames()) {
		t.Errorf("Env sets %q, EnvNames says %q", names, EnvNames())
	}
	addr, ok := strings.CutPrefix(proxy, "http://")
	if !ok {
		t.Fatalf("HTTP_PROXY=%q", proxy)
	}
	c = dialIn(t, n, "tcp", addr)
	fmt.Fprintf(c, "CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if status, _ := io.ReadAll(c); !strings.HasPrefix(string(status), "HTTP/1.1 403") {
		t.Errorf("CONNECT denied.test:443 through %s: %q, want 403", addr, status)
	}
	if ev := nextEvent(t, events, KindConnect); ev.Host != "denied.test" || ev.Verdict != VerdictDeny || ev.Via != "connect" {
		t.Errorf("event %+v, want a denied CONNECT to denied.test", ev)
	}
}

// A localhost:PORT grant reaches that port of the host's loopback: Start
// installs the namespace's redirect for it.
func TestStartHostLoopback(t *testing.T) {
	testutil.RequiresRoot(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			echo(c)
			c.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	allow, err := ParseAllowlist([]string{"localhost:" + port})
	if err != nil {
		t.Fatal(err)
	}
	n, events := startTest(t, allow)

	c := dialIn(t, n, "tcp", "127.0.0.1:"+port)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); string(got) != "x" {
		t.Fatalf("echo through the host's loopback: %q, %v", got, err)
	}
	if ev := nextEvent(t, events, KindConnect); ev.Host != "localhost" || ev.Port != l.Addr().(*net.TCPAddr).Port || ev.Verdict != VerdictAllow {
		t.Errorf("event %+v, want an allowed connection to localhost:%s", ev, port)
	}
}

// With a nil allowlist nothing is allowed, and every attempt is still
// decided and reported; after Close, the proxy's and the stub's sockets
// are gone.
func TestStartNothingAllowed(t *testing.T) {
	n, events := startTest(t, nil)
	if m := lookupIn(t, n, "example.test"); m.RCode != dnsmessage.RCodeNameError {
		t.Errorf("A example.test: rcode %v, want NXDOMAIN", m.RCode)
	}
	if ev := nextEvent(t, events, KindDNS); ev.Host != "example.test" || ev.Verdict != VerdictDeny {
		t.Errorf("event %+v, want a denied question", ev)
	}

	// Sockets of the namespace, opened before Close, to try its ports after.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(n.Env()[0], "HTTP_PROXY=http://"))
	p, _ := strconv.Atoi(port)
	var fds []int
	err := n.ns.Do(func() error {
		for range 2 {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
		}
		return nil
	})
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for i, port := range []int{p, 53} {
		err := unix.Connect(fds[i], &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
		if err != unix.ECONNREFUSED {
			t.Errorf("connect to 127.0.0.1:%d in the namespace after Close: %v, want ECONNREFUSED", port, err)
		}
	}
}
