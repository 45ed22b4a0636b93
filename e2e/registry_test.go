package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// fixtureServer is a tiny stdio MCP server, the bin of the fixture package.
const fixtureServer = `#!/usr/bin/env node
require("readline").createInterface({ input: process.stdin }).on("line", (l) => {
  const m = JSON.parse(l);
  if (m.id === undefined) return;
  const result = m.method === "initialize"
    ? { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "fixture", version: "1.0.0" } }
    : { tools: [] };
  process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }) + "\n");
});
`

// fakeRegistry serves one npm package, mcpbox-fixture@1.0.0, whose
// postinstall script leaves a marker file, and counts tarball downloads.
// It listens in the test's namespace as registry.test.
type fakeRegistry struct {
	url       string
	downloads atomic.Int64
}

func newFakeRegistry(t *testing.T, tn *testNet) *fakeRegistry {
	t.Helper()
	l := tn.listen("127.0.0.2:0")
	r := &fakeRegistry{url: "http://registry.test:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/"}
	pkgJSON, _ := json.Marshal(map[string]any{
		"name": "mcpbox-fixture", "version": "1.0.0",
		"bin":     map[string]string{"mcpbox-fixture": "server.js"},
		"scripts": map[string]string{"postinstall": `node -e "require('fs').writeFileSync('postinstall-ran', 'x')"`},
	})
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{"package/package.json": string(pkgJSON), "package/server.js": fixtureServer} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), ModTime: time.Unix(1, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	sum512 := sha512.Sum512(tgz.Bytes())
	sum1 := sha1.Sum(tgz.Bytes())
	var version map[string]any
	json.Unmarshal(pkgJSON, &version)
	version["dist"] = map[string]string{
		"tarball":   r.url + "mcpbox-fixture/-/mcpbox-fixture-1.0.0.tgz",
		"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum512[:]),
		"shasum":    hex.EncodeToString(sum1[:]),
	}
	packument, _ := json.Marshal(map[string]any{
		"name": "mcpbox-fixture", "dist-tags": map[string]string{"latest": "1.0.0"},
		"versions": map[string]any{"1.0.0": version},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/mcpbox-fixture", func(w http.ResponseWriter, _ *http.Request) { w.Write(packument) })
	mux.HandleFunc("/mcpbox-fixture/-/mcpbox-fixture-1.0.0.tgz", func(w http.ResponseWriter, _ *http.Request) {
		r.downloads.Add(1)
		w.Write(tgz.Bytes())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"Not found"}`))
	})
	go (&http.Server{Handler: mux}).Serve(l)
	return r
}

// TestNpxInstallStep exercises the sandboxed install against a registry
// the test serves: install scripts stay off unless the profile allows
// them, concurrent first runs install once, a damaged cache entry is
// installed again, and bad packages, versions and registries give clear
// errors before any server starts.
func TestNpxInstallStep(t *testing.T) {
	e := newEnv(t)
	testutil.RequiresCommand(t, "npm")
	tn := newTestNet(t, map[string]string{"registry.test": "127.0.0.2"})
	reg := newFakeRegistry(t, tn)

	// pull runs `mcpbox pull` in the namespace with its own XDG dirs.
	pull := func(xdg []string, registry string, extra ...string) (string, error) {
		args := append([]string{"--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir, "--log-level", "info", "pull"}, extra...)
		cmd := tn.wrap(exec.Command(e.bin, args...))
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "npm_config_registry=" + registry}, xdg...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	marker := func(root string) bool {
		m, _ := filepath.Glob(filepath.Join(root, "cache_home", "mcpbox", "packages", "npm", "*", "*", "node_modules", "mcpbox-fixture", "postinstall-ran"))
		return len(m) > 0
	}

	t.Run("scripts off by default, two concurrent first runs install once", func(t *testing.T) {
		xdg, root := xdgEnv(t)
		before := reg.downloads.Load()
		var wg sync.WaitGroup
		outs := make([]string, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); outs[i], errs[i] = pull(xdg, reg.url, "--", "npx", "-y", "mcpbox-fixture") }()
		}
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil {
				t.Fatalf("pull %d: %v\n%s", i, errs[i], outs[i])
			}
		}
		if n := reg.downloads.Load() - before; n != 1 {
			t.Errorf("two concurrent first runs downloaded the package %d times, want 1", n)
		}
		if marker(root) {
			t.Errorf("the postinstall script ran although the profile does not allow install scripts")
		}

		// Damage the entry: the next use notices and installs again.
		files, _ := filepath.Glob(filepath.Join(root, "cache_home", "mcpbox", "packages", "npm", "*", "*", "node_modules", "mcpbox-fixture", "server.js"))
		if len(files) != 1 {
			t.Fatalf("cached server.js: %v", files)
		}
		os.WriteFile(files[0], []byte("require('child_process').execSync('curl evil')\n"), 0o755)
		if out, err := pull(xdg, reg.url, "--", "npx", "-y", "mcpbox-fixture"); err != nil || !strings.Contains(out, "damaged") {
			t.Errorf("pull after damage: %v\n%s", err, out)
		}
		if n := reg.downloads.Load() - before; n != 2 {
			t.Errorf("downloads after the damaged entry = %d, want 2", n)
		}
		if b, _ := os.ReadFile(files[0]); string(b) != fixtureServer {
			t.Errorf("the damaged file was not replaced: %q", b)
		}

		if out, _, code := mcpboxCLI(t, xdg, "packages", "list"); code != 0 || !strings.Contains(out, "mcpbox-fixture\t1.0.0") {
			t.Errorf("packages list: exit %d\n%s", code, out)
		}
		if _, errOut, code := mcpboxCLI(t, xdg, "packages", "rm", "mcpbox-fixture"); code != 0 {
			t.Errorf("packages rm: exit %d\n%s", code, errOut)
		}
		if out, _, _ := mcpboxCLI(t, xdg, "packages", "list"); out != "" {
			t.Errorf("packages list after rm: %q", out)
		}
	})

	t.Run("a profile can allow install scripts", func(t *testing.T) {
		xdg, root := xdgEnv(t)
		profile := filepath.Join(t.TempDir(), "scripts.yaml")
		writeFile(t, profile, "name: scripts\nextends: untrusted\ninstall: { scripts: true }\n")
		if out, err := pull(xdg, reg.url, "--profile", profile, "--", "npx", "-y", "mcpbox-fixture"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !marker(root) {
			t.Errorf("install.scripts: true, but the postinstall script did not run")
		}
	})

	t.Run("clear errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, registry, pkg, want string
		}{
			{"unknown package", reg.url, "no-such-package-mcpbox", "no-such-package-mcpbox"},
			{"unknown version", reg.url, "mcpbox-fixture@9.9.9", "9.9.9"},
			{"registry unreachable", "http://registry.test:1/", "mcpbox-fixture", "registry"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				xdg, _ := xdgEnv(t)
				out, err := pull(xdg, tc.registry, "--", "npx", "-y", tc.pkg)
				var exit *exec.ExitError
				if !errors.As(err, &exit) || !strings.Contains(out, tc.want) || strings.Contains(out, "goroutine ") {
					t.Errorf("%v, output:\n%s\nwant a clear error naming %q", err, out, tc.want)
				}
			})
		}
	})
}
