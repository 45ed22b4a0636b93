package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestRootlessNpxInstall is TestNpxInstallStep's first case as the CI
// user: `npx -y PKG` installed in a rootless sandbox from a registry the
// test serves in its own network namespace (nothing leaves the machine),
// install scripts off, the cache entry the user's; then the server runs
// from the cache as an MCP server, and a damaged entry is installed again.
func TestRootlessNpxInstall(t *testing.T) {
	e := newRootlessEnv(t)
	testutil.RequiresCommand(t, "npm")
	tn := newTestNet(t, map[string]string{"registry.test": "127.0.0.2"})
	reg := newFakeRegistry(t, tn)
	cache := filepath.Join(e.home, ".cache", "mcpbox", "packages", "npm")

	run := func(args ...string) (string, error) {
		cmd := e.inNet(tn, true, e.as(e.bin, append([]string{"--log-level", "info"}, args...)...))
		cmd.Env = append(cmd.Env, "npm_config_registry="+reg.url)
		cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}` + "\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run("run", "--", "npx", "-y", "mcpbox-fixture")
	if err != nil || !strings.Contains(out, `"serverInfo":{"name":"fixture"`) {
		t.Fatalf("first run (install, then serve): %v\n%s", err, out)
	}
	if !strings.Contains(out, "runtime=rootless") {
		t.Errorf("the install did not run on the rootless runtime:\n%s", out)
	}
	if n := reg.downloads.Load(); n != 1 {
		t.Errorf("downloads = %d, want 1", n)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*", "*", "node_modules", "mcpbox-fixture", "server.js"))
	if len(files) != 1 {
		t.Fatalf("cached server.js under %s: %v", cache, files)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(files[0]), "postinstall-ran")); len(m) > 0 {
		t.Error("the postinstall script ran although the profile does not allow install scripts")
	}
	// The cache is the user's, every file of it.
	filepath.Walk(filepath.Join(e.home, ".cache", "mcpbox"), func(p string, info os.FileInfo, err error) error {
		if err == nil {
			e.ownedByUser(p)
		}
		return nil
	})

	// From the cache: no download.
	if out, err := run("run", "--", "npx", "-y", "mcpbox-fixture"); err != nil || !strings.Contains(out, `"serverInfo":{"name":"fixture"`) {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if n := reg.downloads.Load(); n != 1 {
		t.Errorf("downloads after a cached run = %d, want 1", n)
	}

	// A damaged entry is noticed and installed again.
	os.WriteFile(files[0], []byte("require('child_process').execSync('curl evil')\n"), 0o755)
	if out, err := run("pull", "--", "npx", "-y", "mcpbox-fixture"); err != nil || !strings.Contains(out, "damaged") {
		t.Errorf("pull after damage: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(files[0]); string(b) != fixtureServer {
		t.Errorf("the damaged file was not replaced: %q", b)
	}
	if n := reg.downloads.Load(); n != 2 {
		t.Errorf("downloads after the damaged entry = %d, want 2", n)
	}
}
