package egress

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// AnyPort is the port of an entry written with ":*"; it matches every port.
const AnyPort = 0

// DefaultPort is the port of an entry written without one.
const DefaultPort = 443

type entryKind uint8

const (
	kindExact        entryKind = iota // api.example.com
	kindWildcard                      // *.example.com: subdomains at any depth, never the apex
	kindCIDR                          // cidr:10.0.0.0/8: an explicit address grant
	kindHostLoopback                  // localhost:5432: one port of the host's own loopback
	kindTrusted                       // an exact address mcpbox itself vetted (Trusting); no syntax
)

type entry struct {
	kind   entryKind
	host   string       // kindExact: the name; kindWildcard: the suffix without "*."
	prefix netip.Prefix // kindCIDR, kindTrusted (a single address)
	port   int          // AnyPort or 1..65535; kindHostLoopback and kindTrusted: never AnyPort
}

func (e entry) String() string {
	var s string
	switch e.kind {
	case kindExact:
		s = e.host
	case kindWildcard:
		s = "*." + e.host
	case kindCIDR:
		s = "cidr:" + e.prefix.String()
		if e.prefix.Addr().Is6() {
			s = "cidr:[" + e.prefix.String() + "]"
		}
	case kindHostLoopback:
		s = "localhost"
	case kindTrusted:
		return "trusted:" + netip.AddrPortFrom(e.prefix.Addr(), uint16(e.port)).String()
	}
	if e.port == AnyPort {
		return s + ":*"
	}
	return s + ":" + strconv.Itoa(e.port)
}

// Allowlist is the set of destinations a sandbox may reach. It is immutable
// once parsed and safe for concurrent use. A nil *Allowlist allows nothing.
//
// Entry syntax (one entry per string, surrounding spaces ignored):
//
//	api.example.com        exact host, port 443
//	api.example.com:8443   exact host, port 8443
//	api.example.com:*      exact host, any port
//	*.example.com[:port]   any subdomain at any depth (a.example.com,
//	                       a.b.example.com) but never example.com itself
//	cidr:10.1.2.0/24[:port]        IPv4 addresses, port 443 unless given
//	cidr:[fd00::/8][:port]         IPv6 addresses (brackets needed for a port)
//	cidr:fd00::/8                  IPv6 without brackets: port 443
//	localhost:5432                 port 5432 of this machine's loopback: the
//	                               sandbox's 127.0.0.1:5432 and [::1]:5432
//	                               lead there (port required, never :*)
//
// Host names are compared case-insensitively and a trailing dot is ignored.
// They must be ASCII (IDNs in punycode, xn--...). A host entry never matches
// an IP address: an IP literal, including the numeric forms that inet_aton
// accepts such as 2852039166 or 0xa9fea9fe, is refused and must be written
// as an explicit cidr: grant. A cidr: grant is the only way to reach a
// private or otherwise forbidden address (see Forbidden); it matches
// addresses of its own family only, so cidr:10.0.0.0/8 does not match
// ::ffff:10.0.0.1. Port :* means any port for every kind of entry but
// localhost.
//
// Inside the sandbox, loopback is the sandbox's own. So loopback is never
// reached by address: an entry that can only mean it (127.0.0.1:5432,
// [::1]:5432, 0.0.0.0, cidr:127.0.0.0/8, cidr:::1/128, names under
// .localhost, host.docker.internal and its kind) is an error that says to
// write localhost:PORT, a cidr: grant never covers loopback or the
// unspecified address even when its range contains them (cidr:0.0.0.0/0),
// and a name that resolves to loopback on the host is refused when
// connected to (CheckHostsFile catches the names in /etc/hosts before
// that). localhost:PORT is the one way to this machine's loopback, one
// port at a time.
type Allowlist struct {
	entries []entry
}

// ParseAllowlist parses allowlist entries. The error names the first
// malformed entry and what is wrong with it.
func ParseAllowlist(entries []string) (*Allowlist, error) {
	a := &Allowlist{}
	for _, raw := range entries {
		e, err := parseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("egress: allowlist entry %q: %w", raw, err)
		}
		a.entries = append(a.entries, e)
	}
	return a, nil
}

