package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// removeTree removes the cgroup directories below and including dir,
// deepest first (a cgroup is removed with rmdir, and only when it has no
// children and no processes).
func removeTree(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Error(err)
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeTree(t, filepath.Join(dir, e.Name()))
		}
	}
	if err := syscall.Rmdir(dir); err != nil {
		t.Errorf("remove cgroup %s: %v", dir, err)
	}
}

// TestPrepareV1 prepares a subtree on the real cgroup file system for
// nobody, then, as nobody inside a user namespace (as mcpbox's rootless
// runtime will run), creates session cgroups in it, sets limits, moves
// processes in and sees the limits bite.
func TestPrepareV1(t *testing.T) {
	testutil.RequiresRoot(t)
	h := realHost(DefaultRoot)
	l, err := h.layout()
	if err != nil {
		t.Fatal(err)
	}
	// A uid no one else uses, so that the test neither meets nor
	// leaves a real user's subtree.
	uid := 2000000000 + os.Getpid()%100000
	if l.unified {
		_, err := PrepareV1(DefaultRoot, "test", uid, uid)
		if err == nil || !strings.Contains(err.Error(), "cgroup v2 (unified), where there is nothing to prepare") {
			t.Fatalf("PrepareV1 on a cgroup v2 host: %v, want a refusal", err)
		}
		return
	}

	created, err := PrepareV1(DefaultRoot, "test", uid, nobody)
	for _, dir := range created {
		t.Cleanup(func() { removeTree(t, dir) })
	}
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, hier := range l.v1 {
		want = append(want, filepath.Join(hier.dir, dirName(uid)))
	}
	if !reflect.DeepEqual(created, want) {
		t.Errorf("created %v, want one directory in each controller hierarchy: %v", created, want)
	}
	for _, dir := range created {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil || int(st.Uid) != uid || st.Gid != nobody {
			t.Errorf("%s: %+v, %v: want it owned by %d:%d", dir, st, err, uid, nobody)
		}
	}
	again, err := PrepareV1(DefaultRoot, "test", uid, nobody)
	if err != nil || len(again) != 0 {
		t.Errorf("PrepareV1 again = %v, %v: want nothing created", again, err)
	}
	d, err := find(h, uid, "test")
	if err != nil || d.Parent != "/"+dirName(uid) || d.Version != 1 || len(d.Missing([]string{Memory, Pids, CPU})) != 0 {
		t.Errorf("find after PrepareV1 = %+v, %v", d, err)
	}
}

// TestPrepareV1AsUser: the delegation works for the user it names, from a
// user namespace where that user is root.
func TestPrepareV1AsUser(t *testing.T) {
	testutil.RequiresRoot(t)
	h := realHost(DefaultRoot)
	l, err := h.layout()
	if err != nil {
		t.Fatal(err)
	}
	if l.unified {
		t.Skip("cgroup v2 host: TestPrepareV1 checks the refusal, TestEnterAsUser the delegation")
	}
	created, err := PrepareV1(DefaultRoot, "nobody", nobody, nobody)
	for _, dir := range created {
		t.Cleanup(func() { removeTree(t, dir) })
	}
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, hier := range l.v1 {
		for _, c := range []string{Memory, Pids, CPU} {
			if hier.has(c) {
				dirs[c] = filepath.Join(hier.dir, dirName(nobody))
			}
		}
	}
	if len(dirs) != 3 {
		t.Fatalf("this host mounts %v; the test needs memory, pids and cpu", l.v1)
	}
	for _, c := range []string{Memory, Pids, CPU} {
		// A session cgroup left by an earlier run of the test that was
		// killed would make the helper's mkdir fail.
		removeTree(t, filepath.Join(dirs[c], "session"))
		t.Cleanup(func() { removeTree(t, filepath.Join(dirs[c], "session")) })
	}

	var r v1Report
	runHelper(t, asUser(t, false, "v1", dirs[Memory], dirs[Pids], dirs[CPU]), &r)
	t.Logf("helper as nobody: %+v", r)
	if !reflect.DeepEqual(r.UID, []string{"0", fmt.Sprint(nobody), "1"}) {
		t.Errorf("helper's uid_map %v: want it root of a namespace that maps only nobody", r.UID)
	}
	for _, c := range []string{Memory, Pids, CPU} {
		var st syscall.Stat_t
		session := filepath.Join(dirs[c], "session")
		if err := syscall.Stat(session, &st); err != nil || st.Uid != nobody {
			t.Errorf("%s: owner %d, %v: want the cgroup the user made to be the user's", session, st.Uid, err)
		}
	}
	if r.MemoryLimit != fmt.Sprint(48<<20) {
		t.Errorf("memory.limit_in_bytes read back %q", r.MemoryLimit)
	}
	if r.HogSignal != "killed" || r.OOMKills != "1" {
		t.Errorf("the process over the memory limit ended %q with oom_kill %q: want it killed by the OOM killer", r.HogSignal, r.OOMKills)
	}
	if strings.Contains(r.ForkRefused, "forked") || !strings.Contains(strings.ToLower(r.ForkRefused), "fork") {
		t.Errorf("sh under pids.max=1 said %q: want its fork refused", r.ForkRefused)
	}
	if r.CPUQuota != "50000" {
		t.Errorf("cpu.cfs_quota_us read back %q", r.CPUQuota)
	}
	for _, c := range []string{"memory", "cpu"} {
		if !slices.ContainsFunc(strings.Split(r.Cgroups, "\n"), func(line string) bool {
			f := strings.SplitN(line, ":", 3)
			return len(f) == 3 && slices.Contains(strings.Split(f[1], ","), c) && f[2] == "/"+dirName(nobody)+"/session"
		}) {
			t.Errorf("the helper is not in the %s session cgroup:\n%s", c, r.Cgroups)
		}
	}
	if !strings.Contains(r.ParentLimitW, "permission denied") {
		t.Errorf("writing the subtree's own memory limit as the user: %s, want permission denied", r.ParentLimitW)
	}
}
