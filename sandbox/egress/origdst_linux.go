package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// ip6tSoOriginalDst is IP6T_SO_ORIGINAL_DST from linux/netfilter_ipv6/
// ip6_tables.h (x/sys/unix does not define it).
const ip6tSoOriginalDst = 80

// originalDst reads the destination a redirected connection had before
// NAT: SO_ORIGINAL_DST for IPv4, IP6T_SO_ORIGINAL_DST for IPv6. When
// conntrack has no entry for the connection (ENOENT), nothing redirected
// it, and its own local address is where the client was going.
func originalDst(c net.Conn) (netip.AddrPort, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("egress: original destination: %T has no file descriptor", c)
	}
	local, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("egress: original destination: local address: %w", err)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("egress: original destination: %w", err)
	}
	var ap netip.AddrPort
	var serr error
	err = rc.Control(func(fd uintptr) {
		if local.Addr().Unmap().Is4() {
			var m *unix.IPv6Mreq // 20 bytes, room for a struct sockaddr_in
			m, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IP, unix.SO_ORIGINAL_DST)
			if serr == nil {
				b := m.Multiaddr // family(2) port(2, big endian) addr(4)
				ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4]))
			}
			return
		}
		var mi *unix.IPv6MTUInfo // 32 bytes, room for a struct sockaddr_in6
		mi, serr = unix.GetsockoptIPv6MTUInfo(int(fd), unix.IPPROTO_IPV6, ip6tSoOriginalDst)
		if serr == nil {
			var pb [2]byte
			binary.NativeEndian.PutUint16(pb[:], mi.Addr.Port) // raw network-order bytes
			ap = netip.AddrPortFrom(netip.AddrFrom16(mi.Addr.Addr), binary.BigEndian.Uint16(pb[:]))
		}
	})
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("egress: original destination: %w", err)
	}
	if errors.Is(serr, unix.ENOENT) {
		return local, nil
	}
	if serr != nil {
		return netip.AddrPort{}, fmt.Errorf("egress: original destination of %s: %w", c.RemoteAddr(), serr)
	}
	return ap, nil
}
