package egress

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// AnyPort is the port of an entry written with ":*"; it matches every port.
const AnyPort = 0

// DefaultPort is the port of an entry written without one.
const DefaultPort = 443

type entryKind uint8

const (
	kindExact    entryKind = iota // api.example.com
	kindWildcard                  // *.example.com: subdomains at any depth, never the apex
	kindCIDR                      // cidr:10.0.0.0/8: an explicit address grant
)

type entry struct {
	kind   entryKind
	host   string       // kindExact: the name; kindWildcard: the suffix without "*."
	prefix netip.Prefix // kindCIDR
	port   int          // AnyPort or 1..65535
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
//	cidr:::1/128                   IPv6 without brackets: port 443
//
// Host names are compared case-insensitively and a trailing dot is ignored.
// They must be ASCII (IDNs in punycode, xn--...). A host entry never matches
// an IP address: an IP literal, including the numeric forms that inet_aton
// accepts such as 2852039166 or 0xa9fea9fe, is refused and must be written
// as an explicit cidr: grant. A cidr: grant is the only way to reach a
// private, loopback or otherwise forbidden address (see Forbidden); it
// matches addresses of its own family only, so cidr:10.0.0.0/8 does not
// match ::ffff:10.0.0.1. Port :* means any port for every kind of entry.
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
	if strings.HasPrefix(s, "[") {
		return entry{}, fmt.Errorf("IP literal as host: use cidr:[ADDR/128]:PORT for an address grant")
	}
	host, port := s, DefaultPort
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host = s[:i]
		if strings.Contains(host, ":") {
			return entry{}, fmt.Errorf("IP literal as host: use cidr:[%s/128] for an address grant", strings.Trim(s, "[]"))
		}
		p, err := parsePort(s[i+1:])
		if err != nil {
			return entry{}, err
		}
		port = p
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
	if e.kind == kindWildcard && !strings.Contains(name, ".") {
		return entry{}, fmt.Errorf("wildcard over a whole top-level domain (*.%s) is too broad", name)
	}
	e.host = name
	return e, nil
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
	if ip, err := netip.ParseAddr(h); err == nil {
		return "", fmt.Errorf("IP literal as host: use %s for an address grant", cidrHint(ip))
	}
	if ip, ok := parseLegacyIPv4(h); ok {
		return "", fmt.Errorf("%s is the IPv4 address %s in numeric form: use %s for an address grant", h, ip, cidrHint(ip))
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
// entries match addresses; a grant overrides Forbidden.
func (a *Allowlist) AllowsAddr(ip netip.Addr, port int) bool {
	if a == nil || !ip.IsValid() {
		return false
	}
	ip = ip.WithZone("")
	for _, e := range a.entries {
		if e.kind == kindCIDR && (e.port == AnyPort || e.port == port) && e.prefix.Contains(ip) {
			return true
		}
	}
	return false
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
