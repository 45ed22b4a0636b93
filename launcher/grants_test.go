package launcher

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher/grant"
	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox"
)

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
	root := testutil.TempDir(t)
	home := filepath.Join(root, "home", "me")
	u := grant.NewUser(home)
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

// TestGrantMounts: --mount, path arguments and the profile's mounts, in
// that order, each bound from where its symlinks lead; a profile's mount
// that a symlink takes to credentials is refused like a --mount.
func TestGrantMounts(t *testing.T) {
	root := testutil.TempDir(t)
	home := filepath.Join(root, "home", "me")
	notes, docs, ssh := filepath.Join(home, "notes"), filepath.Join(home, "docs"), filepath.Join(home, ".ssh")
	for _, d := range []string{notes, docs, ssh} {
		os.MkdirAll(d, 0o755)
	}
	os.Symlink("../.ssh", filepath.Join(notes, "keys"))
	os.Symlink(docs, filepath.Join(notes, "docs"))
	t.Setenv("HOME", home)
	u := grant.NewUser(home)
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
	// A path argument grant refuses is bad input to the command itself.
	opts.Mounts = nil
	cmd.args = []string{"/usr/bin/node", filepath.Join(notes, "keys")}
	if _, _, _, err = grantMounts(opts, prof, cmd, u); !errors.As(err, &usage) || usage.Flag != "" || !strings.Contains(err.Error(), "path argument "+filepath.Join(notes, "keys")+" is not granted") {
		t.Errorf("a path argument through a symlink to %s: %v, want a usage error", ssh, err)
	}
}
