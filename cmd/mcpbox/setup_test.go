package main

import (
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

	profiles := filepath.Join(dir, "apparmor.d")
	if err := os.Mkdir(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	name, _ := apparmor.FileName(bin)
	refuses := filepath.Join(dir, "refuses")
	if err := os.WriteFile(refuses, []byte("#!/bin/sh\necho 'syntax error in profile' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err = runApp(t, context.Background(), "setup", "apparmor", "--binary", bin, "--parser", refuses, "--dir", profiles)
	if err == nil || !strings.Contains(err.Error(), "refuses the profile") {
		t.Errorf("with a parser that refuses: %v, want an error saying so", err)
	}
	if _, err := os.Stat(filepath.Join(profiles, name)); err == nil {
		t.Error("a profile the parser refused was written")
	}

	parser := testutil.AppArmorParser4(t)
	stdout, _, err = runApp(t, context.Background(), "setup", "apparmor", "--binary", bin, "--parser", parser, "--dir", profiles)
	if err != nil {
		t.Fatalf("install with %s: %v", parser, err)
	}
	got, err := os.ReadFile(filepath.Join(profiles, name))
	if err != nil || string(got) != string(want) {
		t.Errorf("installed profile = %q, %v; want %q", got, err, want)
	}
	if !strings.Contains(stdout, "wrote "+filepath.Join(profiles, name)) {
		t.Errorf("output %q does not say what was written", stdout)
	}
}
