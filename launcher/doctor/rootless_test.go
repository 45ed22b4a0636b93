package doctor

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/launcher/backend"
)

// TestDoctorRuntime: the runtime check says which runtime runs, what set
// it, and why; rootless asked for by root fails with what to drop.
func TestDoctorRuntime(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "containerd.sock")
	ctx := context.Background()
	autoKind, autoWhy := backend.Rootless, "no containerd socket at "+missing
	if os.Geteuid() == 0 {
		autoKind, autoWhy = backend.Containerd, "uid 0 is root"
	}
	for _, tc := range []struct {
		setting, from string
		kind          string
		detail        string
	}{
		{"", "", autoKind, autoKind + " (auto): " + autoWhy},
		{"auto", "--runtime", autoKind, autoKind + " (--runtime): " + autoWhy},
		{"containerd", "MCPBOX_RUNTIME", backend.Containerd, "containerd (MCPBOX_RUNTIME): asked for"},
		{"containerd", "/home/u/.config/mcpbox/config.yaml:3", backend.Containerd, "containerd (/home/u/.config/mcpbox/config.yaml:3): asked for"},
	} {
		kind, c := checkRuntime(ctx, Options{Address: missing, Runtime: tc.setting, RuntimeFrom: tc.from})
		if kind != tc.kind || c.Status != OK || !strings.HasPrefix(c.Detail, tc.detail) || c.Name != "runtime" {
			t.Errorf("%s from %q: %s %+v, want %s and detail %q", tc.setting, tc.from, kind, c, tc.kind, tc.detail)
		}
	}
	kind, c := checkRuntime(ctx, Options{Address: missing, Runtime: "rootless", RuntimeFrom: "--runtime"})
	if os.Geteuid() == 0 {
		if kind != backend.Containerd || c.Status != Fail || !strings.Contains(c.Detail, "for ordinary users") || !strings.Contains(c.Fix, "drop the rootless setting (--runtime)") {
			t.Errorf("rootless as root: %s %+v", kind, c)
		}
	} else if kind != backend.Rootless || c.Status != OK {
		t.Errorf("rootless as uid %d: %s %+v", os.Geteuid(), kind, c)
	}
}

func TestDoctorConfig(t *testing.T) {
	if got := checkConfig(Options{}); got != nil {
		t.Errorf("no config file: %+v, want no check", got)
	}
	got := checkConfig(Options{ConfigFile: "/c/config.yaml", ConfigRuntime: "rootless"})
	if len(got) != 1 || got[0].Status != OK || got[0].Detail != "/c/config.yaml: runtime: rootless" {
		t.Errorf("config file: %+v", got)
	}
	err := errors.New(`/c/config.yaml:2: runtime: "rootles" is not a runtime: use auto, containerd or rootless`)
	got = checkConfig(Options{ConfigErr: err})
	if len(got) != 1 || got[0].Status != Fail || got[0].Detail != err.Error() || !strings.Contains(got[0].Fix, "never rewrites") {
		t.Errorf("broken config file: %+v", got)
	}
}

// TestDoctorRunAsUser: doctor run for an ordinary user shows the checks of
// what the rootless runtime needs; when containerd runs instead (it is
// asked for here), a missing piece is a warning, not a failure. For root
// they are left out.
func TestDoctorRunAsUser(t *testing.T) {
	root := t.TempDir() // no /etc/subuid
	opts := Options{
		Address:  filepath.Join(root, "containerd.sock"),
		Runtime:  backend.Containerd,
		StateDir: filepath.Join(root, "state"),
		CacheDir: filepath.Join(root, "cache"),
		Root:     root,
		Caller:   Caller{Name: "alice", UID: 1000, GID: 1000},
		LookPath: func(string) (string, error) { return "", exec.ErrNotFound },
		RootlessStateDir: func() (backend.StateLocation, error) {
			return backend.StateLocation{Dir: "/run/user/1000/mcpbox"}, nil
		},
	}
	checks := Run(context.Background(), opts)
	for name, want := range map[string]Status{"newuidmap/newgidmap": Warn, "subordinate ids": Warn, "limits": Warn, "runtime dir": OK} {
		c := findCheck(t, checks, name)
		if c.Status != want || (c.Fix == "") != (want == OK) {
			t.Errorf("%s: %+v, want %s, with a fix unless ok", name, c, want)
		}
		if name != "limits" && want == Warn && !strings.HasSuffix(c.Detail, "(needed only with --runtime rootless)") {
			t.Errorf("%s: %q does not say it matters only for rootless", name, c.Detail)
		}
	}
	opts.Caller = Caller{Name: "root"}
	for _, c := range Run(context.Background(), opts) {
		switch c.Name {
		case "newuidmap/newgidmap", "subordinate ids", "runtime dir", "limits":
			t.Errorf("%s checked for root: %+v", c.Name, c)
		}
	}
}