func parseEntry(raw string) (entry, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return entry{}, fmt.Errorf("empty entry")
	}
	if len(s) >= 5 && strings.EqualFold(s[:5], "cidr:") {
		return parseCIDREntry(s[5:])
	}
	host, portStr, hasPort := s, "", false
	switch i := strings.LastIndexByte(s, ':'); {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return entry{}, fmt.Errorf("missing ']' after the IPv6 address")
		}
		host = s[1:end]
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			portStr, hasPort = rest[1:], true
		default:
			return entry{}, fmt.Errorf("unexpected %q after ']'", rest)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return entry{}, fmt.Errorf("%q in brackets is not an IP address", host)
		}
	case i >= 0 && !strings.Contains(s[:i], ":"):
		host, portStr, hasPort = s[:i], s[i+1:], true
	}
	port := DefaultPort
	if hasPort {
		p, err := parsePort(portStr)
		if err != nil {
			return entry{}, err
		}
		port = p
	}
	if err := addrAsHost(host, port, hasPort); err != nil {
		return entry{}, err
	}
	e := entry{kind: kindExact, port: port}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		e.kind = kindWildcard
		host = rest
		if host == "" {
			return entry{}, fmt.Errorf("wildcard without a domain (write *.example.com)")
		}
	}
	if strings.Contains(host, "*") {
		return entry{}, fmt.Errorf("'*' is only allowed as the whole first label, as in *.example.com")
	}
	name, err := normaliseName(host)
	if err != nil {
		return entry{}, err
	}
	if name == "localhost" && e.kind == kindExact {
		return hostLoopbackEntry(port, hasPort)
	}
	if why := loopbackName(name, e.kind == kindWildcard); why != "" {
		return entry{}, fmt.Errorf("%s; to reach a service on this machine's loopback write localhost:%s and have the server connect to localhost", why, portHint(port, hasPort))
	}
	if e.kind == kindWildcard && !strings.Contains(name, ".") {
		return entry{}, fmt.Errorf("wildcard over a whole top-level domain (*.%s) is too broad", name)
	}
	e.host = name
	return e, nil
}

// hostLoopbackEntry is localhost:PORT, the grant of one port of the host's
// loopback.
func hostLoopbackEntry(port int, hasPort bool) (entry, error) {
	switch {
	case !hasPort:
		return entry{}, fmt.Errorf("localhost needs a port: localhost:PORT lets the sandbox reach port PORT of this machine's loopback (e.g. localhost:5432 for a local Postgres)")
	case port == AnyPort:
		return entry{}, fmt.Errorf("localhost:* would open every service on this machine's loopback: grant one port per service, localhost:PORT")
	case port == dnsPort:
		return entry{}, fmt.Errorf("port 53 of the sandbox's loopback is mcpbox's DNS stub, so localhost:53 cannot reach this machine's; the stub answers the allowlisted names")
	}
	return entry{kind: kindHostLoopback, port: port}, nil
}

// dnsPort is where the sandbox's DNS goes: to the stub, never elsewhere.
const dnsPort = 53

// addrAsHost refuses an IP address written as a host entry and says what
// to write instead: localhost:PORT for the loopback and unspecified
// addresses (in the sandbox those are its own), a cidr: grant otherwise.
func addrAsHost(host string, port int, hasPort bool) error {
	ip, err := netip.ParseAddr(host)
	legacy := false
	if err != nil {
		var ok bool
		if ip, ok = parseLegacyIPv4(strings.TrimSuffix(host, ".")); !ok {
			return nil
		}
		legacy = true
	}
	ip = ip.WithZone("")
	what := host
	if legacy {
		what = fmt.Sprintf("%s (the IPv4 address %s in numeric form)", host, ip)
	}
	if isHostLocal(ip) {
		return fmt.Errorf("%s in the sandbox is the sandbox's own loopback, not this machine's; to reach a service on this machine's loopback write localhost:%s and have the server connect to localhost", what, portHint(port, hasPort))
	}
	hint := cidrHint(ip)
	if hasPort {
		hint += ":" + portString(port)
	}
	if legacy {
		return fmt.Errorf("%s is the IPv4 address %s in numeric form: use %s for an address grant", host, ip, hint)
	}
	return fmt.Errorf("IP literal as host: use %s for an address grant", hint)
}

