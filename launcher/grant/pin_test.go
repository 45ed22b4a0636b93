package grant

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"

	"github.com/mcpbox/mcpbox/sandbox"
)

// TestPins: a bind's source is opened without following symlinks, and
// what a process's root shows at the destination is compared with it.
func TestPins(t *testing.T) {
	dir := testutil.TempDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Mkdir(a, 0o755)
	os.Mkdir(b, 0o755)
	os.WriteFile(filepath.Join(a, "f"), nil, 0o644)
	os.Symlink(a, filepath.Join(dir, "link"))

	// A symlink anywhere in a source: it changed since it was checked.
	for _, src := range []string{filepath.Join(dir, "link"), filepath.Join(dir, "link", "f")} {
		if _, err := PinMounts([]sandbox.Mount{{Source: src, Destination: "/x"}}); err == nil || !strings.Contains(err.Error(), "changed after it was checked") {
			t.Errorf("PinMounts(%s) = %v, want a refusal", src, err)
		}
	}

	// This process's root is the host's: a destination at the source's
	// own path shows it, another path does not.
	pins, err := PinMounts([]sandbox.Mount{{Source: a, Destination: a}, {Source: filepath.Join(a, "f"), Destination: filepath.Join(a, "f")}})
	if err != nil {
		t.Fatal(err)
	}
	defer pins.Close()
	if err := pins.Verify(uint32(os.Getpid())); err != nil {
		t.Errorf("Verify of matching mounts: %v", err)
	}
	swapped, err := PinMounts([]sandbox.Mount{{Source: a, Destination: b}})
	if err != nil {
		t.Fatal(err)
	}
	defer swapped.Close()
	if err := swapped.Verify(uint32(os.Getpid())); err == nil || !strings.Contains(err.Error(), "something other than "+a) {
		t.Errorf("Verify with %s showing at %s = %v, want a refusal", a, b, err)
	}
	// Swapped after the pin: the path now leads to another directory.
	moved, err := PinMounts([]sandbox.Mount{{Source: b, Destination: b}})
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	if err := os.Rename(b, filepath.Join(dir, "b-old")); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ln", "-s", a, b).Run(); err != nil {
		t.Fatal(err)
	}
	if err := moved.Verify(uint32(os.Getpid())); err == nil {
		t.Errorf("Verify after %s was swapped for a symlink to %s: no error", b, a)
	}
}
