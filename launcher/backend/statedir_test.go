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
			loc, err := stateDir(xdg, tmp, "", euid, 4321)
			dir := loc.Dir
			want := filepath.Join(tmp, "mcpbox-4321")
			if tc.problem == "" {
				want = filepath.Join(xdg, "mcpbox")
			}
			if err != nil || dir != want || loc.RuntimeDirProblem != runtimeDirProblem(xdg, euid) || loc.Tmp != nil {
				t.Fatalf("stateDir = %+v, %v; want %q", loc, err, want)
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
// into is refused with what to do when there is no state home to fall
// back to (HOME unset); a directory of the caller's own is closed to 0700.
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
			loc, err := stateDir("", tmp, "", euid, 4321)
			dir := loc.Dir
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
			if se.Dir != want || !strings.Contains(se.Problem, tc.problem) || !strings.Contains(se.Fix, strings.ReplaceAll(tc.fix, "DIR", want)) ||
				!strings.Contains(se.Fix, "or set HOME (or XDG_STATE_HOME) to a directory of yours") {
				t.Errorf("%+v\nwant problem %q, fix with %q and HOME", se, tc.problem, tc.fix)
			}
		})
	}
}

// TestStateDirFallsBack: when /tmp/mcpbox-UID cannot be used — someone
// else made it first, it is a symlink or a file, others may write into it,
// or it cannot be made — the state goes to $XDG_STATE_HOME/mcpbox/run,
// made 0700 with its parents, and the location says why. Otherwise any
// local user could keep the caller from running mcpbox by making it first.
// A usable $XDG_RUNTIME_DIR is used whatever /tmp holds.
func TestStateDirFallsBack(t *testing.T) {
	euid := os.Geteuid()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string) // dir: TMP/mcpbox-4321
		problem string
	}{
		{"someone else's", func(t *testing.T, dir string) {
			testutil.RequiresRoot(t) // chown
			mustMkdir(t, dir, 0o700)
			if err := os.Chown(dir, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		}, "it belongs to uid 4242: someone else made it first"},
		{"someone else's, open to all", func(t *testing.T, dir string) {
			testutil.RequiresRoot(t) // chown
			mustMkdir(t, dir, 0o777)
			if err := os.Chown(dir, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		}, "it belongs to uid 4242"},
		{"a symlink to a directory of ours", func(t *testing.T, dir string) {
			if err := os.Symlink(mkdir(t, 0o700), dir); err != nil {
				t.Fatal(err)
			}
		}, "it is a symlink"},
		{"a dangling symlink", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(t.TempDir(), "gone"), dir); err != nil {
				t.Fatal(err)
			}
		}, "it is a symlink"},
		{"a file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "it is not a directory"},
		{"ours, writable by others", func(t *testing.T, dir string) { mustMkdir(t, dir, 0o777) }, "others may write into it"},
		{"cannot be made", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Dir(dir)); err != nil {
				t.Fatal(err)
			}
		}, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := mkdir(t, 0o1777)
			squatted := filepath.Join(tmp, "mcpbox-4321")
			tc.prepare(t, squatted)
			before, _ := os.Lstat(squatted)
			stateHome := filepath.Join(t.TempDir(), "home", ".local", "state", "mcpbox")
			loc, err := stateDir("", tmp, stateHome, euid, 4321)
			want := filepath.Join(stateHome, "run")
			if err != nil || loc.Dir != want {
				t.Fatalf("stateDir = %+v, %v; want %s", loc, err, want)
			}
			for _, d := range []string{want, stateHome} {
				if fi, err := os.Lstat(d); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
					t.Errorf("%s: %v, %v; want a directory with mode 0700", d, fi, err)
				}
			}
			if loc.Tmp == nil || loc.Tmp.Dir != squatted || !strings.Contains(loc.Tmp.Problem, tc.problem) {
				t.Errorf("Tmp = %+v, want %s: %s", loc.Tmp, squatted, tc.problem)
			}
			if why := loc.Why(); !strings.HasPrefix(why, "XDG_RUNTIME_DIR is not set; "+squatted+": ") || !strings.Contains(why, tc.problem) {
				t.Errorf("Why() = %q", why)
			}
			if after, _ := os.Lstat(squatted); !sameFile(before, after) {
				t.Errorf("%s was changed: %v, then %v", squatted, before, after)
			}
			// The next session, and `mcpbox gc`, find the same directory.
			if again, err := stateDir("", tmp, stateHome, euid, 4321); err != nil || again.Dir != want {
				t.Errorf("again: %+v, %v; want %s", again, err, want)
			}

			// A usable XDG_RUNTIME_DIR comes first, whatever is in /tmp.
			xdg := mkdir(t, 0o700)
			if loc, err := stateDir(xdg, tmp, stateHome, euid, 4321); err != nil || loc.Dir != filepath.Join(xdg, "mcpbox") || loc.Why() != "" {
				t.Errorf("with XDG_RUNTIME_DIR: %+v, %v", loc, err)
			}
		})
	}
}

