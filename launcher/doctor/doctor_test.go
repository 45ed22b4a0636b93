package doctor

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/launcher/memfd"
)

func TestParseRuncVersion(t *testing.T) {
	for _, tc := range []struct {
		out                 string
		major, minor, patch int
		rc                  int
		distro              string
		wantErr             bool
	}{
		{out: "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4\n",
			major: 1, minor: 1, patch: 5, distro: "1.1.5+ds1-1+deb12u1"},
		{out: "runc version 1.1.12\ncommit: v1.1.12-0-g51d5e946\nspec: 1.0.2-dev\n", major: 1, minor: 1, patch: 12},
		{out: "runc version 1.4.0-rc.2\ncommit: v1.4.0-rc.2-0-gabcdef0\n", major: 1, minor: 4, rc: 2},
		{out: "runc version 1.2.0-rc1\n", major: 1, minor: 2, rc: 1},
		{out: "runc version 1.1.12-0ubuntu2~22.04.1\n", major: 1, minor: 1, patch: 12, distro: "1.1.12-0ubuntu2~22.04.1"},
		{out: "runc version 1.3.3\ncommit: 1.3.3-1\n", major: 1, minor: 3, patch: 3, distro: "1.3.3-1"},
		{out: "runc version 1.2.0-rc.1+dev\n", major: 1, minor: 2, rc: 1},
		{out: "runc version spec\n", wantErr: true},
		{out: "", wantErr: true},
	} {
		v, err := parseRuncVersion(tc.out)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseRuncVersion(%q): err = %v, want error %v", tc.out, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if v.Major != tc.major || v.Minor != tc.minor || v.Patch != tc.patch || v.RC != tc.rc || v.Distro != tc.distro {
			t.Errorf("parseRuncVersion(%q) = %+v, want %d.%d.%d rc %d distro %q", tc.out, v, tc.major, tc.minor, tc.patch, tc.rc, tc.distro)
		}
	}
}

func TestRuncWarning(t *testing.T) {
	const (
		cve2024 = "CVE-2024-21626"
		cve2025 = "CVE-2025-31133, CVE-2025-52565, CVE-2025-52881"
		debian  = "Debian may have backported fixes; check `apt changelog runc`"
	)
	for _, tc := range []struct {
		version string
		want    []string // substrings of the warning; nil means no warning
		notWant []string
	}{
		{"1.0.3", []string{cve2024, cve2025, "is vulnerable"}, []string{debian}},
		{"1.1.5", []string{cve2024, cve2025}, nil},
		{"1.1.11", []string{cve2024, cve2025}, nil},
		{"1.1.12", []string{cve2025}, []string{cve2024}},
		{"1.1.15", []string{cve2025}, []string{cve2024}},
		{"1.2.0-rc.1", []string{cve2025}, []string{cve2024}},
		{"1.2.7", []string{cve2025}, []string{cve2024}},
		{"1.2.8", nil, nil},
		{"1.3.0", []string{cve2025}, nil},
		{"1.3.2", []string{cve2025}, nil},
		{"1.3.3", nil, nil},
		{"1.4.0-rc.1", []string{cve2025}, nil},
		{"1.4.0-rc.2", nil, nil},
		{"1.4.0", nil, nil},
		{"1.5.1", nil, nil},
		{"v2.0.0", nil, nil},
		// Distribution versions: the upstream part decides, the warning
		// says the package may be patched instead of calling it vulnerable.
		{"1.1.5+ds1-1+deb12u1", []string{cve2024, cve2025, "upstream 1.1.5 predates", debian}, []string{"is vulnerable"}},
		{"1.1.12-0ubuntu2~22.04.1", []string{cve2025, debian}, []string{cve2024}},
		{"1.2.8+ds1-1", nil, nil},
	} {
		v, err := parseVersion(tc.version)
		if err != nil {
			t.Fatalf("parseVersion(%q): %v", tc.version, err)
		}
		got, cves := runcWarning(v)
		if tc.want == nil {
			if got != "" || cves != nil {
				t.Errorf("%s: warning %q (%v), want none", tc.version, got, cves)
			}
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: warning %q does not contain %q", tc.version, got, w)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(got, w) {
				t.Errorf("%s: warning %q contains %q", tc.version, got, w)
			}
		}
	}
}

