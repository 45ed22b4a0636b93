//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const netCat = "network"

const netTimeout = 2 * time.Second

func networkProbes() []probe {
	return []probe{
		{name: "network/connect-metadata", category: netCat, tried: "TCP connect to 169.254.169.254:80 (cloud metadata) and send an HTTP request",
			run: connectProbe("169.254.169.254:80")},
		{name: "network/connect-internet", category: netCat, tried: "TCP connect to 1.1.1.1:443 and send an HTTP request",
			run: connectProbe("1.1.1.1:443")},
		{name: "network/connect-private", category: netCat, tried: "TCP connect to 10.0.0.1:80 and send an HTTP request",
			run: connectProbe("10.0.0.1:80")},
		{name: "network/dns-random", category: netCat, tried: "resolve a random name under .example with the resolver in /etc/resolv.conf",
			run: probeDNS},
		{name: "network/interfaces-lo-only", category: netCat, tried: "list network interfaces; only lo may exist",
			run: probeInterfaces},
	}
}

// tryTCP connects to addr and reports whether the connection reached a real
// server. A refused or unreachable connect passes; so does a connection that
// mcpbox's egress proxy accepts (it redirects all TCP) and then closes or
// answers with 403. Real data from the other end fails.
func tryTCP(ctx context.Context, addr string) result {
	ctx, cancel := context.WithTimeout(ctx, netTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		r := denied(err, "connect failed: "+err.Error())
		if r.Errno == "" && errors.Is(err, context.DeadlineExceeded) {
			r.Errno = "ETIMEDOUT"
		}
		return r
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(netTimeout))
	host, port, _ := net.SplitHostPort(addr)
	if port == "443" {
		return tryTLS(c, host)
	}
	_, _ = fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\nUser-Agent: mcpbox-probe\r\n\r\n", host)
	buf := make([]byte, 512)
	n, rerr := io.ReadAtLeast(c, buf, 1)
	got := buf[:n]
	switch {
	case n == 0 && (errors.Is(rerr, io.EOF) || errnoIs(rerr, unix.ECONNRESET)):
		return pass(outcomeDenied, "connected (to the egress proxy, presumably) but it closed the connection without data")
	case n == 0 && errors.Is(rerr, os.ErrDeadlineExceeded):
		return fail(outcomeAllowed, "connected and the connection stayed open without an answer")
	case n == 0:
		r := pass(outcomeDenied, fmt.Sprintf("connected, then the read failed: %v", rerr))
		r.Errno = errnoName(rerr)
		return r
	case isProxyRefusal(got):
		return pass(outcomeDenied, "connected to the egress proxy, which refused: "+firstLine(got))
	default:
		return fail(outcomeAllowed, fmt.Sprintf("connected and received %d bytes: %q", n, firstLine(got)))
	}
}

// tryTLS completes a TLS handshake on c: a real server completes it; the
// egress proxy closes the connection or sends an alert.
func tryTLS(c net.Conn, host string) result {
	tc := tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: true}) //nolint:gosec // only checks that something answers
	err := tc.Handshake()
	switch {
	case err == nil:
		st := tc.ConnectionState()
		subject := ""
		if len(st.PeerCertificates) > 0 {
			subject = st.PeerCertificates[0].Subject.String()
		}
		return fail(outcomeAllowed, "connected and completed a TLS handshake with "+subject)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fail(outcomeAllowed, "connected and the connection stayed open without a TLS answer")
	default:
		r := pass(outcomeDenied, fmt.Sprintf("connected (to the egress proxy, presumably) but the TLS handshake failed: %v", err))
		r.Errno = errnoName(err)
		return r
	}
}

// isProxyRefusal reports whether data is an HTTP 403 status line.
func isProxyRefusal(data []byte) bool {
	line := firstLine(data)
	f := strings.Fields(line)
	return len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") && f[1] == "403"
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.TrimSpace(string(line))
}

func connectProbe(addr string) func(*env) result {
	return func(e *env) result { return tryTCP(e.ctx, addr) }
}

// sinkhole is where a DNS stub may answer every name with a fake address
// that leads nowhere (RFC 2544 benchmarking range).
var sinkhole = netip.MustParsePrefix("198.18.0.0/15")

func nameservers() []string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			ns = append(ns, fields[1])
		}
	}
	return ns
}

func probeDNS(e *env) result {
	name := "probe-" + randSuffix() + ".example"
	servers := nameservers()
	ctx, cancel := context.WithTimeout(e.ctx, netTimeout)
	defer cancel()
	// The pure Go resolver reads /etc/resolv.conf itself.
	r := net.Resolver{PreferGo: true}
	addrs, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil || len(addrs) == 0 {
		res := pass(outcomeDenied, fmt.Sprintf("%s did not resolve (nameservers %v): %v", name, servers, err))
		res.Errno = errnoName(err)
		return res
	}
	var real []string
	for _, a := range addrs {
		if !sinkhole.Contains(a.Unmap()) {
			real = append(real, a.String())
		}
	}
	if len(real) > 0 {
		return fail(outcomeAllowed, fmt.Sprintf("%s resolved to %s", name, strings.Join(real, ", ")))
	}
	for _, a := range addrs {
		r := tryTCP(e.ctx, net.JoinHostPort(a.String(), "80"))
		if !r.Pass {
			return fail(outcomeAllowed, fmt.Sprintf("%s resolved to the sinkhole address %s, which then answered: %s", name, a, r.Detail))
		}
	}
	return pass(outcomeDenied, fmt.Sprintf("%s resolved only to sinkhole addresses %v, which refused", name, addrs))
}

func probeInterfaces(*env) result {
	ifs, err := net.Interfaces()
	if err != nil {
		return errored(err.Error())
	}
	var names, extra []string
	for _, i := range ifs {
		names = append(names, i.Name)
		if i.Flags&net.FlagLoopback == 0 {
			extra = append(extra, i.Name)
		}
	}
	if len(extra) > 0 {
		return fail(outcomeAllowed, "interfaces besides loopback: "+strings.Join(extra, ", "))
	}
	return pass(outcomeDenied, "interfaces: "+strings.Join(names, ", "))
}
