package backend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// asCallerEnv makes the test binary print, instead of testing, what
// Choose and stateDir say for the addresses, /tmp stand-in and state home
// in the variable ("ADDR,ADDR;TMP;STATEHOME"): the child of
// TestChooseAsCaller.
const asCallerEnv = "MCPBOX_BACKEND_TEST_AS_CALLER"

func TestMain(m *testing.M) {
	if v := os.Getenv(asCallerEnv); v != "" {
		os.Exit(asCaller(os.Stdout, v))
	}
	os.Exit(m.Run())
}

// asCaller prints one line per address, "auto KIND WHY" and "rootless
// KIND-or-error", then "statedir DIR-or-error" and "hostuid UID".
func asCaller(w io.Writer, v string) int {
	addrs, rest, _ := strings.Cut(v, ";")
	tmp, stateHome, _ := strings.Cut(rest, ";")
	ctx := context.Background()
	for _, addr := range strings.Split(addrs, ",") {
		c, err := Choose(ctx, Auto, addr)
		fmt.Fprintf(w, "auto %s %s %v\n", c.Kind, c.Why, err)
		c, err = Choose(ctx, Rootless, addr)
		fmt.Fprintf(w, "rootless %s %v\n", c.Kind, err)
	}
	loc, err := stateDir("", tmp, stateHome, os.Geteuid(), HostUID())
	fmt.Fprintf(w, "statedir %s %v\n", loc.Dir, err)
	fmt.Fprintf(w, "hostuid %d\n", HostUID())
	return 0
}

// TestChooseAsCaller runs Choose as nobody, as an ordinary user would,
// against a socket only root may open (this host's containerd's, and one
// the test makes 0600 with a listener behind it): auto is rootless, with
// the uid that may not open it, and rootless is allowed. The same again
// inside a user namespace where nobody is uid 0, as mcpbox runs after the
// rootless runtime's re-exec: being uid 0 there is not being root, and
// the state directory is still named by the host uid. Then, with that
// directory made someone else's, both fall back to the state home, whose
// owner they see as themselves.
func TestChooseAsCaller(t *testing.T) {
	testutil.RequiresRoot(t)
	dir, err := os.MkdirTemp("", "mcpbox-backend-")
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
	bin := filepath.Join(dir, "backend.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "root-only.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := []string{sock}
	if addr := testutil.ContainerdAddress(); exists(addr) {
		addrs = append(addrs, addr)
	} else if testutil.InCI() {
		t.Fatalf("CI=true but no containerd socket at %s", addr)
	}

	for _, tc := range []struct {
		name string
		attr *syscall.SysProcAttr
	}{
		{"nobody", &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}},
		{"nobody as uid 0 of a user namespace", &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0},
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
			GidMappingsEnableSetgroups: false,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp, err := os.MkdirTemp("", "mcpbox-backend-tmp-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(tmp) })
			if err := os.Chmod(tmp, 0o1777); err != nil {
				t.Fatal(err)
			}
			home := filepath.Join(tmp, "home")
			if err := os.Mkdir(home, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(home, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			stateHome := filepath.Join(home, ".local", "state", "mcpbox")
			run := func() string {
				var stdout, stderr bytes.Buffer
				cmd := exec.Command(bin)
				cmd.Dir = "/"
				cmd.Env = []string{asCallerEnv + "=" + strings.Join(addrs, ",") + ";" + tmp + ";" + stateHome}
				cmd.SysProcAttr = tc.attr
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
				}
				return stdout.String()
			}
			out := run()
			for _, addr := range addrs {
				for _, want := range []string{
					"auto rootless uid 65534 may not open " + addr + " <nil>\n",
					"rootless rootless <nil>\n",
				} {
					if !strings.Contains(out, want) {
						t.Errorf("no %q in:\n%s", want, out)
					}
				}
			}
			want := filepath.Join(tmp, "mcpbox-65534")
			if !strings.Contains(out, "statedir "+want+" <nil>\n") || !strings.Contains(out, "hostuid 65534\n") {
				t.Errorf("want state dir %s and host uid 65534:\n%s", want, out)
			}
			ownedBy65534(t, want)

			if err := os.Chown(want, 4242, 4242); err != nil {
				t.Fatal(err)
			}
			out = run()
			if want := filepath.Join(stateHome, "run"); !strings.Contains(out, "statedir "+want+" <nil>\n") {
				t.Errorf("with %s someone else's, want state dir %s:\n%s", filepath.Join(tmp, "mcpbox-65534"), want, out)
			}
			ownedBy65534(t, filepath.Join(stateHome, "run"))
		})
	}
}

func ownedBy65534(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if uid, _ := owner(fi); uid != 65534 || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("%s: owner %d, mode %v; want a directory of 65534, 0700", dir, uid, fi.Mode())
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