func TestProcCgroups(t *testing.T) {
	data := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t2\t1\ncpu\t1\t2\t1\nmemory\t0\t104\t0\npids\t8\t2\t1\n"
	c := Result{Detail: "v1"}
	checkControllers(&c, procCgroups([]byte(data)))
	if c.Status != Fail || !strings.Contains(c.Detail, "memory disabled") || c.Fix == "" {
		t.Errorf("memory disabled: got %+v", c)
	}
	c = Result{Detail: "v2"}
	checkControllers(&c, map[string]bool{"cpu": true, "memory": true})
	if c.Status != Fail || !strings.Contains(c.Detail, "pids missing") {
		t.Errorf("pids missing: got %+v", c)
	}
}

// TestDoctorMemfdNoExec: doctor says which way sandboxes keep code written
// into memory from running, as a session on that kernel would choose it.
func TestDoctorMemfdNoExec(t *testing.T) {
	for _, tc := range []struct {
		name            string
		release, noexec string // "" leaves the file out
		setting         memfd.Setting
		rootless        bool // hooks run as root of a user namespace
		status          Status
		detail          string
		fix             bool
	}{
		{"Debian 12", "6.1.0-13-amd64", "", memfd.Auto, false, Warn, "memfd_create refused inside (kernel 6.1.0-13-amd64 has no vm.memfd_noexec)", true},
		{"6.5", "6.5.0-35-generic", "0", memfd.Auto, false, Warn, "memfd_create refused inside (kernel 6.5.0-35-generic has the vm.memfd_noexec of Linux 6.3 to 6.5", true},
		{"6.6", "6.6.0", "0", memfd.Auto, false, OK, "hook: vm.memfd_noexec=2 in each sandbox's pid namespace (kernel 6.6.0, 0 on the host)", false},
		{"6.18 at 2", "6.18.44-fc-v1300", "2\n", memfd.Auto, false, OK, "hook: vm.memfd_noexec=2 in each sandbox's pid namespace (kernel 6.18.44-fc-v1300, 2 on the host)", false},
		{"deny asked for", "6.18.44-fc-v1300", "0", memfd.Deny, false, OK, "memfd_create refused inside (--memfd deny; kernel 6.18.44-fc-v1300)", false},
		{"deny asked for on 6.1", "6.1.0-13-amd64", "", memfd.Deny, false, OK, "memfd_create refused inside (--memfd deny", false},
		{"hook asked for on 6.1", "6.1.0-13-amd64", "", memfd.Hook, false, Warn, "hook (--memfd hook, although kernel 6.1.0-13-amd64 has no vm.memfd_noexec", true},
		{"no release", "", "0", memfd.Auto, false, Fail, "kernel release", false},
		{"bad value", "6.18.0", "3", memfd.Auto, false, Fail, `reads "3"`, false},
		// The rootless runtime's hooks run as root of a user namespace,
		// which may not raise the host's vm.memfd_noexec.
		{"rootless, 6.18 at 0", "6.18.44-fc-v1300", "0", memfd.Auto, true, Warn, "memfd_create refused inside (the runtime is not the host's root", true},
		{"rootless, 6.18 at 2", "6.18.44-fc-v1300", "2", memfd.Auto, true, OK, "hook: vm.memfd_noexec=2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for path, content := range map[string]string{memfd.ReleasePath: tc.release, memfd.NoExecPath: tc.noexec} {
				if content == "" {
					continue
				}
				if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c := checkMemfdNoExec(Options{Root: root, Memfd: tc.setting}, !tc.rootless)
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || (c.Fix != "") != tc.fix {
				t.Errorf("%+v\nwant status %s, detail with %q, fix %v", c, tc.status, tc.detail, tc.fix)
			}
			if tc.rootless && tc.fix && !strings.HasPrefix(c.Fix, "sudo sysctl -w vm.memfd_noexec=2") {
				t.Errorf("fix %q: a newer kernel does not help the rootless runtime", c.Fix)
			}
		})
	}
}

func findCheck(t *testing.T, checks []Result, name string) Result {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", name, checks)
	return Result{}
}

