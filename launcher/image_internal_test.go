package launcher

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestImageBinds: an image entry is bound whole unless something else is
// mounted at or below it; then its children are, around the taken paths;
// symlinks are made, not bound.
func TestImageBinds(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"usr/bin", "etc/ssl/certs", "home/someone", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"usr/bin/node", "etc/passwd", "etc/os-release"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/lib", filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	binds, links, err := imageBinds(dir, []string{"/tmp", "/home/sandbox", "/etc/passwd", "/usr/local/cache/pkg"})
	if err != nil {
		t.Fatal(err)
	}
	var dests []string
	for _, b := range binds {
		if !b.ReadOnly || b.Source != filepath.Join(dir, b.Destination) {
			t.Errorf("bind %+v: want a read-only bind from the image", b)
		}
		dests = append(dests, b.Destination)
	}
	slices.Sort(dests)
	want := []string{"/etc/os-release", "/etc/ssl", "/home/someone", "/usr/bin"}
	if !slices.Equal(dests, want) {
		t.Errorf("binds %v, want %v", dests, want)
	}
	if len(links) != 1 || links[0] != (imageLink{path: "/lib", target: "usr/lib"}) {
		t.Errorf("links %v, want /lib -> usr/lib", links)
	}
}

// TestBuildLayerDeterministic: the same files give the same layer.
func TestBuildLayerDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a", "x"), filepath.Join(dir, "b", "y")
	for _, f := range []string{a, b} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l1, err := buildLayer([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	now := filepath.Join(dir, "a")
	if err := os.Chtimes(now, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	l2, err := buildLayer([]string{b, a})
	if err != nil {
		t.Fatal(err)
	}
	if l1.diffID != l2.diffID || string(l1.gz) != string(l2.gz) || l1.files != 2 {
		t.Errorf("layers differ (%s, %s) or hold %d files", l1.diffID, l2.diffID, l1.files)
	}
}
