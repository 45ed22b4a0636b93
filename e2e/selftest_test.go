package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher"
)

// TestSelftest runs `mcpbox selftest` for every built-in profile and
// requires every probe to pass: the sandbox's claims, checked from inside,
// the way an attacker sees it. mcpbox itself runs in a network namespace
// of the test's with no route out, so the probe's connects to public,
// metadata and private addresses cannot leave the machine even if the
// sandbox failed open.
func TestSelftest(t *testing.T) {
	e := newEnv(t)
	net := newTestNet(t, nil)
	ps, err := launcher.Catalog(launcher.Dirs{Config: t.TempDir()}).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) < 13 {
		t.Fatalf("%d built-in profiles", len(ps))
	}
	for _, p := range ps {
		t.Run(p.Name, func(t *testing.T) {
			cmd := exec.Command(e.bin, "--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir,
				"selftest", "--json", "--profile", p.Name)
			cmd.Env = e.environ()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := net.wrap(cmd).Output()
			var rep launcher.SelftestReport
			if jerr := json.Unmarshal(out, &rep); jerr != nil {
				t.Fatalf("selftest: %v, %v\n%s\n%s", err, jerr, out, stderr.String())
			}
			if len(rep.Results) < 40 || rep.Summary.Total != len(rep.Results) {
				t.Errorf("%d probe results, the probe counted %d", len(rep.Results), rep.Summary.Total)
			}
			for _, r := range rep.Results {
				if !r.Pass {
					t.Errorf("%s: %s %s %s: %s", r.Name, r.Outcome, r.Errno, r.Signal, r.Detail)
				}
			}
			if err != nil && rep.OK() {
				t.Errorf("selftest exited with %v though every probe passed\n%s", err, stderr.String())
			}
			if err == nil && !rep.OK() {
				t.Error("selftest exited 0 though a probe failed")
			}
		})
	}
}

// memfdProbes are the probes that try to execute a memfd.
var memfdProbes = []string{"fs/exec-memfd", "fs/execveat-memfd", "fs/memfd-mfd-exec"}

// selftestJSON runs `mcpbox selftest --json` with args before the command
// and returns the report and mcpbox's stderr.
func selftestJSON(t *testing.T, e *env, net *testNet, global []string, args ...string) (launcher.SelftestReport, string) {
	t.Helper()
	argv := append([]string{"--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir}, global...)
	cmd := exec.Command(e.bin, append(append(argv, "selftest", "--json"), args...)...)
	cmd.Env = e.environ()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := net.wrap(cmd).Output()
	var rep launcher.SelftestReport
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		t.Fatalf("selftest: %v, %v\n%s\n%s", err, jerr, out, stderr.String())
	}
	if err != nil && rep.OK() {
		t.Errorf("selftest exited with %v though every probe passed\n%s", err, stderr.String())
	}
	return rep, stderr.String()
}

// TestSelftestMemfdDeny runs the whole probe with --memfd deny, the mode
// of a kernel without a usable vm.memfd_noexec (Debian 12's 6.1, or 6.3 to
// 6.5) and of a runtime that cannot set it: every probe passes, the memfd
// ones because memfd_create itself fails with ENOSYS, and the info log
// says which mode the session used and why.
func TestSelftestMemfdDeny(t *testing.T) {
	e := newEnv(t)
	net := newTestNet(t, nil)
	list, err := exec.Command(filepath.Join(filepath.Dir(e.bin), "mcpbox-probe"), "-list", "-i-know-this-is-not-a-sandbox").Output()
	if err != nil {
		t.Fatalf("mcpbox-probe -list: %v", err)
	}
	want := strings.Count(string(list), "\n")

	rep, stderr := selftestJSON(t, e, net, []string{"--log-level", "info", "--memfd", "deny"}, "--profile", "untrusted")
	if rep.Summary.Total != want || len(rep.Results) != want || rep.Passed != want || !rep.OK() {
		t.Errorf("%d results, %d passed, the probe counted %d; want %d/%d", len(rep.Results), rep.Passed, rep.Summary.Total, want, want)
	}
	byName := map[string]launcher.ProbeResult{}
	for _, r := range rep.Results {
		byName[r.Name] = r
		if !r.Pass {
			t.Errorf("%s: %s %s %s: %s", r.Name, r.Outcome, r.Errno, r.Signal, r.Detail)
		}
	}
	for _, name := range memfdProbes {
		if r := byName[name]; r.Errno != "ENOSYS" {
			t.Errorf("%s: %s %s: %s; want memfd_create refused with ENOSYS", name, r.Outcome, r.Errno, r.Detail)
		}
	}
	if !strings.Contains(stderr, "msg=memfd mode=deny") || !strings.Contains(stderr, "memfd_create refused inside (--memfd deny") {
		t.Errorf("the info log does not say the session refuses memfd_create:\n%s", stderr)
	}
}

// TestSelftestMemfdHook: with --memfd hook the memfd probes are refused by
// the kernel (vm.memfd_noexec=2) and the seccomp rules, not by a missing
// memfd_create.
func TestSelftestMemfdHook(t *testing.T) {
	if _, err := os.Stat("/proc/sys/vm/memfd_noexec"); err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but the kernel has no vm.memfd_noexec (%v): the memfd hook is tested on Linux 6.6 or later", err)
		}
		t.Skipf("kernel without vm.memfd_noexec: %v", err)
	}
	e := newEnv(t)
	net := newTestNet(t, nil)
	rep, stderr := selftestJSON(t, e, net, []string{"--log-level", "info", "--memfd", "hook"}, "--run", "memfd")
	if !rep.OK() || len(rep.Results) != len(memfdProbes) {
		t.Errorf("%d results, ok=%v; want %d, all passed", len(rep.Results), rep.OK(), len(memfdProbes))
	}
	want := map[string]string{"fs/exec-memfd": "EACCES", "fs/execveat-memfd": "EPERM", "fs/memfd-mfd-exec": "EPERM"}
	for _, r := range rep.Results {
		if !r.Pass || r.Errno != want[r.Name] {
			t.Errorf("%s: %s %s: %s; want refused with %s", r.Name, r.Outcome, r.Errno, r.Detail, want[r.Name])
		}
	}
	if !strings.Contains(stderr, "msg=memfd mode=hook") {
		t.Errorf("the info log does not say the session uses the hook:\n%s", stderr)
	}
}
