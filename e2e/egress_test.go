package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// testNet is a network namespace the test makes for itself. The upstream
// servers, a DNS server that counts queries, and mcpbox itself all run in
// it. It has only a loopback interface: whatever mcpbox's proxy dials, even
// by a fail-open bug, cannot leave the machine.
type testNet struct {
	t    *testing.T
	name string
}

func newTestNet(t *testing.T, hosts map[string]string) *testNet {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	n := &testNet{t: t, name: "mcpbox-t-" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	if out, err := exec.Command("ip", "-n", n.name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	// `ip netns exec` binds these over /etc/hosts and /etc/resolv.conf for
	// mcpbox: the host side of name resolution, under the test's control.
	etc := filepath.Join("/etc/netns", n.name)
	os.MkdirAll(etc, 0o755)
	t.Cleanup(func() { os.RemoveAll(etc) })
	var h strings.Builder
	h.WriteString("127.0.0.1 localhost\n")
	for name, addr := range hosts {
		fmt.Fprintf(&h, "%s %s\n", addr, name)
	}
	os.WriteFile(filepath.Join(etc, "hosts"), []byte(h.String()), 0o644)
	os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644)
	return n
}

// addAddr puts another local address on the namespace's loopback
// interface: a "remote" host that is no loopback address, and still in the
// namespace only.
func (n *testNet) addAddr(cidr string) {
	n.t.Helper()
	if out, err := exec.Command("ip", "-n", n.name, "addr", "add", cidr, "dev", "lo").CombinedOutput(); err != nil {
		n.t.Fatalf("ip addr add %s: %v %s", cidr, err, out)
	}
}

// do runs fn on a thread inside the namespace; sockets it opens stay there.
func (n *testNet) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

func (n *testNet) listen(addr string) net.Listener {
	n.t.Helper()
	var l net.Listener
	if err := n.do(func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { l.Close() })
	return l
}

// wrap makes cmd run inside the namespace.
func (n *testNet) wrap(cmd *exec.Cmd) *exec.Cmd {
	ip, _ := exec.LookPath("ip")
	cmd.Args = append([]string{"ip", "netns", "exec", n.name}, cmd.Args...)
	cmd.Path = ip
	return cmd
}

// countingListener accepts and counts connections, answering nothing.
func countingListener(l net.Listener) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return &n
}

// testCA makes a CA and a certificate for names, signed by it.
func testCA(t *testing.T, names ...string) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mcpbox test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// dnsCounter serves DNS on 127.0.0.1:53 in the namespace and counts the
// questions per name: the host resolver mcpbox uses. It answers A queries
// for the names in answers, and NXDOMAIN for any other name.
type dnsCounter struct {
	mu    sync.Mutex
	names map[string]int
}

func (n *testNet) dnsServer(answers map[string]string) *dnsCounter {
	n.t.Helper()
	var pc net.PacketConn
	if err := n.do(func() (err error) { pc, err = net.ListenPacket("udp", "127.0.0.1:53"); return err }); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { pc.Close() })
	d := &dnsCounter{names: map[string]int{}}
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:k]) != nil {
				continue
			}
			m.Header.Response, m.Header.RCode = true, dnsmessage.RCodeNameError
			for _, q := range m.Questions {
				name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
				d.mu.Lock()
				d.names[name]++
				d.mu.Unlock()
				if addr, ok := answers[name]; ok {
					m.Header.RCode = dnsmessage.RCodeSuccess
					if q.Type == dnsmessage.TypeA {
						m.Answers = append(m.Answers, dnsmessage.Resource{
							Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1},
							Body:   &dnsmessage.AResource{A: netip.MustParseAddr(addr).As4()},
						})
					}
				}
			}
			if out, err := m.Pack(); err == nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return d
}

func (d *dnsCounter) count(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.names[name]
}

