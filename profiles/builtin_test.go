package profiles

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current built-in profiles")

// builtinNames lists the files of the embedded catalog.
func builtinNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, r := range builtinRefs() {
		names = append(names, r.name)
	}
	if len(names) == 0 {
		t.Fatal("the built-in catalog is empty")
	}
	return names
}

// policy returns p without what describes the file (name, description,
// match, extends, source, positions), for comparing what two profiles allow.
func policy(p *Profile) Profile {
	q := *p.clone()
	q.Name, q.Description, q.Extends, q.Match, q.Source, q.File, q.pos = "", "", "", nil, "", "", nil
	return q
}

func TestBuiltins(t *testing.T) {
	c := NewCatalog("")
	want := []string{"brave-search", "everything", "fetch", "filesystem", "git", "github", "memory",
		"postgres", "puppeteer", "sequential-thinking", "slack", "time", "untrusted"}
	if got := builtinNames(t); !reflect.DeepEqual(got, want) {
		t.Errorf("built-ins = %v, want %v", got, want)
	}
	matched := map[Match]string{}
	for _, name := range builtinNames(t) {
		t.Run(name, func(t *testing.T) {
			raw, err := fs.ReadFile(builtinFS, "builtin/"+name+".yaml")
			if err != nil {
				t.Fatal(err)
			}
			// Every built-in says at the top why it gets what it gets.
			if !bytes.HasPrefix(raw, []byte("# "+name+": ")) {
				t.Errorf("builtin/%s.yaml does not start with a comment %q explaining the profile", name, "# "+name+": ")
			}
			p, err := c.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != name || p.Source != SourceBuiltin || p.File != "builtin/"+name+".yaml" {
				t.Errorf("Name, Source, File = %q, %q, %q", p.Name, p.Source, p.File)
			}
			if p.Description == "" {
				t.Error("no description")
			}
			if name != "untrusted" {
				if p.Extends != "untrusted" {
					t.Errorf("extends %q, want untrusted: built-ins start from the strictest profile", p.Extends)
				}
				if len(p.Match) == 0 {
					t.Error("no match: a built-in for a server must say which package it is for")
				}
			}
			for _, m := range p.Match {
				if other, dup := matched[m]; dup {
					t.Errorf("%s %s is matched by %s too", m.Ecosystem, m.Package, other)
				}
				matched[m] = name
				got, why, err := c.Resolve("", m.Ecosystem, m.Package)
				if err != nil || got.Name != name || why != WhyBuiltin {
					t.Errorf("Resolve(%s %s) = %v, %q, %v; want %s, %q", m.Ecosystem, m.Package, got, why, err, name, WhyBuiltin)
				}
			}
			// Built-ins never run install scripts and never open the
			// network to everything.
			if p.Install.Scripts {
				t.Error("install.scripts is true")
			}
			for _, h := range p.Network.Allow {
				if h == "*" || strings.HasPrefix(h, "cidr:") {
					t.Errorf("network.allow has %q", h)
				}
			}
		})
	}
}

func TestUntrusted(t *testing.T) {
	p, err := NewCatalog("").Get("untrusted")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Network.Allow) != 0 || p.PathArgs != AccessNone || len(p.Mounts) != 0 || len(p.Env) != 0 ||
		len(p.Setenv) != 0 || len(p.Seccomp.Allow) != 0 || len(p.Match) != 0 || p.Install.Scripts {
		t.Errorf("untrusted grants something: %+v", p)
	}
	if p.Limits.Memory > 256<<20 || p.Limits.PIDs > 64 || p.Limits.CPUs > 1 || p.Limits.Tmp > 64<<20 {
		t.Errorf("untrusted limits are not small: %+v", p.Limits)
	}
	if p.Tools.Pin != ActionBlock {
		t.Errorf("tools.pin = %s, want block", p.Tools.Pin)
	}
	// A profile that extends nothing starts from the same values.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"bare.yaml": "name: bare\n"})
	bare, err := NewCatalog("").LoadFile(filepath.Join(dir, "bare.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := policy(bare), policy(p); !reflect.DeepEqual(got, want) {
		t.Errorf("a bare profile gets\n%+v\nbut untrusted is\n%+v\nkeep defaults() and builtin/untrusted.yaml in step", got, want)
	}
}

// TestBuiltinGolden compares the effective profile of each built-in, after
// extends, with testdata/golden/NAME.yaml. Run with -update to rewrite them
// and review the diff like code: it is exactly what each server may do.
func TestBuiltinGolden(t *testing.T) {
	c := NewCatalog("")
	dir := filepath.Join("testdata", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range builtinNames(t) {
		t.Run(name, func(t *testing.T) {
			p, err := c.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(dir, name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./profiles -run TestBuiltinGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("effective profile differs from %s (rerun with -update if intended):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
	// Golden files of removed built-ins must go too.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, ok := builtinRefOf(strings.TrimSuffix(e.Name(), ".yaml")); !ok {
			t.Errorf("%s has no built-in profile", filepath.Join(dir, e.Name()))
		}
	}
}
