package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeSeccomp is a fixed stand-in for the real profile, so that these
// golden files do not change when sandbox/seccomp does.
func fakeSeccomp() *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
		},
	}
}

func minimalPolicy() Policy {
	return Policy{
		Args:    []string{"/usr/bin/node", "/srv/server.js"},
		Env:     []string{"PATH=" + DefaultPath, "HOME=" + DefaultHome},
		Root:    "/var/lib/mcpbox/sessions/s1/root",
		Seccomp: fakeSeccomp(),
		Memfd:   MemfdNoExecHook{Path: "/usr/local/bin/mcpbox-init"},
	}
}

func fullPolicy() Policy {
	p := minimalPolicy()
	p.Args = []string{"/usr/bin/node", "/opt/pkg/dist/index.js", "/home/alice/notes"}
	p.Env = append(p.Env, "NODE_USE_ENV_PROXY=1")
	p.Cwd = "/home/alice/notes"
	p.UID, p.GID = 1000, 1000
	p.Home = "/home/mcp"
	p.Hostname = "filesystem"
	p.NetNS = "/run/netns/mcpbox-filesystem-1a2b"
	p.CgroupsPath = "/mcpbox/mcpbox-filesystem-1a2b"
	p.Limits = Limits{Memory: 256 << 20, Pids: 64, CPUs: 0.5, Tmp: 16 << 20, NoFile: 1024, FSize: 100 << 20}
	p.Mounts = []Mount{
		// Deliberately child before parent: Spec must reorder them.
		{Source: "/home/alice/notes", Destination: "/home/alice/notes", NoExec: true},
		{Source: "/usr/lib/node_modules/pkg", Destination: "/opt/pkg", ReadOnly: true},
		{Source: "/usr", Destination: "/usr", ReadOnly: true},
		{Source: "/var/lib/mcpbox/sessions/s1/etc/passwd", Destination: "/etc/passwd", ReadOnly: true, NoExec: true},
		{Source: "/home/alice/.npmrc", Destination: "/home/mcp/.npmrc", ReadOnly: true, NoExec: true},
	}
	return p
}

// goldenJSON marshals s for comparison, without the thermal_throttle
// masks that depend on the host's CPUs.
func goldenJSON(t *testing.T, s *specs.Spec) []byte {
	t.Helper()
	c := *s
	l := *s.Linux
	l.MaskedPaths = nil
	for _, p := range s.Linux.MaskedPaths {
		if !strings.HasSuffix(p, "/thermal_throttle") {
			l.MaskedPaths = append(l.MaskedPaths, p)
		}
	}
	c.Linux = &l
	b, err := json.MarshalIndent(&c, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestSpecGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
	}{
		{"spec_default", minimalPolicy()},
		{"spec_mounts_netns_limits", fullPolicy()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Spec(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenJSON(t, s)
			path := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./sandbox -run TestSpecGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Spec() differs from %s (review, then regenerate with -update):\n%s", path, diffLines(string(want), string(got)))
			}
		})
	}
}

// diffLines is a small line diff, enough to point at what changed.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}

