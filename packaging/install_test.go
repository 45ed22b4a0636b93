package packaging

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher/apparmor"
)

var binaries = []string{"mcpbox", "mcpbox-init", "mcpbox-probe"}

// runMake runs make in the repository with args and extra environment, and
// returns its combined output.
func runMake(t *testing.T, env []string, args ...string) string {
	t.Helper()
	testutil.RequiresCommand(t, "make")
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = testutil.RepoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fakeParser writes a stand-in apparmor_parser that accepts (exit 0) or
// refuses (exit 1) every profile, so that both of apparmor.sh's paths are
// taken whatever AppArmor this host has; launcher/apparmor's tests parse
// the profile with a real AppArmor 4 parser.
func fakeParser(t *testing.T, dir string, code int) string {
	t.Helper()
	p := filepath.Join(dir, "apparmor_parser-"+strconv.Itoa(code))
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit "+strconv.Itoa(code)+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want a regular file with %v", path, st.Mode(), want)
	}
}

func requireSameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// `make install DESTDIR=… PREFIX=/usr` puts the three binaries side by side
// in /usr/bin, 0755, where the installed mcpbox finds its helpers; the
// AppArmor profile for /usr/bin/mcpbox goes to /etc/apparmor.d only where
// the parser accepts it; `make uninstall` takes all of it away.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds mcpbox and runs make (tier 3)")
	}
	tmp := testutil.TempDir(t)
	bin, root := filepath.Join(tmp, "bin"), filepath.Join(tmp, "root")
	vars := []string{"DESTDIR=" + root, "PREFIX=/usr", "BIN=" + bin}
	accept := []string{"APPARMOR_PARSER=" + fakeParser(t, tmp, 0)}
	runMake(t, accept, append([]string{"install"}, vars...)...)

	for _, name := range binaries {
		installed := filepath.Join(root, "usr", "bin", name)
		requireMode(t, installed, 0o755)
		requireSameFile(t, installed, filepath.Join(bin, name))
	}
	profile := filepath.Join(root, "etc", "apparmor.d", "usr.bin.mcpbox")
	want, err := apparmor.Profile("/usr/bin/mcpbox")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(profile); err != nil || !bytes.Equal(got, want) {
		t.Errorf("installed profile %s = %q, %v; want Profile(/usr/bin/mcpbox)", profile, got, err)
	}
	requireMode(t, profile, 0o644)
	// The manual page, from the same text as --help.
	manPage := filepath.Join(root, "usr", "share", "man", "man1", "mcpbox.1")
	requireMode(t, manPage, 0o644)
	if page, err := os.ReadFile(manPage); err != nil || !bytes.Contains(page, []byte(".TH mcpbox 1")) || !bytes.Contains(page, []byte("RUNTIMES")) {
		t.Errorf("manual page %s: %v, want mcpbox(1) with the help's RUNTIMES section", manPage, err)
	}

	// The installed mcpbox looks for its helpers where make put them.
	mcpbox := filepath.Join(root, "usr", "bin", "mcpbox")
	out, _ := exec.Command(mcpbox, "doctor").CombinedOutput()
	for _, name := range binaries[1:] {
		if line := "✓ " + name + ": " + filepath.Join(root, "usr", "bin", name); !strings.Contains(string(out), line) {
			t.Errorf("mcpbox doctor of the installed mcpbox has no line %q:\n%s", line, out)
		}
	}

	runMake(t, accept, append([]string{"uninstall"}, vars...)...)
	for _, p := range []string{filepath.Join(root, "usr", "bin", "mcpbox"), filepath.Join(root, "usr", "bin", "mcpbox-init"), filepath.Join(root, "usr", "bin", "mcpbox-probe"), profile, manPage} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("make uninstall left %s", p)
		}
	}

	// Where AppArmor refuses the profile (before 4.0, e.g. Debian 12), the
	// install still succeeds, without it.
	refuse := []string{"APPARMOR_PARSER=" + fakeParser(t, tmp, 1)}
	out2 := runMake(t, refuse, append([]string{"install"}, vars...)...)
	if _, err := os.Lstat(profile); err == nil {
		t.Errorf("make install with a parser that refuses the profile installed %s", profile)
	}
	if !strings.Contains(out2, "not installed") {
		t.Errorf("make install did not say why the profile was not installed:\n%s", out2)
	}
	requireMode(t, filepath.Join(root, "usr", "bin", "mcpbox"), 0o755)

	// Another program's profile (or an administrator's) at the place is
	// never replaced.
	foreign := "# not mcpbox's\nprofile /usr/bin/mcpbox { }\n"
	if err := os.MkdirAll(filepath.Dir(profile), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFileT(t, profile, foreign)
	out3 := runMake(t, accept, append([]string{"install"}, vars...)...)
	if got, _ := os.ReadFile(profile); string(got) != foreign {
		t.Errorf("make install replaced a profile that is not mcpbox's: %q", got)
	}
	if !strings.Contains(out3, "is not mcpbox's profile") {
		t.Errorf("make install did not say why it left the profile:\n%s", out3)
	}
}

// TestProfileCheck: `make install` into the live system renders no
// profile for an mcpbox a user could replace (apparmorprofile -check).
func TestProfileCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs go run (tier 3)")
	}
	tmp := testutil.TempDir(t)
	bin := filepath.Join(tmp, "user", "mcpbox")
	if err := os.MkdirAll(filepath.Dir(bin), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(bin), 0o777)
	writeFileT(t, bin, "#!/bin/sh\n")
	cmd := exec.Command("go", "run", "./scripts/apparmorprofile", "-check", "-o", filepath.Join(tmp, "out"), bin)
	cmd.Dir = testutil.RepoRoot(t)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("apparmorprofile -check: %v\n%s", err, stderr.String())
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "no AppArmor profile installed") {
		t.Errorf("for a binary in a world-writable directory: stdout %q, stderr %q; want no profile and why", stdout.String(), stderr.String())
	}
	if m, _ := filepath.Glob(filepath.Join(tmp, "out", "*")); len(m) != 0 {
		t.Errorf("apparmorprofile -check wrote %v", m)
	}
}

func writeFileT(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// command runs name with args and returns its output without the trailing
// newline; it fails the test if the command fails.
func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return strings.TrimRight(string(out), "\n")
}