func TestDoctorNoSocket(t *testing.T) {
	dir := t.TempDir()
	opts := Options{
		Address:    filepath.Join(dir, "containerd.sock"),
		StateDir:   filepath.Join(dir, "state"),
		CacheDir:   filepath.Join(dir, "cache"),
		Executable: filepath.Join(dir, "mcpbox"), // no helpers next to it
		LookPath:   func(string) (string, error) { return "", exec.ErrNotFound },
	}
	checks := Run(context.Background(), opts)
	c := findCheck(t, checks, "containerd")
	if c.Status != Fail || !strings.Contains(c.Fix, "make setup") && !strings.Contains(c.Fix, "systemctl start containerd") {
		t.Errorf("containerd with no socket: %+v, want fail with make setup or systemctl start containerd", c)
	}
	if c := findCheck(t, checks, "containerd version"); c.Status != Skip {
		t.Errorf("containerd version: %+v, want skip", c)
	}
	for _, name := range []string{"runc", "node", "python3", "mcpbox-init", "mcpbox-probe"} {
		if c := findCheck(t, checks, name); c.Status != Fail || c.Fix == "" {
			t.Errorf("%s: %+v, want fail with a fix", name, c)
		}
	}
	if c := findCheck(t, checks, "npm"); c.Status != Warn {
		t.Errorf("npm missing: %+v, want warn", c)
	}

	// A socket nobody listens on is a containerd that went away.
	l, err := net.Listen("unix", opts.Address)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	c = checkContainerd(opts)
	if c.Status != Fail || !strings.Contains(c.Detail, "nothing answers") {
		t.Errorf("stale socket: %+v", c)
	}

	// As non-root, a 0600 socket refuses us: the fix is to run as root.
	// Faking a root-owned socket takes root, so this runs only as an
	// ordinary user with a socket made unreadable by chmod.
	if os.Geteuid() != 0 {
		if err := os.Chmod(opts.Address, 0); err != nil {
			t.Fatal(err)
		}
		c = checkContainerd(opts)
		if c.Status != Fail || !strings.Contains(c.Fix, "as root") {
			t.Errorf("socket without permission: %+v", c)
		}
	}
}

func TestDoctorRuntimes(t *testing.T) {
	opts := Options{LookPath: func(name string) (string, error) {
		if name == "python3" {
			return exec.LookPath("true") // prints no version, exits 0
		}
		return "", errors.New("not found")
	}}
	checks := checkRuntimes(context.Background(), opts)
	want := map[string]Status{"node": Warn, "npm": Warn, "python3": OK}
	for _, c := range checks {
		if c.Status != want[c.Name] {
			t.Errorf("%s: %+v, want %s", c.Name, c, want[c.Name])
		}
	}
}

// TestDoctorClientsCount: the clients check adds up the files it is given,
// names each client once, and warns of unwrapped servers and broken files.
func TestDoctorClientsCount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []ClientConfig
		status  Status
		detail  string
		fixWith string
	}{
		{"none", nil, OK, "no MCP client config found", ""},
		{"all wrapped", []ClientConfig{{Display: "Cursor", Stdio: 2, Wrapped: 2}}, OK, "Cursor: 2 of 2 stdio servers sandboxed", ""},
		{"two files of one client", []ClientConfig{{Display: "Cursor", Stdio: 1}, {Display: "Cursor", Stdio: 2, Wrapped: 1}, {Display: "Claude Desktop", Stdio: 1, Wrapped: 1}},
			Warn, "Cursor, Claude Desktop: 2 of 4 stdio servers sandboxed; 2 still run with your full rights", "mcpbox wrap"},
		{"broken", []ClientConfig{{Display: "Cursor", Stdio: 1, Wrapped: 1}, {Display: "Zed", Broken: true, Stdio: 5}},
			Warn, "Cursor: 1 of 1 stdio servers sandboxed; 1 config file(s) do not parse", "mcpbox clients"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkClients(tc.files)
			if c.Status != tc.status || c.Detail != tc.detail || !strings.Contains(c.Fix, tc.fixWith) || (tc.fixWith == "") != (c.Fix == "") {
				t.Errorf("%+v\nwant status %s, detail %q, fix with %q", c, tc.status, tc.detail, tc.fixWith)
			}
		})
	}
}
