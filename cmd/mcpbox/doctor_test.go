package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/launcher"
)

func TestDoctorCommandNoContainerd(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	bogus := filepath.Join(dir, "containerd.sock")

	stdout, stderr, err := runApp(t, context.Background(), "--containerd-address", bogus, "doctor")
	var exit *launcher.ExitError
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Fatalf("err = %v, want ExitError code 1\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	lines := strings.Split(stdout, "\n")
	found := false
	for i, line := range lines {
		if strings.HasPrefix(line, "✗ containerd: ") && strings.Contains(line, bogus) {
			found = true
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "    fix: ") ||
				!strings.Contains(lines[i+1], "make setup") && !strings.Contains(lines[i+1], "systemctl start containerd") {
				t.Errorf("no fix line after %q:\n%s", line, stdout)
			}
		}
	}
	if !found {
		t.Errorf("no ✗ containerd line naming %s:\n%s", bogus, stdout)
	}
	if !strings.Contains(stdout, "✓ os: ") {
		t.Errorf("no ✓ os line:\n%s", stdout)
	}

	stdout, _, err = runApp(t, context.Background(), "--containerd-address", bogus, "doctor", "--json")
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Fatalf("--json: err = %v, want ExitError code 1", err)
	}
	var report struct {
		OK     bool
		Checks []launcher.Check
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if report.OK || len(report.Checks) == 0 || report.Checks[1].Name != "containerd" || report.Checks[1].Status != launcher.CheckFail {
		t.Errorf("--json report: %+v", report)
	}
}
