package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/clientconfig"
	"github.com/mcpbox/mcpbox/launcher/doctor"
)

func TestDoctorCommandNoContainerd(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv(runtimeEnv, "")
	bogus := filepath.Join(dir, "containerd.sock")

	// containerd asked for: for an ordinary user, auto would pick the
	// rootless runtime and skip the containerd checks.
	stdout, stderr, err := runApp(t, context.Background(), "--runtime", "containerd", "--containerd-address", bogus, "doctor")
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

	stdout, _, err = runApp(t, context.Background(), "--runtime", "containerd", "--containerd-address", bogus, "doctor", "--json")
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Fatalf("--json: err = %v, want ExitError code 1", err)
	}
	var report struct {
		OK     bool
		Checks []doctor.Result
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if report.OK || len(report.Checks) == 0 || report.Checks[0].Name != "os" || checkNamed(report.Checks, "containerd").Status != doctor.Fail {
		t.Errorf("--json report: %+v", report)
	}
}

func checkNamed(checks []doctor.Result, name string) doctor.Result {
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	return doctor.Result{}
}

// TestDoctorClients: doctor counts the servers still unsandboxed, in the
// client config files that the command finds.
func TestDoctorClients(t *testing.T) {
	home := t.TempDir()
	p := filepath.Join(home, ".cursor", "mcp.json")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte(`{"mcpServers":{"a":{"command":"npx","args":["-y","x"]},"b":{"command":"/usr/bin/mcpbox","args":["run","--","uvx","y"]}}}`), 0o644)
	env := clientconfig.Env{OS: "linux", Home: home}
	var got doctor.Result
	for _, c := range doctor.Run(context.Background(), doctor.Options{Address: filepath.Join(home, "none.sock"), StateDir: t.TempDir(), CacheDir: t.TempDir(), Clients: doctorClients(env)}) {
		if c.Name == "clients" {
			got = c
		}
	}
	if got.Status != doctor.Warn || !strings.Contains(got.Detail, "Cursor: 1 of 2 stdio servers sandboxed; 1 still run with your full rights") || !strings.Contains(got.Fix, "mcpbox wrap") {
		t.Errorf("clients check: %+v", got)
	}
}

// TestDoctorClientsBroken: a client config file that does not parse reaches
// doctor as a broken file, not as one without servers.
func TestDoctorClientsBroken(t *testing.T) {
	home := t.TempDir()
	p := filepath.Join(home, ".cursor", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"mcpServers":`), 0o644); err != nil {
		t.Fatal(err)
	}
	files := doctorClients(clientconfig.Env{OS: "linux", Home: home})()
	if len(files) != 1 || !files[0].Broken || files[0].Display != "Cursor" {
		t.Errorf("doctorClients = %+v, want one broken Cursor file", files)
	}
}
