package packages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// fakeRegistry stands for the configured registry in tests that install
// nothing from it. .invalid never resolves.
var fakeRegistry = &url.URL{Scheme: "https", Host: "registry.invalid", Path: "/"}

// needTool skips the test (fails it under CI) when a program is missing.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but %s is not installed: CI must provide it (run `make setup`)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// fakeInstall does what a sandboxed `npm install` would: it plans the
// install of spec, writes the tree npm would have written for version
// (the package with bins, one dependency, a lockfile with integrities and a
// .bin symlink) and commits it.
func fakeInstall(c *Cache, spec *Spec, version string, bins map[string]string, update bool) (*Entry, error) {
	plan, err := c.prepare(spec, PlanOptions{Registry: fakeRegistry})
	if err != nil {
		return nil, err
	}
	if err := writeFakeTree(plan.WorkDir, spec.Name, version, bins); err != nil {
		c.Discard(plan)
		return nil, err
	}
	return c.Commit(spec, plan, update)
}

func writeFakeTree(dir, name, version string, bins map[string]string) error {
	pkg := filepath.Join(dir, "node_modules", filepath.FromSlash(name))
	files := map[string]string{
		"node_modules/dep-a/package.json": `{"name":"dep-a","version":"1.0.0"}`,
		"node_modules/dep-a/index.js":     `module.exports = 1;`,
	}
	binField := map[string]string{}
	for b, script := range bins {
		binField[b] = script
		files[filepath.ToSlash(filepath.Join("node_modules", name, script))] = fmt.Sprintf("#!/usr/bin/env node\nconsole.log('fake %s %s', %q, process.argv.slice(2).join(' '));\n", name, version, b)
	}
	pj, _ := json.Marshal(map[string]any{"name": name, "version": version, "bin": binField, "dependencies": map[string]string{"dep-a": "^1.0.0"}})
	files[filepath.ToSlash(filepath.Join("node_modules", name, "package.json"))] = string(pj)
	lock, _ := json.MarshalIndent(map[string]any{
		"name": "mcpbox-cache-entry", "version": "0.0.0", "lockfileVersion": 3, "requires": true,
		"packages": map[string]any{
			"": map[string]any{"name": "mcpbox-cache-entry", "version": "0.0.0", "dependencies": map[string]string{name: "latest"}},
			"node_modules/" + name: map[string]any{
				"version": version, "integrity": "sha512-fake" + version, "bin": binField,
				"dependencies": map[string]string{"dep-a": "^1.0.0"},
			},
			"node_modules/dep-a": map[string]any{"version": "1.0.0", "integrity": "sha512-fakedep"},
		},
	}, "", "  ")
	files["package-lock.json"] = string(lock)
	files["node_modules/.package-lock.json"] = string(lock)
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(rel, ".js") && strings.Contains(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "node_modules", ".bin"), 0o755); err != nil {
		return err
	}
	for b, script := range bins {
		target, _ := filepath.Rel(filepath.Join(dir, "node_modules", ".bin"), filepath.Join(pkg, script))
		if err := os.Symlink(target, filepath.Join(dir, "node_modules", ".bin", b)); err != nil {
			return err
		}
	}
	return nil
}

func newCache(t *testing.T) *Cache {
	t.Helper()
	return &Cache{Root: filepath.Join(t.TempDir(), "packages")}
}

var demoBins = map[string]string{"server": "dist/cli.js"}