// TestStateDirFallbackRefused: the state home's run directory is checked
// as /tmp's is: a symlink or someone else's directory there is refused,
// and the error says what was wrong with both places and how to fix
// either. A relative state home (HOME unset) is no fallback at all.
func TestStateDirFallbackRefused(t *testing.T) {
	euid := os.Geteuid()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, run string)
		problem string
		fix     string
	}{
		{"a symlink", func(t *testing.T, run string) {
			if err := os.Symlink(mkdir(t, 0o700), run); err != nil {
				t.Fatal(err)
			}
		}, "it is a symlink", "rm $RUN"},
		{"someone else's", func(t *testing.T, run string) {
			testutil.RequiresRoot(t) // chown
			mustMkdir(t, run, 0o700)
			if err := os.Chown(run, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		}, "it belongs to uid 4242", "sudo rm -r $RUN"},
		{"a state home that is a file", func(t *testing.T, run string) {
			if err := os.WriteFile(filepath.Dir(run), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a directory", "set XDG_RUNTIME_DIR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := mkdir(t, 0o1777)
			squatted := filepath.Join(tmp, "mcpbox-4321")
			if err := os.WriteFile(squatted, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			stateHome := filepath.Join(t.TempDir(), "mcpbox")
			if tc.name != "a state home that is a file" {
				mustMkdir(t, stateHome, 0o700)
			}
			run := filepath.Join(stateHome, "run")
			tc.prepare(t, run)
			loc, err := stateDir("", tmp, stateHome, euid, 4321)
			var se *StateDirError
			if !errors.As(err, &se) || loc.Dir != "" {
				t.Fatalf("stateDir = %+v, %v; want a StateDirError", loc, err)
			}
			if se.Dir != run || !strings.Contains(se.Problem, tc.problem) || !strings.Contains(se.Problem, "tried after "+squatted+": it is not a directory") ||
				!strings.Contains(se.Fix, strings.ReplaceAll(tc.fix, "$RUN", run)) || !strings.Contains(se.Fix, "rm "+squatted) {
				t.Errorf("%+v\nwant problem %q after %s's, fix with %q and for %s", se, tc.problem, squatted, tc.fix, squatted)
			}
		})
	}
	for _, stateHome := range []string{"", ".local/state/mcpbox"} {
		tmp := mkdir(t, 0o1777)
		squatted := filepath.Join(tmp, "mcpbox-4321")
		if err := os.WriteFile(squatted, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := stateDir("", tmp, stateHome, euid, 4321)
		var se *StateDirError
		if !errors.As(err, &se) || se.Dir != squatted || !strings.Contains(se.Fix, "set HOME") {
			t.Errorf("state home %q: %v; want %s refused, with a fix that says to set HOME", stateHome, err, squatted)
		}
		if _, err := os.Stat(stateHome); stateHome != "" && err == nil {
			t.Errorf("a relative state home %s was made", stateHome)
		}
	}
}

func sameFile(a, b os.FileInfo) bool {
	return a == nil && b == nil || a != nil && b != nil && os.SameFile(a, b) && a.Mode() == b.Mode()
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
