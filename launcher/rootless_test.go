package launcher

import (
	"errors"
	"strings"
	"testing"
)

// TestAnnounceUnenforced: limits the runtime cannot enforce are named on
// stderr with the fix, or, when limits are required, refuse the session.
func TestAnnounceUnenforced(t *testing.T) {
	var stderr strings.Builder
	s := &session{opts: Options{Stderr: &stderr}, job: &job{}}
	fix := "fix: run `sudo mcpbox setup rootless --user alice`"
	if err := s.announceUnenforced([]string{"memory", "pids"}, fix); err != nil {
		t.Fatal(err)
	}
	if got := stderr.String(); !strings.Contains(got, "limits not enforced: memory, pids") || !strings.Contains(got, fix) {
		t.Errorf("stderr = %q, want the limits named with the fix", got)
	}

	stderr.Reset()
	s.job.requireLimits = true
	err := s.announceUnenforced([]string{"cpu"}, fix)
	var usage *UsageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "cpu") || !strings.Contains(err.Error(), "not started") || !strings.Contains(err.Error(), fix) {
		t.Errorf("with limits required: %v, want a refusal naming cpu and the fix", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("a refusal also wrote %q", stderr.String())
	}
	if err := s.announceUnenforced(nil, fix); err != nil {
		t.Errorf("nothing missing: %v", err)
	}
}
