package launcher

import (
	"testing"

	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox"
	"github.com/mcpbox/mcpbox/sandbox/egress"
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// TestBuiltinProfilesRender: every built-in profile passes the launcher's
// own checks (allowlist syntax, extra syscalls) and renders to an OCI spec
// with its limits.
func TestBuiltinProfilesRender(t *testing.T) {
	ps, err := Catalog(Dirs{Config: t.TempDir()}).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) < 13 {
		t.Fatalf("%d built-in profiles, want at least 13", len(ps))
	}
	base, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		t.Run(p.Name, func(t *testing.T) {
			if err := checkProfile(p); err != nil {
				t.Fatal(err)
			}
			if _, err := egress.ParseAllowlist(p.Network.Allow); err != nil {
				t.Fatal(err)
			}
			filter := base
			if len(p.Seccomp.Allow) > 0 {
				if filter, err = seccomp.WithAllowed(base, p.Seccomp.Allow...); err != nil {
					t.Fatal(err)
				}
			}
			limits := mergeLimits(p.Limits, sandbox.Limits{})
			spec, err := sandbox.Spec(sandbox.Policy{
				Args: []string{"/usr/bin/node", "/srv/server.js"}, Root: "/run/mcpbox/x/rootfs",
				Limits: limits, Seccomp: filter, Memfd: sandbox.MemfdNoExecHook{Path: "/usr/local/bin/mcpbox-init"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := *spec.Linux.Resources.Memory.Limit; got != p.Limits.Memory {
				t.Errorf("memory limit %d, want the profile's %d", got, p.Limits.Memory)
			}
			if got := *spec.Linux.Resources.Pids; got.Limit != p.Limits.PIDs {
				t.Errorf("pids limit %d, want the profile's %d", got.Limit, p.Limits.PIDs)
			}
		})
	}
}

func TestMergeLimits(t *testing.T) {
	got := mergeLimits(profilesLimits(256<<20, 64, 0.5, 64<<20), sandbox.Limits{Memory: 1 << 30, CPUs: 2})
	want := sandbox.Limits{Memory: 1 << 30, Pids: 64, CPUs: 2, Tmp: 64 << 20}
	if got != want {
		t.Errorf("mergeLimits = %+v, want %+v (flags override the profile)", got, want)
	}
}

func profilesLimits(mem, pids int64, cpus float64, tmp int64) profiles.Limits {
	return profiles.Limits{Memory: mem, PIDs: pids, CPUs: cpus, Tmp: tmp}
}
