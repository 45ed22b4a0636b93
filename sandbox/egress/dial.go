package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// guardedDial is the default Options.Dial. Its Control function runs on the
// socket just before connect(2) and refuses unless the address the kernel
// is about to connect to is exactly the one the policy passed and the
// policy still permits it, so no code path can dial around the check.
func (p *Proxy) guardedDial(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{
		Control: func(_, address string, _ syscall.RawConn) error {
			return p.checkDial(addr, address)
		},
	}
	return d.DialContext(ctx, network, addr.String())
}

// checkDial is the dial guard: address is what the socket connects to.
func (p *Proxy) checkDial(want netip.AddrPort, address string) error {
	got, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: dial guard: unparsable address %q: %w", address, err)
	}
	// The dialer turns ::ffff:a.b.c.d into an AF_INET socket to a.b.c.d;
	// that is the same destination, so compare unmapped and judge the
	// address in the form the policy saw.
	if unmapAP(got) != unmapAP(want) {
		return fmt.Errorf("egress: dial guard: refusing %s: the policy checked %s", got, want)
	}
	if ok, why := mayDial(p.allow, want); !ok {
		return fmt.Errorf("egress: dial guard: refusing %s: %s", got, why)
	}
	return nil
}