func TestCommitLookup(t *testing.T) {
	node := needTool(t, "node")
	c := newCache(t)
	spec := &Spec{Ecosystem: NPM, Name: "@demo/server", Args: []string{"a"}}
	if _, err := c.Lookup(spec); !errors.Is(err, ErrNotCached) {
		t.Fatalf("Lookup on an empty cache: %v, want ErrNotCached", err)
	}
	committed, err := fakeInstall(c, spec, "1.2.0", demoBins, false)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	e, err := c.Lookup(spec)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	wantDir := filepath.Join(c.Root, "npm", "@demo+server", "1.2.0")
	if e.Dir != wantDir || committed.Dir != wantDir {
		t.Errorf("Dir = %s (commit %s), want %s", e.Dir, committed.Dir, wantDir)
	}
	node, _ = filepath.Abs(node)
	if want := []string{node, filepath.Join(wantDir, "node_modules", "@demo", "server", "dist", "cli.js")}; !reflect.DeepEqual(e.Exec, want) {
		t.Errorf("Exec = %q, want %q", e.Exec, want)
	}
	if e.ReadOnly[0] != e.Dir {
		t.Errorf("ReadOnly = %q, want the entry first", e.ReadOnly)
	}
	m := e.Meta
	if m.Ecosystem != NPM || m.Name != "@demo/server" || m.Requested != "" || m.Version != "1.2.0" || m.Scripts || m.InstalledAt.IsZero() {
		t.Errorf("Meta = %+v", m)
	}
	if m.Registry != fakeRegistry.String() {
		t.Errorf("Meta.Registry = %q, want %q", m.Registry, fakeRegistry)
	}
	wantIntegrity := map[string]string{"@demo/server@1.2.0": "sha512-fake1.2.0", "dep-a@1.0.0": "sha512-fakedep"}
	if !reflect.DeepEqual(m.Integrity, wantIntegrity) {
		t.Errorf("Integrity = %v, want %v", m.Integrity, wantIntegrity)
	}
	if m.Files != nil {
		t.Errorf("Lookup returned the manifest; it should leave it on disk")
	}
	if len(m.Stamp) != 64 {
		t.Errorf("Stamp = %q", m.Stamp)
	}
	full, err := readMeta(e.Dir)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]File{}
	for _, f := range full.Files {
		byPath[f.Path] = f
	}
	for _, p := range []string{"package.json", "package-lock.json", "node_modules/.package-lock.json", "node_modules/@demo/server/dist/cli.js", "node_modules/dep-a/index.js"} {
		if f, ok := byPath[p]; !ok || len(f.SHA256) != 64 || f.Size == 0 {
			t.Errorf("manifest entry %s = %+v", p, f)
		}
	}
	if f := byPath["node_modules/@demo/server/dist/cli.js"]; f.Mode != "0755" {
		t.Errorf("bin mode %s, want 0755", f.Mode)
	}
	if f := byPath["node_modules/.bin/server"]; f.Link != "../@demo/server/dist/cli.js" {
		t.Errorf(".bin symlink = %+v", f)
	}
	if _, ok := byPath[metaFile]; ok {
		t.Errorf("the manifest lists %s itself", metaFile)
	}
	var pj struct{ Dependencies map[string]string }
	b, _ := os.ReadFile(filepath.Join(e.Dir, "package.json"))
	if err := json.Unmarshal(b, &pj); err != nil || pj.Dependencies["@demo/server"] != "latest" {
		t.Errorf("generated package.json = %s (%v)", b, err)
	}
	pins, _ := readPins(filepath.Dir(e.Dir))
	if !reflect.DeepEqual(pins, map[string]string{"": "1.2.0"}) {
		t.Errorf("pins = %v", pins)
	}
	if err := e.Verify(true); err != nil {
		t.Errorf("Verify(true): %v", err)
	}
	// The work directory is gone, and the cache holds nothing but the entry.
	if ents, _ := os.ReadDir(filepath.Join(c.Root, ".work")); len(ents) != 0 {
		t.Errorf(".work holds %d entries after Commit", len(ents))
	}
	out, err := exec.Command(e.Exec[0], append(e.Exec[1:], spec.Args...)...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "fake @demo/server 1.2.0 server a" {
		t.Errorf("running Exec: %q, %v", out, err)
	}
}

