package cgroups

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// v2Mount returns where this host mounts a cgroup v2 file system: the root
// on unified hosts, root/unified on hybrid ones like this project's.
func v2Mount(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if point, fstype, _, ok := parseMountinfo(line); ok && fstype == "cgroup2" {
			return point
		}
	}
	if testutil.InCI() {
		t.Fatal("no cgroup v2 file system is mounted")
	}
	t.Skip("no cgroup v2 file system is mounted")
	return ""
}

// testSlice makes a cgroup for the test's scopes under mnt and removes it,
// with everything below, at the end.
func testSlice(t *testing.T, mnt string) string {
	t.Helper()
	slice := fmt.Sprintf("/mcpbox-cgroups-test-%d.slice", os.Getpid())
	if err := os.Mkdir(filepath.Join(mnt, slice), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(t, filepath.Join(mnt, slice)) })
	return slice
}

// startSleeper starts a process to put in a scope, owned by uid, and stops
// it at the end of the test.
func startSleeper(t *testing.T, uid int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// delegateTo gives the cgroup dir to uid the way systemd does for a unit
// with Delegate=yes: the directory and the files the kernel lists as
// delegatable, marked with trusted.delegate.
func delegateTo(t *testing.T, dir string, uid int) {
	t.Helper()
	files, err := readFields("/sys/kernel/cgroup/delegate")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{"."}, files...) {
		if err := os.Lchown(filepath.Join(dir, f), uid, uid); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(dir, "trusted.delegate", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
}

// property and auxUnit are StartTransientUnit's a(sv) and a(sa(sv)).
type property struct {
	Name  string
	Value dbus.Variant
}

type auxUnit struct {
	Name  string
	Props []property
}

// startCall is one StartTransientUnit call the fake systemd received.
type startCall struct {
	Name, Mode string
	Props      map[string]any
	Aux        []auxUnit
}

// fakeSystemd answers org.freedesktop.systemd1.Manager.StartTransientUnit
// on a private bus the way systemd documents it (org.freedesktop.systemd1(5)):
// it returns a job path, makes the scope's cgroup under slice, delegates
// it, moves the PIDs in, then announces the job's end with the JobRemoved
// signal; the unit's ControlGroup property names the cgroup.
type fakeSystemd struct {
	conn   *dbus.Conn
	mnt    string
	slice  string
	result string // the job's result: "done", or "failed" without effects

	mu    sync.Mutex
	calls []startCall
	jobs  uint32
}

func (f *fakeSystemd) StartTransientUnit(name, mode string, props []property, aux []auxUnit) (dbus.ObjectPath, *dbus.Error) {
	call := startCall{Name: name, Mode: mode, Props: map[string]any{}, Aux: aux}
	for _, p := range props {
		call.Props[p.Name] = p.Value.Value()
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.jobs++
	id := f.jobs
	f.mu.Unlock()
	job := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	if f.result == "done" {
		if err := f.makeScope(name, call.Props["PIDs"]); err != nil {
			return "", dbus.MakeFailedError(err)
		}
	}
	if err := f.conn.Emit("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager.JobRemoved", id, job, name, f.result); err != nil {
		return "", dbus.MakeFailedError(err)
	}
	return job, nil
}

func (f *fakeSystemd) makeScope(name string, pids any) error {
	cg := f.slice + "/" + name
	dir := filepath.Join(f.mnt, cg)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Setxattr(dir, "trusted.delegate", []byte("1"), 0); err != nil {
		return err
	}
	list, _ := pids.([]uint32)
	for _, pid := range list {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(pid)), 0); err != nil {
			return err
		}
	}
	unit := dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + sdbus.PathBusEscape(name))
	return f.conn.Export(fakeUnit{cgroup: cg}, unit, "org.freedesktop.DBus.Properties")
}

// fakeUnit serves a scope unit's properties.
type fakeUnit struct{ cgroup string }

