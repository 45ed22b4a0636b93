package packages

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// runPlan runs an install plan on the host, as the launcher would in a
// sandbox: exactly plan.Env (plus test overrides), no stdin.
func runPlan(t *testing.T, plan *Plan, extraEnv ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, plan.Argv[0], plan.Argv[1:]...)
	cmd.Env = append(append([]string(nil), plan.Env...), extraEnv...)
	cmd.Dir = plan.Dir
	return cmd.CombinedOutput()
}

// npmTestEnv keeps npm's download cache out of /tmp/npm-cache (the
// sandbox's tmpfs path) and makes failures fast.
func npmTestEnv(t *testing.T) []string {
	return []string{"npm_config_cache=" + t.TempDir(), "npm_config_fetch_retries=0"}
}

// localRegistry is an npm registry on 127.0.0.1 serving one package,
// demo-mcp-server@1.0.0, whose bin answers one MCP initialize request.
type localRegistry struct {
	*httptest.Server
	mu   sync.Mutex
	gets []string
}

const demoServerJS = `#!/usr/bin/env node
const rl = require('readline').createInterface({input: process.stdin});
rl.on('line', (line) => {
  const req = JSON.parse(line);
  process.stdout.write(JSON.stringify({jsonrpc: '2.0', id: req.id, result: {serverInfo: {name: 'demo', version: '1.0.0'}, args: process.argv.slice(2)}}) + '\n');
  rl.close();
});
`

func newLocalRegistry(t *testing.T) *localRegistry {
	t.Helper()
	tgz := npmTarball(t, map[string]string{
		"package.json": `{"name":"demo-mcp-server","version":"1.0.0","bin":{"demo-mcp-server":"server.js"}}`,
		"server.js":    demoServerJS,
	})
	sha := sha512.Sum512(tgz)
	sum1 := sha1.Sum(tgz)
	r := &localRegistry{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.gets = append(r.gets, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		switch req.URL.Path {
		case "/demo-mcp-server":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"name":      "demo-mcp-server",
				"dist-tags": map[string]string{"latest": "1.0.0"},
				"versions": map[string]any{"1.0.0": map[string]any{
					"name": "demo-mcp-server", "version": "1.0.0",
					"bin": map[string]string{"demo-mcp-server": "server.js"},
					"dist": map[string]string{
						"tarball":   "http://" + req.Host + "/demo-mcp-server/-/demo-mcp-server-1.0.0.tgz",
						"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha[:]),
						"shasum":    hex.EncodeToString(sum1[:]),
					},
				}},
			})
		case "/demo-mcp-server/-/demo-mcp-server-1.0.0.tgz":
			w.Write(tgz)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"Not found"}`))
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *localRegistry) url() *url.URL {
	u, _ := url.Parse(r.URL + "/")
	return u
}

func npmTarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		mode := int64(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: mode, Size: int64(len(content)), ModTime: time.Unix(499162500, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// initialize sends one MCP initialize request to a server started with
// argv and returns its first line of output.
func initialize(t *testing.T, argv []string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpbox-test","version":"0"}}}` + "\n")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		t.Fatalf("no answer from %q: %v (stderr: %s)", argv, err, stderr.Bytes())
	}
	var resp map[string]any
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("answer %q: %v", line, err)
	}
	if resp["result"] == nil {
		t.Fatalf("initialize answered %s", line)
	}
	return resp
}