func TestSpecContents(t *testing.T) {
	s, err := Spec(minimalPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != OCIVersion {
		t.Errorf("ociVersion = %q, want %q", s.Version, OCIVersion)
	}
	if s.Root == nil || !s.Root.Readonly {
		t.Errorf("root = %+v, want read-only", s.Root)
	}
	p := s.Process
	if p.User.UID != 65534 || p.User.GID != 65534 || len(p.User.AdditionalGids) != 0 {
		t.Errorf("user = %+v, want 65534:65534 without extra groups", p.User)
	}
	if p.Terminal {
		t.Error("terminal = true")
	}
	if !p.NoNewPrivileges {
		t.Error("noNewPrivileges = false")
	}
	if p.Cwd != DefaultHome {
		t.Errorf("cwd = %q, want the home %q", p.Cwd, DefaultHome)
	}
	if want := minimalPolicy().Env; strings.Join(p.Env, "\n") != strings.Join(want, "\n") {
		t.Errorf("env = %q, want exactly %q", p.Env, want)
	}
	c := p.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective,
		"inheritable": c.Inheritable, "permitted": c.Permitted, "ambient": c.Ambient} {
		if set == nil || len(set) != 0 {
			t.Errorf("capabilities.%s = %#v, want empty and non-nil", name, set)
		}
	}
	if p.ApparmorProfile != "" || p.SelinuxLabel != "" || p.OOMScoreAdj != nil {
		t.Errorf("unexpected LSM labels or oomScoreAdj: %+v", p)
	}
	if s.Hostname != DefaultHostname {
		t.Errorf("hostname = %q", s.Hostname)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			t.Error("spec has a user namespace")
		}
		if ns.Type == specs.NetworkNamespace && ns.Path != "" {
			t.Errorf("network namespace path = %q, want a new one", ns.Path)
		}
	}
	if len(s.Linux.Namespaces) != 6 {
		t.Errorf("namespaces = %+v, want 6", s.Linux.Namespaces)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != DefaultMemory || *r.Memory.Swap != DefaultMemory {
		t.Errorf("memory = %d swap %d, want %d both", *r.Memory.Limit, *r.Memory.Swap, DefaultMemory)
	}
	if r.Pids.Limit != DefaultPids || *r.CPU.Quota != 100000 || *r.CPU.Period != 100000 {
		t.Errorf("pids %d, cpu %d/%d", r.Pids.Limit, *r.CPU.Quota, *r.CPU.Period)
	}
	if d := r.Devices[0]; d.Allow || d.Access != "rwm" || d.Type != "" {
		t.Errorf("first device rule = %+v, want deny all", d)
	}
	if s.Linux.Seccomp == nil || len(s.Linux.Devices) != 0 || len(s.Linux.Sysctl) != 0 {
		t.Errorf("seccomp %v, devices %v, sysctl %v", s.Linux.Seccomp, s.Linux.Devices, s.Linux.Sysctl)
	}
	mounts := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m
	}
	for _, dst := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/tmp", DefaultHome} {
		if _, ok := mounts[dst]; !ok {
			t.Errorf("no mount at %s", dst)
		}
	}
	home := strings.Join(mounts[DefaultHome].Options, ",")
	if !strings.Contains(home, "uid=65534") || !strings.Contains(home, "mode=0700") || !strings.Contains(home, "noexec") {
		t.Errorf("home options = %s", home)
	}
	if h := s.Hooks; h == nil || len(h.CreateContainer) != 1 || h.CreateContainer[0].Path != "/usr/local/bin/mcpbox-init" ||
		!slices.Equal(h.CreateContainer[0].Args, []string{"/usr/local/bin/mcpbox-init", MemfdHookArg}) {
		t.Errorf("hooks = %+v, want the memfd hook alone", s.Hooks)
	}
}

// TestSpecWritableMountsNoExec: whatever the policy asks, a sandbox has no
// writable mount on which a program it wrote could be executed, unless a
// bind says WritableExec.
func TestSpecWritableMountsNoExec(t *testing.T) {
	p := fullPolicy()
	p.Mounts = append(p.Mounts,
		Mount{Source: "/home/alice/data", Destination: "/data"},
		Mount{Source: "/home/alice/file", Destination: "/home/mcp/file"},
		Mount{Source: "/var/cache/install", Destination: "/work", WritableExec: true},
	)
	s, err := Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Mounts {
		writable := !slices.Contains(m.Options, "ro")
		if writable && !slices.Contains(m.Options, "noexec") && m.Destination != "/work" {
			t.Errorf("%s (%s) is writable and executable: %v", m.Destination, m.Type, m.Options)
		}
	}
	if w, _ := mountAt(s, "/work"); slices.Contains(w.Options, "noexec") {
		t.Errorf("/work with WritableExec is noexec: %v", w.Options)
	}
}

func TestSpecNoMemfdModeIsRefused(t *testing.T) {
	p := minimalPolicy()
	p.Memfd = nil
	if _, err := Spec(p); !errors.Is(err, errNoMemfd) {
		t.Errorf("error = %v, want errNoMemfd", err)
	}
}

