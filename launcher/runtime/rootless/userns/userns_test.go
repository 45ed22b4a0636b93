package userns

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestOwnMap: only the two-line map Reexec writes, with id 0 on the
// caller, counts as mcpbox's namespace; the initial namespace's identity
// map, a map for another uid and a map of root never do.
func TestOwnMap(t *testing.T) {
	for _, tc := range []struct {
		uidMap string
		uid    int
		want   bool
	}{
		{"         0       1000          1\n         1     100000          2\n", 1000, true},
		{"         0       1000          1\n         1     100000          1\n", 1000, false},
		{"         0          0 4294967295\n", 1000, false},
		{"         0          0 4294967295\n", 0, false},
		{"         0       1000          1\n         1     100000          2\n", 1001, false},
		{"         0       1000          1\n", 1000, false},
		{"         0          0          1\n         1     100000          2\n", 0, false},
		{"         0       1000          1\n         1     100000      65536\n", 1000, false},
		{"", 1000, false},
	} {
		if got := ownMap(tc.uidMap, tc.uid); got != tc.want {
			t.Errorf("ownMap(%q, %d) = %v, want %v", tc.uidMap, tc.uid, got, tc.want)
		}
	}
}

// TestInsideSpoofed: the stage variable alone, in the initial user
// namespace, does not make a process think it is in mcpbox's namespace,
// and a stage-1 variable outside a fresh namespace is dropped rather than
// obeyed (Continue returns instead of waiting on fd 3).
func TestInsideSpoofed(t *testing.T) {
	if os.Getenv("USERNS_TEST_CHILD") == "1" {
		Continue()
		_, in := Inside()
		os.Stdout.WriteString(map[bool]string{true: "inside", false: "outside"}[in] + " " + os.Getenv(envStage))
		os.Exit(0)
	}
	for _, stage := range []string{"2:1000:1000", "1:1000:1000", "2:0:0"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestInsideSpoofed$")
		cmd.Env = append(os.Environ(), "USERNS_TEST_CHILD=1", envStage+"="+stage)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if !strings.HasPrefix(string(out), "outside") {
			t.Errorf("with %s=%s in the initial namespace: %q, want outside", envStage, stage, out)
		}
		if strings.HasPrefix(stage, "1:") && strings.Contains(string(out), stage) {
			t.Errorf("a stage-1 variable outside a fresh namespace was kept: %q", out)
		}
	}
}
