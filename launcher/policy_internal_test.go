package launcher

import (
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// TestDeniedSyscallLine pins the exact bytes of the audit line for a
// syscall that --report-violations denied.
func TestDeniedSyscallLine(t *testing.T) {
	at := time.Date(2026, 11, 26, 13, 0, 1, 5000, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		ev   seccomp.Event
		want string
	}{
		{seccomp.Event{Syscall: "mount", Detail: `target="/tmp" fstype="tmpfs"`, Time: at},
			`{"detail":"denied: target=\"/tmp\" fstype=\"tmpfs\"","dir":"s2c","finding":"mount","kind":"policy","policy":"seccomp","severity":"medium","time":"2026-11-26T12:00:01.000005Z"}`},
		{seccomp.Event{Syscall: "syscall_999", Detail: "a<b>&\n\x7f\xff\u2028", Time: at.Add(-5000)},
			`{"detail":"denied: a\u003cb\u003e\u0026\n` + "\x7f" + `\ufffd\u2028","dir":"s2c","finding":"syscall_999","kind":"policy","policy":"seccomp","severity":"medium","time":"2026-11-26T12:00:01Z"}`},
	} {
		if got := string(deniedSyscallLine(tc.ev)); got != tc.want+"\n" {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
