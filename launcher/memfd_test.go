package launcher

import (
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/sandbox"
)

func TestReleaseAtLeast(t *testing.T) {
	for release, want := range map[string]bool{
		"6.6":                           true,
		"6.6.0":                         true,
		"6.18.44-fc-v1300":              true,
		"7.0.0":                         true,
		"10.1":                          true,
		"6.12.9+bpo-amd64":              true,
		"6.5.13-1-pve":                  false,
		"6.1.0-13-amd64":                false,
		"5.14.0-362.el9.x86_64":         false,
		"5.19.0":                        false,
		"6":                             false,
		"":                              false,
		"linux":                         false,
		"6.x":                           false,
		"6.10rc1":                       true,
		"4.19.0-27-cloud-amd64":         false,
		"6.8.0-1015-microsoft-standard": true,
	} {
		if got := releaseAtLeast(release, 6, 6); got != want {
			t.Errorf("releaseAtLeast(%q, 6, 6) = %v, want %v", release, got, want)
		}
	}
}

// TestChooseMemfd: the hook only where it can work, the deny mode
// everywhere else, and what was asked for when it was.
func TestChooseMemfd(t *testing.T) {
	const init = "/usr/local/bin/mcpbox-init"
	hook := sandbox.MemfdNoExecHook{Path: init}
	deny := sandbox.MemfdDeny{}
	for _, tc := range []struct {
		name      string
		setting   MemfdSetting
		host      memfdHost
		rootHooks bool
		want      sandbox.Memfd
		why       string
	}{
		{"Debian 12", MemfdAuto, memfdHost{"6.1.0-13-amd64", -1}, true, deny, "kernel 6.1.0-13-amd64 has no vm.memfd_noexec"},
		{"6.3", MemfdAuto, memfdHost{"6.3.0", 0}, true, deny, "Linux 6.3 to 6.5"},
		{"6.5 at 2", MemfdAuto, memfdHost{"6.5.0", 2}, true, deny, "Linux 6.3 to 6.5"},
		{"6.6", MemfdAuto, memfdHost{"6.6.0", 0}, true, hook, "hook"},
		{"6.18 at 1", MemfdAuto, memfdHost{"6.18.44", 1}, true, hook, "1 on the host"},
		{"unreadable release", MemfdAuto, memfdHost{"weird", 0}, true, deny, "kernel weird"},
		// A rootless runtime cannot raise the setting; a host that
		// enforces 2 itself needs no raising, only the hook's check.
		{"rootless", MemfdAuto, memfdHost{"6.18.44", 0}, false, deny, "not the host's root"},
		{"rootless at 1", MemfdAuto, memfdHost{"6.18.44", 1}, false, deny, "(1 on the host)"},
		{"rootless, host at 2", MemfdAuto, memfdHost{"6.18.44", 2}, false, hook, "hook"},
		{"deny asked for", MemfdDeny, memfdHost{"6.18.44", 0}, true, deny, "--memfd deny"},
		{"hook asked for", MemfdHook, memfdHost{"6.18.44", 0}, true, hook, "hook"},
		{"hook asked for on 6.1", MemfdHook, memfdHost{"6.1.0", -1}, true, hook, "although kernel 6.1.0 has no vm.memfd_noexec"},
		{"unknown setting", MemfdSetting(9), memfdHost{"6.1.0", -1}, true, deny, "has no vm.memfd_noexec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chooseMemfd(tc.setting, tc.host, tc.rootHooks, init)
			if c.mode != tc.want || !strings.Contains(c.why, tc.why) {
				t.Errorf("chooseMemfd = %#v, %q; want %#v, with %q", c.mode, c.why, tc.want, tc.why)
			}
		})
	}
}

func TestParseMemfdSetting(t *testing.T) {
	for s, want := range map[string]MemfdSetting{"": MemfdAuto, "auto": MemfdAuto, "hook": MemfdHook, "deny": MemfdDeny} {
		got, err := ParseMemfdSetting(s)
		if err != nil || got != want {
			t.Errorf("ParseMemfdSetting(%q) = %v, %v; want %v", s, got, err, want)
		}
		if s != "" && got.String() != s {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), s)
		}
	}
	for _, s := range []string{"Deny", "off", "none", "hook,deny"} {
		if _, err := ParseMemfdSetting(s); err == nil {
			t.Errorf("ParseMemfdSetting(%q): no error", s)
		}
	}
}
