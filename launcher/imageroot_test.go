package launcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mcpbox/mcpbox/launcher/image"
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

// TestProfileImageError: an image reference image cannot read is the
// profile's fault (exit 2, --profile); other errors pass unchanged.
func TestProfileImageError(t *testing.T) {
	bad := errors.New(`image "Not A Ref": invalid reference format`)
	var usage *UsageError
	if err := profileImageError(&image.ArgError{Arg: "ref", Err: bad}); !errors.As(err, &usage) || usage.Flag != "profile" || err.Error() != `--profile: image "Not A Ref": invalid reference format` {
		t.Errorf("an ArgError became %v", err)
	}
	other := fmt.Errorf("launcher: %w: gone", image.ErrMissing)
	if err := profileImageError(other); err != other {
		t.Errorf("another error became %v", err)
	}
}
