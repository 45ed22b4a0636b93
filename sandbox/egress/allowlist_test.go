package egress

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseAllowlistValid(t *testing.T) {
	for _, tc := range []struct {
		in, canon string
	}{
		{"api.example.com", "api.example.com:443"},
		{"API.Example.COM.", "api.example.com:443"},
		{"  api.example.com:8443 ", "api.example.com:8443"},
		{"api.example.com:*", "api.example.com:*"},
		{"*.example.com", "*.example.com:443"},
		{"*.Example.com:80", "*.example.com:80"},
		{"*.example.com:*", "*.example.com:*"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example:443"},
		{"localhost:5432", "localhost:5432"},
		{"LOCALHOST.:8080", "localhost:8080"},
		{"a-b.c_d.example", "a-b.c_d.example:443"},
		{"cidr:10.1.2.0/24", "cidr:10.1.2.0/24:443"},
		{"cidr:10.1.2.0/24:5432", "cidr:10.1.2.0/24:5432"},
		{"CIDR:10.1.2.0/24:*", "cidr:10.1.2.0/24:*"},
		{"cidr:[fd00::/8]:443", "cidr:[fd00::/8]:443"},
		{"cidr:[fd00::/8]", "cidr:[fd00::/8]:443"},
		{"cidr:fd00::/8", "cidr:[fd00::/8]:443"},
		{"cidr:fd00::/8:8080", "cidr:[fd00::/8]:8080"},
		{"cidr:[::/0]:*", "cidr:[::/0]:*"},
		{"cidr:0.0.0.0/0:*", "cidr:0.0.0.0/0:*"}, // contains loopback, matches none of it (TestAllowsAddr)
		{"cidr:10.0.0.1/32:65535", "cidr:10.0.0.1/32:65535"},
	} {
		a, err := ParseAllowlist([]string{tc.in})
		if err != nil {
			t.Errorf("ParseAllowlist(%q): %v", tc.in, err)
			continue
		}
		if got := a.String(); got != tc.canon {
			t.Errorf("ParseAllowlist(%q).String() = %q, want %q", tc.in, got, tc.canon)
		}
	}
}

func TestParseAllowlistInvalid(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"", "empty entry"},
		{"   ", "empty entry"},
		{"*.", "wildcard without a domain"},
		{"*", "'*' is only allowed as the whole first label"},
		{"*example.com", "'*' is only allowed as the whole first label"},
		{"ex*ample.com", "'*' is only allowed as the whole first label"},
		{"*.*.example.com", "'*' is only allowed as the whole first label"},
		{"api.*.example.com", "'*' is only allowed as the whole first label"},
		{"*.com", "wildcard over a whole top-level domain"},
		{"a..b", `empty label in "a..b"`},
		{".example.com", "empty label"},
		{"example.com..", "empty label"},
		{"-a.example.com", "starts or ends with '-'"},
		{"a b.example.com", "character ' ' not allowed"},
		{"a/b.example.com", "character '/' not allowed"},
		{"bücher.example", "non-ASCII host name: write it in punycode"},
		{"api.example.com:0", "port 0 is not a port"},
		{"api.example.com:65536", "port 65536 out of range 1-65535"},
		{"api.example.com:99999999999999999999", "out of range"},
		{"api.example.com:https", `port "https" is not a number`},
		{"api.example.com:-1", `port "-1" is not a number`},
		{"api.example.com:", "empty port"},
		{strings.Repeat("a", 64) + ".example.com", "longer than 63"},
		{strings.Repeat("abcdefg.", 40) + "com", "longer than 253"},
		{"1.2.3.4", "IP literal as host: use cidr:1.2.3.4/32"},
		{"1.2.3.4:80", "IP literal as host: use cidr:1.2.3.4/32"},
		{"169.254.169.254", "use cidr:169.254.169.254/32"},
		{"2852039166", "2852039166 is the IPv4 address 169.254.169.254 in numeric form"},
		{"0xa9fea9fe", "0xa9fea9fe is the IPv4 address 169.254.169.254 in numeric form"},
		{"0251.0376.0251.0376", "is the IPv4 address 169.254.169.254"},
		{"169.254.43518", "is the IPv4 address 169.254.169.254"},
		{"127.1", "127.1 (the IPv4 address 127.0.0.1 in numeric form) in the sandbox is the sandbox's own loopback"},
		{"::1", "::1 in the sandbox is the sandbox's own loopback"},
		{"[::1]:443", "::1 in the sandbox is the sandbox's own loopback"},
		{"fd00:ec2::254", "IP literal as host: use cidr:[fd00:ec2::254/128] for"},
		{"[fd00:ec2::254]:80", "IP literal as host: use cidr:[fd00:ec2::254/128]:80 for"},
		{"[fd00::1", "missing ']'"},
		{"[api.example.com]:443", "is not an IP address"},
		{"cidr:10.1.2.0", "missing /bits"},
		{"cidr:10.1.2.0:443", "missing /bits"},
		{"cidr:10.1.2.3/24", "host bits set (did you mean 10.1.2.0/24?)"},
		{"cidr:10.1.2.0/33", "bad CIDR"},
		{"cidr:example.com/24", "bad CIDR"},
		{"cidr:10.1.2.0/24:0", "port 0"},
		{"cidr:10.1.2.0/24:x", "is not a number"},
		{"cidr:[fd00::/8", "missing ']'"},
		{"cidr:[fd00::/8]443", "unexpected"},
		{"cidr:[fe80::1%eth0/128]", "bad CIDR"},
		{"cidr:", "missing /bits"},
	} {
		_, err := ParseAllowlist([]string{"ok.example.com", tc.in})
		if err == nil {
			t.Errorf("ParseAllowlist(%q): no error, want %q", tc.in, tc.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, `"`+tc.in+`"`) || !strings.HasPrefix(msg, "egress: ") {
			t.Errorf("ParseAllowlist(%q) = %q, want it to name the entry and say %q", tc.in, msg, tc.want)
		}
	}
}

