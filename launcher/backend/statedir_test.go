package backend

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestStateDirXDG: a usable $XDG_RUNTIME_DIR holds the state in
// $XDG_RUNTIME_DIR/mcpbox; one that is missing, relative, open to others or
// someone else's sends it to /tmp/mcpbox-UID.
func TestStateDirXDG(t *testing.T) {
	euid := os.Geteuid()
	for _, tc := range []struct {
		name    string
		xdg     func(t *testing.T) string
		problem string // "" for a usable XDG_RUNTIME_DIR
	}{
		{"usable", func(t *testing.T) string { return mkdir(t, 0o700) }, ""},
		{"unset", func(*testing.T) string { return "" }, "XDG_RUNTIME_DIR is not set"},
		{"relative", func(*testing.T) string { return "run/user/1000" }, "is not an absolute path"},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gone") }, "no such file"},
		{"a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			os.WriteFile(p, nil, 0o600)
			return p
		}, "is not a directory"},
		{"mode 0755", func(t *testing.T) string { return mkdir(t, 0o755) }, "has mode 0755, not 0700"},
		{"someone else's", func(t *testing.T) string {
			testutil.RequiresRoot(t) // chown
			d := mkdir(t, 0o700)
			if err := os.Chown(d, 4242, 4242); err != nil {
				t.Fatal(err)
			}
			return d
		}, "belongs to uid 4242, not to this user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xdg := tc.xdg(t)
			if p := runtimeDirProblem(xdg, euid); !strings.Contains(p, tc.problem) || (p == "") != (tc.problem == "") {
				t.Errorf("runtimeDirProblem(%q) = %q, want %q", xdg, p, tc.problem)
			}
			tmp := mkdir(t, 0o1777)
			dir, err := stateDir(xdg, tmp, euid, 4321)
			want := filepath.Join(tmp, "mcpbox-4321")
			if tc.problem == "" {
				want = filepath.Join(xdg, "mcpbox")
			}
			if err != nil || dir != want {
				t.Fatalf("stateDir = %q, %v; want %q", dir, err, want)
			}
			fi, err := os.Lstat(dir)
			if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v %v, want a directory with mode 0700", dir, fi.Mode(), err)
			}
		})
	}
}

// TestStateDirRefused: in /tmp, anyone may make mcpbox-UID first. A
// symlink, a file, someone else's directory or one that others may write
// into is refused with what to do; a directory of the caller's own is
// closed to 0700.
func TestStateDirRefused(t *testing.T) {
	euid := os.Geteuid()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		problem string // "" if the directory is used
		fix     string
	}{
		{"ours, 0755", func(t *testing.T, dir string) { mustMkdir(t, dir, 0o755) }, "", ""},
		{"ours, 0700", func(t *testing.T, dir string) { mustMkdir(t, dir, 0o700) }, "", ""},
		{"ours, writable by others", func(t *testing.T, dir string) { mustMkdir(t, dir, 0o777) }, "others may write into it (mode 0777)", "rm -r " + "DIR"},
		{"symlink to ours", func(t *testing.T, dir string) {
			target := mkdir(t, 0o700)
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}, "it is a symlink", "rm DIR"},
		{"a file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "it is not a directory", "rm DIR"},
		{"someone else's", func(t *testing.T, dir string) {
			testutil.RequiresRoot(t) // chown
			mustMkdir(t, dir, 0o700)
			if err := os.Chown(dir, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		}, "it belongs to uid 4242: someone else made it first", "sudo rm -r DIR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := mkdir(t, 0o1777)
			want := filepath.Join(tmp, "mcpbox-4321")
			tc.prepare(t, want)
			dir, err := stateDir("", tmp, euid, 4321)
			if tc.problem == "" {
				if err != nil || dir != want {
					t.Fatalf("stateDir = %q, %v; want %q", dir, err, want)
				}
				if fi, err := os.Lstat(dir); err != nil || fi.Mode().Perm() != 0o700 {
					t.Errorf("%s: %v %v, want mode 0700", dir, fi.Mode(), err)
				}
				return
			}
			var se *StateDirError
			if !errors.As(err, &se) || dir != "" {
				t.Fatalf("stateDir = %q, %v; want a StateDirError", dir, err)
			}
			if se.Dir != want || !strings.Contains(se.Problem, tc.problem) || !strings.Contains(se.Fix, strings.ReplaceAll(tc.fix, "DIR", want)) {
				t.Errorf("%+v\nwant problem %q, fix with %q", se, tc.problem, tc.fix)
			}
		})
	}
}

// mkdir makes a temporary directory with exactly mode perm.
func mkdir(t *testing.T, perm os.FileMode) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "d")
	mustMkdir(t, d, perm)
	return d
}

func mustMkdir(t *testing.T, d string, perm os.FileMode) {
	t.Helper()
	if err := os.Mkdir(d, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}
