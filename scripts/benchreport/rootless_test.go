package main

import (
	"testing"
	"time"
)

func ms2(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// TestPhasesOf places a rootless session's log on the client's clock:
// the steps before the session from when their lines arrived, the
// session's own from what mcpbox timed.
func TestPhasesOf(t *testing.T) {
	lines := []stamped{
		{ms2(50), `time=2026-12-07T22:16:08.738Z level=INFO msg=runtime runtime=rootless why="uid 1002 may not open /run/containerd/containerd.sock" from=auto`},
		{ms2(70), `time=2026-12-07T22:16:08.758Z level=DEBUG msg=phase name="user namespace" took=18.5ms`},
		{ms2(125), `time=2026-12-07T22:16:08.824Z level=INFO msg=profile name=untrusted why="default: untrusted"`},
		{ms2(131), `time=2026-12-07T22:16:08.831Z level=DEBUG msg=phase name=resolve took=5ms since_start=5ms`},
		{ms2(135), `time=2026-12-07T22:16:08.835Z level=DEBUG msg=phase name=seccomp took=4ms since_start=9ms`},
		{ms2(136), `time=2026-12-07T22:16:08.836Z level=DEBUG msg=phase name=connect took=777µs since_start=9.777ms`},
		{ms2(138), `time=2026-12-07T22:16:08.838Z level=DEBUG msg=phase name=spec took=1.223ms since_start=11ms`},
		{ms2(240), `time=2026-12-07T22:16:08.942Z level=DEBUG msg=phase name=create took=100ms since_start=111ms`},
		{ms2(261), `time=2026-12-07T22:16:08.966Z level=DEBUG msg=phase name=start took=20ms since_start=131ms`},
		{ms2(700), `time=2026-12-07T22:16:09.419Z level=DEBUG msg=phase name="first byte" took=438ms since_start=569ms`},
	}
	got := phasesOf(lines, ms2(696))
	want := map[string]time.Duration{
		phStart:   ms2(50),
		phUserns:  ms2(20),
		phAgain:   ms2(56), // the user namespace's line to resolve's start (131 - 5)
		phPrepare: ms2(11),
		phCreate:  ms2(100),
		phStartC:  ms2(20),
		phServer:  ms2(438),
		phRest:    ms2(1), // 696 - 126 - 569
	}
	for k, w := range want {
		if d := got[k] - w; d > time.Microsecond || d < -time.Microsecond {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("phases %v, want %d of them", got, len(want))
	}

	// The containerd runtime: no user namespace; what comes after the
	// runtime's line until the session is the profile.
	var root []stamped
	for _, l := range lines {
		if l.at != ms2(70) {
			root = append(root, l)
		}
	}
	got = phasesOf(root, ms2(696))
	if _, ok := got[phUserns]; ok || got[phAgain] != ms2(76) {
		t.Errorf("containerd: user namespace %v, again %v; want none and 76ms", got[phUserns], got[phAgain])
	}

	// A session that never answered has no phases to show.
	if got := phasesOf(lines[:9], ms2(696)); got != nil {
		t.Errorf("no first byte: %v, want nil", got)
	}
}
