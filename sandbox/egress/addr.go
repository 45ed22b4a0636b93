package egress

import (
	"net/netip"
)

type forbiddenRange struct {
	prefix netip.Prefix
	reason string
}

// forbiddenRanges lists the special-purpose blocks a sandbox may not reach
// without an explicit cidr: grant. More specific entries come first so the
// reason names the narrowest block. IPv6 outside 2000::/3 is refused by a
// catch-all after the table.
func forbiddenRanges() []forbiddenRange {
	mk := func(p, r string) forbiddenRange { return forbiddenRange{netip.MustParsePrefix(p), r} }
	return []forbiddenRange{
		// IPv4
		mk("0.0.0.0/32", "unspecified"),
		mk("0.0.0.0/8", "\"this network\" (0.0.0.0/8)"),
		mk("10.0.0.0/8", "private (10.0.0.0/8)"),
		mk("100.64.0.0/10", "carrier-grade NAT (100.64.0.0/10)"),
		mk("127.0.0.0/8", "loopback"),
		mk("169.254.169.254/32", "link-local (cloud metadata service)"),
		mk("169.254.0.0/16", "link-local"),
		mk("172.16.0.0/12", "private (172.16.0.0/12)"),
		mk("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
		mk("192.0.2.0/24", "documentation (192.0.2.0/24)"),
		mk("192.88.99.0/24", "6to4 relay anycast (192.88.99.0/24)"),
		mk("192.168.0.0/16", "private (192.168.0.0/16)"),
		mk("198.18.0.0/15", "benchmarking / sandbox DNS pool (198.18.0.0/15)"),
		mk("198.51.100.0/24", "documentation (198.51.100.0/24)"),
		mk("203.0.113.0/24", "documentation (203.0.113.0/24)"),
		mk("224.0.0.0/4", "multicast"),
		mk("255.255.255.255/32", "broadcast"),
		mk("240.0.0.0/4", "reserved (240.0.0.0/4)"),
		// IPv6
		mk("::/128", "unspecified"),
		mk("::1/128", "loopback"),
		mk("::/96", "IPv4-compatible IPv6 (deprecated)"),
		mk("64:ff9b::/96", "NAT64 (64:ff9b::/96)"),
		mk("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
		mk("100::/64", "discard-only (100::/64)"),
		mk("2001::/32", "Teredo (2001::/32)"),
		mk("2001::/23", "IETF protocol assignments (2001::/23)"),
		mk("2001:db8::/32", "documentation (2001:db8::/32)"),
		mk("2002::/16", "6to4 (2002::/16)"),
		mk("3fff::/20", "documentation (3fff::/20)"),
		mk("5f00::/16", "SRv6 SIDs (5f00::/16)"),
		mk("fd00:ec2::254/128", "unique local (cloud metadata service)"),
		mk("fc00::/7", "unique local (fc00::/7)"),
		mk("fe80::/10", "link-local"),
		mk("fec0::/10", "site-local (deprecated)"),
		mk("ff00::/8", "multicast"),
	}
}

// Read-only after initialisation.
var (
	forbidden      = forbiddenRanges()
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

// Forbidden reports whether ip lies in a range a sandbox must not reach
// unless the allowlist grants it explicitly with a cidr: entry, and names
// the range. It covers unspecified, loopback, private, unique local,
// link-local (including cloud metadata at 169.254.169.254 and
// fd00:ec2::254), carrier-grade NAT, multicast, broadcast, documentation,
// benchmarking (which holds the fake DNS pool) and reserved blocks, NAT64,
// 6to4, Teredo, discard-only, and every IPv6 address outside 2000::/3. An
// IPv4-mapped address (::ffff:a.b.c.d) is always forbidden: its reason names
// the embedded IPv4 address and what that is.
func Forbidden(ip netip.Addr) (bool, string) {
	if !ip.IsValid() {
		return true, "invalid address"
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		v4 := ip.Unmap()
		if bad, why := Forbidden(v4); bad {
			return true, "IPv4-mapped IPv6 address (" + v4.String() + ": " + why + ")"
		}
		return true, "IPv4-mapped IPv6 address (connect to " + v4.String() + " instead)"
	}
	for _, r := range forbidden {
		if r.prefix.Contains(ip) {
			return true, r.reason
		}
	}
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return true, "outside IPv6 global unicast (2000::/3)"
	}
	return false, ""
}

// permitted reports whether the proxy may connect to ip:port for a name
// that resolved to it, or for a bare address, and why not: an address is
// dialable iff it is not Forbidden, a cidr: grant covers it (never
// loopback), or Trusting vetted exactly it.
func permitted(a *Allowlist, ip netip.Addr, port int) (bool, string) {
	bad, why := Forbidden(ip)
	if !bad || a.AllowsAddr(ip, port) || a.trusts(ip, port) {
		return true, ""
	}
	return false, why
}

// mayDial reports whether the proxy may connect to ap by any path the
// allowlist opens: permitted, or the host's loopback through a
// localhost:PORT grant. It is the last check before connect(2); which path
// a connection takes is decided before, per connection.
func mayDial(a *Allowlist, ap netip.AddrPort) (bool, string) {
	if a.isHostLoopbackTarget(ap) {
		return true, ""
	}
	return permitted(a, ap.Addr(), int(ap.Port()))
}
