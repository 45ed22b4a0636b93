package launcher

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/mcpbox/mcpbox/sandbox/egress"
)

// Network modes of a session.
const (
	// NetworkNone: a namespace with only loopback; every connect to
	// anything else fails at once.
	NetworkNone = "none"
	// NetworkAllowlist: all TCP and DNS go to mcpbox's proxy and DNS stub,
	// which let through only the allowlisted hosts.
	NetworkAllowlist = "allowlist"
)

// hostsPath is the host's hosts file: names it maps to loopback cannot be
// allowlisted (checkHostsFile).
const hostsPath = "/etc/hosts"

// networkPolicy checks the network options and parses the allowlist. It
// returns a nil allowlist for NetworkNone.
func networkPolicy(opts Options) (*egress.Allowlist, error) {
	mode := opts.Network
	if mode == "" {
		mode = NetworkNone
		if len(opts.AllowHosts) > 0 {
			mode = NetworkAllowlist
		}
	}
	switch mode {
	case NetworkNone:
		if len(opts.AllowHosts) > 0 {
			return nil, &UsageError{Flag: "network", Err: fmt.Errorf("none contradicts --allow-host %s: drop one of them", opts.AllowHosts[0])}
		}
		return nil, nil
	case NetworkAllowlist:
		allow, err := egress.ParseAllowlist(opts.AllowHosts)
		if err != nil {
			return nil, &UsageError{Flag: "allow-host", Err: err}
		}
		return allow, nil
	}
	return nil, &UsageError{Flag: "network", Err: fmt.Errorf("%q: use none or allowlist", opts.Network)}
}

// network is a session's egress control: the sandbox's network namespace,
// the proxy and DNS stub listening inside it, and the decision log.
type network struct {
	ns      *egress.NetNS
	proxy   *egress.Proxy
	port    int
	closers []io.Closer
}

// startNetwork creates the sandbox's namespace, opens the proxy's and the
// DNS stub's sockets inside it, installs the redirect rules and starts
// serving. Any failure stops everything: the server must not start with
// egress half set up.
func startNetwork(allow *egress.Allowlist, events io.Writer, log *slog.Logger) (_ *network, err error) {
	ns, err := egress.NewNetNS()
	if err != nil {
		return nil, err
	}
	n := &network{ns: ns}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	var tcp []net.Listener
	var udp []net.PacketConn
	var dnsTCP []net.Listener
	err = ns.Do(func() error {
		l4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		tcp = append(tcp, l4)
		n.port = l4.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp6", "[::1]:"+strconv.Itoa(n.port))
		if err != nil {
			return err
		}
		tcp = append(tcp, l6)
		for _, host := range []string{"127.0.0.1", "::1"} {
			addr := net.JoinHostPort(host, "53")
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return err
			}
			udp = append(udp, pc)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			dnsTCP = append(dnsTCP, l)
		}
		return nil
	})
	for _, l := range append(tcp, dnsTCP...) {
		n.closers = append(n.closers, l)
	}
	for _, pc := range udp {
		n.closers = append(n.closers, pc)
	}
	if err != nil {
		return nil, fmt.Errorf("launcher: egress listeners in the sandbox's network namespace: %w", err)
	}
	if err := ns.Install(uint16(n.port), allow.HostLoopbackPorts()...); err != nil {
		return nil, err
	}

	var listenAddrs []netip.AddrPort
	for _, l := range tcp {
		listenAddrs = append(listenAddrs, l.Addr().(*net.TCPAddr).AddrPort())
	}
	n.proxy, err = egress.New(egress.Options{
		Allow:       allow,
		ListenAddrs: listenAddrs,
		Events:      eventWriter(events),
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	for _, l := range tcp {
		go n.proxy.ServeTCP(l)
	}
	for _, pc := range udp {
		go n.proxy.ServeDNS(pc)
	}
	for _, l := range dnsTCP {
		go n.proxy.ServeDNSTCP(l)
	}
	return n, nil
}

// env returns the variables that point proxy-aware programs at the proxy.
// Programs that ignore them (Node's fetch) are redirected transparently.
// Loopback stays out of the proxy: the sandbox's own services are there,
// and a localhost:PORT grant's port reaches the host's loopback through
// the namespace's redirect.
func (n *network) env() []string {
	proxy := "http://127.0.0.1:" + strconv.Itoa(n.port)
	noProxy := "localhost,127.0.0.1,::1"
	return []string{
		"HTTP_PROXY=" + proxy, "HTTPS_PROXY=" + proxy, "http_proxy=" + proxy, "https_proxy=" + proxy,
		"NO_PROXY=" + noProxy, "no_proxy=" + noProxy,
		"NODE_USE_ENV_PROXY=1",
	}
}

// proxyEnvNames are the names network.env sets.
var proxyEnvNames = []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy", "NODE_USE_ENV_PROXY"}

// resolvConf points the sandbox's resolver at the DNS stub.
func (n *network) resolvConf() []byte {
	return []byte("# mcpbox: the sandbox's DNS stub answers only allowlisted names\nnameserver 127.0.0.1\n")
}

// Close stops the proxy, closes the sockets and takes mcpbox's thread out
// of the namespace; the kernel frees it once the sandbox is gone too.
func (n *network) Close() {
	if n.proxy != nil {
		n.proxy.Close()
	}
	for _, c := range n.closers {
		c.Close()
	}
	n.ns.Close()
}

// eventWriter turns decision events into JSON lines on w.
func eventWriter(w io.Writer) func(egress.Event) {
	if w == nil {
		return nil
	}
	var mu sync.Mutex
	return func(e egress.Event) {
		b, err := json.Marshal(e)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w.Write(append(b, '\n'))
	}
}
