package egress

import (
	"net"
	"net/netip"
	"testing"
)

// Without NAT, the original destination is the address the client
// dialled: the listener itself (explicit proxy mode).
func TestOriginalDstWithoutNAT(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("%s: %v", network, err)
			continue
		}
		defer l.Close()
		c, err := net.Dial(network, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got, err := originalDst(s)
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if want := netip.MustParseAddrPort(l.Addr().String()); got != want {
			t.Errorf("%s: originalDst = %v, want %v", network, got, want)
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := originalDst(a); err == nil {
		t.Error("originalDst(net.Pipe) succeeded")
	}
}
