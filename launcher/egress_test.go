package launcher_test

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
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// dnsCounter serves DNS on 127.0.0.1:53 in the namespace, answers NXDOMAIN
// and counts the questions per name: the host resolver mcpbox uses.
type dnsCounter struct {
	mu    sync.Mutex
	names map[string]int
}

func (n *testNet) dnsServer() *dnsCounter {
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
			for _, q := range m.Questions {
				d.mu.Lock()
				d.names[strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")]++
				d.mu.Unlock()
			}
			m.Header.Response, m.Header.RCode = true, dnsmessage.RCodeNameError
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
// proxy decided.
func TestEgressAllowlist(t *testing.T) {
	e := newEnv(t)
	node, _ := testutil.Server(t, "server-memory") // node and fixtures present
	tn := newTestNet(t, map[string]string{
		"api.test":     "127.0.0.2",
		"rebind.test":  "127.0.0.3",
		"private.test": "10.0.0.1",
	})
	resolver := tn.dnsServer()

	caPEM, cert := testCA(t, "api.test")
	httpsL := tn.listen("127.0.0.2:0")
	port := func(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }
	pHTTPS := port(httpsL)
	handler := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	}
	go (&http.Server{Handler: handler("hello over tls")}).Serve(tls.NewListener(httpsL, &tls.Config{Certificates: []tls.Certificate{cert}}))
	httpL := tn.listen("127.0.0.2:0")
	go (&http.Server{Handler: handler("hello over http")}).Serve(httpL)
	rawL := tn.listen("127.0.0.2:0")
	go func() {
		for {
			c, err := rawL.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "pong:"+line)
			}()
		}
	}()
	otherL := tn.listen("127.0.0.2:0")
	otherHits := countingListener(otherL)
	rebindHits := countingListener(tn.listen("127.0.0.3:" + pHTTPS))

	caDir := t.TempDir()
	os.Chmod(caDir, 0o755)
	writeFile(t, filepath.Join(caDir, "ca.pem"), string(caPEM))
	egressLog := filepath.Join(t.TempDir(), "egress.jsonl")
	script := filepath.Join(testutil.RepoRoot(t), "testdata", "egress", "check.js")
	checks := []string{"fetch_https", "fetch_http", "raw_tcp", "proxy_connect", "denied_name", "denied_port",
		"rebinding_loopback", "rebinding_private", "sni_mismatch", "metadata_ip", "metadata_decimal",
		"metadata_hex", "metadata_mapped", "dns_outside_resolver", "dns_random_name"}
	cmd := tn.wrap(e.command(append([]string{
		"--allow-host", "api.test:" + pHTTPS, "--allow-host", "api.test:" + port(httpL), "--allow-host", "api.test:" + port(rawL),
		"--allow-host", "rebind.test:" + pHTTPS, "--allow-host", "private.test:" + pHTTPS,
		"--allow-host", "cidr:127.0.0.2/32:*",
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
	random, _ := got["random_name"].(string)
	if n := resolver.count(random); n != 0 {
		t.Errorf("the host resolver saw %d queries for %s; the stub must not forward", n, random)
	}

	// The decision log has a denial, with its reason, for each way out
	// that was refused.
	b, err := os.ReadFile(egressLog)
	if err != nil {
		t.Fatal(err)
	}
	var denials []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev struct{ Kind, Host, Addr, Verdict, Reason string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("egress log line %q: %v", line, err)
		}
		if ev.Verdict == "deny" {
			denials = append(denials, ev.Kind+" "+ev.Host+" "+ev.Addr+" "+ev.Reason)
		}
	}
	all := strings.Join(denials, "\n")
	for _, want := range []string{"evil.test", "169.254.169.254", "rebind.test", "private.test", "SNI", random} {
		if !strings.Contains(all, want) {
			t.Errorf("no denial mentioning %q in the egress log:\n%s", want, all)
		}
	}
	if !strings.Contains(stderr, "denied") {
		t.Errorf("denials are not reported on stderr:\n%s", stderr)
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