// TestEgressAllowlist runs a Node script inside the sandbox that tries the
// allowed and the forbidden ways out, and checks what it got and what the
// proxy decided. The allowed upstreams are on 10.99.0.2, an address on the
// test namespace's loopback interface that is no loopback address: granted
// by a cidr: entry, as a server on a private network would be.
func TestEgressAllowlist(t *testing.T) {
	e := newEnv(t)
	node, _ := testutil.Server(t, "server-memory") // node and fixtures present
	tn := newTestNet(t, map[string]string{
		"api.test":     "10.99.0.2",
		"private.test": "10.0.0.1",
	})
	tn.addAddr("10.99.0.2/32")
	// rebind.test is a name whose DNS answer is loopback: no grant may
	// let the proxy follow it. (In the hosts file it would be refused
	// before the server starts: TestEgressLoopbackGrantErrors.)
	resolver := tn.dnsServer(map[string]string{"rebind.test": "127.0.0.3"})

	caPEM, cert := testCA(t, "api.test")
	httpsL := tn.listen("10.99.0.2:0")
	port := func(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }
	pHTTPS := port(httpsL)
	var evilRequests atomic.Int64
	handler := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.Host, "evil") {
				evilRequests.Add(1)
			}
			io.WriteString(w, body)
		})
	}
	go (&http.Server{Handler: handler("hello over tls")}).Serve(tls.NewListener(httpsL, &tls.Config{Certificates: []tls.Certificate{cert}}))
	httpL := tn.listen("10.99.0.2:0")
	go (&http.Server{Handler: handler("hello over http")}).Serve(httpL)
	rawL := tn.listen("10.99.0.2:0")
	go pong(rawL)
	otherL := tn.listen("10.99.0.2:0")
	otherHits := countingListener(otherL)
	rebindHits := countingListener(tn.listen("127.0.0.3:" + pHTTPS))

	caDir := t.TempDir()
	os.Chmod(caDir, 0o755)
	writeFile(t, filepath.Join(caDir, "ca.pem"), string(caPEM))
	egressLog := filepath.Join(t.TempDir(), "egress.jsonl")
	script := filepath.Join(testutil.RepoRoot(t), "testdata", "egress", "check.js")
	checks := []string{"fetch_https", "fetch_http", "raw_tcp", "proxy_connect", "denied_name", "denied_port",
		"rebinding_loopback", "rebinding_private", "sni_mismatch", "metadata_ip", "metadata_decimal",
		"metadata_hex", "metadata_mapped", "dns_outside_resolver", "dns_random_name", "keepalive_other_host"}
	cmd := tn.wrap(e.command(append([]string{
		"--allow-host", "api.test:" + pHTTPS, "--allow-host", "api.test:" + port(httpL), "--allow-host", "api.test:" + port(rawL),
		"--allow-host", "rebind.test:" + pHTTPS, "--allow-host", "private.test:" + pHTTPS,
		"--allow-host", "cidr:10.99.0.2/32:*",
		"--egress-log", egressLog,
		"--mount", caDir, "--env", "NODE_EXTRA_CA_CERTS=" + filepath.Join(caDir, "ca.pem"),
		"--env", "CHECK_PORTS=" + strings.Join([]string{pHTTPS, port(httpL), port(rawL), port(otherL)}, ","),
		"--", node, script}, checks...)...))
	got, stderr := runChecks(t, cmd)
	result := func(name string) string { s, _ := got[name].(string); return s }

	for name, want := range map[string]string{
		"fetch_https":   "ok:hello over tls",
		"fetch_http":    "ok:hello over http",
		"raw_tcp":       "ok:pong:ping\n",
		"proxy_connect": "ok:hello over tls",
		// A second request on a kept-alive connection is checked like the
		// first: the first is answered, the one for evil.test never sent.
		"keepalive_other_host": "ok:1 answer(s)",
	} {
		if result(name) != want {
			t.Errorf("%s = %q, want %q", name, result(name), want)
		}
	}
	for _, name := range []string{"denied_name", "denied_port", "rebinding_loopback", "rebinding_private", "sni_mismatch",
		"metadata_ip", "metadata_decimal", "metadata_hex", "metadata_mapped", "dns_outside_resolver", "dns_random_name"} {
		if r := result(name); !strings.HasPrefix(r, "error:") {
			t.Errorf("%s = %q, want an error", name, r)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the upstream on a port that is not allowlisted got %d connections", n)
	}
	if n := rebindHits.Load(); n != 0 {
		t.Errorf("the loopback address a name rebound to got %d connections", n)
	}
	if n := evilRequests.Load(); n != 0 {
		t.Errorf("the upstream got %d requests for evil.test", n)
	}
	random, _ := got["random_name"].(string)
	if n := resolver.count(random); n != 0 {
		t.Errorf("the host resolver saw %d queries for %s; the stub must not forward", n, random)
	}

	// The decision log has a denial, with its reason, for each way out
	// that was refused.
	all := strings.Join(egressEvents(t, egressLog, "deny"), "\n")
	for _, want := range []string{"evil.test", "169.254.169.254", "rebind.test", "private.test", "SNI", random,
		"request 2 on the connection: HTTP Host evil.test does not match api.test"} {
		if !strings.Contains(all, want) {
			t.Errorf("no denial mentioning %q in the egress log:\n%s", want, all)
		}
	}
	if !strings.Contains(stderr, "denied") {
		t.Errorf("denials are not reported on stderr:\n%s", stderr)
	}
}

// pong answers each connection's first line with "pong:" and the line.
func pong(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			line, _ := bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "pong:"+line)
		}()
	}
}

// egressEvents returns the connect and DNS events of an egress log with
// the verdict, as "kind host port addr reason".
func egressEvents(t *testing.T, path, verdict string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev struct {
			Kind, Host, Addr, Verdict, Reason string
			Port                              int
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("egress log line %q: %v", line, err)
		}
		if ev.Verdict == verdict {
			out = append(out, fmt.Sprintf("%s %s %d %s %s", ev.Kind, ev.Host, ev.Port, ev.Addr, ev.Reason))
		}
	}
	return out
}

