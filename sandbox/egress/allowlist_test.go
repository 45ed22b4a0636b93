package egress

import (
	"net/netip"
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
		{"localhost", "localhost:443"},
		{"a-b.c_d.example", "a-b.c_d.example:443"},
		{"cidr:10.1.2.0/24", "cidr:10.1.2.0/24:443"},
		{"cidr:10.1.2.0/24:5432", "cidr:10.1.2.0/24:5432"},
		{"CIDR:10.1.2.0/24:*", "cidr:10.1.2.0/24:*"},
		{"cidr:[fd00::/8]:443", "cidr:[fd00::/8]:443"},
		{"cidr:[fd00::/8]", "cidr:[fd00::/8]:443"},
		{"cidr:::1/128", "cidr:[::1/128]:443"},
		{"cidr:::1/128:8080", "cidr:[::1/128]:8080"},
		{"cidr:[::/0]:*", "cidr:[::/0]:*"},
		{"cidr:127.0.0.1/32:65535", "cidr:127.0.0.1/32:65535"},
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
		{"127.1", "is the IPv4 address 127.0.0.1"},
		{"::1", "IP literal as host"},
		{"[::1]:443", "IP literal as host"},
		{"fd00:ec2::254", "IP literal as host"},
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
		"cidr:127.0.0.0/8:8080",
		"cidr:[fd00::/8]:*",
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
		{"127.0.0.1", 8080, true},
		{"127.0.0.1", 443, false},
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
