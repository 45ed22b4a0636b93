package memfd

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

// TestChoose: the hook only where it can work, the deny mode
// everywhere else, and what was asked for when it was.
func TestChoose(t *testing.T) {
	const init = "/usr/local/bin/mcpbox-init"
	hook := sandbox.MemfdNoExecHook{Path: init}
	deny := sandbox.MemfdDeny{}
	for _, tc := range []struct {
		name      string
		setting   Setting
		host      Host
		rootHooks bool
		want      sandbox.Memfd
		why       string
	}{
		{"Debian 12", Auto, Host{"6.1.0-13-amd64", -1}, true, deny, "kernel 6.1.0-13-amd64 has no vm.memfd_noexec"},
		{"6.3", Auto, Host{"6.3.0", 0}, true, deny, "Linux 6.3 to 6.5"},
		{"6.5 at 2", Auto, Host{"6.5.0", 2}, true, deny, "Linux 6.3 to 6.5"},
		{"6.6", Auto, Host{"6.6.0", 0}, true, hook, "hook"},
		{"6.18 at 1", Auto, Host{"6.18.44", 1}, true, hook, "1 on the host"},
		{"unreadable release", Auto, Host{"weird", 0}, true, deny, "kernel weird"},
		// A rootless runtime cannot raise the setting; a host that
		// enforces 2 itself needs no raising, only the hook's check.
		{"rootless", Auto, Host{"6.18.44", 0}, false, deny, "not the host's root"},
		{"rootless at 1", Auto, Host{"6.18.44", 1}, false, deny, "(1 on the host)"},
		{"rootless, host at 2", Auto, Host{"6.18.44", 2}, false, hook, "hook"},
		{"deny asked for", Deny, Host{"6.18.44", 0}, true, deny, "--memfd deny"},
		{"hook asked for", Hook, Host{"6.18.44", 0}, true, hook, "hook"},
		{"hook asked for on 6.1", Hook, Host{"6.1.0", -1}, true, hook, "although kernel 6.1.0 has no vm.memfd_noexec"},
		{"unknown setting", Setting(9), Host{"6.1.0", -1}, true, deny, "has no vm.memfd_noexec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Choose(tc.setting, tc.host, tc.rootHooks, init)
			if c.Mode != tc.want || !strings.Contains(c.Why, tc.why) {
				t.Errorf("Choose = %#v, %q; want %#v, with %q", c.Mode, c.Why, tc.want, tc.why)
			}
		})
	}
}

func TestParseSetting(t *testing.T) {
	for s, want := range map[string]Setting{"": Auto, "auto": Auto, "hook": Hook, "deny": Deny} {
		got, err := ParseSetting(s)
		if err != nil || got != want {
			t.Errorf("ParseSetting(%q) = %v, %v; want %v", s, got, err, want)
		}
		if s != "" && got.String() != s {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), s)
		}
	}
	for _, s := range []string{"Deny", "off", "none", "hook,deny"} {
		if _, err := ParseSetting(s); err == nil {
			t.Errorf("ParseSetting(%q): no error", s)
		}
	}
}
