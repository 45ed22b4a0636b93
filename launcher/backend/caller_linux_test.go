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
// Choose and stateDir say for the addresses and /tmp stand-in in the
// variable ("ADDR,ADDR;TMP"): the child of TestChooseAsCaller.
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
	addrs, tmp, _ := strings.Cut(v, ";")
	ctx := context.Background()
	for _, addr := range strings.Split(addrs, ",") {
		c, err := Choose(ctx, Auto, addr)
		fmt.Fprintf(w, "auto %s %s %v\n", c.Kind, c.Why, err)
		c, err = Choose(ctx, Rootless, addr)
		fmt.Fprintf(w, "rootless %s %v\n", c.Kind, err)
	}
	dir, err := stateDir("", tmp, os.Geteuid(), HostUID())
	fmt.Fprintf(w, "statedir %s %v\n", dir, err)
	fmt.Fprintf(w, "hostuid %d\n", HostUID())
	return 0
}

// TestChooseAsCaller runs Choose as nobody, as an ordinary user would,
// against a socket only root may open (this host's containerd's, and one
// the test makes 0600 with a listener behind it): auto is rootless, with
// the uid that may not open it, and rootless is allowed. The same again
// inside a user namespace where nobody is uid 0, as mcpbox runs after the
// rootless runtime's re-exec: being uid 0 there is not being root, and
// the state directory is still named by the host uid.
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
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin)
			cmd.Dir = "/"
			cmd.Env = []string{asCallerEnv + "=" + strings.Join(addrs, ",") + ";" + tmp}
			cmd.SysProcAttr = tc.attr
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			out := stdout.String()
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
			fi, err := os.Lstat(want)
			if err != nil {
				t.Fatal(err)
			}
			if uid, _ := owner(fi); uid != 65534 || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
				t.Errorf("%s: owner %d, mode %v; want a directory of 65534, 0700", want, uid, fi.Mode())
			}
		})
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
