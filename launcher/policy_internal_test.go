package launcher

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// TestDeniedSyscallLine pins the exact bytes of the audit line for a
// syscall that --report-violations denied. The line is written by the
// audit package's encoder, as the broker's lines are: fields in the
// broker's order (time first). Before, it was json.Marshal of a map:
// sorted keys and encoding/json's escapes (\u003c, \n). The test keeps
// that encoding to show that the change is one of spelling: both decode
// to the same object.
func TestDeniedSyscallLine(t *testing.T) {
	at := time.Date(2026, 11, 26, 13, 0, 1, 5000, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		ev        seccomp.Event
		want, was string
	}{
		{seccomp.Event{Syscall: "mount", Detail: `target="/tmp" fstype="tmpfs"`, Time: at},
			`{"time":"2026-11-26T12:00:01.000005Z","dir":"s2c","kind":"policy","policy":"seccomp","finding":"mount","severity":"medium","detail":"denied: target=\"/tmp\" fstype=\"tmpfs\""}`,
			`{"detail":"denied: target=\"/tmp\" fstype=\"tmpfs\"","dir":"s2c","finding":"mount","kind":"policy","policy":"seccomp","severity":"medium","time":"2026-11-26T12:00:01.000005Z"}`},
		{seccomp.Event{Syscall: "syscall_999", Detail: "a<b>&\n\x7f\xff\u2028", Time: at.Add(-5000)},
			`{"time":"2026-11-26T12:00:01Z","dir":"s2c","kind":"policy","policy":"seccomp","finding":"syscall_999","severity":"medium","detail":"denied: a<b>&\u000a\u007f\ufffd\u2028"}`,
			`{"detail":"denied: a\u003cb\u003e\u0026\n` + "\x7f" + `\ufffd\u2028","dir":"s2c","finding":"syscall_999","kind":"policy","policy":"seccomp","severity":"medium","time":"2026-11-26T12:00:01Z"}`},
	} {
		got := deniedSyscallLine(tc.ev)
		if string(got) != tc.want+"\n" {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
		var now, before map[string]any
		if err := json.Unmarshal(got, &now); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(tc.was), &before); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(now, before) {
			t.Errorf("decodes to %v, the json.Marshal line to %v", now, before)
		}
	}
}