func (u fakeUnit) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	if iface == "org.freedesktop.systemd1.Scope" && name == "ControlGroup" {
		return dbus.MakeVariant(u.cgroup), nil
	}
	return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{iface + "." + name})
}

// privateBus starts a dbus-daemon of its own for the test, points
// DBUS_SESSION_BUS_ADDRESS at it, and registers fake as systemd there.
func privateBus(t *testing.T, fake *fakeSystemd) {
	t.Helper()
	daemon := testutil.RequiresCommand(t, "dbus-daemon")
	sock := filepath.Join(testutil.TempDir(t), "bus")
	cmd := exec.Command(daemon, "--session", "--nofork", "--nopidfile", "--address=unix:path="+sock, "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder // it complains of the fd limit it may not raise
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The daemon prints its address once it listens.
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon: %v\n%s", err, stderr.String())
	}
	addr = strings.TrimSpace(addr)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)

	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fake.conn = conn
	if err := conn.Export(fake, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.systemd1: %v, %v", reply, err)
	}
}

// TestStartScope drives StartScope's D-Bus exchange with a fake systemd on
// a private bus, and its cgroup work on the real cgroup v2 file system:
// the call carries the documented properties, the Delegation names the
// scope's cgroup, and the process systemd put there ends in the leaf.
func TestStartScope(t *testing.T) {
	testutil.RequiresRoot(t)
	mnt := v2Mount(t)
	fake := &fakeSystemd{mnt: mnt, slice: testSlice(t, mnt), result: "done"}
	privateBus(t, fake)
	sleeper := startSleeper(t, 0)
	unit := fmt.Sprintf("mcpbox-test-%d.scope", os.Getpid())

	d, err := startScope(testutil.Context(t, time.Minute), userBus(realHost(DefaultRoot)), mnt, unit, sleeper.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	calls := fake.calls
	fake.mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("systemd got %d calls, want 1", len(calls))
	}
	call := calls[0]
	if call.Name != unit || call.Mode != "fail" || len(call.Aux) != 0 {
		t.Errorf("StartTransientUnit(%q, %q, …, %v), want (%q, \"fail\", …, [])", call.Name, call.Mode, call.Aux, unit)
	}
	if !reflect.DeepEqual(call.Props["PIDs"], []uint32{uint32(sleeper.Process.Pid)}) || call.Props["Delegate"] != true ||
		call.Props["CollectMode"] != "inactive-or-failed" || call.Props["Description"] == nil || len(call.Props) != 4 {
		t.Errorf("properties %v: want PIDs [%d], Delegate true, CollectMode, Description", call.Props, sleeper.Process.Pid)
	}

	scope := fake.slice + "/" + unit
	available, err := readFields(filepath.Join(mnt, scope, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	want := Delegation{Parent: scope, Version: 2, Controllers: limits(available), How: "systemd user scope " + unit}
	if len(want.Missing(limitControllers)) > 0 {
		want.Fix = fixV2
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("StartScope = %+v, want %+v", d, want)
	}
	if in, err := unifiedCgroup(fmt.Sprintf("/proc/%d/cgroup", sleeper.Process.Pid)); err != nil || in != scope+"/"+supervisor {
		t.Errorf("the scope's process is in %q (%v), want the leaf %s/%s", in, err, scope, supervisor)
	}
	if procs, err := readFields(filepath.Join(mnt, scope, "cgroup.procs")); err != nil || len(procs) != 0 {
		t.Errorf("processes left directly in the scope: %v, %v", procs, err)
	}
}

// TestStartScopeFails: a job systemd ends other than "done" is an error,
// and no delegation.
func TestStartScopeFails(t *testing.T) {
	testutil.RequiresRoot(t)
	mnt := v2Mount(t)
	fake := &fakeSystemd{mnt: mnt, slice: testSlice(t, mnt), result: "failed"}
	privateBus(t, fake)
	sleeper := startSleeper(t, 0)

	d, err := startScope(testutil.Context(t, time.Minute), userBus(realHost(DefaultRoot)), mnt, "mcpbox-test-fails.scope", sleeper.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), `systemd's job ended "failed"`) || !reflect.DeepEqual(d, Delegation{}) {
		t.Errorf("StartScope = %+v, %v: want the failed job reported", d, err)
	}
	if in, err := unifiedCgroup(fmt.Sprintf("/proc/%d/cgroup", sleeper.Process.Pid)); err != nil || strings.Contains(in, "mcpbox-test") {
		t.Errorf("the process moved to %q (%v)", in, err)
	}
}

// TestStartScopeNoBus: without a session bus StartScope says where it
// looked, and launches none.
func TestStartScopeNoBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	_, err := startScope(context.Background(), userBus(realHost(DefaultRoot)), "/nonexistent", "mcpbox-x.scope", os.Getpid())
	if err == nil || !strings.Contains(err.Error(), "no user D-Bus session bus") {
		t.Errorf("StartScope without a bus: %v", err)
	}
	if _, err := startScope(context.Background(), nil, "/nonexistent", "mcpbox-x.service", os.Getpid()); err == nil {
		t.Error("StartScope accepted a unit name that is not a scope's")
	}
}