// loopbackName says why a name cannot be granted because it can only
// mean loopback, or the host as a container runtime names it; "" if it
// can. "localhost" itself is the host-loopback grant, handled before.
func loopbackName(name string, wildcard bool) string {
	switch {
	case wildcard && name == "localhost", strings.HasSuffix(name, ".localhost"):
		return "names under .localhost are loopback (RFC 6761): in the sandbox, its own"
	case name == "localhost.localdomain" || name == "ip6-localhost" || name == "ip6-loopback":
		return name + " is a name for loopback: in the sandbox, its own"
	case name == "host.docker.internal" || name == "gateway.docker.internal" || name == "docker.for.mac.host.internal" ||
		name == "host.containers.internal" || name == "host.lima.internal":
		return name + " is how a container runtime names the host; mcpbox's sandbox has no such name"
	}
	return ""
}

func portHint(port int, hasPort bool) string {
	if !hasPort || port == AnyPort {
		return "PORT"
	}
	return strconv.Itoa(port)
}

func portString(port int) string {
	if port == AnyPort {
		return "*"
	}
	return strconv.Itoa(port)
}

// hostLocalPrefixes are the addresses that mean "this machine" to a
// socket: loopback, the unspecified address (a connect to 0.0.0.0 or ::
// goes to loopback) and their IPv4-mapped forms. In the sandbox that
// machine is the sandbox.
var hostLocalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("0.0.0.0/32"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::ffff:127.0.0.0/104"),
	netip.MustParsePrefix("::ffff:0.0.0.0/128"),
}

// isHostLocal reports whether ip is loopback or unspecified, in either
// family or IPv4-mapped.
func isHostLocal(ip netip.Addr) bool {
	u := ip.Unmap()
	return u.IsLoopback() || u.IsUnspecified()
}

func parseCIDREntry(s string) (entry, error) {
	pfx, portStr, hasPort := s, "", false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return entry{}, fmt.Errorf("bad CIDR: missing ']'")
		}
		pfx = s[1:end]
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			portStr, hasPort = rest[1:], true
		default:
			return entry{}, fmt.Errorf("bad CIDR: unexpected %q after ']'", rest)
		}
	} else {
		// The port, if any, follows the mask: "10.0.0.0/8:443", "::1/128:443".
		slash := strings.IndexByte(s, '/')
		if slash < 0 {
			return entry{}, fmt.Errorf("bad CIDR %q: missing /bits (for one address write /32 or /128)", s)
		}
		if c := strings.IndexByte(s[slash:], ':'); c >= 0 {
			pfx, portStr, hasPort = s[:slash+c], s[slash+c+1:], true
		}
	}
	if !strings.Contains(pfx, "/") {
		return entry{}, fmt.Errorf("bad CIDR %q: missing /bits (for one address write /32 or /128)", pfx)
	}
	p, err := netip.ParsePrefix(pfx)
	if err != nil {
		return entry{}, fmt.Errorf("bad CIDR %q: %w", pfx, err)
	}
	if p != p.Masked() {
		return entry{}, fmt.Errorf("bad CIDR %q: host bits set (did you mean %s?)", pfx, p.Masked())
	}
	e := entry{kind: kindCIDR, prefix: p, port: DefaultPort}
	if hasPort {
		if e.port, err = parsePort(portStr); err != nil {
			return entry{}, err
		}
	}
	for _, local := range hostLocalPrefixes {
		if local.Bits() <= p.Bits() && local.Contains(p.Addr()) {
			return entry{}, fmt.Errorf("%s is loopback only: in the sandbox that is its own, and a cidr: grant never reaches this machine's; to reach a service on this machine's loopback write localhost:%s and have the server connect to localhost",
				pfx, portHint(e.port, hasPort))
		}
	}
	return e, nil
}

