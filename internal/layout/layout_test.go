// Package layout holds the test that keeps the dependency direction of
// docs/architecture.md: cmd → launcher → {sandbox, profiles}, children of
// launcher below launcher, and urfave/cli only in cmd.
package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/mcpbox/mcpbox"

// pkgImports lists every package of the module with what its code and its
// tests import.
func pkgImports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", "seccomp",
		"-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`,
		module+"/...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	if len(m) < 10 {
		t.Fatalf("go list found %d packages; is this the module root?", len(m))
	}
	return m
}

func under(pkg, dir string) bool {
	p := module + "/" + dir
	return pkg == p || strings.HasPrefix(pkg, p+"/")
}

func TestDependencyDirection(t *testing.T) {
	for pkg, imports := range pkgImports(t) {
		for _, imp := range imports {
			switch {
			case (under(pkg, "sandbox") || under(pkg, "profiles")) && (under(imp, "launcher") || under(imp, "cmd")):
				t.Errorf("%s imports %s: sandbox and profiles sit below launcher and cmd", pkg, imp)
			case under(pkg, "sandbox") && under(imp, "profiles"), under(pkg, "profiles") && under(imp, "sandbox"):
				t.Errorf("%s imports %s: sandbox and profiles do not know each other", pkg, imp)
			case strings.HasPrefix(imp, "github.com/urfave/cli") && !under(pkg, "cmd"):
				t.Errorf("%s imports %s: only cmd uses the CLI library", pkg, imp)
			case under(pkg, "launcher") && under(imp, "cmd"):
				t.Errorf("%s imports %s: launcher sits below cmd", pkg, imp)
			case under(pkg, "launcher/runtime") && !under(imp, "launcher/runtime") &&
				(under(imp, "launcher") || under(imp, "sandbox") || under(imp, "profiles")):
				t.Errorf("%s imports %s: a runtime runs the spec it is given and knows nothing of sessions, MCP or profiles", pkg, imp)
			}
		}
	}
}

// TestNoParentImports: a package never imports the package it sits in
// (launcher/trial drives a session through its own Runner type and
// launcher/observe's hooks, not through launcher).
func TestNoParentImports(t *testing.T) {
	for pkg, imports := range pkgImports(t) {
		for _, imp := range imports {
			if strings.HasPrefix(pkg, imp+"/") && imp != module {
				t.Errorf("%s imports its parent %s", pkg, imp)
			}
		}
	}
}
