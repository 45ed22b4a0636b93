package packages

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// buildWheel writes NAME-VERSION-py3-none-any.whl into dir by hand (no
// setuptools or wheel needed): the files, and a .dist-info with METADATA,
// WHEEL, entry_points.txt and RECORD. It returns the wheel's SHA-256.
func buildWheel(t *testing.T, dir, name, version string, requires []string, files map[string]string, scripts map[string]string) string {
	t.Helper()
	dist := strings.ReplaceAll(name, "-", "_")
	info := dist + "-" + version + ".dist-info/"
	all := map[string]string{}
	for k, v := range files {
		all[k] = v
	}
	meta := "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
	for _, r := range requires {
		meta += "Requires-Dist: " + r + "\n"
	}
	all[info+"METADATA"] = meta
	all[info+"WHEEL"] = "Wheel-Version: 1.0\nGenerator: mcpbox-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
	if len(scripts) > 0 {
		ep := "[console_scripts]\n"
		for k, v := range scripts {
			ep += k + " = " + v + "\n"
		}
		all[info+"entry_points.txt"] = ep
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	record := ""
	for _, n := range names {
		record += n + ",,\n"
	}
	record += info + "RECORD,,\n"
	all[info+"RECORD"] = record
	names = append(names, info+"RECORD")

	path := filepath.Join(dir, dist+"-"+version+"-py3-none-any.whl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(all[n]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// needPip skips (fails under CI) unless python3 with pip is installed.
func needPip(t *testing.T) *pythonInfo {
	t.Helper()
	needTool(t, "python3")
	py, err := findPython()
	if err != nil {
		if testutil.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return py
}

// wheels builds demo-mcp 0.1.0, which depends on demo-dep 1.0.0.
func wheels(t *testing.T) (dir, mcpSum, depSum string) {
	dir = t.TempDir()
	mcpSum = buildWheel(t, dir, "demo-mcp", "0.1.0", []string{"demo-dep>=1.0"}, map[string]string{
		"demo_mcp/__init__.py": `import importlib.util, sys
import demo_dep

def main():
    # The host's own site-packages must not be visible (python -S).
    host = [m for m in ("pip", "setuptools") if importlib.util.find_spec(m)]
    print("demo-mcp says", demo_dep.WORD, sys.argv, "host packages:", host)
    return 3
`,
		"demo_mcp/admin.py": `import sys

class Tool:
    @staticmethod
    def run():
        print("admin", sys.argv[1:])
`,
	}, map[string]string{"demo-mcp": "demo_mcp:main", "demo-mcp-admin": "demo_mcp.admin:Tool.run [extra]"})
	depSum = buildWheel(t, dir, "demo-dep", "1.0.0", nil, map[string]string{"demo_dep/__init__.py": "WORD = 'hello'\n"}, nil)
	return dir, mcpSum, depSum
}

func TestPythonInstallFindLinks(t *testing.T) {
	py := needPip(t)
	dir, mcpSum, depSum := wheels(t)
	c := newCache(t)
	spec, _, err := Parse([]string{"uvx", "demo-mcp", "--flag", "x"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Plan(spec, PlanOptions{FindLinks: dir})
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Join(p.Argv, " ")
	for _, want := range []string{py.Executable + " -I -m pip install", "--isolated", "--no-index --find-links " + dir, "--only-binary=:all:", "--no-compile", "--target " + filepath.Join(p.WorkDir, "site"), " demo-mcp"} {
		if !strings.Contains(argv, want) {
			t.Errorf("Argv %q lacks %q", argv, want)
		}
	}
	if len(p.Allow) != 0 {
		t.Errorf("Allow = %q for an install from a local directory", p.Allow)
	}
	if p.ReadOnly[0] != dir {
		t.Errorf("ReadOnly = %q, want the wheel directory first", p.ReadOnly)
	}
	start := time.Now()
	if out, err := runPlan(t, p); err != nil {
		t.Fatalf("pip install: %v\n%s", err, out)
	}
	t.Logf("pip install from a local directory: %v", time.Since(start).Round(time.Millisecond))
	e, err := c.Commit(spec, p, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"demo-mcp@0.1.0": "sha256=" + mcpSum, "demo-dep@1.0.0": "sha256=" + depSum}
	if fmt.Sprint(e.Meta.Integrity) != fmt.Sprint(want) || e.Meta.Version != "0.1.0" || e.Meta.Python != py.Executable || e.Meta.FindLinks != dir || e.Meta.Registry != "" {
		t.Errorf("Meta = %+v", e.Meta)
	}
	if e.Dir != filepath.Join(c.Root, "pypi", "demo-mcp", "0.1.0") {
		t.Errorf("Dir = %s", e.Dir)
	}

	// Run it twice: running must not write into the entry (bytecode).
	for range 2 {
		e, err = c.Lookup(spec)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(e.Exec[0], append(e.Exec[1:], spec.Args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("exit: %v, want 3 (main's return value)", err)
		}
		if got := strings.TrimSpace(string(out)); got != "demo-mcp says hello ['demo-mcp', '--flag', 'x'] host packages: []" {
			t.Errorf("output %q", got)
		}
	}
	if err := e.Verify(true); err != nil {
		t.Errorf("Verify(true) after running: %v", err)
	}

	// Another console script of the package, a dotted attribute.
	admin := *spec
	admin.Bin, admin.Args = "demo-mcp-admin", []string{"-v"}
	e, err = c.Lookup(&admin)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(e.Exec[0], append(e.Exec[1:], admin.Args...)...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "admin ['-v']" {
		t.Errorf("admin: %q, %v", out, err)
	}
	admin.Bin = "nope"
	if _, err := c.Lookup(&admin); err == nil || !strings.Contains(err.Error(), `no executable "nope"; it has: demo-mcp, demo-mcp-admin`) {
		t.Errorf("Lookup of a missing entry point: %v", err)
	}
	// Names compare in normal form.
	if _, err := c.Lookup(&Spec{Ecosystem: PyPI, Name: "Demo_MCP"}); err != nil {
		t.Errorf("Lookup by another spelling: %v", err)
	}
}

func TestPythonInstallFailure(t *testing.T) {
	needPip(t)
	dir, _, _ := wheels(t)
	c := newCache(t)
	spec, _, err := Parse([]string{"uvx", "demo-mcp==9.9"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Plan(spec, PlanOptions{FindLinks: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Discard(p)
	out, err := runPlan(t, p)
	if err == nil {
		t.Fatalf("pip install succeeded:\n%s", out)
	}
	ie := p.Diagnose(out)
	if want := `has no wheel of demo-mcp matching "9.9" (it has: 0.1.0)`; !strings.Contains(ie.Reason, want) || !strings.Contains(ie.Error(), "demo-mcp==9.9") {
		t.Errorf("Diagnose = %q, want …%s…\npip said:\n%s", ie, want, out)
	}
}

func TestPythonPlanIndex(t *testing.T) {
	needPip(t)
	c := newCache(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("x"), 0o644)
	idx := &url.URL{Scheme: "https", Host: "pypi.mirror.invalid", Path: "/simple/"}
	spec := &Spec{Ecosystem: PyPI, Name: "mcp-server-git", Version: "0.6.2"}
	p, err := c.Plan(spec, PlanOptions{Registry: idx, CA: CA{File: ca}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Discard(p)
	argv := strings.Join(p.Argv, " ")
	for _, want := range []string{"--index-url https://pypi.mirror.invalid/simple/", "--cert " + ca, " mcp-server-git==0.6.2"} {
		if !strings.Contains(argv, want) {
			t.Errorf("Argv %q lacks %q", argv, want)
		}
	}
	if strings.Contains(argv, "--no-index") {
		t.Errorf("Argv %q", argv)
	}
	if len(p.Allow) != 1 || p.Allow[0] != "pypi.mirror.invalid:443" {
		t.Errorf("Allow = %q", p.Allow)
	}
	found := false
	for _, r := range p.ReadOnly {
		found = found || r == ca
	}
	if !found {
		t.Errorf("ReadOnly %q lacks the CA file", p.ReadOnly)
	}
	if _, err := c.Plan(spec, PlanOptions{}); !errors.Is(err, ErrNoIndex) {
		t.Errorf("Plan without an index: %v, want ErrNoIndex", err)
	}
	if _, err := c.Plan(spec, PlanOptions{FindLinks: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Errorf("Plan accepted a missing --find-links directory")
	}
}

func TestEntryPointParsing(t *testing.T) {
	for _, tt := range []struct {
		in, mod, attr string
	}{
		{"pkg:main", "pkg", "main"},
		{"pkg.sub : App.run", "pkg.sub", "App.run"},
		{"pkg.cli:main [cli, extra]", "pkg.cli", "main"},
	} {
		m := entryPoint.FindStringSubmatch(tt.in)
		if m == nil || m[1] != tt.mod || m[2] != tt.attr {
			t.Errorf("%q → %q", tt.in, m)
		}
	}
	for _, bad := range []string{"pkg", "pkg:", "os;rm:x", "a b:c", "pkg:main()"} {
		if entryPoint.MatchString(bad) {
			t.Errorf("%q accepted as an entry point", bad)
		}
	}
}
