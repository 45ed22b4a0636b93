package sandbox

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func mountAt(s *specs.Spec, dst string) (specs.Mount, bool) {
	for _, m := range s.Mounts {
		if m.Destination == dst {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func hasOpts(m specs.Mount, opts ...string) bool {
	for _, o := range opts {
		if !slices.Contains(m.Options, o) {
			return false
		}
	}
	return true
}

func TestOptionsOnEmptySpec(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   SpecOpt
		check func(*specs.Spec) bool
	}{
		{"WithReadonlyRoot", WithReadonlyRoot("/r"), func(s *specs.Spec) bool {
			return s.Root.Path == "/r" && s.Root.Readonly
		}},
		{"WithProcess", WithProcess([]string{"/bin/x", "a"}, []string{"A=1"}, "/w"), func(s *specs.Spec) bool {
			p := s.Process
			return !p.Terminal && reflect.DeepEqual(p.Args, []string{"/bin/x", "a"}) && reflect.DeepEqual(p.Env, []string{"A=1"}) && p.Cwd == "/w"
		}},
		{"WithUser", WithUser(1000, 1001), func(s *specs.Spec) bool {
			return s.Process.User.UID == 1000 && s.Process.User.GID == 1001 && s.Process.User.AdditionalGids == nil
		}},
		{"WithNoCapabilities", WithNoCapabilities(), func(s *specs.Spec) bool {
			c := s.Process.Capabilities
			return c.Bounding != nil && c.Effective != nil && c.Inheritable != nil && c.Permitted != nil && c.Ambient != nil &&
				len(c.Bounding)+len(c.Effective)+len(c.Inheritable)+len(c.Permitted)+len(c.Ambient) == 0
		}},
		{"WithNoNewPrivileges", WithNoNewPrivileges(), func(s *specs.Spec) bool { return s.Process.NoNewPrivileges }},
		{"WithNamespaces new netns", WithNamespaces(""), func(s *specs.Spec) bool {
			var types []string
			for _, ns := range s.Linux.Namespaces {
				if ns.Path != "" {
					return false
				}
				types = append(types, string(ns.Type))
			}
			return strings.Join(types, ",") == "pid,ipc,uts,mount,network,cgroup"
		}},
		{"WithNamespaces netns path", WithNamespaces("/run/netns/x"), func(s *specs.Spec) bool {
			for _, ns := range s.Linux.Namespaces {
				if ns.Type == specs.NetworkNamespace {
					return ns.Path == "/run/netns/x"
				}
			}
			return false
		}},
		{"WithMaskedPaths", WithMaskedPaths(), func(s *specs.Spec) bool {
			m := s.Linux.MaskedPaths
			return slices.Contains(m, "/proc/kcore") && slices.Contains(m, "/proc/interrupts") && slices.Contains(m, "/sys/devices/virtual/powercap")
		}},
		{"WithReadonlyPaths", WithReadonlyPaths(), func(s *specs.Spec) bool {
			return slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") && slices.Contains(s.Linux.ReadonlyPaths, "/proc/sysrq-trigger")
		}},
		{"WithSystemMounts", WithSystemMounts(1 << 20), func(s *specs.Spec) bool {
			proc, _ := mountAt(s, "/proc")
			shm, _ := mountAt(s, "/dev/shm")
			sys, _ := mountAt(s, "/sys")
			cg, _ := mountAt(s, "/sys/fs/cgroup")
			_, pts := mountAt(s, "/dev/pts")
			_, mq := mountAt(s, "/dev/mqueue")
			dev, _ := mountAt(s, "/dev")
			return len(s.Mounts) == 7 && pts && mq && dev.Type == "tmpfs" &&
				proc.Type == "proc" && hasOpts(proc, "nosuid", "noexec", "nodev") && hasOpts(dev, "nosuid", "noexec") &&
				hasOpts(shm, "size=1024k", "noexec") && hasOpts(sys, "ro") && cg.Type == "cgroup" && hasOpts(cg, "ro")
		}},
		{"WithSystemMounts default shm", WithSystemMounts(0), func(s *specs.Spec) bool {
			shm, _ := mountAt(s, "/dev/shm")
			return hasOpts(shm, "size=65536k")
		}},
		{"WithTmpfs", WithTmpfs("/tmp", 1000), func(s *specs.Spec) bool {
			m, _ := mountAt(s, "/tmp")
			return m.Type == "tmpfs" && hasOpts(m, "nosuid", "nodev", "noexec", "mode=1777", "size=1000")
		}},
		{"WithHome", WithHome("/home/u", 0, 7, 8), func(s *specs.Spec) bool {
			m, _ := mountAt(s, "/home/u")
			return m.Type == "tmpfs" && hasOpts(m, "nosuid", "nodev", "noexec", "mode=0700", "uid=7", "gid=8", "size=65536k")
		}},
		{"WithBinds", WithBinds([]Mount{{Source: "/a", Destination: "/b/", ReadOnly: true}, {Source: "/c", Destination: "/d", NoExec: true}}), func(s *specs.Spec) bool {
			b, _ := mountAt(s, "/b")
			d, _ := mountAt(s, "/d")
			return b.Type == "bind" && b.Source == "/a" && reflect.DeepEqual(b.Options, []string{"bind", "nosuid", "nodev", "ro"}) &&
				reflect.DeepEqual(d.Options, []string{"bind", "nosuid", "nodev", "noexec"})
		}},
		// A writable bind is noexec unless it says WritableExec; on a
		// read-only bind WritableExec means nothing and NoExec decides.
		{"WithBinds writable", WithBinds([]Mount{
			{Source: "/a", Destination: "/rw"},
			{Source: "/a", Destination: "/rw-exec", WritableExec: true},
			{Source: "/a", Destination: "/rw-exec-noexec", WritableExec: true, NoExec: true},
			{Source: "/a", Destination: "/ro-exec", ReadOnly: true, WritableExec: true},
			{Source: "/a", Destination: "/ro-noexec", ReadOnly: true, NoExec: true, WritableExec: true},
		}), func(s *specs.Spec) bool {
			want := map[string][]string{
				"/rw":             {"bind", "nosuid", "nodev", "noexec"},
				"/rw-exec":        {"bind", "nosuid", "nodev"},
				"/rw-exec-noexec": {"bind", "nosuid", "nodev", "noexec"},
				"/ro-exec":        {"bind", "nosuid", "nodev", "ro"},
				"/ro-noexec":      {"bind", "nosuid", "nodev", "noexec", "ro"},
			}
			for dst, opts := range want {
				if m, _ := mountAt(s, dst); !reflect.DeepEqual(m.Options, opts) {
					return false
				}
			}
			return len(s.Mounts) == len(want)
		}},
		{"WithMemfdNoExec", WithMemfdNoExec("/opt/mcpbox/mcpbox-init"), func(s *specs.Spec) bool {
			h := s.Hooks
			if h == nil || len(h.CreateContainer) != 1 || len(h.Prestart)+len(h.CreateRuntime)+len(h.StartContainer)+len(h.Poststart)+len(h.Poststop) != 0 {
				return false
			}
			c := h.CreateContainer[0]
			return c.Path == "/opt/mcpbox/mcpbox-init" && reflect.DeepEqual(c.Args, []string{"/opt/mcpbox/mcpbox-init", MemfdHookArg}) &&
				c.Timeout != nil && *c.Timeout > 0 && len(c.Env) == 0
		}},
		{"WithLimits defaults", WithLimits(Limits{}), func(s *specs.Spec) bool {
			r := s.Linux.Resources
			return *r.Memory.Limit == DefaultMemory && *r.Memory.Swap == DefaultMemory && r.Pids.Limit == DefaultPids &&
				*r.CPU.Quota == 100000 && *r.CPU.Period == 100000
		}},
		{"WithLimits values", WithLimits(Limits{Memory: 1 << 30, Pids: 10, CPUs: 1.5}), func(s *specs.Spec) bool {
			r := s.Linux.Resources
			return *r.Memory.Limit == 1<<30 && *r.Memory.Swap == 1<<30 && r.Pids.Limit == 10 && *r.CPU.Quota == 150000
		}},
		{"WithDeviceAllowlist", WithDeviceAllowlist(), func(s *specs.Spec) bool {
			d := s.Linux.Resources.Devices
			if len(d) != 9 || d[0].Allow || d[0].Access != "rwm" {
				return false
			}
			for _, r := range d[1:] {
				if !r.Allow || r.Type != "c" || r.Access != "rwm" {
					return false
				}
			}
			return true
		}},
		{"WithRlimits", WithRlimits(0, 0), func(s *specs.Spec) bool {
			return reflect.DeepEqual(s.Process.Rlimits, []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 4096},
				{Type: "RLIMIT_CORE"},
				{Type: "RLIMIT_FSIZE", Hard: 1 << 30, Soft: 1 << 30},
			})
		}},
		{"WithSeccomp", WithSeccomp(fakeSeccomp()), func(s *specs.Spec) bool {
			return s.Linux.Seccomp.DefaultAction == specs.ActErrno
		}},
		{"WithHostname", WithHostname("box"), func(s *specs.Spec) bool { return s.Hostname == "box" }},
		{"WithCgroupsPath", WithCgroupsPath("/mcpbox/x"), func(s *specs.Spec) bool { return s.Linux.CgroupsPath == "/mcpbox/x" }},
		{"Compose empty", Compose(), func(s *specs.Spec) bool { return reflect.DeepEqual(s, &specs.Spec{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{}
			if err := tc.opt(s); err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				b, _ := json.MarshalIndent(s, "", "  ")
				t.Errorf("spec does not have what %s sets:\n%s", tc.name, b)
			}
			// Applying an option twice changes nothing.
			again := mustJSON(t, s)
			if err := tc.opt(s); err != nil {
				t.Fatal(err)
			}
			if got := mustJSON(t, s); got != again {
				t.Errorf("applying %s twice changed the spec", tc.name)
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  SpecOpt
		want string
	}{
		{"root outside the bundle", WithReadonlyRoot("../r"), "inside the bundle"},
		{"host root", WithReadonlyRoot("/"), "host's /"},
		{"no args", WithProcess(nil, nil, "/"), "no args"},
		{"relative cwd", WithProcess([]string{"/x"}, nil, "w"), "cwd"},
		{"relative netns", WithNamespaces("ns"), "network namespace"},
		{"relative tmpfs", WithTmpfs("tmp", 0), "tmpfs"},
		{"negative tmpfs", WithTmpfs("/tmp", -1), "negative"},
		{"relative home", WithHome("home", 0, 1, 1), "tmpfs"},
		{"negative shm", WithSystemMounts(-1), "negative"},
		{"relative bind source", WithBinds([]Mount{{Source: "a", Destination: "/a"}}), "source"},
		{"relative bind destination", WithBinds([]Mount{{Source: "/a", Destination: "a"}}), "destination"},
		{"negative memory", WithLimits(Limits{Memory: -5}), "memory"},
		{"NaN cpus", WithLimits(Limits{CPUs: nan()}), "cpus"},
		{"nil seccomp", WithSeccomp(nil), "no seccomp profile"},
		{"relative memfd hook", WithMemfdNoExec("mcpbox-init"), "memfd hook"},
		{"no memfd hook", WithMemfdNoExec(""), "memfd hook"},
		{"bad hostname", WithHostname("-x"), "hostname"},
		{"long label", WithHostname(strings.Repeat("a", 64)), "hostname"},
		{"compose stops at first error", Compose(WithHostname("ok"), WithSeccomp(nil), WithHostname("-bad")), "no seccomp profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opt(&specs.Spec{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sandbox: ") {
				t.Errorf("error = %v, want a sandbox: error containing %q", err, tc.want)
			}
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOptionOrder applies the options Spec uses in many orders and expects
// the same spec each time.
func TestOptionOrder(t *testing.T) {
	opts := []SpecOpt{
		WithReadonlyRoot("/r"),
		WithProcess([]string{"/bin/x"}, []string{"A=1"}, "/home/u"),
		WithUser(1000, 1000),
		WithNoCapabilities(),
		WithNoNewPrivileges(),
		WithRlimits(100, 200),
		WithHostname("h"),
		WithSystemMounts(0),
		WithTmpfs("/tmp", 0),
		WithHome("/home/u", 0, 1000, 1000),
		WithBinds([]Mount{
			{Source: "/usr", Destination: "/usr", ReadOnly: true},
			{Source: "/x", Destination: "/usr/local/x", ReadOnly: true},
			{Source: "/y", Destination: "/home/u/.y"},
			{Source: "/home", Destination: "/data"},
		}),
		WithNamespaces("/run/netns/n"),
		WithMaskedPaths(),
		WithReadonlyPaths(),
		WithLimits(Limits{Memory: 1 << 28}),
		WithDeviceAllowlist(),
		WithCgroupsPath("/c"),
		WithSeccomp(fakeSeccomp()),
		WithMemfdNoExec("/opt/mcpbox/mcpbox-init"),
	}
	ref := &specs.Spec{}
	if err := Compose(opts...)(ref); err != nil {
		t.Fatal(err)
	}
	want := mustJSON(t, ref)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		shuffled := slices.Clone(opts)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		s := &specs.Spec{}
		if err := Compose(shuffled...)(s); err != nil {
			t.Fatal(err)
		}
		if got := mustJSON(t, s); got != want {
			t.Fatalf("order %d gives a different spec:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestMountOrder(t *testing.T) {
	s := &specs.Spec{}
	err := Compose(
		WithBinds([]Mount{
			{Source: "/x", Destination: "/usr/local/x"},
			{Source: "/y", Destination: "/home/u/.cache"},
		}),
		WithHome("/home/u", 0, 1, 1),
		WithBinds([]Mount{{Source: "/usr", Destination: "/usr"}}),
		WithSystemMounts(0),
	)(s)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range s.Mounts {
		pos[m.Destination] = i
	}
	for _, pair := range [][2]string{
		{"/usr", "/usr/local/x"},
		{"/home/u", "/home/u/.cache"},
		{"/dev", "/dev/pts"},
		{"/dev", "/dev/shm"},
		{"/sys", "/sys/fs/cgroup"},
	} {
		if pos[pair[0]] >= pos[pair[1]] {
			t.Errorf("%s is mounted after %s: %v", pair[0], pair[1], pos)
		}
	}
}

func TestBindReplacesSameDestination(t *testing.T) {
	s := &specs.Spec{}
	err := Compose(
		WithTmpfs("/data", 0),
		WithBinds([]Mount{{Source: "/a", Destination: "/data"}}),
	)(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Mounts) != 1 || s.Mounts[0].Source != "/a" {
		t.Errorf("mounts = %+v, want only the bind", s.Mounts)
	}
}