// TestEnterAsUser: in a cgroup v2 subtree delegated the way systemd
// delegates it, the user (root of a user namespace, as mcpbox runs) moves
// the scope's processes into the leaf and, as runc will, a process into a
// session cgroup beside it.
func TestEnterAsUser(t *testing.T) {
	testutil.RequiresRoot(t)
	mnt := v2Mount(t)
	scope := testSlice(t, mnt) + "/mcpbox-user.scope"
	dir := filepath.Join(mnt, scope)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	delegateTo(t, dir, nobody)
	sleeper := startSleeper(t, nobody)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(sleeper.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	available, err := readFields(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}

	var r enterReport
	runHelper(t, asUser(t, false, "enter", dir, fmt.Sprint(sleeper.Process.Pid)), &r)
	t.Logf("helper as nobody: %+v (controllers available: %v)", r, available)
	if !reflect.DeepEqual(r.Enabled, limits(available)) && !(len(r.Enabled) == 0 && len(limits(available)) == 0) {
		t.Errorf("enabled %v, want the limit controllers among %v", r.Enabled, available)
	}
	if r.Moved != "" {
		t.Errorf("moving the process into a session cgroup: %s", r.Moved)
	}
	if in, err := unifiedCgroup(fmt.Sprintf("/proc/%d/cgroup", sleeper.Process.Pid)); err != nil || in != scope+"/session" {
		t.Errorf("the process is in %q (%v), want %s/session", in, err, scope)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, supervisor), &st); err != nil || st.Uid != nobody {
		t.Errorf("the leaf: owner %d, %v: want it made by the user", st.Uid, err)
	}
}

// TestUserBusFromUserNamespace: StartScope's connection is accepted by a
// session bus of the user's from inside mcpbox's user namespace, where the
// user is uid 0 (the bus sees the socket's peer as the host's uid).
func TestUserBusFromUserNamespace(t *testing.T) {
	testutil.RequiresRoot(t)
	daemon := testutil.RequiresCommand(t, "dbus-daemon")
	sock := filepath.Join(sharedDir(t), "bus")
	cmd := exec.Command(daemon, "--session", "--nofork", "--nopidfile", "--address=unix:path="+sock, "--print-address=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	cmd.Dir = "/"
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon as nobody: %v\n%s", err, stderr.String())
	}

	helper := asUser(t, false, "dial")
	helper.Env = append(helper.Env, "DBUS_SESSION_BUS_ADDRESS="+strings.TrimSpace(addr))
	var got string
	runHelper(t, helper, &got)
	if got != "connected" {
		t.Errorf("from the user namespace: %s", got)
	}
}
