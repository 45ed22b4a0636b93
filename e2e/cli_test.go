package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mcpboxCLI runs the built binary with a fresh set of XDG directories.
func mcpboxCLI(t *testing.T, xdg []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(mcpboxBinary(t), args...)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir()}, xdg...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestProfilesCommands: list (table and JSON), show, validate and init.
func TestProfilesCommands(t *testing.T) {
	xdg, root := xdgEnv(t)
	out, errOut, code := mcpboxCLI(t, xdg, "profiles", "list", "--json")
	var rows []struct{ Name, Source string }
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) < 13 {
		t.Fatalf("profiles list --json: exit %d, %d rows\n%s%s", code, len(rows), out, errOut)
	}
	if out, _, code := mcpboxCLI(t, xdg, "profiles", "list"); code != 0 || !strings.Contains(out, "untrusted") || !strings.Contains(out, "npm:@modelcontextprotocol/server-filesystem") {
		t.Errorf("profiles list: exit %d\n%s", code, out)
	}
	if out, _, code := mcpboxCLI(t, xdg, "profiles", "show", "memory"); code != 0 || !strings.Contains(out, "MEMORY_FILE_PATH") {
		t.Errorf("profiles show memory: exit %d\n%s", code, out)
	}

	// init writes a starter that validate accepts; a broken file is
	// reported with its line and field, and exit 2.
	starter, _, code := mcpboxCLI(t, xdg, "profiles", "init", "--", "npx", "-y", "@acme/mcp-server", "/data")
	if code != 0 || !strings.Contains(starter, "@acme/mcp-server") {
		t.Fatalf("profiles init: exit %d\n%s", code, starter)
	}
	good := filepath.Join(root, "acme.yaml")
	writeFile(t, good, starter)
	if out, errOut, code := mcpboxCLI(t, xdg, "profiles", "validate", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("validate the starter: exit %d\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(root, "bad.yaml")
	writeFile(t, bad, "name: bad\nnetwork:\n  allow: [api.example.com]\n  deny: [x]\n")
	if _, errOut, code := mcpboxCLI(t, xdg, "profiles", "validate", good, bad); code != 2 || !strings.Contains(errOut, "bad.yaml:4") || !strings.Contains(errOut, "network.deny") {
		t.Errorf("validate a broken profile: exit %d\n%s", code, errOut)
	}
}

// TestPackagesCommands: list and rm on an empty cache, and pull refusing a
// host command.
func TestPackagesCommands(t *testing.T) {
	xdg, _ := xdgEnv(t)
	if out, errOut, code := mcpboxCLI(t, xdg, "packages", "list"); code != 0 || out != "" {
		t.Errorf("packages list on an empty cache: exit %d, %q %q", code, out, errOut)
	}
	if _, errOut, code := mcpboxCLI(t, xdg, "packages", "rm"); code != 2 || !strings.Contains(errOut, "name one package") {
		t.Errorf("packages rm without a name: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := mcpboxCLI(t, xdg, "pull", "--", "node", "server.js"); code != 2 || !strings.Contains(errOut, "not a package command") {
		t.Errorf("pull of a host command: exit %d\n%s", code, errOut)
	}
}
