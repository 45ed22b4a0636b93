package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootlessImageRootRefused: a profile whose root is an image needs
// containerd's image store; on the rootless runtime it is refused before
// anything starts, with the reason and what to do.
func TestRootlessImageRootRefused(t *testing.T) {
	e := newRootlessEnv(t)
	profile := filepath.Join(e.home, "img.yaml")
	writeFile(t, profile, "name: img\nextends: untrusted\nrootfs: image\nimage: localhost/mcpbox-test:1\n")
	e.chown(profile)
	cmd := e.command("--profile", profile, "--", "/usr/bin/true")
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2 (usage)\n%s", err, out)
	}
	for _, want := range []string{"image roots need containerd's image store", "--runtime containerd"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(e.runtimeDir, "mcpbox", "sessions")); len(entries) != 0 {
		t.Errorf("a refused session left %d session directories", len(entries))
	}
}
