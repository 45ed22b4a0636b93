//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// Helper roles of the test binary, chosen by helperEnv: "pid1" runs as
// pid 1 of a new pid namespace and starts the "hook" role as its child,
// the way runc init runs a createContainer hook.
const helperEnv = "MCPBOX_INIT_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "hook":
		os.Exit(memfdHook(strings.NewReader(`{"status":"creating","pid":1}`), os.Stderr))
	case "pid1":
		os.Exit(helperPid1())
	}
	os.Exit(m.Run())
}

// helperPid1 runs the hook as its child and prints the hook's exit code
// and the namespace's vm.memfd_noexec afterwards.
func helperPid1() int {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pid1 helper: not pid 1")
		return 2
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=hook")
	cmd.Stderr = os.Stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "pid1 helper:", err)
			return 2
		}
		code = ee.ExitCode()
	}
	v, err := readMemfdNoExec()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pid1 helper:", err)
		return 2
	}
	fmt.Printf("hook=%d noexec=%d\n", code, v)
	return 0
}

// hostMemfdNoExec returns the host's vm.memfd_noexec. On a kernel without
// it mcpbox never uses the hook (it refuses memfd_create instead), but CI
// runs on a kernel with it and must test the hook: there it fails instead
// of skipping.
func hostMemfdNoExec(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(memfdNoExecPath)
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but the kernel has no vm.memfd_noexec (%v): the memfd hook is tested on Linux 6.6 or later", err)
		}
		t.Skipf("kernel without vm.memfd_noexec: %v", err)
	}
	return b
}

// TestMemfdHookRefusesHost: run by hand, in the host's pid namespace or as
// pid 1 of a namespace of its own, the hook changes nothing.
func TestMemfdHookRefusesHost(t *testing.T) {
	host := hostMemfdNoExec(t)
	var stderr bytes.Buffer
	if code := memfdHook(strings.NewReader(""), &stderr); code == 0 || !strings.Contains(stderr.String(), "host's pid namespace") {
		t.Errorf("in the host's pid namespace: exit %d, %q; want a refusal", code, stderr.String())
	}
	if os.Geteuid() == 0 {
		// pid 1 itself (parent pid 0), not a child of pid 1.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=hook")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "parent pid 0") {
			t.Errorf("as pid 1 of a new pid namespace: %v, %s; want a refusal", err, out)
		}
	}
	if after, _ := os.ReadFile(memfdNoExecPath); !bytes.Equal(after, host) {
		t.Errorf("the host's vm.memfd_noexec changed from %q to %q", host, after)
	}
}

// TestMemfdHookInPidNamespace: as the child of pid 1 of a new pid
// namespace, which is where runc runs it, the hook sets 2 there and
// nowhere else.
func TestMemfdHookInPidNamespace(t *testing.T) {
	host := hostMemfdNoExec(t)
	testutil.RequiresRoot(t) // a pid namespace, and the sysctl written in it
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=pid1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(string(out)); got != "hook=0 noexec=2" {
		t.Errorf("%q, want hook=0 noexec=2\n%s", got, stderr.String())
	}
	if after, _ := os.ReadFile(memfdNoExecPath); !bytes.Equal(after, host) {
		t.Errorf("the host's vm.memfd_noexec changed from %q to %q", host, after)
	}
}