func parsePort(s string) (int, error) {
	if s == "*" {
		return AnyPort, nil
	}
	if s == "" {
		return 0, fmt.Errorf("empty port")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not a number (or * for any port)", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("port %s out of range 1-65535", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("port 0 is not a port (use * for any port)")
	}
	return n, nil
}

// normaliseName lowercases a host name, drops one trailing dot and checks
// that it is an ASCII DNS name and not an IP address in any notation.
func normaliseName(host string) (string, error) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "" {
		return "", fmt.Errorf("empty host")
	}
	if len(h) > 253 {
		return "", fmt.Errorf("host longer than 253 characters")
	}
	if err := addrAsHost(h, DefaultPort, false); err != nil {
		return "", err
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return "", fmt.Errorf("empty label in %q", h)
		}
		if len(label) > 63 {
			return "", fmt.Errorf("label %q longer than 63 characters", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 0x80:
				return "", fmt.Errorf("non-ASCII host name: write it in punycode (xn--...)")
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			case c == '-':
				if i == 0 || i == len(label)-1 {
					return "", fmt.Errorf("label %q starts or ends with '-'", label)
				}
			default:
				return "", fmt.Errorf("character %q not allowed in a host name", c)
			}
		}
	}
	return h, nil
}

func cidrHint(ip netip.Addr) string {
	if ip.Is6() {
		return "cidr:[" + ip.WithZone("").String() + "/128]"
	}
	return "cidr:" + ip.String() + "/32"
}

// parseLegacyIPv4 parses the IPv4 notations that inet_aton(3) and most
// resolvers accept besides dotted decimal: 1 to 4 parts, each decimal, octal
// (leading 0) or hex (0x), the last part filling the remaining bytes —
// 2852039166, 0xa9fea9fe, 0251.0376.0251.0376 and 169.254.43518 are all
// 169.254.169.254. net/netip refuses these forms, so they would otherwise
// look like names.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base, digits := 10, p
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		if digits == "" {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var out uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		out |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	out |= last
	return netip.AddrFrom4([4]byte{byte(out >> 24), byte(out >> 16), byte(out >> 8), byte(out)}), true
}

// AllowsName reports whether an exact or wildcard entry allows host on port.
// IP addresses never match (see AllowsAddr).
func (a *Allowlist) AllowsName(host string, port int) bool {
	return a.matchName(host, func(e entry) bool { return e.port == AnyPort || e.port == port })
}

// AllowsNameAnyPort reports whether host is allowed on at least one port.
// The DNS stub uses it: a name that no port would let through does not
// resolve.
func (a *Allowlist) AllowsNameAnyPort(host string) bool {
	return a.matchName(host, func(entry) bool { return true })
}

func (a *Allowlist) matchName(host string, portOK func(entry) bool) bool {
	if a == nil {
		return false
	}
	name, err := normaliseName(host)
	if err != nil {
		return false
	}
	for _, e := range a.entries {
		if !portOK(e) {
			continue
		}
		switch e.kind {
		case kindExact:
			if name == e.host {
				return true
			}
		case kindWildcard:
			if len(name) > len(e.host)+1 && strings.HasSuffix(name, e.host) && name[len(name)-len(e.host)-1] == '.' {
				return true
			}
		}
	}
	return false
}

// AllowsAddr reports whether a cidr: grant allows ip on port. Only cidr:
// entries match addresses; a grant overrides Forbidden, except for
// loopback and unspecified addresses, which no cidr: grant covers (see
// HostLoopback).
func (a *Allowlist) AllowsAddr(ip netip.Addr, port int) bool {
	if a == nil || !ip.IsValid() {
		return false
	}
	ip = ip.WithZone("")
	if isHostLocal(ip) {
		return false
	}
	for _, e := range a.entries {
		if e.kind == kindCIDR && (e.port == AnyPort || e.port == port) && e.prefix.Contains(ip) {
			return true
		}
	}
	return false
}

// trusts reports whether Trusting vetted exactly ip:port.
func (a *Allowlist) trusts(ip netip.Addr, port int) bool {
	if a == nil {
		return false
	}
	ip = ip.WithZone("")
	for _, e := range a.entries {
		if e.kind == kindTrusted && e.port == port && e.prefix.Addr() == ip {
			return true
		}
	}
	return false
}