// TestSpecMemfdDeny: in deny mode the spec has no hook, and it is built
// only with a seccomp profile that refuses memfd_create whatever the
// rules for it or the default say.
func TestSpecMemfdDeny(t *testing.T) {
	enosys := uint(38)
	deny := specs.LinuxSyscall{Names: []string{"memfd_create"}, Action: specs.ActErrno, ErrnoRet: &enosys}
	allowIf := specs.LinuxSyscall{Names: []string{"memfd_create", "read"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0x10, Op: specs.OpMaskedEqual}}}
	profile := func(def specs.LinuxSeccompAction, rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
		p := fakeSeccomp()
		p.DefaultAction = def
		p.Syscalls = append(p.Syscalls, rules...)
		return p
	}
	for _, tc := range []struct {
		name    string
		seccomp *specs.LinuxSeccomp
		ok      bool
	}{
		{"ENOSYS rule", profile(specs.ActErrno, deny), true},
		{"ENOSYS rule, allowing default", profile(specs.ActAllow, deny), true},
		{"no rule, denying default", profile(specs.ActErrno), true},
		{"no rule, killing default", profile(specs.ActKillProcess), true},
		{"no rule, allowing default", profile(specs.ActAllow), false},
		{"no rule, logging default", profile(specs.ActLog), false},
		{"conditional allow", profile(specs.ActErrno, allowIf), false},
		{"deny and a conditional allow", profile(specs.ActErrno, deny, allowIf), false},
		{"notify", profile(specs.ActErrno, specs.LinuxSyscall{Names: []string{"memfd_create"}, Action: specs.ActNotify}), false},
		{"trace", profile(specs.ActErrno, specs.LinuxSyscall{Names: []string{"memfd_create"}, Action: specs.ActTrace}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := minimalPolicy()
			p.Memfd = MemfdDeny{}
			p.Seccomp = tc.seccomp
			s, err := Spec(p)
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "memfd deny") {
					t.Errorf("Spec: %v, want a memfd deny error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Hooks != nil {
				t.Errorf("hooks = %+v, want none in deny mode", s.Hooks)
			}
			if s.Linux.Seccomp != tc.seccomp {
				t.Error("the spec's seccomp is not the policy's")
			}
		})
	}
}

// fakeMemfd is a Memfd from outside the package's two modes.
type fakeMemfd struct{ MemfdDeny }

func TestSpecUnknownMemfdMode(t *testing.T) {
	for _, m := range []Memfd{fakeMemfd{}, &MemfdNoExecHook{Path: "/usr/local/bin/mcpbox-init"}, &MemfdDeny{}} {
		p := minimalPolicy()
		p.Memfd = m
		if _, err := Spec(p); err == nil || !strings.Contains(err.Error(), "not one this package builds") {
			t.Errorf("%T: %v, want an error", m, err)
		}
	}
}

func TestSpecCopiesPolicy(t *testing.T) {
	p := minimalPolicy()
	s, err := Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	p.Args[1] = "changed"
	p.Env[0] = "CHANGED=1"
	if s.Process.Args[1] == "changed" || s.Process.Env[0] == "CHANGED=1" {
		t.Error("spec shares Args or Env with the policy")
	}
}

func TestSpecRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Policy)
		want   string
	}{
		{"no seccomp", func(p *Policy) { p.Seccomp = nil }, "sandbox: no seccomp profile: refusing to build a sandbox without one"},
		{"no memfd mode", func(p *Policy) { p.Memfd = nil }, "no memfd mode"},
		{"empty memfd hook", func(p *Policy) { p.Memfd = MemfdNoExecHook{} }, `memfd hook "": not an absolute path`},
		{"relative memfd hook", func(p *Policy) { p.Memfd = MemfdNoExecHook{Path: "bin/mcpbox-init"} }, `memfd hook "bin/mcpbox-init": not an absolute path`},
		{"memfd deny with an allowing profile", func(p *Policy) { p.Memfd, p.Seccomp.DefaultAction = MemfdDeny{}, specs.ActAllow }, "memfd deny"},
		{"seccomp without default action", func(p *Policy) { p.Seccomp = &specs.LinuxSeccomp{} }, "no default action"},
		{"no args", func(p *Policy) { p.Args = nil }, "no args"},
		{"relative program", func(p *Policy) { p.Args = []string{"node", "x.js"} }, `program "node": not an absolute path`},
		{"NUL in args", func(p *Policy) { p.Args = append(p.Args, "a\x00b") }, "NUL"},
		{"bad env", func(p *Policy) { p.Env = []string{"NOEQUALS"} }, `environment entry "NOEQUALS"`},
		{"empty env name", func(p *Policy) { p.Env = []string{"=x"} }, "not NAME=VALUE"},
		{"no root", func(p *Policy) { p.Root = "" }, "no root directory"},
		{"root outside the bundle", func(p *Policy) { p.Root = "../root" }, `root "../root": a relative root must lie inside the bundle`},
		{"root is the bundle", func(p *Policy) { p.Root = "." }, "must lie inside the bundle"},
		{"host root", func(p *Policy) { p.Root = "/" }, "host's /"},
		{"uid 0", func(p *Policy) { p.UID, p.GID = 0, 1000 }, "uid 0"},
		{"gid 0", func(p *Policy) { p.UID, p.GID = 1000, 0 }, "gid 0"},
		{"uid -1", func(p *Policy) { p.UID, p.GID = 4294967295, 1000 }, "not a valid id"},
		{"bad hostname", func(p *Policy) { p.Hostname = "a b" }, "hostname"},
		{"relative home", func(p *Policy) { p.Home = "home" }, "home"},
		{"home in /proc", func(p *Policy) { p.Home = "/proc/x" }, "inside /proc"},
		{"home is /tmp", func(p *Policy) { p.Home = "/tmp" }, "directory of its own"},
		{"relative cwd", func(p *Policy) { p.Cwd = "work" }, "working directory"},
		{"relative netns", func(p *Policy) { p.NetNS = "netns" }, "network namespace"},
		{"negative memory", func(p *Policy) { p.Limits.Memory = -1 }, "memory limit"},
		{"negative pids", func(p *Policy) { p.Limits.Pids = -1 }, "pids limit"},
		{"tiny cpus", func(p *Policy) { p.Limits.CPUs = 0.001 }, "below the minimum"},
		{"negative tmp", func(p *Policy) { p.Limits.Tmp = -1 }, "tmpfs size"},
		{"relative mount source", func(p *Policy) { p.Mounts = []Mount{{Source: "data", Destination: "/data"}} }, "source is not an absolute path"},
		{"relative mount destination", func(p *Policy) { p.Mounts = []Mount{{Source: "/data", Destination: "data"}} }, "destination \"data\" is not an absolute path"},
		{"mount over /", func(p *Policy) { p.Mounts = []Mount{{Source: "/data", Destination: "/"}} }, "replace the root"},
		{"mount over /proc", func(p *Policy) { p.Mounts = []Mount{{Source: "/data", Destination: "/proc"}} }, "inside /proc"},
		{"mount in /proc", func(p *Policy) { p.Mounts = []Mount{{Source: "/data", Destination: "/proc/sys/kernel"}} }, "inside /proc"},
		{"mount in /sys", func(p *Policy) { p.Mounts = []Mount{{Source: "/data", Destination: "/sys/fs"}} }, "inside /sys"},
		{"mount in /dev via ..", func(p *Policy) { p.Mounts = []Mount{{Source: "/data", Destination: "/x/../dev/shm"}} }, "inside /dev"},
		{"mount over /tmp", func(p *Policy) { p.Mounts = []Mount{{Source: "/data", Destination: "/tmp"}} }, "own tmpfs"},
		{"mount over home", func(p *Policy) { p.Mounts = []Mount{{Source: "/data", Destination: DefaultHome}} }, "own tmpfs"},
		{"mount above home", func(p *Policy) { p.Mounts = []Mount{{Source: "/home", Destination: "/home"}} }, "would hold the tmpfs /home/sandbox"},
		{"duplicate destination", func(p *Policy) {
			p.Mounts = []Mount{{Source: "/a", Destination: "/data"}, {Source: "/b", Destination: "/data/"}}
		}, "destination /data is already used by /a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := minimalPolicy()
			tc.change(&p)
			s, err := Spec(p)
			if err == nil {
				t.Fatalf("Spec() = %v, want an error containing %q", s, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sandbox: ") {
				t.Errorf("error = %q, want one starting with \"sandbox: \" and containing %q", err, tc.want)
			}
		})
	}
}

func TestSpecAcceptsBundleRelativeRoot(t *testing.T) {
	p := minimalPolicy()
	p.Root = "rootfs"
	s, err := Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != "rootfs" || !s.Root.Readonly {
		t.Errorf("root = %+v", s.Root)
	}
}

func TestSpecNoSeccompIsSentinel(t *testing.T) {
	p := minimalPolicy()
	p.Seccomp = nil
	if _, err := Spec(p); !errors.Is(err, ErrNoSeccomp) {
		t.Errorf("error = %v, want ErrNoSeccomp", err)
	}
}

func TestSpecAcceptsBindsInsideOwnTmpfs(t *testing.T) {
	p := minimalPolicy()
	p.Mounts = []Mount{
		{Source: "/etc/hosts", Destination: DefaultHome + "/.config/x", ReadOnly: true},
		{Source: "/tmp", Destination: "/tmp/shared"},
	}
	s, err := Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{}
	for i, m := range s.Mounts {
		idx[m.Destination] = i
	}
	if idx[DefaultHome] > idx[DefaultHome+"/.config/x"] || idx["/tmp"] > idx["/tmp/shared"] {
		t.Errorf("a bind comes before the tmpfs it lies in: %v", idx)
	}
}
