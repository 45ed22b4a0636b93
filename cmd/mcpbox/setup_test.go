package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/apparmor"
)

// TestSetupRootlessUsage: a user that is missing or unknown is a usage
// error of --user (exit 2), found before anything is made.
func TestSetupRootlessUsage(t *testing.T) {
	t.Setenv("SUDO_USER", "")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"setup", "rootless"}, "--user: missing"},
		{[]string{"setup", "rootless", "--user", "no-such-user-mcpbox"}, `--user: "no-such-user-mcpbox"`},
		{[]string{"setup", "rootless", "--user", "nobody", "extra"}, `unexpected argument "extra"`},
	} {
		_, _, err := runApp(t, context.Background(), tc.args...)
		var usage *launcher.UsageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want a usage error saying %q", tc.args, err, tc.msg)
		}
	}
}

// TestSetupRootless runs the command as root does after `sudo`: the user
// comes from SUDO_USER, the subtree is made on the real cgroup file system,
// and the output says what was made and that a reboot undoes it.
func TestSetupRootless(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Setenv("SUDO_USER", "nobody")
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == 0x63677270 { // CGROUP2_SUPER_MAGIC
		_, _, err := runApp(t, context.Background(), "setup", "rootless")
		if err == nil || !strings.Contains(err.Error(), "cgroup v2 (unified), where there is nothing to prepare") {
			t.Errorf("on a cgroup v2 host: %v, want a refusal that says why", err)
		}
		return
	}
	stdout, stderr, err := runApp(t, context.Background(), "setup", "rootless")
	var created []string
	for _, line := range strings.Split(stdout, "\n") {
		if dir, ok := strings.CutPrefix(line, "created "); ok {
			dir, _, _ = strings.Cut(dir, " ")
			created = append(created, dir)
			t.Cleanup(func() { syscall.Rmdir(dir) })
		}
	}
	if err != nil {
		t.Fatalf("setup rootless: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	memory := filepath.Join("/sys/fs/cgroup/memory", "mcpbox-uid-"+u.Uid)
	if _, err := os.Stat(memory); err != nil {
		t.Errorf("%s: %v\nstdout:\n%s", memory, err, stdout)
	}
	for _, want := range []string{"created " + memory + " (owner nobody)", "nobody's mcpbox sessions can now enforce", "every reboot", "@reboot ", " setup rootless --user nobody"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output does not say %q:\n%s", want, stdout)
		}
	}
	if len(created) == 0 {
		return // a subtree for nobody was there before: leave it
	}
	stdout, _, err = runApp(t, context.Background(), "setup", "rootless", "--user", u.Uid)
	if err != nil || !strings.Contains(stdout, "already there") {
		t.Errorf("again, by uid: %v\n%s", err, stdout)
	}
}

// TestSetupAppArmor: --print gives the profile for the binary's real path;
// installing checks it with the parser and writes it only when the parser
// accepts it.
func TestSetupAppArmor(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := testutil.TempDir(t)
	bin := filepath.Join(dir, "mcpbox")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	want, err := apparmor.Profile(bin)
	if err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runApp(t, context.Background(), "setup", "apparmor", "--print", "--binary", link)
	if err != nil || stdout != string(want) {
		t.Errorf("--print for a symlink = %q, %v; want the profile of the real path %s", stdout, err, bin)
	}

	// Installing needs a binary only root can replace: not one in t.TempDir.
	safe := filepath.Join(testutil.RootOnlyDir(t), "mcpbox")
	if err := os.WriteFile(safe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want, err = apparmor.Profile(safe)
	if err != nil {
		t.Fatal(err)
	}
	profiles := filepath.Join(dir, "apparmor.d")
	if err := os.Mkdir(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	name, _ := apparmor.FileName(safe)
	refuses := filepath.Join(dir, "refuses")
	if err := os.WriteFile(refuses, []byte("#!/bin/sh\necho 'syntax error in profile' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err = runApp(t, context.Background(), "setup", "apparmor", "--binary", safe, "--parser", refuses, "--dir", profiles)
	if err == nil || !strings.Contains(err.Error(), "refuses the profile") {
		t.Errorf("with a parser that refuses: %v, want an error saying so", err)
	}
	if _, err := os.Stat(filepath.Join(profiles, name)); err == nil {
		t.Error("a profile the parser refused was written")
	}

	parser := testutil.AppArmorParser4(t)
	// Through a symlink anyone may replace, to a binary only root may: the
	// profile is for the real path, which is what counts.
	stdout, _, err = runApp(t, context.Background(), "setup", "apparmor", "--binary", symlink(t, dir, safe), "--parser", parser, "--dir", profiles)
	if err != nil {
		t.Fatalf("install with %s: %v", parser, err)
	}
	got, err := os.ReadFile(filepath.Join(profiles, name))
	if err != nil || string(got) != string(want) {
		t.Errorf("installed profile = %q, %v; want %q", got, err, want)
	}
	if fi, err := os.Stat(filepath.Join(profiles, name)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("installed profile: %v, %v; want mode 0644", fi, err)
	}
	if !strings.Contains(stdout, "wrote "+filepath.Join(profiles, name)) {
		t.Errorf("output %q does not say what was written", stdout)
	}
	// Again: its own profile is replaced, and nothing else is left there.
	if _, _, err := runApp(t, context.Background(), "setup", "apparmor", "--binary", safe, "--parser", parser, "--dir", profiles); err != nil {
		t.Errorf("installing again over its own profile: %v", err)
	}
	if entries, _ := os.ReadDir(profiles); len(entries) != 1 {
		t.Errorf("%s holds %v, want only %s", profiles, entries, name)
	}
}

// TestSetupAppArmorReplaceable: the profile lifts the user-namespace
// restriction for whatever is at its path, so it is installed only for a
// binary that nobody but root can replace, however it is reached, and
// says what to do instead. --print still shows it.
func TestSetupAppArmorReplaceable(t *testing.T) {
	testutil.RequiresRoot(t)
	parser := testutil.AppArmorParser4(t)
	safeDir := testutil.RootOnlyDir(t)
	profiles := filepath.Join(testutil.TempDir(t), "apparmor.d")
	if err := os.Mkdir(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	newBinary := func(t *testing.T, dir string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b := filepath.Join(dir, "mcpbox")
		if err := os.WriteFile(b, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		binary  func(t *testing.T) string
		problem string
	}{
		{"in a directory anyone may write", func(t *testing.T) string {
			return newBinary(t, testutil.TempDir(t))
		}, "may be written by its group or others"},
		{"a user's", func(t *testing.T) string {
			b := newBinary(t, filepath.Join(safeDir, "users"))
			if err := os.Chown(b, 4242, 4242); err != nil {
				t.Fatal(err)
			}
			return b
		}, "belongs to uid 4242, not root"},
		{"in a user's directory", func(t *testing.T) string {
			d := filepath.Join(safeDir, "home")
			b := newBinary(t, filepath.Join(d, "bin"))
			if err := os.Chown(d, 4242, 4242); err != nil {
				t.Fatal(err)
			}
			return b
		}, filepath.Join(safeDir, "home") + " belongs to uid 4242"},
		{"group-writable", func(t *testing.T) string {
			b := newBinary(t, filepath.Join(safeDir, "group"))
			if err := os.Chmod(b, 0o775); err != nil {
				t.Fatal(err)
			}
			return b
		}, "(mode 0775)"},
		{"reached through a symlink only root may change", func(t *testing.T) string {
			return symlink(t, safeDir, newBinary(t, testutil.TempDir(t)))
		}, "may be written by its group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.binary(t)
			_, _, err := runApp(t, context.Background(), "setup", "apparmor", "--binary", b, "--parser", parser, "--dir", profiles)
			if err == nil || !strings.Contains(err.Error(), tc.problem) || !strings.Contains(err.Error(), "sudo make install") {
				t.Errorf("install for %s: %v\nwant a refusal saying %q and what to do", b, err, tc.problem)
			}
			if entries, _ := os.ReadDir(profiles); len(entries) != 0 {
				t.Errorf("%s holds %v after a refusal", profiles, entries)
			}
			real, _ := filepath.EvalSymlinks(b)
			want, err := apparmor.Profile(real)
			if err != nil {
				t.Fatal(err)
			}
			stdout, _, err := runApp(t, context.Background(), "setup", "apparmor", "--print", "--binary", b)
			if err != nil || stdout != string(want) {
				t.Errorf("--print for %s = %q, %v; want the profile", b, stdout, err)
			}
		})
	}
}

// TestSetupAppArmorOthersProfiles: the profile is for mcpbox alone. A
// binary of another name is refused (--binary /usr/bin/man would replace
// man's profile with an unconfined one), and an existing file in the
// profile directory is replaced only when it is mcpbox's profile for the
// same binary: not another program's, not a symlink, not mcpbox's for
// another path whose file name collides (/a/b.c/mcpbox, /a.b/c/mcpbox).
func TestSetupAppArmorOthersProfiles(t *testing.T) {
	testutil.RequiresRoot(t)
	parser := testutil.AppArmorParser4(t)
	safeDir := testutil.RootOnlyDir(t)
	profiles := filepath.Join(testutil.TempDir(t), "apparmor.d")
	if err := os.Mkdir(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	install := func(binary string) error {
		_, _, err := runApp(t, context.Background(), "setup", "apparmor", "--binary", binary, "--parser", parser, "--dir", profiles)
		return err
	}
	mkbin := func(parts ...string) string {
		b := filepath.Join(append([]string{safeDir}, parts...)...)
		if err := os.MkdirAll(filepath.Dir(b), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(b, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return b
	}

	man := mkbin("bin", "man")
	manName := strings.ReplaceAll(strings.TrimPrefix(man, "/"), "/", ".")
	manProfile := "# Last Modified: by the man package\nabi <abi/4.0>,\ninclude <tunables/global>\nprofile man " + man + " {\n}\n"
	if err := os.WriteFile(filepath.Join(profiles, manName), []byte(manProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--binary", man, "--parser", parser, "--dir", profiles}, {"--print", "--binary", man}} {
		_, _, err := runApp(t, context.Background(), append([]string{"setup", "apparmor"}, args...)...)
		var usage *launcher.UsageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "the profile is for mcpbox only") {
			t.Errorf("%v: %v, want a usage error saying the profile is for mcpbox only", args, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(profiles, manName)); string(got) != manProfile {
		t.Errorf("man's profile was changed:\n%s", got)
	}

	// Another program's profile (or an administrator's) where mcpbox's goes.
	bin := mkbin("usr", "bin", "mcpbox")
	name, _ := apparmor.FileName(bin)
	foreign := "# Written by hand\nprofile " + bin + " {\n  /** rw,\n}\n"
	if err := os.WriteFile(filepath.Join(profiles, name), []byte(foreign), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := install(bin); err == nil || !strings.Contains(err.Error(), "is not mcpbox's profile") {
		t.Errorf("over another profile: %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(filepath.Join(profiles, name)); string(got) != foreign {
		t.Errorf("another profile was replaced:\n%s", got)
	}
	os.Remove(filepath.Join(profiles, name))

	// A symlink there, even to mcpbox's own profile.
	own, _ := apparmor.Profile(bin)
	target := filepath.Join(testutil.TempDir(t), "target")
	if err := os.WriteFile(target, own, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(profiles, name)); err != nil {
		t.Fatal(err)
	}
	if err := install(bin); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("over a symlink: %v, want a refusal", err)
	}
	os.Remove(filepath.Join(profiles, name))

	// Two mcpbox paths with one file name: the first keeps its profile.
	first, second := mkbin("a", "b.c", "mcpbox"), mkbin("a.b", "c", "mcpbox")
	n1, _ := apparmor.FileName(first)
	if n2, _ := apparmor.FileName(second); n1 != n2 {
		t.Fatalf("%s and %s have the file names %s and %s: no collision to test", first, second, n1, n2)
	}
	if err := install(first); err != nil {
		t.Fatal(err)
	}
	if err := install(second); err == nil || !strings.Contains(err.Error(), "is mcpbox's profile for "+first) {
		t.Errorf("a colliding path: %v, want a refusal naming %s", err, first)
	}
	if got, _ := os.ReadFile(filepath.Join(profiles, n1)); !bytes.HasPrefix(got, []byte("# AppArmor profile for mcpbox installed at "+first+".\n")) {
		t.Errorf("the profile of %s was replaced:\n%s", first, got)
	}
	if err := install(first); err != nil {
		t.Errorf("reinstalling over its own profile: %v", err)
	}
}

// symlink makes a symlink to target in dir and returns it.
func symlink(t *testing.T, dir, target string) string {
	t.Helper()
	link := filepath.Join(dir, "link-"+filepath.Base(filepath.Dir(target)))
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}