// HostLoopback reports whether a localhost:PORT entry grants port of the
// host's loopback.
func (a *Allowlist) HostLoopback(port int) bool {
	if a == nil {
		return false
	}
	for _, e := range a.entries {
		if e.kind == kindHostLoopback && e.port == port {
			return true
		}
	}
	return false
}

// HostLoopbackPorts returns the ports of the localhost:PORT entries, each
// once: the ports whose connections to the sandbox's 127.0.0.1 and ::1 the
// namespace must send to the proxy (NetNS.Install).
func (a *Allowlist) HostLoopbackPorts() []uint16 {
	if a == nil {
		return nil
	}
	var out []uint16
	for _, e := range a.entries {
		if e.kind == kindHostLoopback && !slices.Contains(out, uint16(e.port)) {
			out = append(out, uint16(e.port))
		}
	}
	return out
}

// isHostLoopbackTarget reports whether ap is where a localhost:PORT grant
// leads: 127.0.0.1 or ::1 on a granted port.
func (a *Allowlist) isHostLoopbackTarget(ap netip.AddrPort) bool {
	ip := ap.Addr().WithZone("")
	return (ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || ip == netip.IPv6Loopback()) && a.HostLoopback(int(ap.Port()))
}

// Trusting returns a copy of a that also lets the proxy connect to exactly
// the given addresses when a name a allows resolves to them, even where
// Forbidden (loopback included). It is for destinations mcpbox looked up
// itself from configuration the user controls, such as the package
// registry in npm's or pip's settings; entries written in flags and
// profiles have no way to say it. Every address needs a port.
func (a *Allowlist) Trusting(addrs ...netip.AddrPort) (*Allowlist, error) {
	out := &Allowlist{}
	if a != nil {
		out.entries = slices.Clone(a.entries)
	}
	for _, ap := range addrs {
		if !ap.IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("egress: trusted address %s: needs an address and a port", ap)
		}
		ip := ap.Addr().Unmap().WithZone("")
		out.entries = append(out.entries, entry{kind: kindTrusted, prefix: netip.PrefixFrom(ip, ip.BitLen()), port: int(ap.Port())})
	}
	return out, nil
}

// CheckHostsFile returns an error naming the first exact entry that hosts,
// the text of the hosts file at path, maps only to loopback or unspecified
// addresses. The proxy resolves names on the host and never connects to the
// host's loopback for a name, so such an entry could never be used; the
// error says to write localhost:PORT instead.
func (a *Allowlist) CheckHostsFile(path string, hosts []byte) error {
	if a == nil {
		return nil
	}
	type seen struct {
		local netip.Addr // first loopback or unspecified address of the name
		other bool       // the name has another address too
	}
	names := map[string]*seen{}
	for line := range strings.SplitSeq(string(hosts), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		for _, n := range f[1:] {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			s := names[n]
			if s == nil {
				s = &seen{}
				names[n] = s
			}
			if isHostLocal(ip) {
				if !s.local.IsValid() {
					s.local = ip.WithZone("")
				}
			} else {
				s.other = true
			}
		}
	}
	for _, e := range a.entries {
		if e.kind != kindExact {
			continue
		}
		if s := names[e.host]; s != nil && s.local.IsValid() && !s.other {
			return fmt.Errorf("egress: allowlist entry %q: %s is %s in %s, this machine's loopback, which the proxy never connects to for a name; write localhost:%s instead and have the server connect to localhost",
				e.String(), e.host, s.local, path, portHint(e.port, true))
		}
	}
	return nil
}

// Empty reports whether the allowlist allows nothing at all.
func (a *Allowlist) Empty() bool { return a == nil || len(a.entries) == 0 }

// String returns the entries in canonical form (lowercase, explicit port),
// separated by commas.
func (a *Allowlist) String() string {
	if a == nil {
		return ""
	}
	parts := make([]string, len(a.entries))
	for i, e := range a.entries {
		parts[i] = e.String()
	}
	return strings.Join(parts, ",")
}