// Every way of writing "loopback" but localhost:PORT is refused, and says
// what to write instead: in the sandbox, loopback is its own.
func TestParseAllowlistLoopback(t *testing.T) {
	const own = "in the sandbox is the sandbox's own loopback, not this machine's; to reach a service on this machine's loopback write localhost:"
	const cidrOwn = "is loopback only: in the sandbox that is its own, and a cidr: grant never reaches this machine's; to reach a service on this machine's loopback write localhost:"
	for _, tc := range []struct {
		in, want string
	}{
		// localhost itself: one port, named.
		{"localhost", "localhost needs a port: localhost:PORT lets the sandbox reach port PORT of this machine's loopback"},
		{"LOCALHOST.", "localhost needs a port"},
		{"localhost:*", "localhost:* would open every service on this machine's loopback: grant one port per service"},
		{"localhost:53", "port 53 of the sandbox's loopback is mcpbox's DNS stub"},
		// Addresses that mean "this machine", in every notation.
		{"127.0.0.1:5432", "127.0.0.1 " + own + "5432 and have the server connect to localhost"},
		{"127.0.0.2:5432", "127.0.0.2 " + own + "5432"},
		{"127.0.0.1", "127.0.0.1 " + own + "PORT"},
		{"127.0.0.1:*", "127.0.0.1 " + own + "PORT"},
		{"127.0.0.1.:5432", own + "5432"},
		{"[::1]:5432", "::1 " + own + "5432"},
		{"::1", "::1 " + own + "PORT"},
		{"0.0.0.0:5432", "0.0.0.0 " + own + "5432"},
		{"[::]:5432", ":: " + own + "5432"},
		{"::", ":: " + own + "PORT"},
		{"[::ffff:127.0.0.1]:5432", "::ffff:127.0.0.1 " + own + "5432"},
		{"[::ffff:0.0.0.0]:5432", own + "5432"},
		{"[::1%lo]:5432", own + "5432"},
		{"2130706433:5432", "2130706433 (the IPv4 address 127.0.0.1 in numeric form) " + own + "5432"},
		{"0x7f000001:5432", "(the IPv4 address 127.0.0.1 in numeric form) " + own + "5432"},
		{"017700000001:5432", "(the IPv4 address 127.0.0.1 in numeric form)"},
		{"127.1:5432", "(the IPv4 address 127.0.0.1 in numeric form) " + own + "5432"},
		{"0:5432", "(the IPv4 address 0.0.0.0 in numeric form) " + own + "5432"},
		// cidr: grants that hold nothing but loopback.
		{"cidr:127.0.0.0/8", "127.0.0.0/8 " + cidrOwn + "PORT"},
		{"cidr:127.0.0.1/32:5432", "127.0.0.1/32 " + cidrOwn + "5432"},
		{"cidr:127.1.0.0/16:*", cidrOwn + "PORT"},
		{"cidr:::1/128", "::1/128 " + cidrOwn + "PORT"},
		{"cidr:[::1/128]:5432", cidrOwn + "5432"},
		{"cidr:0.0.0.0/32:80", cidrOwn + "80"},
		{"cidr:[::/128]", cidrOwn + "PORT"},
		{"cidr:[::ffff:127.0.0.1/128]:5432", cidrOwn + "5432"},
		{"cidr:[::ffff:127.0.0.0/104]:*", cidrOwn + "PORT"},
		// Names that can only be loopback, or the host as a container
		// runtime names it.
		{"foo.localhost:5432", "names under .localhost are loopback (RFC 6761)"},
		{"*.localhost:5432", "names under .localhost are loopback"},
		{"LOCALHOST.localdomain:5432", "localhost.localdomain is a name for loopback"},
		{"ip6-localhost:5432", "ip6-localhost is a name for loopback"},
		{"ip6-loopback", "ip6-loopback is a name for loopback"},
		{"host.docker.internal:5432", "host.docker.internal is how a container runtime names the host; mcpbox's sandbox has no such name; to reach a service on this machine's loopback write localhost:5432"},
		{"gateway.docker.internal:11434", "write localhost:11434"},
		{"host.containers.internal:6379", "host.containers.internal is how a container runtime names the host"},
		{"host.lima.internal", "write localhost:PORT"},
	} {
		_, err := ParseAllowlist([]string{"ok.example.com", tc.in})
		if err == nil {
			t.Errorf("ParseAllowlist(%q): no error, want %q", tc.in, tc.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, `"`+tc.in+`"`) || !strings.HasPrefix(msg, "egress: ") {
			t.Errorf("ParseAllowlist(%q) = %q, want it to name the entry and say %q", tc.in, msg, tc.want)
		}
	}
}

func TestHostLoopbackEntries(t *testing.T) {
	a, err := ParseAllowlist([]string{"localhost:5432", "Localhost.:11434", "localhost:5432", "api.example.com:5432"})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.String(); got != "localhost:5432,localhost:11434,localhost:5432,api.example.com:5432" {
		t.Errorf("String() = %q", got)
	}
	if got := a.HostLoopbackPorts(); !slices.Equal(got, []uint16{5432, 11434}) {
		t.Errorf("HostLoopbackPorts() = %v", got)
	}
	for port, want := range map[int]bool{5432: true, 11434: true, 5433: false, 443: false, AnyPort: false} {
		if got := a.HostLoopback(port); got != want {
			t.Errorf("HostLoopback(%d) = %v, want %v", port, got, want)
		}
	}
	// It is no name grant (the DNS stub does not answer for localhost) and
	// no address grant (a name resolving to loopback stays refused).
	if a.AllowsName("localhost", 5432) || a.AllowsNameAnyPort("localhost") {
		t.Error("localhost:5432 allows the name localhost")
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if a.AllowsAddr(netip.MustParseAddr(ip), 5432) {
			t.Errorf("AllowsAddr(%s, 5432) = true", ip)
		}
		if ok, _ := permitted(a, netip.MustParseAddr(ip), 5432); ok {
			t.Errorf("a name resolving to %s is permitted on 5432", ip)
		}
	}
	for _, tc := range []struct {
		ap   string
		want bool
	}{
		{"127.0.0.1:5432", true}, {"[::1]:5432", true}, {"[::1]:11434", true},
		{"127.0.0.1:5433", false}, {"127.0.0.2:5432", false}, {"[::ffff:127.0.0.1]:5432", false}, {"0.0.0.0:5432", false},
	} {
		if got := a.isHostLoopbackTarget(netip.MustParseAddrPort(tc.ap)); got != tc.want {
			t.Errorf("isHostLoopbackTarget(%s) = %v, want %v", tc.ap, got, tc.want)
		}
	}
	var none *Allowlist
	if none.HostLoopback(5432) || none.HostLoopbackPorts() != nil {
		t.Error("a nil allowlist grants the host's loopback")
	}
}

func TestTrusting(t *testing.T) {
	a, err := ParseAllowlist([]string{"registry.test:4873"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.Trusting(netip.MustParseAddrPort("127.0.0.2:4873"), netip.MustParseAddrPort("[::ffff:10.1.1.1]:4873"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip   string
		port int
		want bool
	}{
		{"127.0.0.2", 4873, true},
		{"10.1.1.1", 4873, true}, // stored unmapped
		{"127.0.0.2", 4874, false},
		{"127.0.0.1", 4873, false},
	} {
		if got, _ := permitted(b, netip.MustParseAddr(tc.ip), tc.port); got != tc.want {
			t.Errorf("permitted(%s, %d) = %v, want %v", tc.ip, tc.port, got, tc.want)
		}
		// A trusted address is for names only: a connection to the bare
		// address has no grant.
		if b.AllowsAddr(netip.MustParseAddr(tc.ip), tc.port) {
			t.Errorf("AllowsAddr(%s, %d) = true", tc.ip, tc.port)
		}
	}
	if ok, _ := permitted(a, netip.MustParseAddr("127.0.0.2"), 4873); ok {
		t.Error("Trusting changed the allowlist it was called on")
	}
	if _, err := a.Trusting(netip.MustParseAddrPort("127.0.0.2:0")); err == nil {
		t.Error("a trusted address without a port was accepted")
	}
}

// A name the host's hosts file maps only to loopback is refused before
// the server starts: the proxy would refuse every connection to it.
func TestCheckHostsFile(t *testing.T) {
	hosts := []byte(`# comment
127.0.0.1	localhost
127.0.1.1	myhost.example	myhost
::1     localhost ip6-localhost ip6-loopback
127.0.0.1 db.test   # a local database
0.0.0.0 blocked.test
10.0.0.5 nas.test
127.0.0.1 both.test
192.0.2.7 both.test
`)
	for _, tc := range []struct {
		entry, want string
	}{
		{"db.test:5432", `egress: allowlist entry "db.test:5432": db.test is 127.0.0.1 in /etc/hosts, this machine's loopback, which the proxy never connects to for a name; write localhost:5432 instead`},
		{"DB.test.:5432", "db.test is 127.0.0.1 in /etc/hosts"},
		{"myhost:80", "myhost is 127.0.1.1 in /etc/hosts"},
		{"blocked.test:*", "blocked.test is 0.0.0.0 in /etc/hosts, this machine's loopback, which the proxy never connects to for a name; write localhost:PORT"},
		{"nas.test:445", ""},   // private: a cidr: grant can open it
		{"both.test:443", ""},  // the other address can be used
		{"*.db.test:5432", ""}, // other names under it may be fine
		{"api.test:443", ""},   // not in the file
		{"localhost:5432", ""}, // the grant of the host's loopback
	} {
		a, err := ParseAllowlist([]string{tc.entry})
		if err != nil {
			t.Fatal(err)
		}
		err = a.CheckHostsFile("/etc/hosts", hosts)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckHostsFile(%s) = %v, want %q", tc.entry, err, tc.want)
		}
	}
	var none *Allowlist
	if err := none.CheckHostsFile("/etc/hosts", hosts); err != nil {
		t.Error(err)
	}
}

func TestAllowsName(t *testing.T) {
	a, err := ParseAllowlist([]string{
		"api.example.com",
		"alt.example.com:8443",
		"any.example.com:*",
		"*.cdn.example.net",
		"*.svc.example.org:*",
		"cidr:10.0.0.0/8:*",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		port int
		want bool
	}{
		{"api.example.com", 443, true},
		{"API.EXAMPLE.COM.", 443, true},
		{"api.example.com", 80, false},
		{"example.com", 443, false},
		{"x.api.example.com", 443, false},
		{"api.example.com.evil.test", 443, false},
		{"alt.example.com", 8443, true},
		{"alt.example.com", 443, false},
		{"any.example.com", 1, true},
		{"any.example.com", 65535, true},
		{"a.cdn.example.net", 443, true},
		{"a.b.c.cdn.example.net", 443, true},
		{"cdn.example.net", 443, false}, // never the apex
		{"xcdn.example.net", 443, false},
		{"a.cdn.example.net", 80, false},
		{"a.svc.example.org", 5432, true},
		{"svc.example.org", 5432, false},
		{"10.1.2.3", 443, false}, // addresses never match names
		{"2852039166", 443, false},
		{"", 443, false},
		{"a..cdn.example.net", 443, false},
	} {
		if got := a.AllowsName(tc.host, tc.port); got != tc.want {
			t.Errorf("AllowsName(%q, %d) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
	for host, want := range map[string]bool{
		"api.example.com": true, "alt.example.com": true, "q.cdn.example.net": true,
		"cdn.example.net": false, "other.example.com": false,
	} {
		if got := a.AllowsNameAnyPort(host); got != want {
			t.Errorf("AllowsNameAnyPort(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestAllowsAddr(t *testing.T) {
	a, err := ParseAllowlist([]string{
		"cidr:10.1.2.0/24",
		"cidr:0.0.0.0/0:8080",
		"cidr:[fd00::/8]:*",
		"cidr:[::/0]:8080",
		"api.example.com:*",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip   string
		port int
		want bool
	}{
		{"10.1.2.3", 443, true},
		{"10.1.2.3", 80, false},
		{"10.1.3.3", 443, false},
		{"8.8.8.8", 8080, true},
		{"8.8.8.8", 443, false},
		// A range never covers loopback or the unspecified address.
		{"127.0.0.1", 8080, false},
		{"127.255.0.1", 8080, false},
		{"0.0.0.0", 8080, false},
		{"::1", 8080, false},
		{"::", 8080, false},
		{"::ffff:127.0.0.1", 8080, false},
		{"fd00:ec2::254", 80, true},
		{"fe80::1", 80, false},
		{"::ffff:10.1.2.3", 443, false}, // a v4 grant does not cover the mapped form
		{"93.184.216.34", 443, false},   // host entries never grant addresses
	} {
		if got := a.AllowsAddr(netip.MustParseAddr(tc.ip), tc.port); got != tc.want {
			t.Errorf("AllowsAddr(%s, %d) = %v, want %v", tc.ip, tc.port, got, tc.want)
		}
	}
	if a.AllowsAddr(netip.Addr{}, 443) {
		t.Error("AllowsAddr(invalid) = true")
	}
}

func TestEmptyAndNil(t *testing.T) {
	var nilList *Allowlist
	if !nilList.Empty() || nilList.AllowsName("a.example", 443) || nilList.AllowsAddr(netip.MustParseAddr("1.1.1.1"), 443) || nilList.String() != "" {
		t.Error("a nil allowlist must allow nothing")
	}
	a, err := ParseAllowlist(nil)
	if err != nil || !a.Empty() {
		t.Fatalf("ParseAllowlist(nil) = %v, %v", a, err)
	}
	a, _ = ParseAllowlist([]string{"a.example"})
	if a.Empty() {
		t.Error("Empty() = true for one entry")
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	for in, want := range map[string]string{
		"2852039166":          "169.254.169.254",
		"0xa9fea9fe":          "169.254.169.254",
		"0XA9FEA9FE":          "169.254.169.254",
		"0251.0376.0251.0376": "169.254.169.254",
		"169.254.43518":       "169.254.169.254",
		"169.16689662":        "169.254.169.254",
		"127.1":               "127.0.0.1",
		"0":                   "0.0.0.0",
		"1.2.3.4":             "1.2.3.4",
	} {
		got, ok := parseLegacyIPv4(in)
		if !ok || got.String() != want {
			t.Errorf("parseLegacyIPv4(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"1.2.3.4.5", "256.1.1.1", "1.2.3.256", "4294967296", "0x", "08", "a.b", "example.com", "1.2.3.x", "1.16777216"} {
		if got, ok := parseLegacyIPv4(in); ok {
			t.Errorf("parseLegacyIPv4(%q) = %v, want no address", in, got)
		}
	}
}
