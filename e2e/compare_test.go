package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestCompareRootless is the rootless column of `make compare`, checked:
// `mcpbox selftest --profile untrusted` on the containerd runtime (root)
// and on the rootless runtime (the CI user), held together by the compare
// tool the make target uses: every probe that passes on containerd must
// pass rootless. The user's limits are delegated (newRootlessEnv), so the
// tool may excuse no limit probe, and mcpbox must not say it ran without
// one. Both run in a network namespace of the test's with loopback only.
func TestCompareRootless(t *testing.T) {
	e := newEnv(t)
	r := newRootlessEnv(t)
	net := newTestNet(t, nil)
	dir := t.TempDir()

	cmd := exec.Command(e.bin, "--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir,
		"selftest", "--json", "--profile", "untrusted")
	cmd.Env = e.environ()
	containerd := selftestFile(t, net.wrap(cmd), filepath.Join(dir, "containerd"))

	// nsenter rather than net.wrap: `ip netns exec` also mounts a new
	// /sys, without the cgroup mounts runc needs for the limits.
	cmd = exec.Command("nsenter", "--net=/run/netns/"+net.name, "setpriv", "--reuid", strconv.Itoa(r.uid), "--regid", strconv.Itoa(r.gid),
		"--clear-groups", r.bin, "selftest", "--json", "--profile", "untrusted")
	cmd.Env = r.environ()
	cmd.Dir = r.home
	rootless := selftestFile(t, cmd, filepath.Join(dir, "rootless"))
	if b, _ := os.ReadFile(rootless + ".err"); strings.Contains(string(b), "limits not enforced") {
		t.Errorf("the rootless selftest ran without limits though they are delegated:\n%s", b)
	}

	tool := exec.Command("go", "run", "./scripts/compare", "-col", "containerd="+containerd, "-col", "rootless="+rootless,
		"-stderr", "rootless="+rootless+".err", "-keep", "containerd=rootless")
	tool.Dir = testutil.RepoRoot(t)
	var stderr strings.Builder
	tool.Stderr = &stderr
	out, err := tool.Output()
	if err != nil {
		t.Fatalf("the rootless runtime does not keep what the containerd runtime holds: %v\n%s\n%s", err, stderr.String(), out)
	}
	if !strings.Contains(string(out), `Every probe that passes under "containerd" passes under "rootless".`) {
		t.Errorf("compare did not check the rootless column:\n%s", out)
	}
}

// selftestFile runs a `mcpbox selftest --json` command, writes its report
// to base.json and its stderr to base.json.err, and returns base.json. A
// probe that fails makes selftest exit 1, which is compare's to judge.
func selftestFile(t *testing.T, cmd *exec.Cmd, base string) string {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	file := base + ".json"
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file+".err", []byte(stderr.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
