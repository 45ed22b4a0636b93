package grant

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"

	"github.com/mcpbox/mcpbox/sandbox"
)

func TestResolvePath(t *testing.T) {
	dir := testutil.TempDir(t)
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.Symlink(filepath.Join(dir, "a", "b"), filepath.Join(dir, "l"))
	t.Setenv("HOME", dir)
	t.Chdir(dir)
	for _, tc := range []struct {
		in, lexical, real, err string
	}{
		{in: dir + "/l", lexical: dir + "/l", real: dir + "/a/b"},
		{in: "l", lexical: dir + "/l", real: dir + "/a/b"},
		{in: "./l/", lexical: dir + "/l", real: dir + "/a/b"},
		{in: "~/l", lexical: dir + "/l", real: dir + "/a/b"},
		{in: dir + "/a/b/..", lexical: dir + "/a", real: dir + "/a"}, // no symlink before ".."
		{in: dir + "/l/..", err: `".." follows a symlink`},
		{in: dir + "/l/../b", err: `".." follows a symlink`}, // the host has it, the text does not
		{in: dir + "/missing", err: "no such file"},
	} {
		lexical, real, err := ResolvePath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolvePath(%q) = %q, %q, %v; want an error saying %q", tc.in, lexical, real, err, tc.err)
			}
			continue
		}
		if err != nil || lexical != tc.lexical || real != tc.real {
			t.Errorf("ResolvePath(%q) = %q, %q, %v; want %q, %q", tc.in, lexical, real, err, tc.lexical, tc.real)
		}
	}
	if _, _, err := ResolvePath(dir + "/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing path: %v is not fs.ErrNotExist", err)
	}
}

// TestExplicitGrant: a path named with --mount (or in a profile) is
// granted as it is, but one that a symlink leads somewhere a path argument
// could not go is refused, with the target to name instead.
func TestExplicitGrant(t *testing.T) {
	root := testutil.TempDir(t)
	home := filepath.Join(root, "home", "me")
	ssh, notes, docs, outside := filepath.Join(home, ".ssh"), filepath.Join(home, "notes"), filepath.Join(home, "docs"), filepath.Join(root, "srv")
	for _, d := range []string{ssh, notes, docs, outside} {
		os.MkdirAll(d, 0o755)
	}
	u := NewUser(home)
	os.Symlink(ssh, filepath.Join(notes, "keys"))
	os.Symlink(docs, filepath.Join(notes, "docs"))
	os.Symlink(outside, filepath.Join(notes, "srv"))
	os.Symlink(home, filepath.Join(notes, "hop"))

	for _, tc := range []struct {
		path string
		want sandbox.Mount
		err  []string
	}{
		// Named directly: the user's call, even credentials or outside home.
		{path: ssh, want: sandbox.Mount{Source: ssh, Destination: "/d", ReadOnly: true}},
		{path: outside, want: sandbox.Mount{Source: outside, Destination: "/d", ReadOnly: true}},
		// Through a symlink to a path a path argument could have: bound
		// from the target.
		{path: filepath.Join(notes, "docs"), want: sandbox.Mount{Source: docs, Destination: "/d", ReadOnly: true}},
		// Through a symlink elsewhere: refused, saying what to name.
		{path: filepath.Join(notes, "keys"), err: []string{"symlink", ssh, "holds credentials", "--mount " + ssh + ":/d:ro"}},
		{path: filepath.Join(notes, "hop", ".ssh"), err: []string{"holds credentials"}},
		{path: filepath.Join(notes, "srv"), err: []string{"outside your home", "--mount " + outside + ":/d:ro"}},
		{path: filepath.Join(notes, "hop"), err: []string{"whole home"}},
		{path: filepath.Join(notes, "missing"), err: []string{"does not exist"}},
	} {
		got, err := u.ExplicitGrant(tc.path, "/d", true)
		if tc.err != nil {
			for _, w := range tc.err {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("ExplicitGrant(%s) = %+v, %v; want an error saying %q", tc.path, got, err, w)
				}
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExplicitGrant(%s) = %+v, %v; want %+v", tc.path, got, err, tc.want)
		}
	}
}

// TestCurrentUser: the homes come from $HOME and from the passwd entries
// (the user's own and, under sudo, the caller's), each also resolved; a
// home of / counts for nothing.
func TestCurrentUser(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	root := testutil.TempDir(t)
	real := filepath.Join(root, "real-home")
	os.MkdirAll(real, 0o755)
	link := filepath.Join(root, "home-link")
	os.Symlink(real, link)

	t.Setenv("HOME", link)
	t.Setenv("SUDO_USER", "")
	u := CurrentUser("/c", "/s", "/k")
	for _, want := range []string{link, real, me.HomeDir} {
		if !slices.Contains(u.homes, want) {
			t.Errorf("homes %v lack %s", u.homes, want)
		}
	}
	if u.home != link {
		t.Errorf("home = %s, want $HOME %s", u.home, link)
	}
	if !slices.Contains(u.credentials, filepath.Join(real, ".ssh")) || !slices.Contains(u.credentials, filepath.Join(me.HomeDir, ".aws")) {
		t.Errorf("credentials %v lack the homes' ~/.ssh and ~/.aws", u.credentials)
	}
	if !slices.Equal(u.own, []string{"/c", "/s", "/k"}) {
		t.Errorf("own = %v", u.own)
	}

	t.Setenv("HOME", "/")
	if u := CurrentUser(); slices.Contains(u.homes, "/") {
		t.Errorf("homes %v hold /", u.homes)
	}

	if root, err := user.LookupId("0"); err == nil {
		t.Setenv("HOME", real)
		t.Setenv("SUDO_USER", root.Username)
		if u := CurrentUser(); !slices.Contains(u.homes, root.HomeDir) {
			t.Errorf("under sudo by %s, homes %v lack %s", root.Username, u.homes, root.HomeDir)
		}
	}
}

// A runtime installed as ~/bin/node has the prefix ~; under ~/.local, the
// prefix gathers unrelated files and keyrings: neither is bound whole for
// an npx or uvx package's sake, while mcpbox's own cache and an nvm-style
// prefix are.
func TestRuntimeMounts(t *testing.T) {
	home := t.TempDir()
	for _, d := range []string{"bin", ".ssh", ".local/bin", ".local/share/keyrings", ".nvm/versions/node/v22/bin", ".cache/mcpbox/pkg", "opt/node/bin"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	u := User{home: home}
	u.addHome(home)
	for _, c := range []struct {
		dir   string
		bound bool
	}{
		{home, false},               // node in ~/bin
		{filepath.Dir(home), false}, // holds the home
		{"/", false},                // a prefix of /
		{filepath.Join(home, ".local"), false},
		{filepath.Join(home, ".ssh"), false},
		{filepath.Join(home, ".nvm/versions/node/v22"), true},
		{filepath.Join(home, ".cache/mcpbox/pkg"), true},
		{filepath.Join(home, "opt/node"), true},
	} {
		m, err := u.RuntimeMounts([]string{c.dir}, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.dir, err)
		}
		if got := len(m) == 1; got != c.bound {
			t.Errorf("RuntimeMounts(%s) bound it: %v, want %v", c.dir, got, c.bound)
		}
	}
	if _, err := u.RuntimeMounts([]string{filepath.Join(home, "missing")}, nil); err == nil {
		t.Error("a missing runtime directory: no error")
	}
}
