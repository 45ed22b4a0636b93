package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// asCallerEnv makes the test binary run the user namespaces check, as
// whoever runs it, and print the result as JSON instead of testing: the
// child of TestUserNamespacesAsNobody.
const asCallerEnv = "MCPBOX_DOCTOR_TEST_USERNS"

// TestMain: the user namespaces check starts /proc/self/exe with
// ProbeCommand, which in these tests is the test binary; it does what the
// hidden mcpbox command does.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == ProbeCommand {
		if err := ProbeChild(); err != nil {
			fmt.Fprintf(os.Stderr, "mcpbox: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(asCallerEnv) != "" {
		c := checkUserNamespaces(context.Background(), Options{Self: "/proc/self/exe", Caller: Caller{UID: os.Geteuid()}, Root: "/"}, true)
		json.NewEncoder(os.Stdout).Encode(c)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestUserNamespaces: the check really creates a user namespace, a
// network namespace in it and nftables rules in that, as this user.
func TestUserNamespaces(t *testing.T) {
	c := checkUserNamespaces(testutil.Context(t, 60*time.Second), Options{Self: "/proc/self/exe", Caller: Caller{UID: os.Geteuid()}, Root: "/"}, true)
	want := fmt.Sprintf("as uid %d: created a user namespace, a network namespace in it, and mcpbox's nftables rules in that", os.Geteuid())
	if c.Status != OK || c.Detail != want {
		t.Errorf("%+v\nwant ok: %s", c, want)
	}
}

// TestUserNamespacesAsNobody: the same check as an unprivileged user, as
// whom the rootless runtime runs: the test binary, copied where nobody
// may run it, runs the check as nobody.
func TestUserNamespacesAsNobody(t *testing.T) {
	testutil.RequiresRoot(t)
	dir, err := os.MkdirTemp("", "mcpbox-doctor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "doctor.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Dir = "/"
	cmd.Env = []string{asCallerEnv + "=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	var c Result
	if err := json.Unmarshal(stdout.Bytes(), &c); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if c.Status != OK || !strings.HasPrefix(c.Detail, "as uid 65534: created a user namespace") {
		t.Errorf("as nobody: %+v", c)
	}
}

// TestUserNamespacesChildFails: what the child says when it fails reaches
// the check; a runtime that does not need user namespaces only warns.
func TestUserNamespacesChildFails(t *testing.T) {
	script := filepath.Join(t.TempDir(), "mcpbox")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'mcpbox: nftables in a network namespace: operation not permitted' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{Self: script, Root: t.TempDir(), Caller: Caller{UID: 1000}}
	c := checkUserNamespaces(testutil.Context(t, 60*time.Second), opts, true)
	want := "inside a new user namespace: mcpbox: nftables in a network namespace: operation not permitted"
	if c.Status != Fail || c.Detail != want {
		t.Errorf("%+v\nwant fail: %s", c, want)
	}
	c = checkUserNamespaces(testutil.Context(t, 60*time.Second), opts, false)
	if c.Status != Warn || !strings.HasSuffix(c.Detail, "(containerd does not need them; the rootless runtime does)") {
		t.Errorf("not needed: %+v", c)
	}
	if c := checkUserNamespaces(context.Background(), Options{}, true); c.Status != Skip {
		t.Errorf("no executable: %+v", c)
	}
}

// fakeInfo is a file's mode and owner.
type fakeInfo struct {
	mode fs.FileMode
	uid  uint32
}

func (f fakeInfo) Name() string       { return "newuidmap" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid} }

func TestPrivileged(t *testing.T) {
	epSetuid := capData(vfsCapRevision2|vfsCapFlagsEffective, 1<<capSetuid, -1)
	for _, tc := range []struct {
		name string
		fi   fakeInfo
		caps []byte
		how  string
		ok   bool
	}{
		{"setuid root", fakeInfo{0o755 | fs.ModeSetuid, 0}, nil, "setuid root", true},
		{"setuid, not root's", fakeInfo{0o755 | fs.ModeSetuid, 1000}, nil, "mode urwxr-xr-x, owner uid 1000, no cap_setuid file capability", false},
		{"root's, not setuid", fakeInfo{0o755, 0}, nil, "mode -rwxr-xr-x, owner uid 0, no cap_setuid file capability", false},
		{"file capability", fakeInfo{0o755, 0}, epSetuid, "file capability cap_setuid=ep", true},
	} {
		how, ok := privileged(tc.fi, tc.caps, capSetuid)
		if how != tc.how || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", tc.name, how, ok, tc.how, tc.ok)
		}
	}
}

// TestFileCapsRead: fileCaps reads what setcap writes.
func TestFileCapsRead(t *testing.T) {
	testutil.RequiresRoot(t)
	setcap := testutil.RequiresCommand(t, "setcap")
	p := filepath.Join(t.TempDir(), "newuidmap")
	if err := os.WriteFile(p, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if fileCaps(p) != nil {
		t.Fatalf("a new file has capabilities")
	}
	if out, err := exec.Command(setcap, "cap_setuid=ep", p).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v: %s", err, out)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if how, ok := privileged(fi, fileCaps(p), capSetuid); !ok || how != "file capability cap_setuid=ep" {
		t.Errorf("after setcap cap_setuid=ep: %q %v", how, ok)
	}
	if _, ok := privileged(fi, fileCaps(p), capSetgid); ok {
		t.Errorf("cap_setuid counted as cap_setgid")
	}
}