func TestPins(t *testing.T) {
	needTool(t, "node")
	c := newCache(t)
	latest := &Spec{Ecosystem: NPM, Name: "pinned"}
	if _, err := fakeInstall(c, latest, "1.2.0", demoBins, false); err != nil {
		t.Fatal(err)
	}
	// A plan for the same spec reinstalls the pinned version, unless it
	// is an update.
	for _, tt := range []struct {
		update bool
		want   string
	}{{false, "1.2.0"}, {true, "latest"}} {
		p, err := c.prepare(latest, PlanOptions{Registry: fakeRegistry, Update: tt.update})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(p.WorkDir, "package.json"))
		c.Discard(p)
		if !strings.Contains(string(b), `"pinned": "`+tt.want+`"`) {
			t.Errorf("update=%v: package.json %s, want the dependency at %s", tt.update, b, tt.want)
		}
	}
	// Without update, the existing pin wins over a newer install.
	e, err := fakeInstall(c, latest, "1.3.0", demoBins, false)
	if err != nil {
		t.Fatal(err)
	}
	if e.Meta.Version != "1.2.0" {
		t.Errorf("Commit without update returned %s, want the pinned 1.2.0", e.Meta.Version)
	}
	if e, err := c.Lookup(latest); err != nil || e.Meta.Version != "1.2.0" {
		t.Fatalf("Lookup after a non-update commit: %v, %v", e, err)
	}
	// An update moves the pin; the old version stays for exact requests.
	if _, err := fakeInstall(c, latest, "1.3.0", demoBins, true); err != nil {
		t.Fatal(err)
	}
	if e, err := c.Lookup(latest); err != nil || e.Meta.Version != "1.3.0" {
		t.Fatalf("Lookup after update: %+v, %v", e, err)
	}
	exact := &Spec{Ecosystem: NPM, Name: "pinned", Version: "1.2.0"}
	if e, err := c.Lookup(exact); err != nil || e.Meta.Version != "1.2.0" {
		t.Errorf("Lookup of an exact cached version without a pin: %+v, %v", e, err)
	}
	if _, err := c.Lookup(&Spec{Ecosystem: NPM, Name: "pinned", Version: "^1.2"}); !errors.Is(err, ErrNotCached) {
		t.Errorf("Lookup of an unpinned range: %v, want ErrNotCached", err)
	}
	// A range gets its own pin.
	rng := &Spec{Ecosystem: NPM, Name: "pinned", Version: "^1.2"}
	if _, err := fakeInstall(c, rng, "1.3.0", demoBins, false); err != nil {
		t.Fatal(err)
	}
	pins, _ := readPins(filepath.Join(c.Root, "npm", "pinned"))
	if want := map[string]string{"": "1.3.0", "^1.2": "1.3.0"}; !reflect.DeepEqual(pins, want) {
		t.Errorf("pins = %v, want %v", pins, want)
	}
}

func TestCommitKeepsExistingVersion(t *testing.T) {
	needTool(t, "node")
	c := newCache(t)
	spec := &Spec{Ecosystem: NPM, Name: "keep"}
	first, err := fakeInstall(c, spec, "1.0.0", demoBins, false)
	if err != nil {
		t.Fatal(err)
	}
	stat1, _ := os.Stat(first.Dir)
	second, err := fakeInstall(c, &Spec{Ecosystem: NPM, Name: "keep", Version: "1.0.0"}, "1.0.0", demoBins, true)
	if err != nil {
		t.Fatal(err)
	}
	stat2, _ := os.Stat(second.Dir)
	if !os.SameFile(stat1, stat2) || !second.Meta.InstalledAt.Equal(first.Meta.InstalledAt) {
		t.Errorf("the second commit of 1.0.0 replaced the existing entry")
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Root, ".work")); len(ents) != 0 {
		t.Errorf("the discarded install left %d work directories", len(ents))
	}
}

