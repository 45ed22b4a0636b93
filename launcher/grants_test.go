package launcher

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox"
)

// tempDir is t.TempDir with its symlinks resolved.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestResolvePath(t *testing.T) {
	dir := tempDir(t)
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
		lexical, real, err := resolvePath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolvePath(%q) = %q, %q, %v; want an error saying %q", tc.in, lexical, real, err, tc.err)
			}
			continue
		}
		if err != nil || lexical != tc.lexical || real != tc.real {
			t.Errorf("resolvePath(%q) = %q, %q, %v; want %q, %q", tc.in, lexical, real, err, tc.lexical, tc.real)
		}
	}
	if _, _, err := resolvePath(dir + "/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing path: %v is not fs.ErrNotExist", err)
	}
}

// TestExplicitGrant: a path named with --mount (or in a profile) is
// granted as it is, but one that a symlink leads somewhere a path argument
// could not go is refused, with the target to name instead.
func TestExplicitGrant(t *testing.T) {
	root := tempDir(t)
	home := filepath.Join(root, "home", "me")
	ssh, notes, docs, outside := filepath.Join(home, ".ssh"), filepath.Join(home, "notes"), filepath.Join(home, "docs"), filepath.Join(root, "srv")
	for _, d := range []string{ssh, notes, docs, outside} {
		os.MkdirAll(d, 0o755)
	}
	u := testUser(home)
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
		got, err := u.explicitGrant(tc.path, "/d", true)
		if tc.err != nil {
			for _, w := range tc.err {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("explicitGrant(%s) = %+v, %v; want an error saying %q", tc.path, got, err, w)
				}
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("explicitGrant(%s) = %+v, %v; want %+v", tc.path, got, err, tc.want)
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
	root := tempDir(t)
	real := filepath.Join(root, "real-home")
	os.MkdirAll(real, 0o755)
	link := filepath.Join(root, "home-link")
	os.Symlink(real, link)

	t.Setenv("HOME", link)
	t.Setenv("SUDO_USER", "")
	u := currentUser(Dirs{Config: "/c", State: "/s", Cache: "/k"})
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
	if u := currentUser(Dirs{}); slices.Contains(u.homes, "/") {
		t.Errorf("homes %v hold /", u.homes)
	}

	if root, err := user.LookupId("0"); err == nil {
		t.Setenv("HOME", real)
		t.Setenv("SUDO_USER", root.Username)
		if u := currentUser(Dirs{}); !slices.Contains(u.homes, root.HomeDir) {
			t.Errorf("under sudo by %s, homes %v lack %s", root.Username, u.homes, root.HomeDir)
		}
	}
}

func TestCodeArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []codeArg
	}{
		{[]string{"node", "s.js", "x.js"}, []codeArg{{index: 1, script: true}}},
		{[]string{"node", "--enable-source-maps", "s.js"}, []codeArg{{index: 2, script: true}}},
		{[]string{"node", "-r", "./hook.js", "s.js"}, []codeArg{{index: 2}, {index: 3, script: true}}},
		{[]string{"node", "--require=./hook.js", "--import", "./esm.mjs", "s.js"}, []codeArg{{index: 1, prefix: "--require="}, {index: 3}, {index: 4, script: true}}},
		{[]string{"node", "--env-file", ".env", "s.js"}, []codeArg{{index: 3, script: true}}},
		{[]string{"node", "-e", "require('./x')", "y.js"}, nil},
		{[]string{"node", "-r", "./hook.js", "-p", "1"}, []codeArg{{index: 2}}},
		{[]string{"node", "--", "s.js"}, []codeArg{{index: 2, script: true}}},
		{[]string{"node", "-"}, nil},
		{[]string{"bun", "run", "s.ts"}, []codeArg{{index: 2, script: true}}},
		{[]string{"python3", "s.py", "a.py"}, []codeArg{{index: 1, script: true}}},
		{[]string{"python3", "-uB", "s.py"}, []codeArg{{index: 2, script: true}}},
		{[]string{"python3", "-W", "ignore", "-X", "dev", "s.py"}, []codeArg{{index: 5, script: true}}},
		{[]string{"python3", "-Wignore", "s.py"}, []codeArg{{index: 2, script: true}}},
		{[]string{"python3", "-m", "server", "s.py"}, nil},
		{[]string{"python3", "-um", "server"}, nil},
		{[]string{"python3", "-c", "import x", "s.py"}, nil},
		{[]string{"python3", "--check-hash-based-pycs", "always", "s.py"}, []codeArg{{index: 3, script: true}}},
	} {
		if got := codeArgs(tc.args[0], tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("codeArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

// TestResolveCommandOwnFiles: the files an interpreter loads are granted
// by their package, reached through their symlinks, and never from
// credentials or a .env file.
func TestResolveCommandOwnFiles(t *testing.T) {
	node := testutil.RequiresCommand(t, "node")
	root := tempDir(t)
	home := filepath.Join(root, "home", "me")
	u := testUser(home)
	proj, hooks := filepath.Join(home, "proj"), filepath.Join(root, "opt", "hooks")
	for _, d := range []string{filepath.Join(proj, "dist"), hooks, filepath.Join(home, "bin"), filepath.Join(home, ".ssh")} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(proj, "package.json"), []byte("{}"), 0o644)
	script := filepath.Join(proj, "dist", "index.js")
	os.WriteFile(script, nil, 0o644)
	os.WriteFile(filepath.Join(hooks, "hook.js"), nil, 0o644)
	os.WriteFile(filepath.Join(proj, ".env"), []byte("TOKEN=x"), 0o600)
	os.WriteFile(filepath.Join(home, ".ssh", "s.js"), nil, 0o644)
	// ~/bin/server -> ~/proj/dist/index.js: granted as the package, and
	// run by its real path (the link's directory is not there).
	os.Symlink(script, filepath.Join(home, "bin", "server"))
	t.Chdir(proj)

	c, err := resolveCommand([]string{node, "-r", filepath.Join(hooks, "hook.js"), "--env-file", ".env", filepath.Join(home, "bin", "server"), ".env"}, u)
	if err != nil {
		t.Fatal(err)
	}
	// The hook has no package around it: it is granted alone.
	hook := filepath.Join(hooks, "hook.js")
	want := []sandbox.Mount{{Source: hook, Destination: hook, ReadOnly: true}, {Source: proj, Destination: proj, ReadOnly: true}}
	if !slices.Equal(c.mounts, want) {
		t.Errorf("mounts = %+v, want %+v", c.mounts, want)
	}
	if c.args[5] != script || c.args[4] != ".env" || c.args[6] != ".env" {
		t.Errorf("args = %q: want the script by its real path, the rest as given", c.args)
	}

	var usage *UsageError
	if _, err := resolveCommand([]string{node, filepath.Join(home, ".ssh", "s.js")}, u); !errors.As(err, &usage) || !strings.Contains(err.Error(), "holds credentials") {
		t.Errorf("a script in ~/.ssh: %v, want a refusal", err)
	}
	if _, err := resolveCommand([]string{node, "--require", filepath.Join(proj, ".env"), script}, u); !errors.As(err, &usage) || !strings.Contains(err.Error(), ".env file") {
		t.Errorf("a .env file as a preloaded module: %v, want a refusal", err)
	}
}

// TestSessionUser: the server runs as a user that can use every grant, or
// does not start.
func TestSessionUser(t *testing.T) {
	testutil.RequiresRoot(t)
	root := tempDir(t)
	mk := func(name string, uid, gid int, mode os.FileMode, file bool) string {
		p := filepath.Join(root, name)
		if file {
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte("x"), mode); err != nil {
				t.Fatal(err)
			}
		} else if err := os.MkdirAll(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ro := func(p string) grant {
		return grant{Mount: sandbox.Mount{Source: p, Destination: p, ReadOnly: true}, what: "--mount " + p}
	}
	rw := func(p string) grant {
		return grant{Mount: sandbox.Mount{Source: p, Destination: p}, what: "--mount " + p + ":rw"}
	}
	at := func(g grant, dest string) grant { g.Destination = dest; return g }

	open := mk("open", 0, 0, 0o755, false)
	private := mk("private", 4321, 4321, 0o700, false)
	privateFile := mk("private.txt", 4321, 4321, 0o600, true)
	rootPrivate := mk("root-private", 0, 0, 0o700, false)
	groupOnly := mk("group-only", 0, 4444, 0o750, false)
	mine := mk("mine", 4321, 4321, 0o755, false)
	theirs := mk("theirs", 4322, 4322, 0o700, false)
	rootShared := mk("root-shared", 0, 0, 0o777, false)
	rootRO := mk("root-ro", 0, 0, 0o755, false)
	data := mk("data", 0, 0, 0o755, false)
	mk("data/locked", 0, 0, 0o700, false)

	nobody := ids{sandbox.DefaultUID, sandbox.DefaultGID}
	for _, tc := range []struct {
		name   string
		grants []grant
		want   ids
		err    []string
	}{
		{"readable by all", []grant{ro(open)}, nobody, nil},
		{"0700 directory of a user", []grant{ro(private), ro(open)}, ids{4321, 4321}, nil},
		{"0600 file of a user", []grant{ro(privateFile)}, ids{4321, 4321}, nil},
		{"group-readable only", []grant{ro(groupOnly)}, ids{sandbox.DefaultUID, 4444}, nil},
		{"read-write grant's owner first", []grant{ro(open), rw(mine)}, ids{4321, 4321}, nil},
		{"root's, writable by all", []grant{rw(rootShared)}, nobody, nil},
		{"0700 directory of root", []grant{ro(rootPrivate)}, ids{}, []string{"--mount " + rootPrivate, "cannot work", "mode 0700", "not let it read", "never runs a server as root", "chmod o+rX " + rootPrivate}},
		{"root's, granted read-write", []grant{rw(rootRO)}, ids{}, []string{"not let it write", "never runs a server as root", "read-only"}},
		{"two owners", []grant{rw(mine), ro(theirs)}, ids{}, []string{"--mount " + theirs, "uid 4321", "different users"}},
		{"a directory above a grant that it cannot pass", []grant{at(ro(data), "/d"), at(ro(open), "/d/locked/x")}, ids{}, []string{data + "/locked", "pass through"}},
		{"the same, below a grant it can", []grant{at(ro(data), "/d"), at(ro(open), "/d/x")}, nobody, nil},
	} {
		uid, gid, err := sessionUser(tc.grants, slog.New(slog.DiscardHandler))
		if tc.err != nil {
			var usage *UsageError
			if !errors.As(err, &usage) {
				t.Errorf("%s: sessionUser = %d:%d, %v; want a refusal", tc.name, uid, gid, err)
				continue
			}
			for _, w := range tc.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not say %q", tc.name, err, w)
				}
			}
			continue
		}
		if err != nil || (ids{uid, gid}) != tc.want {
			t.Errorf("%s: sessionUser = %d:%d, %v; want %v", tc.name, uid, gid, err, tc.want)
		}
	}
}

// TestPins: a bind's source is opened without following symlinks, and
// what a process's root shows at the destination is compared with it.
func TestPins(t *testing.T) {
	dir := tempDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Mkdir(a, 0o755)
	os.Mkdir(b, 0o755)
	os.WriteFile(filepath.Join(a, "f"), nil, 0o644)
	os.Symlink(a, filepath.Join(dir, "link"))

	// A symlink anywhere in a source: it changed since it was checked.
	for _, src := range []string{filepath.Join(dir, "link"), filepath.Join(dir, "link", "f")} {
		if _, err := pinMounts([]sandbox.Mount{{Source: src, Destination: "/x"}}); err == nil || !strings.Contains(err.Error(), "changed after it was checked") {
			t.Errorf("pinMounts(%s) = %v, want a refusal", src, err)
		}
	}

	// This process's root is the host's: a destination at the source's
	// own path shows it, another path does not.
	pins, err := pinMounts([]sandbox.Mount{{Source: a, Destination: a}, {Source: filepath.Join(a, "f"), Destination: filepath.Join(a, "f")}})
	if err != nil {
		t.Fatal(err)
	}
	defer closePins(pins)
	if err := verifyPins(uint32(os.Getpid()), pins); err != nil {
		t.Errorf("verifyPins of matching mounts: %v", err)
	}
	swapped, err := pinMounts([]sandbox.Mount{{Source: a, Destination: b}})
	if err != nil {
		t.Fatal(err)
	}
	defer closePins(swapped)
	if err := verifyPins(uint32(os.Getpid()), swapped); err == nil || !strings.Contains(err.Error(), "something other than "+a) {
		t.Errorf("verifyPins with %s showing at %s = %v, want a refusal", a, b, err)
	}
	// Swapped after the pin: the path now leads to another directory.
	moved, err := pinMounts([]sandbox.Mount{{Source: b, Destination: b}})
	if err != nil {
		t.Fatal(err)
	}
	defer closePins(moved)
	if err := os.Rename(b, filepath.Join(dir, "b-old")); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ln", "-s", a, b).Run(); err != nil {
		t.Fatal(err)
	}
	if err := verifyPins(uint32(os.Getpid()), moved); err == nil {
		t.Errorf("verifyPins after %s was swapped for a symlink to %s: no error", b, a)
	}
}