// TestEgressHostLoopback: with localhost:PORT a server in the sandbox
// reaches a service on this machine's loopback (here the test namespace's,
// which is mcpbox's) at that port, by any of the sandbox's names for
// loopback, and nothing else of it; every connection is in the egress log.
func TestEgressHostLoopback(t *testing.T) {
	e := newEnv(t)
	node, _ := testutil.Server(t, "server-memory")
	tn := newTestNet(t, nil)
	port := func(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }
	granted := tn.listen("127.0.0.1:0")
	go pong(granted)
	other := tn.listen("127.0.0.1:0")
	otherHits := countingListener(other)
	web := tn.listen("127.0.0.1:0")
	go (&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from this machine")
	})}).Serve(web)

	egressLog := filepath.Join(t.TempDir(), "egress.jsonl")
	script := filepath.Join(testutil.RepoRoot(t), "testdata", "egress", "check.js")
	checks := []string{"host_loopback", "host_loopback_name", "host_loopback_v6", "host_loopback_unspecified",
		"host_loopback_other_port", "host_loopback_http"}
	cmd := tn.wrap(e.command(append([]string{
		"--allow-host", "localhost:" + port(granted), "--allow-host", "localhost:" + port(web),
		"--egress-log", egressLog,
		"--env", "LOOPBACK_PORTS=" + strings.Join([]string{port(granted), port(other), port(web)}, ","),
		"--", node, script}, checks...)...))
	got, stderr := runChecks(t, cmd)
	for name, want := range map[string]string{
		"host_loopback":             "ok:pong:ping\n",
		"host_loopback_name":        "ok:pong:ping\n",
		"host_loopback_v6":          "ok:pong:ping\n", // the service listens on 127.0.0.1 only: the proxy tries both
		"host_loopback_unspecified": "ok:pong:ping\n",
		"host_loopback_other_port":  "error:ECONNREFUSED", // the sandbox's own loopback: nothing there
		"host_loopback_http":        "ok:hello from this machine",
	} {
		if r, _ := got[name].(string); r != want {
			t.Errorf("%s = %q, want %q\n%s", name, r, want, stderr)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the service on a port that is not granted got %d connections", n)
	}
	allowed := egressEvents(t, egressLog, "allow")
	want := fmt.Sprintf("connect localhost %s 127.0.0.1:%s ", port(granted), port(granted))
	n := 0
	for _, ev := range allowed {
		if strings.HasPrefix(ev, want) {
			n++
		}
	}
	if n != 4 || !slices.ContainsFunc(allowed, func(ev string) bool { return strings.HasPrefix(ev, "connect localhost "+port(web)+" ") }) {
		t.Errorf("egress log: %d events %q, want 4 and one for the web port:\n%s", n, want, strings.Join(allowed, "\n"))
	}
}

// TestEgressLoopbackGrantErrors: a grant that would mean the sandbox's own
// loopback is refused before anything starts, and says what to write.
func TestEgressLoopbackGrantErrors(t *testing.T) {
	e := newEnv(t)
	tn := newTestNet(t, map[string]string{"db.test": "127.0.0.1"})
	for _, tc := range []struct {
		grant, want string
	}{
		{"127.0.0.1:5432", "the sandbox's own loopback, not this machine's; to reach a service on this machine's loopback write localhost:5432"},
		{"[::1]:5432", "write localhost:5432"},
		{"cidr:127.0.0.0/8:5432", "write localhost:5432"},
		{"localhost", "localhost needs a port"},
		{"localhost:*", "grant one port per service"},
		{"host.docker.internal:5432", "write localhost:5432"},
		{"db.test:5432", "db.test is 127.0.0.1 in /etc/hosts, this machine's loopback, which the proxy never connects to for a name; write localhost:5432"},
	} {
		out, err := tn.wrap(e.command("--allow-host", tc.grant, "--", "node", "-e", "1")).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "--allow-host") {
			t.Errorf("--allow-host %s: %v\n%s\nwant exit 2 and %q", tc.grant, err, out, tc.want)
		}
	}
}

// TestEgressNone: without an allowlist the sandbox has loopback only and a
// connect elsewhere fails at once.
func TestEgressNone(t *testing.T) {
	e := newEnv(t)
	node, _ := testutil.Server(t, "server-memory")
	tn := newTestNet(t, nil)
	script := filepath.Join(testutil.RepoRoot(t), "testdata", "egress", "check.js")
	cmd := tn.wrap(e.command("--network", "none", "--", node, script, "direct_connect", "dns_random_name"))
	got, _ := runChecks(t, cmd)
	if r, _ := got["direct_connect"].(string); r != "error:ENETUNREACH" {
		t.Errorf("direct connect = %q, want error:ENETUNREACH", r)
	}
	for _, name := range []string{"direct_connect", "dns_random_name"} {
		if ms, _ := got[name+"_ms"].(float64); ms > 2000 {
			t.Errorf("%s took %v ms: it must fail at once, not hang", name, ms)
		}
	}
}

// runChecks runs check.js through mcpbox and returns its results and
// mcpbox's stderr. stdin stays open until the script is done, as a client's
// would: EOF would end the session.
func runChecks(t *testing.T, cmd *exec.Cmd) (map[string]any, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := cmd.Run(); err != nil {
		t.Fatalf("mcpbox: %v\n%s", err, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("%v: %q\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return got, stderr.String()
}