func TestBins(t *testing.T) {
	needTool(t, "node")
	c := newCache(t)
	two := map[string]string{"tools": "bin/tools.js", "tools-admin": "bin/admin.js"}
	if _, err := fakeInstall(c, &Spec{Ecosystem: NPM, Name: "@x/tools"}, "1.0.0", two, false); err != nil {
		t.Fatal(err)
	}
	other := map[string]string{"alpha": "a.js", "beta": "b.js"}
	if _, err := fakeInstall(c, &Spec{Ecosystem: NPM, Name: "multi", Bin: "alpha"}, "1.0.0", other, false); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, bin, want, err string
	}{
		{"@x/tools", "", "bin/tools.js", ""},            // named like the unscoped package
		{"@x/tools", "tools-admin", "bin/admin.js", ""}, // chosen by -p PKG BIN
		{"@x/tools", "nope", "", `no executable "nope"; it has: tools, tools-admin`},
		{"multi", "", "", "several executables (alpha, beta)"},
		{"multi", "beta", "b.js", ""},
	} {
		e, err := c.Lookup(&Spec{Ecosystem: NPM, Name: tt.name, Bin: tt.bin})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s bin %q: err %v, want %q", tt.name, tt.bin, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s bin %q: %v", tt.name, tt.bin, err)
			continue
		}
		if !strings.HasSuffix(e.Exec[1], filepath.FromSlash("/"+tt.name+"/"+tt.want)) {
			t.Errorf("%s bin %q: Exec %q, want …/%s", tt.name, tt.bin, e.Exec, tt.want)
		}
	}
	// A single bin is the default whatever its name.
	if name, target, err := pickBin("@s/pkg", map[string]string{"other": "x.js"}, "", "how"); err != nil || name != "other" || target != "x.js" {
		t.Errorf("pickBin with one bin = %q, %q, %v", name, target, err)
	}
	if _, _, err := pickBin("@s/pkg", nil, "", "how"); err == nil || !strings.Contains(err.Error(), "no executables") {
		t.Errorf("pickBin without bins: %v", err)
	}
}

func TestCorruption(t *testing.T) {
	needTool(t, "node")
	const script = "node_modules/@demo/server/dist/cli.js"
	tests := []struct {
		name    string
		damage  func(dir string) error
		fast    bool   // Lookup notices; otherwise only Verify(true)
		path    string // the file the error names
		message string
	}{
		{"truncated", func(dir string) error { return os.Truncate(filepath.Join(dir, script), 3) }, true, script, "size is 3 bytes"},
		{"modified", func(dir string) error {
			p := filepath.Join(dir, script)
			b, _ := os.ReadFile(p)
			b[len(b)-2] = 'X'
			return os.WriteFile(p, b, 0o755)
		}, true, script, "modified after it was installed"},
		{"modified, mtime restored", func(dir string) error {
			p := filepath.Join(dir, script)
			st, _ := os.Stat(p)
			b, _ := os.ReadFile(p)
			b[len(b)-2] = 'X'
			if err := os.WriteFile(p, b, 0o755); err != nil {
				return err
			}
			return os.Chtimes(p, st.ModTime(), st.ModTime())
		}, false, script, "content changed"},
		{"chmod +x", func(dir string) error { return os.Chmod(filepath.Join(dir, "node_modules/dep-a/index.js"), 0o755) }, true, "node_modules/dep-a/index.js", "mode is 0755, installed as 0644"},
		{"added executable", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "node_modules/dep-a/evil.sh"), []byte("#!/bin/sh\n"), 0o755)
		}, true, "node_modules/dep-a/evil.sh", "unexpected executable file"},
		{"removed", func(dir string) error { return os.Remove(filepath.Join(dir, "node_modules/dep-a/index.js")) }, true, "node_modules/dep-a/index.js", "missing"},
		{"replaced by a symlink", func(dir string) error {
			p := filepath.Join(dir, "node_modules/dep-a/index.js")
			os.Remove(p)
			return os.Symlink("/etc/passwd", p)
		}, true, "node_modules/dep-a/index.js", "file type changed to symlink"},
		{"symlink retargeted", func(dir string) error {
			p := filepath.Join(dir, "node_modules/.bin/server")
			os.Remove(p)
			return os.Symlink("/bin/sh", p)
		}, true, "node_modules/.bin/server", `symlink points to "/bin/sh"`},
		{"metadata lost", func(dir string) error { return os.Remove(filepath.Join(dir, metaFile)) }, true, metaFile, "missing"},
		{"metadata garbled", func(dir string) error { return os.WriteFile(filepath.Join(dir, metaFile), []byte("{"), 0o644) }, true, metaFile, "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t)
			spec := &Spec{Ecosystem: NPM, Name: "@demo/server"}
			e, err := fakeInstall(c, spec, "1.2.0", demoBins, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.damage(e.Dir); err != nil {
				t.Fatal(err)
			}
			_, err = c.Lookup(spec)
			if !tt.fast {
				if err != nil {
					t.Fatalf("Lookup: %v (the fast check was not expected to notice)", err)
				}
				err = e.Verify(true)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CorruptError", err)
			}
			if want := filepath.Join(e.Dir, filepath.FromSlash(tt.path)); ce.Path != want || !strings.Contains(ce.Reason, tt.message) {
				t.Errorf("CorruptError{%s, %q}, want {%s, …%q…}", ce.Path, ce.Reason, want, tt.message)
			}
			if !strings.Contains(err.Error(), "remove it to reinstall") {
				t.Errorf("error %q does not say what to do", err)
			}
			// The way out: remove the version, install again.
			if err := c.Remove("npm:"+spec.Name, "1.2.0"); err != nil {
				t.Fatal(err)
			}
			if _, err := fakeInstall(c, spec, "1.2.0", demoBins, false); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Lookup(spec); err != nil {
				t.Errorf("Lookup after reinstall: %v", err)
			}
		})
	}
}

