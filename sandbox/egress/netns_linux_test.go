package egress

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestNetNSRedirects checks the namespace and its nftables rules from
// sockets inside it. The namespace has only a loopback interface, so even a
// rule that failed open could not send anything off the machine.
func TestNetNSRedirects(t *testing.T) {
	testutil.RequiresRoot(t)
	ns, err := NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if _, err := os.Stat(ns.Path()); err != nil {
		t.Fatalf("namespace path: %v", err)
	}

	var proxy4, proxy6, local net.Listener
	var dns net.PacketConn
	err = ns.Do(func() (err error) {
		if proxy4, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return err
		}
		port := strconv.Itoa(proxy4.Addr().(*net.TCPAddr).Port)
		if proxy6, err = net.Listen("tcp6", "[::1]:"+port); err != nil {
			return err
		}
		if local, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return err
		}
		dns, err = net.ListenPacket("udp4", "127.0.0.1:53")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { proxy4.Close(); proxy6.Close(); local.Close(); dns.Close() }()
	if err := ns.Install(uint16(proxy4.Addr().(*net.TCPAddr).Port)); err != nil {
		t.Fatal(err)
	}

	// dialIn connects from inside the namespace.
	dialIn := func(network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() (err error) {
			c, err = net.DialTimeout(network, addr, 2*time.Second)
			return err
		})
		return c, err
	}

	t.Run("TCP to any address reaches the proxy with its original destination", func(t *testing.T) {
		for _, tc := range []struct {
			l    net.Listener
			dst  string
			want string
		}{
			{proxy4, "192.0.2.10:443", "192.0.2.10:443"},
			{proxy4, "169.254.169.254:80", "169.254.169.254:80"},
			{proxy6, "[2001:db8::1]:8443", "[2001:db8::1]:8443"},
		} {
			c, err := dialIn("tcp", tc.dst)
			if err != nil {
				t.Fatalf("dial %s: %v", tc.dst, err)
			}
			s, err := tc.l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			if tc.l == proxy4 {
				got, err := originalDst4(s.(*net.TCPConn))
				if err != nil || got.String() != tc.want {
					t.Errorf("original destination of %s = %v, %v", tc.dst, got, err)
				}
			}
			// Bytes flow both ways, and the proxy's close reaches the
			// client.
			s.Write([]byte("from proxy"))
			s.Close()
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if b, err := io.ReadAll(c); err != nil || string(b) != "from proxy" {
				t.Errorf("client of %s read %q, %v; want the proxy's bytes, then EOF", tc.dst, b, err)
			}
			c.Close()
		}
	})

	t.Run("loopback inside the sandbox is left alone", func(t *testing.T) {
		c, err := dialIn("tcp", local.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := local.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})

	t.Run("DNS to any resolver reaches the stub", func(t *testing.T) {
		c, err := dialIn("udp4", "198.51.100.53:53")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("query"))
		dns.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		n, _, err := dns.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "query" {
			t.Errorf("stub got %q, %v", buf[:n], err)
		}
	})

	t.Run("other UDP and ICMP are refused at once", func(t *testing.T) {
		c, err := dialIn("udp4", "198.51.100.1:123")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("ntp?")); !errors.Is(err, syscall.EPERM) {
			t.Errorf("UDP to an outside address: %v, want EPERM", err)
		}
		err = ns.Do(func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			echo := []byte{8, 0, 0xf7, 0xff, 0, 0, 0, 0} // type 8, checksum of an empty echo
			return unix.Sendto(fd, echo, 0, &unix.SockaddrInet4{Addr: [4]byte{198, 51, 100, 1}})
		})
		if !errors.Is(err, syscall.EPERM) {
			t.Errorf("ICMP echo to an outside address: %v, want EPERM", err)
		}
	})

	t.Run("Close takes the thread out of the namespace", func(t *testing.T) {
		var before, after unix.Stat_t
		if err := unix.Stat(ns.Path(), &before); err != nil {
			t.Fatal(err)
		}
		path := ns.Path()
		ns.Close()
		// The thread may be back in the runtime's pool (same path, the
		// original namespace) or retired (path gone): never still inside.
		if err := unix.Stat(path, &after); err == nil && after.Ino == before.Ino {
			t.Errorf("%s still refers to the sandbox namespace after Close", path)
		}
		if err := ns.Do(func() error { return nil }); err == nil {
			t.Errorf("Do after Close succeeded")
		}
	})
}

// originalDst4 reads SO_ORIGINAL_DST from a redirected IPv4 connection
// (a sockaddr_in, read through the 16-byte IPv6Mreq getter).
func originalDst4(c *net.TCPConn) (netip.AddrPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ap netip.AddrPort
	var serr error
	raw.Control(func(fd uintptr) {
		var sa *unix.IPv6Mreq
		if sa, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST); serr == nil {
			b := sa.Multiaddr
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4]))
		}
	})
	return ap, serr
}

// With a localhost:PORT grant, the sandbox's 127.0.0.1:PORT and
// [::1]:PORT (and 0.0.0.0:PORT, which the kernel sends to loopback) reach
// the proxy with that original destination; every other loopback port and
// address stays the sandbox's own.
func TestNetNSHostLoopbackRedirect(t *testing.T) {
	testutil.RequiresRoot(t)
	ns, err := NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var proxy4, proxy6, own, own2 net.Listener
	var granted, other int
	err = ns.Do(func() (err error) {
		if proxy4, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return err
		}
		port := strconv.Itoa(proxy4.Addr().(*net.TCPAddr).Port)
		if proxy6, err = net.Listen("tcp6", "[::1]:"+port); err != nil {
			return err
		}
		// The sandbox's own services: one on another port, one on the
		// granted port of another loopback address.
		if own, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return err
		}
		other = own.Addr().(*net.TCPAddr).Port
		if own2, err = net.Listen("tcp4", "127.0.0.2:0"); err != nil {
			return err
		}
		granted = own2.Addr().(*net.TCPAddr).Port
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { proxy4.Close(); proxy6.Close(); own.Close(); own2.Close() }()
	if err := ns.Install(uint16(proxy4.Addr().(*net.TCPAddr).Port), uint16(granted)); err != nil {
		t.Fatal(err)
	}
	dialIn := func(addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", addr, 2*time.Second)
			return err
		})
		return c, err
	}
	for _, tc := range []struct {
		dst  string
		l    net.Listener
		orig string // "" for a listener that is no proxy
	}{
		{"127.0.0.1:" + strconv.Itoa(granted), proxy4, "127.0.0.1:" + strconv.Itoa(granted)},
		{"0.0.0.0:" + strconv.Itoa(granted), proxy4, "127.0.0.1:" + strconv.Itoa(granted)},
		{"[::1]:" + strconv.Itoa(granted), proxy6, "[::1]:" + strconv.Itoa(granted)},
		{"127.0.0.1:" + strconv.Itoa(other), own, ""},
		{"127.0.0.2:" + strconv.Itoa(granted), own2, ""},
	} {
		c, err := dialIn(tc.dst)
		if err != nil {
			t.Errorf("dial %s: %v", tc.dst, err)
			continue
		}
		s, err := tc.l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if tc.orig != "" {
			got, err := originalDst(s)
			if err != nil || got.String() != tc.orig {
				t.Errorf("%s reached the proxy with original destination %v, %v; want %s", tc.dst, got, err, tc.orig)
			}
		}
		s.Close()
		c.Close()
	}
}
