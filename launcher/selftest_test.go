package launcher_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

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