func TestSealTightensModes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o4777); err != nil {
		t.Fatal(err)
	}
	files, err := seal(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode() != 0o755 || files[0].Mode != "0755" {
		t.Errorf("sealed mode %v / %s, want 0755 without setuid and group/other write", st.Mode(), files[0].Mode)
	}
}

func TestRemoveAndList(t *testing.T) {
	needTool(t, "node")
	c := newCache(t)
	a := &Spec{Ecosystem: NPM, Name: "@demo/server"}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if _, err := fakeInstall(c, a, v, demoBins, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fakeInstall(c, &Spec{Ecosystem: NPM, Name: "other"}, "0.1.0", demoBins, false); err != nil {
		t.Fatal(err)
	}
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Meta.Name+"@"+e.Meta.Version)
		if e.Exec == nil {
			t.Errorf("List entry %s has no Exec", e.Dir)
		}
	}
	if want := []string{"@demo/server@1.0.0", "@demo/server@2.0.0", "other@0.1.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	// Removing the pinned version drops its pin.
	if err := c.Remove("@demo/server", "2.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(a); !errors.Is(err, ErrNotCached) {
		t.Errorf("Lookup after removing the pinned version: %v, want ErrNotCached", err)
	}
	if _, err := c.Lookup(&Spec{Ecosystem: NPM, Name: a.Name, Version: "1.0.0"}); err != nil {
		t.Errorf("Lookup of the version left: %v", err)
	}
	if err := c.Remove("@demo/server", "2.0.0"); !errors.Is(err, ErrNotCached) {
		t.Errorf("second Remove: %v, want ErrNotCached", err)
	}
	unlock, err := c.Lock(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Remove("@demo/server", "")
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(&Spec{Ecosystem: NPM, Name: a.Name, Version: "1.0.0"}); !errors.Is(err, ErrNotCached) {
		t.Errorf("Lookup after removing all: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Root, "npm", "@demo+server", ".lock")); err != nil {
		t.Errorf("Remove deleted the lock file, which another process may hold: %v", err)
	}
	if err := c.Remove("never-installed", ""); !errors.Is(err, ErrNotCached) {
		t.Errorf("Remove of an unknown package: %v", err)
	}
	if err := c.Remove("other", "../../etc"); err == nil {
		t.Errorf("Remove accepted a path as a version")
	}
	list, _ = c.List()
	if len(list) != 1 || list[0].Meta.Name != "other" {
		t.Errorf("List after removals = %+v", list)
	}
	// A damaged entry is still listed, so it can be removed.
	os.Remove(filepath.Join(list[0].Dir, metaFile))
	list, _ = c.List()
	if len(list) != 1 || list[0].Meta.Name != "other" || list[0].Meta.Version != "0.1.0" {
		t.Errorf("List with a damaged entry = %+v", list)
	}
}

func TestCrashedInstallLeavesNoEntry(t *testing.T) {
	c := newCache(t)
	spec := &Spec{Ecosystem: NPM, Name: "crash"}
	p, err := c.prepare(spec, PlanOptions{Registry: fakeRegistry})
	if err != nil {
		t.Fatal(err)
	}
	// Half an install, then the process dies: nothing is committed.
	if err := writeFakeTree(p.WorkDir, spec.Name, "1.0.0", demoBins); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(p.WorkDir, "package-lock.json"))
	if _, err := c.Lookup(spec); !errors.Is(err, ErrNotCached) {
		t.Errorf("Lookup with an install in progress: %v, want ErrNotCached", err)
	}
	if list, _ := c.List(); len(list) != 0 {
		t.Errorf("List shows %d entries", len(list))
	}
	// Committing the incomplete tree fails and cleans up after itself.
	if _, err := c.Commit(spec, p, false); err == nil || !strings.Contains(err.Error(), "no lockfile") {
		t.Errorf("Commit without a lockfile: %v", err)
	}
	if _, err := os.Stat(p.WorkDir); err == nil {
		t.Errorf("a failed Commit left its work directory")
	}
	// Stale work directories of crashed installs go away with the next plan.
	stale := filepath.Join(c.Root, ".work", "npm-crash-old")
	if err := os.MkdirAll(filepath.Join(stale, "node_modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * staleWork)
	os.Chtimes(stale, old, old)
	p, err = c.prepare(spec, PlanOptions{Registry: fakeRegistry})
	if err != nil {
		t.Fatal(err)
	}
	c.Discard(p)
	if ents, _ := os.ReadDir(filepath.Join(c.Root, ".work")); len(ents) != 0 {
		t.Errorf(".work still holds %v", ents)
	}
	// Discard never deletes outside the cache.
	outside := t.TempDir()
	c.Discard(&Plan{WorkDir: outside})
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("Discard removed a directory outside the cache")
	}
}

// ensure is what the launcher does on every run: lock, look up, install
// if missing, commit. installs counts the installs in a file, so that
// several processes can share the count.
func ensure(ctx context.Context, c *Cache, spec *Spec, installs string) (*Entry, error) {
	unlock, err := c.Lock(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer unlock()
	e, err := c.Lookup(spec)
	if !errors.Is(err, ErrNotCached) {
		return e, err
	}
	f, err := os.OpenFile(installs, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	f.Close()
	time.Sleep(50 * time.Millisecond) // an install takes a while: widen the race
	return fakeInstall(c, spec, "1.0.0", demoBins, false)
}

const helperEnv = "MCPBOX_PACKAGES_TEST_HELPER"

// runHelper is the body of the test binary re-executed as a second mcpbox
// process (see TestMain).
func runHelper() int {
	root, installs := os.Getenv(helperEnv), os.Getenv(helperEnv+"_INSTALLS")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Say we are ready, then wait for the start signal, so that both
	// processes and the test's goroutines race for real.
	if err := os.WriteFile(fmt.Sprintf("%s.ready.%d", installs, os.Getpid()), nil, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	for {
		if _, err := os.Stat(installs + ".go"); err == nil {
			break
		}
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "helper: no start signal")
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := ensure(ctx, &Cache{Root: root}, &Spec{Ecosystem: NPM, Name: "@race/server"}, installs); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	os.Exit(m.Run())
}

func TestConcurrentFirstRunsInstallOnce(t *testing.T) {
	needTool(t, "node")
	c := newCache(t)
	installs := filepath.Join(t.TempDir(), "installs")
	spec := &Spec{Ecosystem: NPM, Name: "@race/server"}
	ctx := testutil.Context(t, 60*time.Second)

	var procs []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+c.Root, helperEnv+"_INSTALLS="+installs)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	for {
		ready, _ := filepath.Glob(installs + ".ready.*")
		if len(ready) == len(procs) {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the helper processes did not start")
		}
		time.Sleep(time.Millisecond)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	dirs := make([]string, 8)
	errs := make([]error, 8)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			e, err := ensure(ctx, c, spec, installs)
			errs[i] = err
			if err == nil {
				dirs[i] = e.Dir
			}
		}()
	}
	if err := os.WriteFile(installs+".go", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	close(start)
	wg.Wait()
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		} else if dirs[i] != dirs[0] {
			t.Errorf("goroutine %d got %s, goroutine 0 %s", i, dirs[i], dirs[0])
		}
	}
	b, _ := os.ReadFile(installs)
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Errorf("%d installs ran (by pids %q), want exactly 1", n, strings.Fields(string(b)))
	}
	t.Logf("installed once, by pid %s (test pid %d)", strings.TrimSpace(string(b)), os.Getpid())
}

func TestLockHonoursContext(t *testing.T) {
	c := newCache(t)
	spec := &Spec{Ecosystem: NPM, Name: "busy"}
	unlock, err := c.Lock(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Lock(ctx, spec); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another mcpbox") {
		t.Errorf("Lock on a held lock: %v, want a deadline error that says why it waited", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lock gave up after %v", d)
	}
	unlock()
	unlock() // a second call is harmless
	u2, err := c.Lock(context.Background(), spec)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	u2()
}

func TestCacheRejectsBadNames(t *testing.T) {
	c := newCache(t)
	for _, s := range []*Spec{
		{Ecosystem: NPM, Name: "../etc"},
		{Ecosystem: NPM, Name: "a/b"},
		{Ecosystem: PyPI, Name: "a/b"},
		{Ecosystem: "cargo", Name: "x"},
	} {
		if _, err := c.Lookup(s); err == nil || errors.Is(err, ErrNotCached) {
			t.Errorf("Lookup(%+v) = %v, want an error", s, err)
		}
	}
	if _, err := (&Cache{Root: "relative"}).Lookup(&Spec{Ecosystem: NPM, Name: "x"}); err == nil {
		t.Errorf("a relative cache root was accepted")
	}
}

// BenchmarkLookup measures what every cached run pays, on an entry shaped
// like server-memory's (about 3,700 files in 800 directories).
func BenchmarkLookup(b *testing.B) {
	if _, err := exec.LookPath("node"); err != nil {
		b.Skip("node is not installed")
	}
	c := &Cache{Root: filepath.Join(b.TempDir(), "packages")}
	spec := &Spec{Ecosystem: NPM, Name: "@bench/server"}
	p, err := c.prepare(spec, PlanOptions{Registry: fakeRegistry})
	if err != nil {
		b.Fatal(err)
	}
	if err := writeFakeTree(p.WorkDir, spec.Name, "1.0.0", demoBins); err != nil {
		b.Fatal(err)
	}
	for d := range 800 {
		dir := filepath.Join(p.WorkDir, "node_modules", fmt.Sprintf("dep-%03d", d/8), "lib", fmt.Sprint(d%8))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 5 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.js", f)), make([]byte, 4500), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := c.Commit(spec, p, false); err != nil {
		b.Fatal(err)
	}
	e, err := c.Lookup(spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Lookup", func(b *testing.B) {
		for range b.N {
			if _, err := c.Lookup(spec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify(false)", func(b *testing.B) {
		for range b.N {
			if err := e.Verify(false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify(true)", func(b *testing.B) {
		for range b.N {
			if err := e.Verify(true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
