package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher/doctor"
)

// fakeHelpers returns an "mcpbox" executable path in a temp dir that also
// holds (empty) mcpbox-init and mcpbox-probe.
func fakeHelpers(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"mcpbox-init", "mcpbox-probe"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "mcpbox")
}

// TestDoctorHost runs launcher/doctor's checks against this host's
// containerd: none fails, and the daemon, nftables and the state and cache
// directories are ok (the state dir created 0700).
func TestDoctorHost(t *testing.T) {
	addr := testutil.RequiresContainerd(t)
	state, cache := filepath.Join(t.TempDir(), "state"), filepath.Join(t.TempDir(), "cache")
	checks := doctor.Run(testutil.Context(t, 60e9), doctor.Options{Address: addr, StateDir: state, CacheDir: cache, Executable: fakeHelpers(t)})
	for _, c := range checks {
		t.Logf("%s %s: %s", c.Status, c.Name, c.Detail)
		if c.Status == doctor.Fail {
			t.Errorf("%s failed: %s (fix: %s)", c.Name, c.Detail, c.Fix)
		}
	}
	byName := map[string]doctor.Result{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	for _, name := range []string{"containerd", "containerd version", "nftables", "state dir", "cache dir"} {
		c, ok := byName[name]
		if !ok {
			t.Fatalf("no %q check in %+v", name, checks)
		}
		if c.Status != doctor.OK {
			t.Errorf("%s: %s, want ok: %s", name, c.Status, c.Detail)
		}
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir not created 0700: %v %v", fi, err)
	}
}
