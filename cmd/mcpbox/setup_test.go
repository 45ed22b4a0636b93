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
