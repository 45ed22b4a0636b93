package egress

import (
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// Both benchmarks compare the proxy with a direct loopback connection to
// the same upstream in the same run and report the ratio; absolute numbers
// are context only.

const benchDownload = 100 << 20 // bytes per download

// BenchmarkProxyThroughput downloads 100 MB from a loopback upstream,
// directly and through the proxy (transparent mode, fake DNS address).
func BenchmarkProxyThroughput(b *testing.B) {
	chunk := make([]byte, 1<<20)
	up := tcpUpstream(b, "127.0.0.4", func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			return
		}
		for sent := 0; sent < benchDownload; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	tp := newTestProxy(b, []string{fmt.Sprintf("bulk.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.4:%d", up.port)}, nil)
	tp.res.set("bulk.test", "127.0.0.4")
	tp.redirectTo("bulk.test", up.port)

	buf := make([]byte, 256<<10)
	download := func(addr string) time.Duration {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		// A byte no request line starts with: the proxy knows at once
		// that this is not HTTP (a lone word character could still become
		// a method, and would be held until it is one or is not).
		if _, err := c.Write([]byte("\x00")); err != nil {
			b.Fatal(err)
		}
		var n int
		for {
			m, err := c.Read(buf)
			n += m
			if err != nil {
				break
			}
		}
		if n != benchDownload {
			b.Fatalf("downloaded %d bytes, want %d", n, benchDownload)
		}
		return time.Since(start)
	}
	var direct, proxied time.Duration
	b.ResetTimer()
	for range b.N {
		direct += download(up.addr.String())
		proxied += download(tp.addr)
	}
	mb := float64(b.N) * benchDownload / 1e6
	b.ReportMetric(mb/direct.Seconds(), "direct_MB/s")
	b.ReportMetric(mb/proxied.Seconds(), "proxy_MB/s")
	b.ReportMetric(direct.Seconds()/proxied.Seconds(), "proxy/direct")
}

// BenchmarkConnectLatency measures connection setup to an echo upstream,
// directly and through the proxy: connect, send one byte, get it back,
// see the upstream close. Through the proxy that includes the accept, the
// policy checks, the (fake) lookup, sniffing the first byte and dialling.
func BenchmarkConnectLatency(b *testing.B) {
	up := tcpUpstream(b, "127.0.0.4", echo)
	tp := newTestProxy(b, []string{fmt.Sprintf("echo.test:%d", up.port), fmt.Sprintf("trusted:127.0.0.4:%d", up.port)}, nil)
	tp.res.set("echo.test", "127.0.0.4")
	tp.redirectTo("echo.test", up.port)

	one := make([]byte, 1)
	roundTrip := func(addr string) time.Duration {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil {
			b.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		if _, err := io.ReadFull(c, one); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(one); err != io.EOF {
			b.Fatalf("want EOF, got %v", err)
		}
		return time.Since(start)
	}
	direct := make([]time.Duration, 0, b.N)
	proxied := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		direct = append(direct, roundTrip(up.addr.String()))
		proxied = append(proxied, roundTrip(tp.addr))
	}
	b.StopTimer()
	slices.Sort(direct)
	slices.Sort(proxied)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds())
	}
	b.ReportMetric(pct(direct, 0.50), "direct_p50_µs")
	b.ReportMetric(pct(direct, 0.99), "direct_p99_µs")
	b.ReportMetric(pct(proxied, 0.50), "proxy_p50_µs")
	b.ReportMetric(pct(proxied, 0.99), "proxy_p99_µs")
	b.ReportMetric(pct(proxied, 0.50)/max(pct(direct, 0.50), 1), "p50_ratio")
	b.ReportMetric(pct(proxied, 0.99)/max(pct(direct, 0.99), 1), "p99_ratio")
}
