package egress

import (
	"net/netip"
	"strings"
	"testing"
)

func TestForbidden(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		reason string // "" = allowed
	}{
		// IPv4
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "this network"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.254", "carrier-grade NAT"},
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"169.254.169.254", "link-local (cloud metadata service)"},
		{"169.254.0.1", "link-local"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.0.0.8", "IETF protocol assignments"},
		{"192.0.2.1", "documentation"},
		{"192.88.99.1", "6to4 relay"},
		{"192.168.1.1", "private"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.254", "benchmarking"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.251", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},
		// IPv6
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"::ffff:169.254.169.254", "IPv4-mapped IPv6 address (169.254.169.254: link-local (cloud metadata service))"},
		{"::ffff:127.0.0.1", "IPv4-mapped IPv6 address (127.0.0.1: loopback)"},
		{"::ffff:8.8.8.8", "IPv4-mapped IPv6 address (connect to 8.8.8.8 instead)"},
		{"64:ff9b::a9fe:a9fe", "NAT64"},
		{"64:ff9b::808:808", "NAT64"},
		{"64:ff9b:1::1", "local-use NAT64"},
		{"100::1", "discard-only"},
		{"2001::1", "Teredo"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"2001:2::1", "IETF protocol assignments"},
		{"2001:db8::1", "documentation"},
		{"2002:a9fe:a9fe::1", "6to4"},
		{"3fff::1", "documentation"},
		{"fd00:ec2::254", "unique local (cloud metadata service)"},
		{"fd12:3456::1", "unique local"},
		{"fc00::1", "unique local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},
		{"4000::1", "outside IPv6 global unicast"},
		// public
		{"1.1.1.1", ""},
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.32.0.1", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.255", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:80b::200e", ""},
		{"2001:4860:4860::8888", ""},
	} {
		ip := netip.MustParseAddr(tc.ip)
		bad, why := Forbidden(ip)
		if tc.reason == "" {
			if bad {
				t.Errorf("Forbidden(%s) = true, %q; want allowed", tc.ip, why)
			}
			continue
		}
		if !bad || !strings.Contains(why, tc.reason) {
			t.Errorf("Forbidden(%s) = %v, %q; want true, %q", tc.ip, bad, why, tc.reason)
		}
	}
	if bad, _ := Forbidden(netip.Addr{}); !bad {
		t.Error("Forbidden(invalid) = false")
	}
}

// The metadata address written the ways a client's inet_aton would accept
// is still 169.254.169.254, which is forbidden; as a host entry it is
// refused (allowlist tests) and as a connection target it is an address,
// never a name (proxy tests).
func TestForbiddenMetadataNotations(t *testing.T) {
	for _, s := range []string{"2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518"} {
		if _, err := netip.ParseAddr(s); err == nil {
			t.Fatalf("netip parses %q; the test assumes it does not", s)
		}
		ip, ok := parseLegacyIPv4(s)
		if !ok {
			t.Fatalf("parseLegacyIPv4(%q) failed", s)
		}
		if bad, why := Forbidden(ip); !bad || !strings.Contains(why, "metadata") {
			t.Errorf("%s = %s: Forbidden = %v, %q", s, ip, bad, why)
		}
	}
}

func TestPermitted(t *testing.T) {
	a, err := ParseAllowlist([]string{"cidr:10.0.0.0/8:8080", "cidr:[::ffff:0:0/96]:*", "cidr:0.0.0.0/0:9090"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip   string
		port int
		want bool
	}{
		{"10.0.0.1", 8080, true},        // granted
		{"10.0.0.1", 8081, false},       // grant is per port
		{"127.0.0.1", 9090, false},      // no grant reaches loopback...
		{"::ffff:127.0.0.1", 80, false}, // ...nor mapped loopback
		{"::ffff:0.0.0.0", 80, false},   // ...nor the unspecified address
		{"10.0.0.1", 9090, true},        // the rest of the wide range holds
		{"169.254.169.254", 80, false},
		{"8.8.8.8", 443, true},               // public
		{"::ffff:169.254.169.254", 80, true}, // explicitly granted mapped range
	} {
		if got, why := permitted(a, netip.MustParseAddr(tc.ip), tc.port); got != tc.want {
			t.Errorf("permitted(%s, %d) = %v (%s), want %v", tc.ip, tc.port, got, why, tc.want)
		}
	}
}