// TestGrantMounts: --mount, path arguments and the profile's mounts, in
// that order, each bound from where its symlinks lead; a profile's mount
// that a symlink takes to credentials is refused like a --mount.
func TestGrantMounts(t *testing.T) {
	root := tempDir(t)
	home := filepath.Join(root, "home", "me")
	notes, docs, ssh := filepath.Join(home, "notes"), filepath.Join(home, "docs"), filepath.Join(home, ".ssh")
	for _, d := range []string{notes, docs, ssh} {
		os.MkdirAll(d, 0o755)
	}
	os.Symlink("../.ssh", filepath.Join(notes, "keys"))
	os.Symlink(docs, filepath.Join(notes, "docs"))
	t.Setenv("HOME", home)
	u := testUser(home)
	opts := Options{Mounts: []sandbox.Mount{{Source: notes, Destination: notes, ReadOnly: true}}, Logger: slog.New(slog.DiscardHandler)}
	cmd := &command{args: []string{"/usr/bin/node", filepath.Join(notes, "docs")}}

	prof := &profiles.Profile{Name: "t", PathArgs: profiles.AccessRO, Mounts: []profiles.Mount{{Host: "~/notes/docs", Path: "/docs", Mode: profiles.AccessRO}}}
	mounts, uid, gid, err := grantMounts(opts, prof, cmd, u)
	want := []sandbox.Mount{
		{Source: notes, Destination: notes, ReadOnly: true},
		{Source: docs, Destination: filepath.Join(notes, "docs"), ReadOnly: true},
		{Source: docs, Destination: "/docs", ReadOnly: true},
	}
	if err != nil || !slices.Equal(mounts, want) || uid != sandbox.DefaultUID || gid != sandbox.DefaultGID {
		t.Errorf("grantMounts = %+v, %d:%d, %v; want %+v as nobody", mounts, uid, gid, err, want)
	}

	prof.Mounts[0].Host = "~/notes/keys"
	_, _, _, err = grantMounts(opts, prof, cmd, u)
	var usage *UsageError
	if !errors.As(err, &usage) || usage.Flag != "profile" || !strings.Contains(err.Error(), "mounts[0].host") || !strings.Contains(err.Error(), ssh+" holds credentials") {
		t.Errorf("a profile mount through a symlink to %s: %v, want a refusal", ssh, err)
	}
	opts.Mounts = []sandbox.Mount{{Source: filepath.Join(notes, "keys"), Destination: "/k", ReadOnly: true}}
	prof.Mounts = nil
	if _, _, _, err = grantMounts(opts, prof, cmd, u); !errors.As(err, &usage) || usage.Flag != "mount" || !strings.Contains(err.Error(), "holds credentials") {
		t.Errorf("a --mount through a symlink to %s: %v, want a refusal", ssh, err)
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
	u := userPaths{home: home}
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
		m, err := u.runtimeMounts([]string{c.dir}, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.dir, err)
		}
		if got := len(m) == 1; got != c.bound {
			t.Errorf("runtimeMounts(%s) bound it: %v, want %v", c.dir, got, c.bound)
		}
	}
	if _, err := u.runtimeMounts([]string{filepath.Join(home, "missing")}, nil); err == nil {
		t.Error("a missing runtime directory: no error")
	}
}