// TestDoctorNotUsed: with the rootless runtime, the containerd checks say
// so and ask for nothing.
func TestDoctorNotUsed(t *testing.T) {
	for _, c := range []Result{
		{Name: "containerd", Status: Fail, Detail: "uid 1000 may not open it", Fix: "sudo mcpbox doctor"},
		{Name: "containerd version", Status: Skip, Detail: "skipped: containerd is not reachable"},
	} {
		got := notUsed(c)
		if got.Name != c.Name || got.Status != Skip || got.Fix != "" || got.Detail != "not used: the rootless runtime runs" {
			t.Errorf("notUsed(%+v) = %+v", c, got)
		}
	}
}

// capData builds a security.capability attribute.
func capData(magic, permitted uint32, rootID int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, magic)
	b = binary.LittleEndian.AppendUint32(b, permitted)
	b = binary.LittleEndian.AppendUint32(b, 0) // inheritable
	if magic&vfsCapRevisionMask == vfsCapRevision1 {
		return b
	}
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	if rootID >= 0 {
		b = binary.LittleEndian.AppendUint32(b, uint32(rootID))
	}
	return b
}

func TestFileCapHas(t *testing.T) {
	setuid := uint32(1 << capSetuid)
	for _, tc := range []struct {
		name string
		data []byte
		bit  int
		want bool
	}{
		{"v2 cap_setuid=ep", capData(vfsCapRevision2|vfsCapFlagsEffective, setuid, -1), capSetuid, true},
		{"v2 cap_setuid=p", capData(vfsCapRevision2, setuid, -1), capSetuid, false},
		{"v2 cap_setuid=ep, asked for setgid", capData(vfsCapRevision2|vfsCapFlagsEffective, setuid, -1), capSetgid, false},
		{"v2 both", capData(vfsCapRevision2|vfsCapFlagsEffective, setuid|1<<capSetgid, -1), capSetgid, true},
		{"v1", capData(vfsCapRevision1|vfsCapFlagsEffective, setuid, -1), capSetuid, true},
		{"v3, host root", capData(vfsCapRevision3|vfsCapFlagsEffective, setuid, 0), capSetuid, true},
		{"v3, a namespace's root", capData(vfsCapRevision3|vfsCapFlagsEffective, setuid, 100000), capSetuid, false},
		{"v2 cut short", capData(vfsCapRevision2|vfsCapFlagsEffective, setuid, -1)[:16], capSetuid, false},
		{"unknown revision", capData(0x04000000|vfsCapFlagsEffective, setuid, 0), capSetuid, false},
		{"none", nil, capSetuid, false},
	} {
		if got := fileCapHas(tc.data, tc.bit); got != tc.want {
			t.Errorf("%s: fileCapHas = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDoctorIDMapTools: newuidmap and newgidmap must be installed and able
// to map: setuid root, or cap_setuid / cap_setgid as file capabilities.
func TestDoctorIDMapTools(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"newuidmap", "newgidmap"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	inDir := func(name string) (string, error) {
		p := filepath.Join(dir, filepath.Base(name))
		if _, err := os.Stat(p); err != nil {
			return "", exec.ErrNotFound
		}
		return p, nil
	}
	caps := func(bits uint32) func(string) []byte {
		return func(string) []byte { return capData(vfsCapRevision2|vfsCapFlagsEffective, bits, -1) }
	}
	for _, tc := range []struct {
		name     string
		lookPath func(string) (string, error)
		fileCaps func(string) []byte
		status   Status
		detail   string
		fix      string
	}{
		{"missing", func(string) (string, error) { return "", exec.ErrNotFound }, caps(0), Fail, "not installed: newuidmap, newgidmap", "sudo apt install uidmap"},
		{"file capabilities", inDir, caps(1<<capSetuid | 1<<capSetgid), OK, "newuidmap (file capability cap_setuid=ep), " + dir + "/newgidmap (file capability cap_setgid=ep)", ""},
		{"no privilege", inDir, caps(0), Fail, "/newuidmap: mode -rwxr-xr-x", "sudo apt install --reinstall uidmap"},
		{"newgidmap without cap_setgid", inDir, caps(1 << capSetuid), Fail, "/newgidmap: mode -rwxr-xr-x", "reinstall uidmap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkIDMapTools(Options{LookPath: tc.lookPath, FileCaps: tc.fileCaps})
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) {
				t.Errorf("%+v\nwant %s, detail with %q, fix with %q", c, tc.status, tc.detail, tc.fix)
			}
		})
	}
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDoctorSubIDs: the caller's subordinate ranges, by name or uid, in
// both files; when one is missing, one usermod command adds what is
// missing, with a range that overlaps no line of either file.
func TestDoctorSubIDs(t *testing.T) {
	alice := Caller{Name: "alice", UID: 1000, GID: 1000}
	for _, tc := range []struct {
		name           string
		subuid, subgid string // "-" leaves the file out
		who            Caller
		status         Status
		detail, fix    string
	}{
		{"by name", "alice:100000:65536\n", "alice:100000:65536\n", alice, OK, "alice: uids 100000-165535 (65536 ids) in /etc/subuid, gids 100000-165535 (65536 ids) in /etc/subgid", ""},
		{"by uid, two ids", "1000:300000:2\n", "1000:300000:2\n", alice, OK, "uids 300000-300001 (2 ids)", ""},
		{"one id is too few", "1000:300000:1\n", "1000:300000:1\n", alice, Fail, "no range for alice",
			"sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{"first of several", "# comment\nbob:100000:65536\nalice:165536:65536\nalice:231072:65536\n", "alice:165536:65536\n", alice, OK, "uids 165536-231071", ""},
		{"no files", "-", "-", alice, Fail, "no range for alice in /etc/subuid nor in /etc/subgid",
			"sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{"others take the first ranges", "mcpbox-dev:100000:65536\nmcpbox-ci:165536:65536\n", "mcpbox-dev:100000:65536\nmcpbox-ci:165536:65536\n", alice, Fail, "no range for alice",
			"sudo usermod --add-subuids 231072-296607 --add-subgids 231072-296607 alice"},
		{"a gap that fits", "bob:100000:1000\ncarol:300000:65536\n", "-", alice, Fail, "no range for alice",
			"sudo usermod --add-subuids 101000-166535 --add-subgids 101000-166535 alice"},
		{"a gap too small", "bob:100000:1000\ncarol:120000:65536\n", "dave:500000:10\n", alice, Fail, "no range for alice",
			"sudo usermod --add-subuids 185536-251071 --add-subgids 185536-251071 alice"},
		{"gids missing", "alice:100000:65536\n", "bob:100000:65536\n", alice, Fail, "no range for alice in /etc/subgid:",
			"sudo usermod --add-subgids 165536-231071 alice"},
		{"malformed and zero lines", "alice:x:65536\nalice:0:65536\nalice:100000\n", "alice:100000:0\n", alice, Fail, "in /etc/subuid nor in /etc/subgid", "--add-subuids 100000-165535"},
		{"a uid without a name", "-", "-", Caller{UID: 4242}, Fail, "no range for 4242", "echo 4242:100000:65536 | sudo tee -a /etc/subuid /etc/subgid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{}
			if tc.subuid != "-" {
				files["etc/subuid"] = tc.subuid
			}
			if tc.subgid != "-" {
				files["etc/subgid"] = tc.subgid
			}
			writeFiles(t, root, files)
			c := checkSubIDs(Options{Root: root, Caller: tc.who})
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || c.Fix != tc.fix && !strings.Contains(c.Fix, tc.fix) || (tc.fix == "") != (c.Fix == "") {
				t.Errorf("%+v\nwant %s, detail with %q, fix %q", c, tc.status, tc.detail, tc.fix)
			}
		})
	}
}

func TestFreeRange(t *testing.T) {
	for _, tc := range []struct {
		taken []subRange
		want  int
	}{
		{nil, 100000},
		{[]subRange{{"a", 0, 1000}}, 100000},
		{[]subRange{{"a", 165536, 65536}, {"b", 100000, 65536}}, 231072},
		{[]subRange{{"a", 100001, 1}}, 100002},
		{[]subRange{{"a", 165536, 10}}, 100000},
		{[]subRange{{"a", 165535, 10}}, 165545},
		{[]subRange{{"a", 50000, 60000}}, 110000},
		{[]subRange{{"a", 100000, 10}, {"a", 100000, 10}}, 100010},
	} {
		if got := freeRange(tc.taken, subIDMin, subIDCount); got.start != tc.want || got.count != subIDCount {
			t.Errorf("freeRange(%v) = %+v, want start %d", tc.taken, got, tc.want)
		}
	}
}

// TestDoctorRootlessStateDir: the state directory the rootless runtime
// will use, and why it is not in $XDG_RUNTIME_DIR when it is not. Someone
// else's /tmp/mcpbox-UID is a warning with the fallback in the home that
// sessions use instead, and a failure only when that fails too.
func TestDoctorRootlessStateDir(t *testing.T) {
	good := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(good, 0o700); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	const (
		unset = "XDG_RUNTIME_DIR is not set"
		home  = "/home/alice/.local/state/mcpbox/run"
	)
	openProblem := backend.RuntimeDirProblem(open)
	squatted := &backend.StateDirError{Dir: "/tmp/mcpbox-1000", Problem: "it belongs to uid 4242: someone else made it first", Fix: "ask root to remove it (sudo rm -r /tmp/mcpbox-1000)"}
	homeToo := &backend.StateDirError{Dir: home, Problem: "it is a symlink, which mcpbox does not follow there (tried after /tmp/mcpbox-1000: it belongs to uid 4242)", Fix: "remove it: rm " + home}
	for _, tc := range []struct {
		name     string
		xdg      string
		loc      backend.StateLocation
		err      error
		status   Status
		detail   string
		fix      string
		wantsFix bool
	}{
		{"XDG_RUNTIME_DIR", good, backend.StateLocation{Dir: good + "/mcpbox"}, nil, OK, good + "/mcpbox (in $XDG_RUNTIME_DIR)", "", false},
		{"unset", "", backend.StateLocation{Dir: "/tmp/mcpbox-1000", RuntimeDirProblem: unset}, nil, OK, "/tmp/mcpbox-1000 (XDG_RUNTIME_DIR is not set)", "", false},
		{"open to others", open, backend.StateLocation{Dir: "/tmp/mcpbox-1000", RuntimeDirProblem: openProblem}, nil, Warn, "has mode 0755, not 0700: the rootless runtime keeps its state in /tmp/mcpbox-1000", "unset XDG_RUNTIME_DIR", true},
		{"squatted", "", backend.StateLocation{Dir: home, RuntimeDirProblem: unset, Tmp: squatted}, nil, Warn,
			"XDG_RUNTIME_DIR is not set; /tmp/mcpbox-1000: it belongs to uid 4242: someone else made it first: the rootless runtime keeps its state in " + home, "sudo rm -r /tmp/mcpbox-1000", true},
		{"open to others, squatted", open, backend.StateLocation{Dir: home, RuntimeDirProblem: openProblem, Tmp: squatted}, nil, Warn,
			"has mode 0755, not 0700; /tmp/mcpbox-1000: it belongs to uid 4242: someone else made it first: the rootless runtime keeps its state in " + home, "sudo rm -r /tmp/mcpbox-1000", true},
		{"squatted, home unusable", "", backend.StateLocation{}, homeToo, Fail, "XDG_RUNTIME_DIR is not set; " + home + ": it is a symlink", "rm " + home, true},
		{"squatted, no home", "", backend.StateLocation{}, squatted, Fail, "XDG_RUNTIME_DIR is not set; /tmp/mcpbox-1000: it belongs to uid 4242", "sudo rm -r /tmp/mcpbox-1000", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkRootlessStateDir(Options{XDGRuntimeDir: tc.xdg, RootlessStateDir: func() (backend.StateLocation, error) { return tc.loc, tc.err }})
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) || (c.Fix != "") != tc.wantsFix {
				t.Errorf("%+v\nwant %s, detail with %q, fix with %q", c, tc.status, tc.detail, tc.fix)
			}
		})
	}
}

// TestDoctorLimits: limits the rootless runtime cannot enforce are a
// warning that names them and the command that fixes it.
func TestDoctorLimits(t *testing.T) {
	alice := Caller{Name: "alice", UID: 1000}
	c := checkLimits(Options{Caller: alice})
	if c.Status != Warn || !strings.HasPrefix(c.Detail, "not enforced: memory, pids, cpu") || c.Fix != "sudo mcpbox setup rootless --user alice" {
		t.Errorf("no limits hook: %+v", c)
	}
	c = checkLimits(Options{Caller: alice, Limits: func() (bool, string, string) { return true, "memory, pids, cpu in /sys/fs/cgroup/mcpbox/alice", "" }})
	if c.Status != OK || c.Detail != "memory, pids, cpu in /sys/fs/cgroup/mcpbox/alice" || c.Fix != "" {
		t.Errorf("delegated: %+v", c)
	}
	c = checkLimits(Options{Caller: alice, Limits: func() (bool, string, string) { return false, "not enforced: cpu", "" }})
	if c.Status != Warn || c.Detail != "not enforced: cpu" || c.Fix != "sudo mcpbox setup rootless --user alice" {
		t.Errorf("partly delegated: %+v", c)
	}
}

func TestDoctorCrun(t *testing.T) {
	c := checkCrun(context.Background(), Options{LookPath: func(string) (string, error) { return "", exec.ErrNotFound }})
	if c.Status != Skip || !strings.Contains(c.Detail, "optional") {
		t.Errorf("no crun: %+v", c)
	}
	script := filepath.Join(t.TempDir(), "crun")
	os.WriteFile(script, []byte("#!/bin/sh\nprintf 'crun version 1.8.1\\ncommit: f8a096be\\nrundir: /run/crun\\n'\n"), 0o755)
	c = checkCrun(context.Background(), Options{LookPath: func(name string) (string, error) {
		if name == "crun" {
			return script, nil
		}
		return "", exec.ErrNotFound
	}})
	if c.Status != OK || c.Detail != "1.8.1 ("+script+")" {
		t.Errorf("crun 1.8.1: %+v", c)
	}
}

// TestClassifyUserns: a failed user namespace check names the sysctl that
// stops it, with the command that lifts it; those of unprivileged users
// do not concern root; anything else is shown as it came.
func TestClassifyUserns(t *testing.T) {
	err := errors.New("fork/exec /proc/self/exe: operation not permitted")
	none := usernsSysctls{-1, -1, -1}
	for _, tc := range []struct {
		name         string
		s            usernsSysctls
		unprivileged bool
		detail, fix  string
	}{
		{"max_user_namespaces", usernsSysctls{0, 1, 1}, true, "user.max_user_namespaces is 0", "echo user.max_user_namespaces=15000 | sudo tee /etc/sysctl.d/99-mcpbox-userns.conf && sudo sysctl --system"},
		{"max_user_namespaces for root", usernsSysctls{0, -1, -1}, false, "user.max_user_namespaces is 0", "user.max_user_namespaces=15000"},
		{"unprivileged_userns_clone", usernsSysctls{15000, 0, -1}, true, "kernel.unprivileged_userns_clone is 0", "echo kernel.unprivileged_userns_clone=1 | sudo tee /etc/sysctl.d/99-mcpbox-userns.conf && sudo sysctl --system"},
		{"AppArmor", usernsSysctls{15000, 1, 1}, true, "AppArmor restricts unprivileged user namespaces", "sudo mcpbox setup apparmor"},
		{"AppArmor does not restrict root", usernsSysctls{15000, 1, 1}, false, err.Error(), ""},
		{"something else", none, true, err.Error(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := classifyUserns(err, tc.s, tc.unprivileged)
			if c.Status != Fail || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Detail, err.Error()) || !strings.Contains(c.Fix, tc.fix) || (tc.fix == "") != (c.Fix == "") {
				t.Errorf("%+v\nwant detail with %q, fix %q", c, tc.detail, tc.fix)
			}
		})
	}
	// The values come from /proc/sys under Root.
	root := t.TempDir()
	writeFiles(t, root, map[string]string{sysctlMaxUserNS: "15000\n", sysctlAppArmorRestrict: "1\n"})
	if got := readUsernsSysctls(Options{Root: root}); got != (usernsSysctls{15000, -1, 1}) {
		t.Errorf("readUsernsSysctls = %+v", got)
	}
}