func TestNPMPlan(t *testing.T) {
	needTool(t, "npm")
	c := newCache(t)
	reg := &url.URL{Scheme: "https", Host: "npm.mirror.invalid:8443", Path: "/repo/"}
	spec := &Spec{Ecosystem: NPM, Name: "@demo/server", Version: "^1.2"}
	p, err := c.Plan(spec, PlanOptions{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Discard(p)
	argv := strings.Join(p.Argv, " ")
	if p.Dir != p.WorkDir {
		t.Errorf("Dir = %s, want WorkDir %s", p.Dir, p.WorkDir)
	}
	for _, want := range []string{" install ", "--registry=https://npm.mirror.invalid:8443/repo/", "--ignore-scripts", "--no-audit", "--no-fund"} {
		if !strings.Contains(argv, want) {
			t.Errorf("Argv %q lacks %q", argv, want)
		}
	}
	if !filepath.IsAbs(p.Argv[0]) {
		t.Errorf("Argv[0] %q is not absolute", p.Argv[0])
	}
	if want := []string{"npm.mirror.invalid:8443"}; len(p.Allow) != 1 || p.Allow[0] != want[0] {
		t.Errorf("Allow = %q, want %q", p.Allow, want)
	}
	if !strings.HasPrefix(p.WorkDir, filepath.Join(c.Root, ".work")+"/") {
		t.Errorf("WorkDir %s is not inside the cache root", p.WorkDir)
	}
	env := strings.Join(p.Env, "\n")
	for _, want := range []string{"npm_config_cache=/tmp/npm-cache", "npm_config_update_notifier=false", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("Env lacks %s: %q", want, p.Env)
		}
	}
	for _, kv := range p.Env {
		if k, _, _ := strings.Cut(kv, "="); strings.Contains(strings.ToUpper(k), "TOKEN") || strings.Contains(strings.ToUpper(k), "AUTH") {
			t.Errorf("Env passes %s", k)
		}
	}
	b, err := os.ReadFile(filepath.Join(p.WorkDir, "package.json"))
	if err != nil || !strings.Contains(string(b), `"@demo/server": "^1.2"`) {
		t.Errorf("package.json = %s, %v", b, err)
	}
	// With scripts on, npm runs them.
	p2, err := c.Plan(spec, PlanOptions{Registry: reg, Scripts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Discard(p2)
	if strings.Contains(strings.Join(p2.Argv, " "), "--ignore-scripts") {
		t.Errorf("Scripts: true still ignores scripts: %q", p2.Argv)
	}
	if _, err := c.Plan(spec, PlanOptions{}); err == nil {
		t.Errorf("a plan without a registry was accepted")
	}
	if _, err := c.Plan(spec, PlanOptions{Registry: reg, FindLinks: t.TempDir()}); err == nil {
		t.Errorf("--find-links was accepted for npm")
	}
}

// TestNPMInstallLocalRegistry runs the real npm against a registry on
// 127.0.0.1: the whole install path without the network.
func TestNPMInstallLocalRegistry(t *testing.T) {
	needTool(t, "npm")
	needTool(t, "node")
	reg := newLocalRegistry(t)
	c := newCache(t)
	spec, _, err := Parse([]string{"npx", "-y", "demo-mcp-server", "--verbose"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Plan(spec, PlanOptions{Registry: reg.url()})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runPlan(t, p, npmTestEnv(t)...); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	e, err := c.Commit(spec, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if e.Meta.Version != "1.0.0" || !strings.HasPrefix(e.Meta.Integrity["demo-mcp-server@1.0.0"], "sha512-") {
		t.Errorf("Meta = %+v", e.Meta)
	}
	e, err = c.Lookup(spec)
	if err != nil {
		t.Fatal(err)
	}
	resp := initialize(t, append(e.Exec, spec.Args...))
	if args := resp["result"].(map[string]any)["args"]; fmt.Sprint(args) != "[--verbose]" {
		t.Errorf("server got args %v", args)
	}
	if err := e.Verify(true); err != nil {
		t.Errorf("Verify(true) after running: %v", err)
	}
	reg.mu.Lock()
	t.Logf("registry requests: %q", reg.gets)
	reg.mu.Unlock()
}

func TestNPMInstallFailures(t *testing.T) {
	needTool(t, "npm")
	reg := newLocalRegistry(t)
	closed := &url.URL{Scheme: "http", Host: "127.0.0.1:1", Path: "/"}
	tests := []struct {
		argv   []string
		reg    *url.URL
		reason string
		hint   string
	}{
		{[]string{"npx", "-y", "demo-mcp-server@9.9.9"}, reg.url(), "npm has no version 9.9.9 of demo-mcp-server", "check the version, or drop @9.9.9"},
		{[]string{"npx", "-y", "@nope/missing"}, reg.url(), "npm has no package @nope/missing at " + reg.url().String(), "check the package name"},
		{[]string{"npx", "-y", "demo-mcp-server"}, closed, "could not reach the npm registry http://127.0.0.1:1/", "check the network or npm's registry setting"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			c := newCache(t)
			spec, _, err := Parse(tt.argv)
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Plan(spec, PlanOptions{Registry: tt.reg})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Discard(p)
			out, err := runPlan(t, p, npmTestEnv(t)...)
			if err == nil {
				t.Fatalf("npm install succeeded:\n%s", out)
			}
			ie := p.Diagnose(out)
			if ie.Reason != tt.reason || !strings.HasPrefix(ie.Hint, tt.hint) {
				t.Errorf("Diagnose = {%q, %q}, want {%q, %q…}\nnpm said:\n%s", ie.Reason, ie.Hint, tt.reason, tt.hint, out)
			}
			var target *InstallError
			if !errors.As(error(ie), &target) || !strings.Contains(ie.Error(), spec.String()) {
				t.Errorf("InstallError %q does not name the spec", ie)
			}
		})
	}
}

// TestNPMInstallReal installs a real MCP server from the registry npm is
// configured with: the one test here that needs the network.
func TestNPMInstallReal(t *testing.T) {
	if testing.Short() {
		t.Skip("installs from the npm registry (-short)")
	}
	needTool(t, "npm")
	needTool(t, "node")
	ctx := testutil.Context(t, 3*time.Minute)
	reg, err := NPMRegistry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t)
	spec, _, err := Parse([]string{"npx", "-y", "@modelcontextprotocol/server-memory@2026.8.31"})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := c.Lock(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ca, err := NPMCA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Plan(spec, PlanOptions{Registry: reg, CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %q in %s, env %q, read-only %q, allow %q", p.Argv, p.Dir, p.Env, p.ReadOnly, p.Allow)
	start := time.Now()
	out, err := runPlan(t, p, "npm_config_cache="+t.TempDir())
	if err != nil {
		c.Discard(p)
		t.Fatalf("npm install: %v\n%s\n%v", err, out, p.Diagnose(out))
	}
	installed := time.Since(start)
	start = time.Now()
	e, err := c.Commit(spec, p, false)
	if err != nil {
		t.Fatal(err)
	}
	committed := time.Since(start)
	t.Logf("install %v, commit (seal: chmod + SHA-256 of every file) %v: %d packages, %d files", installed.Round(time.Millisecond), committed.Round(time.Millisecond), len(e.Meta.Integrity), len(e.Meta.Files))
	if e.Meta.Version != "2026.8.31" || len(e.Meta.Integrity) < 50 {
		t.Errorf("Meta: version %s, %d integrities", e.Meta.Version, len(e.Meta.Integrity))
	}
	for id, integrity := range e.Meta.Integrity {
		if !strings.HasPrefix(integrity, "sha512-") && !strings.HasPrefix(integrity, "sha1-") {
			t.Errorf("integrity of %s = %q", id, integrity)
		}
	}

	e, err = c.Lookup(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(e.Exec[1], "/node_modules/@modelcontextprotocol/server-memory/dist/index.js") {
		t.Errorf("Exec = %q", e.Exec)
	}
	resp := initialize(t, append(e.Exec, spec.Args...))
	t.Logf("server-memory answered: %v", resp["result"].(map[string]any)["serverInfo"])

	// How long verification takes, to choose what Lookup does.
	const rounds = 10
	var lookup, fast, full time.Duration
	for range rounds {
		s := time.Now()
		if _, err := c.Lookup(spec); err != nil {
			t.Fatal(err)
		}
		lookup += time.Since(s)
		s = time.Now()
		if err := e.Verify(false); err != nil {
			t.Fatal(err)
		}
		fast += time.Since(s)
		s = time.Now()
		if err := e.Verify(true); err != nil {
			t.Fatal(err)
		}
		full += time.Since(s)
	}
	meta, err := readMeta(e.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, f := range meta.Files {
		size += f.Size
	}
	t.Logf("per call, mean of %d: Lookup %v, Verify(false) %v, Verify(true) %v (%d files, %.1f MiB)",
		rounds, lookup/rounds, fast/rounds, full/rounds, len(meta.Files), float64(size)/(1<<20))
}
