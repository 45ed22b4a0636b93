package trial

import (
	"os/exec"
	"testing"
)

// TestNaughtyFixtureParses checks the syntax of the misbehaving fixture
// server the trial tests run in a sandbox. Running it here, outside one,
// would let it write into this machine's $HOME, so it is only parsed.
func TestNaughtyFixtureParses(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: cannot check testdata/naughty/server.js")
	}
	if out, err := exec.Command(node, "--check", "../../testdata/naughty/server.js").CombinedOutput(); err != nil {
		t.Fatalf("node --check: %v\n%s", err, out)
	}
}
