package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// fakeHost is a cgroup tree in a temporary directory, with the mountinfo,
// /proc/self/cgroup and uid_map files that describe it.
type fakeHost struct {
	t *testing.T
	host
}

func newFakeHost(t *testing.T) *fakeHost {
	dir := testutil.TempDir(t)
	root := filepath.Join(dir, "cgroup")
	f := &fakeHost{t: t, host: host{
		root:      root,
		mountinfo: filepath.Join(dir, "mountinfo"),
		cgroup:    filepath.Join(dir, "cgroup.self"),
		uidMap:    filepath.Join(dir, "uid_map"), // absent: no user namespace
	}}
	f.write(f.mountinfo, "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n")
	return f
}

func (f *fakeHost) write(file, content string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeHost) appendMount(point, fstype, super string) {
	f.t.Helper()
	mi, err := os.ReadFile(f.mountinfo)
	if err != nil {
		f.t.Fatal(err)
	}
	line := fmt.Sprintf("%d 22 0:%d / %s rw,nosuid,nodev,noexec,relatime shared:9 - %s %s %s\n",
		30+strings.Count(string(mi), "\n"), 40+strings.Count(string(mi), "\n"), point, fstype, fstype, super)
	f.write(f.mountinfo, string(mi)+line)
	if err := os.MkdirAll(point, 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// hybrid mounts what this kind of host has: a v1 hierarchy per controller
// group (cpu and cpuacct co-mounted, as on many distributions), systemd's
// named one, and an empty v2 file system at root/unified.
func (f *fakeHost) hybrid() {
	for _, h := range []string{"cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
		f.appendMount(filepath.Join(f.root, h), "cgroup", "rw,"+h)
	}
	f.write(filepath.Join(f.root, "cpuset", "cpuset.cpus"), "0-1\n")
	f.write(filepath.Join(f.root, "cpuset", "cpuset.mems"), "0\n")
	f.appendMount(filepath.Join(f.root, "systemd"), "cgroup", "rw,xattr,name=systemd")
	f.appendMount(filepath.Join(f.root, "unified"), "cgroup2", "rw,nsdelegate")
}

// prepare makes what PrepareV1 leaves in the v1 hierarchies (except
// those listed in skip), owned by the test's user.
func (f *fakeHost) prepare(uid int, skip ...string) {
	for _, h := range []string{"cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
		if contains(skip, h) {
			continue
		}
		dir := filepath.Join(f.root, h, dirName(uid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.t.Fatal(err)
		}
		if h == "cpuset" {
			f.write(filepath.Join(dir, "cpuset.cpus"), "0-1\n")
			f.write(filepath.Join(dir, "cpuset.mems"), "0\n")
		}
	}
}

func TestFindV1(t *testing.T) {
	me := os.Getuid()
	fix := "sudo mcpbox setup rootless --user alice"
	for _, tc := range []struct {
		name        string
		setup       func(f *fakeHost)
		uid         int
		parent      string
		controllers []string
		how         []string // substrings of How
	}{
		{
			name:  "nothing prepared",
			setup: func(f *fakeHost) {},
			uid:   me,
			how:   []string{"no subtree delegated to alice"},
		},
		{
			name:        "prepared in every controller hierarchy",
			setup:       func(f *fakeHost) { f.prepare(me) },
			uid:         me,
			parent:      "/" + dirName(me),
			controllers: []string{Memory, Pids, CPU},
			how:         []string{"prepared by `" + fix + "`"},
		},
		{
			// runc would fail to join devices: as good as nothing.
			name:  "one hierarchy missing",
			setup: func(f *fakeHost) { f.prepare(me, "devices") },
			uid:   me,
			how:   []string{"incomplete", filepath.Join("devices", dirName(me)) + ": missing"},
		},
		{
			name: "cpuset not filled in",
			setup: func(f *fakeHost) {
				f.prepare(me)
				f.write(filepath.Join(f.root, "cpuset", dirName(me), "cpuset.mems"), "\n")
			},
			uid: me,
			how: []string{"cpuset.mems is empty"},
		},
		{
			name: "someone else's directories",
			setup: func(f *fakeHost) {
				f.prepare(me)
				for _, h := range []string{"cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
					if err := os.Rename(filepath.Join(f.root, h, dirName(me)), filepath.Join(f.root, h, dirName(me+1))); err != nil {
						t.Fatal(err)
					}
				}
			},
			uid: me + 1,
			how: []string{fmt.Sprintf("owned by uid %d, not the user", me)},
		},
		{
			name: "not writable by its owner",
			setup: func(f *fakeHost) {
				f.prepare(me)
				if err := os.Chmod(filepath.Join(f.root, "pids", dirName(me)), 0o555); err != nil {
					t.Fatal(err)
				}
			},
			uid: me,
			how: []string{"not writable by its owner"},
		},
		{
			name: "no memory hierarchy on this kernel",
			setup: func(f *fakeHost) {
				f.prepare(me)
				mi, _ := os.ReadFile(f.mountinfo)
				var kept []string
				for _, l := range strings.Split(string(mi), "\n") {
					if !strings.Contains(l, " rw,memory") {
						kept = append(kept, l)
					}
				}
				f.write(f.mountinfo, strings.Join(kept, "\n"))
			},
			uid:         me,
			parent:      "/" + dirName(me),
			controllers: []string{Pids, CPU},
		},
		{
			// Inside mcpbox's user namespace the user is uid 0 and
			// files the user owns stat as 0; Find still takes the
			// host's uid.
			name: "inside a user namespace",
			setup: func(f *fakeHost) {
				f.prepare(me + 7)
				f.write(f.uidMap, fmt.Sprintf("%12d %12d %12d\n", me, me+7, 1))
			},
			uid:         me + 7,
			parent:      "/" + dirName(me+7),
			controllers: []string{Memory, Pids, CPU},
		},
		{
			name: "user not mapped in this user namespace",
			setup: func(f *fakeHost) {
				f.prepare(me)
				f.write(f.uidMap, fmt.Sprintf("0 %d 1\n", me+100))
			},
			uid: me,
			how: []string{"not the user"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost(t)
			f.hybrid()
			tc.setup(f)
			d, err := find(f.host, tc.uid, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if d.Version != 1 || d.Parent != tc.parent || !reflect.DeepEqual(d.Controllers, tc.controllers) {
				t.Errorf("find = %+v, want version 1, parent %q, controllers %v", d, tc.parent, tc.controllers)
			}
			for _, s := range tc.how {
				if !strings.Contains(d.How, s) {
					t.Errorf("How %q does not say %q", d.How, s)
				}
			}
			if (tc.parent == "") != strings.Contains(d.Fix, fix) {
				t.Errorf("Fix = %q with parent %q: the setup command belongs there exactly when nothing is delegated", d.Fix, d.Parent)
			}
			if tc.parent == "" && !reflect.DeepEqual(d.Missing([]string{Memory, Pids, CPU}), []string{Memory, Pids, CPU}) {
				t.Errorf("Missing = %v with nothing delegated", d.Missing([]string{Memory, Pids, CPU}))
			}
		})
	}
}

// delegate marks dir the way systemd marks a unit's cgroup with Delegate=yes.
func delegate(t *testing.T, dir, attr string) {
	t.Helper()
	if strings.HasPrefix(attr, "trusted.") {
		testutil.RequiresRoot(t) // trusted attributes are root's to write
	}
	if err := unix.Setxattr(dir, attr, []byte("1"), 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) && !testutil.InCI() {
			t.Skipf("%s: the temporary directory's file system has no %s attributes", dir, attr)
		}
		t.Fatal(err)
	}
}

func TestFindV2(t *testing.T) {
	me := os.Getuid()
	scope := "/user.slice/user-1000.slice/user@1000.service/app.slice/mcpbox-x.scope"
	for _, tc := range []struct {
		name        string
		self        string // this process's cgroup
		marked      string // the cgroup systemd marked, "" for none
		attr        string
		procs       string // processes directly in the marked cgroup
		enabled     string // its cgroup.subtree_control
		uid         int
		parent      string
		controllers []string
		how         string
		fix         string
	}{
		{
			name: "not delegated",
			self: "/user.slice/user-1000.slice/session-2.scope",
			uid:  me,
			how:  "is not delegated to alice",
			fix:  "loginctl enable-linger alice",
		},
		{
			name: "in the leaf of a delegated scope, by systemd's user manager",
			self: scope + "/supervisor", marked: scope, attr: "user.delegate",
			uid: me, parent: scope, controllers: []string{Memory, Pids, CPU},
			how: "delegated by systemd",
		},
		{
			name: "trusted.delegate, as the system manager writes it",
			self: scope + "/supervisor", marked: scope, attr: "trusted.delegate",
			uid: me, parent: scope, controllers: []string{Memory, Pids, CPU},
		},
		{
			// Another process still lives in the scope: only what
			// is already enabled works.
			name: "processes left in the scope",
			self: scope + "/supervisor", marked: scope, attr: "user.delegate", procs: "4242\n", enabled: "memory pids\n",
			uid: me, parent: scope, controllers: []string{Memory, Pids},
			fix: "Delegate=cpu memory pids",
		},
		{
			name: "running in the delegated cgroup itself",
			self: scope, marked: scope, attr: "user.delegate", procs: "4242\n",
			uid: me, parent: scope,
			how: "mcpbox runs in it", fix: "Delegate=cpu memory pids",
		},
		{
			name: "marked but another user's",
			self: scope + "/supervisor", marked: scope, attr: "user.delegate",
			uid: me + 1,
			how: "is not delegated", fix: "loginctl enable-linger alice",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost(t)
			f.appendMount(f.root, "cgroup2", "rw,nsdelegate,memory_recursiveprot")
			f.write(f.cgroup, "0::"+tc.self+"\n")
			for _, file := range []string{"cgroup.procs", "cgroup.subtree_control"} {
				f.write(filepath.Join(f.root, tc.self, file), "")
			}
			if tc.marked != "" {
				dir := filepath.Join(f.root, tc.marked)
				delegate(t, dir, tc.attr)
				f.write(filepath.Join(dir, "cgroup.controllers"), "cpuset cpu io memory pids\n")
				f.write(filepath.Join(dir, "cgroup.procs"), tc.procs)
				f.write(filepath.Join(dir, "cgroup.subtree_control"), tc.enabled)
			}
			d, err := find(f.host, tc.uid, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if d.Version != 2 || d.Parent != tc.parent || !reflect.DeepEqual(d.Controllers, tc.controllers) {
				t.Errorf("find = %+v, want version 2, parent %q, controllers %v", d, tc.parent, tc.controllers)
			}
			if !strings.Contains(d.How, tc.how) {
				t.Errorf("How %q does not say %q", d.How, tc.how)
			}
			if !strings.Contains(d.Fix, tc.fix) || tc.fix == "" && d.Fix != "" {
				t.Errorf("Fix %q, want it to say %q", d.Fix, tc.fix)
			}
		})
	}
}

func TestFindNoCgroups(t *testing.T) {
	f := newFakeHost(t)
	d, err := find(f.host, os.Getuid(), "alice")
	if err != nil || d.Version != 0 || d.Parent != "" || !strings.Contains(d.How, "no cgroup file system is mounted at "+f.root) {
		t.Errorf("find = %+v, %v", d, err)
	}
}

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct{ line, point, fstype, super string }{
		{"30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"},
		{"31 25 0:27 / /sys/fs/cgroup rw master:1 shared:2 - cgroup2 cgroup2 rw,nsdelegate", "/sys/fs/cgroup", "cgroup2", "rw,nsdelegate"},
		{`32 25 0:28 / /mnt/with\040space\134x rw - cgroup none rw,pids`, `/mnt/with space\x`, "cgroup", "rw,pids"},
		{"33 25 0:29 / /no/optional rw - tmpfs tmpfs rw", "/no/optional", "tmpfs", "rw"},
	} {
		point, fstype, super, ok := parseMountinfo(tc.line)
		if !ok || point != tc.point || fstype != tc.fstype || super != tc.super {
			t.Errorf("parseMountinfo(%q) = %q %q %q %v", tc.line, point, fstype, super, ok)
		}
	}
	for _, bad := range []string{"", "30 25 0:26 / /x rw", "30 25 - cgroup"} {
		if _, _, _, ok := parseMountinfo(bad); ok {
			t.Errorf("parseMountinfo(%q) accepted", bad)
		}
	}
}

func TestIDMap(t *testing.T) {
	m := idMap{{0, 1000, 1}, {1, 100000, 65536}}
	for _, tc := range []struct {
		host, inside int
		ok           bool
	}{{1000, 0, true}, {100000, 1, true}, {165535, 65536, true}, {165536, -1, false}, {0, -1, false}} {
		if got, ok := m.inside(tc.host); got != tc.inside || ok != tc.ok {
			t.Errorf("inside(%d) = %d, %v", tc.host, got, ok)
		}
		if tc.ok {
			if got, _ := m.outside(tc.inside); got != tc.host {
				t.Errorf("outside(%d) = %d, want %d", tc.inside, got, tc.host)
			}
		}
	}
}
