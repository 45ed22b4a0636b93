package egress

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
)

// Network is one sandbox's way out while it runs: its network namespace,
// with the proxy and the DNS stub listening inside it and the redirect
// rules that send them all TCP and DNS. Start makes it; Close ends it.
type Network struct {
	ns      *NetNS
	proxy   *Proxy
	port    int
	closers []io.Closer
	serving sync.WaitGroup // the Serve loops
}

// listeners are the sockets Start opens inside the namespace: the proxy
// on 127.0.0.1 and [::1] (one port), the DNS stub on port 53 of both, over
// UDP and TCP.
type listeners struct {
	tcp    []net.Listener
	udp    []net.PacketConn
	dnsTCP []net.Listener
}

// Start creates a sandbox's network namespace, opens the proxy's and the
// DNS stub's sockets inside it, installs the redirect rules and starts
// serving. allow is what the sandbox may reach; nil allows nothing, every
// attempt still being decided and reported. events receives each decision
// as a value, from many goroutines at once (see Options.Events); nil drops
// them. log gets the proxy's log lines (nil discards them).
//
// Any failure undoes everything: a sandbox must not start with egress half
// set up.
func Start(allow *Allowlist, events func(Event), log *slog.Logger) (_ *Network, err error) {
	ns, err := NewNetNS()
	if err != nil {
		return nil, err
	}
	n := &Network{ns: ns}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	ls, err := n.listen()
	if err != nil {
		return nil, fmt.Errorf("egress: listeners in the sandbox's network namespace: %w", err)
	}
	if err := ns.Install(uint16(n.port), allow.HostLoopbackPorts()...); err != nil {
		return nil, err
	}
	var own []netip.AddrPort
	for _, l := range ls.tcp {
		own = append(own, l.Addr().(*net.TCPAddr).AddrPort())
	}
	n.proxy, err = New(Options{Allow: allow, ListenAddrs: own, Events: events, Logger: log})
	if err != nil {
		return nil, err
	}
	n.serve(ls)
	return n, nil
}

// listen opens the sockets inside the namespace. Every socket it opened is
// in n.closers, whether it fails or not.
func (n *Network) listen() (listeners, error) {
	var ls listeners
	err := n.ns.Do(func() error {
		l4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls.tcp = append(ls.tcp, l4)
		n.port = l4.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp6", "[::1]:"+strconv.Itoa(n.port))
		if err != nil {
			return err
		}
		ls.tcp = append(ls.tcp, l6)
		for _, host := range []string{"127.0.0.1", "::1"} {
			addr := net.JoinHostPort(host, "53")
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return err
			}
			ls.udp = append(ls.udp, pc)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			ls.dnsTCP = append(ls.dnsTCP, l)
		}
		return nil
	})
	for _, l := range append(ls.tcp, ls.dnsTCP...) {
		n.closers = append(n.closers, l)
	}
	for _, pc := range ls.udp {
		n.closers = append(n.closers, pc)
	}
	return ls, err
}

// serve runs the proxy's Serve loops on the sockets, until Close.
func (n *Network) serve(ls listeners) {
	run := func(serve func() error) {
		n.serving.Add(1)
		go func() {
			defer n.serving.Done()
			serve()
		}()
	}
	for _, l := range ls.tcp {
		run(func() error { return n.proxy.ServeTCP(l) })
	}
	for _, pc := range ls.udp {
		run(func() error { return n.proxy.ServeDNS(pc) })
	}
	for _, l := range ls.dnsTCP {
		run(func() error { return n.proxy.ServeDNSTCP(l) })
	}
}

// NetNSPath is the namespace's path for the sandbox's OCI spec
// (linux.namespaces network path). It is valid until Close.
func (n *Network) NetNSPath() string { return n.ns.Path() }

// Env returns the variables that point proxy-aware programs at the proxy;
// EnvNames lists their names. Programs that ignore them (Node's fetch) are
// redirected transparently. Loopback stays out of the proxy: the sandbox's
// own services are there, and a localhost:PORT grant's port reaches the
// host's loopback through the namespace's redirect.
func (n *Network) Env() []string {
	proxy := "http://127.0.0.1:" + strconv.Itoa(n.port)
	noProxy := "localhost,127.0.0.1,::1"
	return []string{
		"HTTP_PROXY=" + proxy, "HTTPS_PROXY=" + proxy, "http_proxy=" + proxy, "https_proxy=" + proxy,
		"NO_PROXY=" + noProxy, "no_proxy=" + noProxy,
		"NODE_USE_ENV_PROXY=1",
	}
}

// EnvNames are the names of the variables Env sets.
func EnvNames() []string {
	return []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy", "NODE_USE_ENV_PROXY"}
}

// ResolvConf is the sandbox's /etc/resolv.conf: it points the resolver at
// the DNS stub.
func (n *Network) ResolvConf() []byte {
	return []byte("# mcpbox: the sandbox's DNS stub answers only allowlisted names\nnameserver 127.0.0.1\n")
}

// Close stops the proxy, closes the sockets and takes mcpbox's thread out
// of the namespace; the kernel frees it once the sandbox is gone too. No
// event is reported after Close returns. It returns nil.
func (n *Network) Close() error {
	if n.proxy != nil {
		n.proxy.Close()
	}
	for _, c := range n.closers {
		c.Close()
	}
	n.serving.Wait()
	return n.ns.Close()
}
