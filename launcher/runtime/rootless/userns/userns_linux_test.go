//go:build linux && cgo

package userns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// The test binary plays mcpbox: TestMain does what mcpbox's main does
// first (Continue), and a process that arrives in stage 2 with
// helperEnv set reports what it got instead of running tests.
const (
	helperEnv = "MCPBOX_USERNS_TEST_HELPER"
	// markerEnv names a file that Go code creates when it runs in a
	// stage-1 process: stage 1 is meant to be handled before the Go
	// runtime starts.
	markerEnv = "MCPBOX_USERNS_TEST_MARKER"
	// wrongIDsEnv makes the "reexec" helper ask for ids it does not have.
	wrongIDsEnv = "MCPBOX_USERNS_TEST_WRONG_IDS"
	// logEnv gives the "reexec" helper's Reexec a debug logger.
	logEnv = "MCPBOX_USERNS_TEST_LOG"
)

// report is what a helper that reached stage 2 saw.
type report struct {
	Args    []string
	Stage   []string // every MCPBOX_USERNS_STAGE=… of its environment
	Env     []string
	UIDMap  string
	CapEff  string
	UID     int
	Inside  bool
	Caller  Caller
	Reexec  int // the exit status Reexec returned, for the "reexec" helper
	Message string
}

func TestMain(m *testing.M) {
	if strings.HasPrefix(os.Getenv(envStage), "1:") {
		if f := os.Getenv(markerEnv); f != "" {
			os.WriteFile(f, []byte("Go ran in stage 1\n"), 0o644)
		}
	}
	Continue()
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "report":
		os.Exit(writeReport(0))
	case "reexec":
		// Outside: enter the namespace; inside: report.
		if _, in := Inside(); in {
			os.Exit(writeReport(0))
		}
		u, err := user.Current()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c := Caller{UID: os.Getuid(), GID: os.Getgid(), Name: u.Username}
		if os.Getenv(wrongIDsEnv) != "" {
			// Ids that are not the caller's: newuidmap and
			// newgidmap refuse them.
			c.UID, c.GID = c.UID+1, c.GID+1
		}
		var log *slog.Logger
		if os.Getenv(logEnv) != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		code, err := Reexec(c, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	os.Exit(2)
}

func writeReport(reexec int) int {
	r := report{Args: os.Args[1:], Env: os.Environ(), UID: os.Getuid(), Reexec: reexec}
	r.Caller, r.Inside = Inside()
	for _, e := range r.Env {
		if strings.HasPrefix(e, envStage+"=") {
			r.Stage = append(r.Stage, e)
		}
	}
	if b, err := os.ReadFile("/proc/self/uid_map"); err == nil {
		r.UIDMap = strings.Join(strings.Fields(string(b)), " ")
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
				r.CapEff = strings.TrimSpace(v)
			}
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

// stage1 starts the test binary as a stage-1 child is started, in a new
// user namespace whose ids are not mapped yet (a stage-1 variable
// anywhere else is dropped: TestInsideSpoofed), with args, and returns it,
// the write end of its pipe and the marker file.
func stage1(t *testing.T, stage string, args ...string) (*exec.Cmd, *os.File, string, *strings.Builder) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "marker")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	cmd := exec.Command(self, args...)
	cmd.Env = []string{helperEnv + "=report", markerEnv + "=" + marker, envStage + "=" + stage, "KEPT=a value with spaces"}
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	stdout := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	return cmd, w, marker, stdout
}

// TestStage1 shows that a stage-1 child waits for its parent's byte and
// then executes itself as stage 2 with its arguments and environment, and
// that no Go code of it ran in stage 1: the hand-over happens before the
// Go runtime and mcpbox's packages initialise.
func TestStage1(t *testing.T) {
	args := []string{"run", "", "an argument with spaces", "ünïcode", "--", "node"}
	testutil.RequiresRoot(t) // to write the maps newuidmap would
	cmd, w, marker, stdout := stage1(t, "1:1002:1003", args...)
	pid := strconv.Itoa(cmd.Process.Pid)
	for file, m := range map[string]string{"uid_map": "0 1002 1\n1 200000 2\n", "gid_map": "0 1003 1\n1 200000 2\n"} {
		if err := os.WriteFile("/proc/"+pid+"/"+file, []byte(m), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stage 1: %v\n%s", err, stdout)
	}
	var r report
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
		t.Fatalf("stage 2 report: %v\n%s", err, stdout)
	}
	if !reflect.DeepEqual(r.Args, args) {
		t.Errorf("stage 2 got arguments %q, want %q", r.Args, args)
	}
	if want := []string{envStage + "=2:1002:1003"}; !reflect.DeepEqual(r.Stage, want) {
		t.Errorf("stage 2 environment has %q, want %q", r.Stage, want)
	}
	if !slices.Contains(r.Env, "KEPT=a value with spaces") || !slices.Contains(r.Env, helperEnv+"=report") {
		t.Errorf("stage 2 lost variables: %q", r.Env)
	}
	if !r.Inside || r.Caller.UID != 1002 || r.Caller.GID != 1003 {
		t.Errorf("Inside() = %+v, %v in stage 2", r.Caller, r.Inside)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("Go code ran in the stage-1 process: the hand-over must happen before the Go runtime starts")
	}
}

// TestStage1ParentGone: a stage-1 child whose parent closes the pipe
// without a byte (it failed to map the ids) exits 125 without going on.
func TestStage1ParentGone(t *testing.T) {
	cmd, w, marker, stdout := stage1(t, "1:1002:1002", "run")
	w.Close()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 125 {
		t.Fatalf("stage 1 without its parent's byte: %v, want exit status 125\n%s", err, stdout)
	}
	if stdout.Len() > 0 {
		t.Errorf("stage 1 went on: %s", stdout)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("Go code ran in the stage-1 process")
	}
}

// TestStage1Malformed: a value that is not STAGE:UID:GID is left to Go,
// which ignores it as it always did, rather than handed over.
func TestStage1Malformed(t *testing.T) {
	for _, v := range []string{"1:", "1:12", "1:12:", "1::12", "1:a:b", "1:1:2:3", "12:1:2"} {
		cmd, w, _, stdout := stage1(t, v, "-test.run=^$")
		w.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s=%q: %v\n%s", envStage, v, err, stdout)
		}
		// The helper runs as a plain test binary: "report" outside
		// stage 2 says it was not inside.
		var r report
		if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil || r.Inside || len(r.Stage) != 1 || r.Stage[0] != envStage+"="+v {
			t.Errorf("%s=%q: handed over or changed: %v %+v", envStage, v, err, r)
		}
	}
}

// ciUser has a subordinate id range (scripts/setup.sh creates it).
const ciUser = "mcpbox-ci"

// TestReexec runs the whole re-execution as the CI user: in stage 2 the
// process is uid 0 with every capability of its namespace, id 0 mapped
// to the user and ids 1 and 2 to the first subordinate ids; the time it took is
// logged as a phase, as the launcher logs its own.
func TestReexec(t *testing.T) {
	cmd, uid, uids := asCIUser(t, "run", "--", "x")
	cmd.Env = append(cmd.Env, logEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("re-execute as %s: %v\n%s", ciUser, err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("stage 2 report: %v\n%s", err, out)
	}
	if !r.Inside || r.UID != 0 || r.Caller.UID != uid {
		t.Errorf("stage 2: uid %d, Inside %v %+v; want uid 0 inside for caller %d", r.UID, r.Inside, r.Caller, uid)
	}
	if want := fmt.Sprintf("0 %d 1 1 %d 2", uid, uids.Start); r.UIDMap != want {
		t.Errorf("uid_map %q, want %q", r.UIDMap, want)
	}
	if r.CapEff == "" || strings.Trim(r.CapEff, "0") == "" {
		t.Errorf("stage 2 has no capabilities in its namespace: CapEff %q", r.CapEff)
	}
	if !reflect.DeepEqual(r.Args, []string{"run", "--", "x"}) {
		t.Errorf("stage 2 arguments %q", r.Args)
	}
	if !regexp.MustCompile(`level=DEBUG msg=phase name="user namespace" took=[0-9.]+m?s\n`).MatchString(stderr.String()) {
		t.Errorf("no phase logged for the user namespace:\n%s", stderr.String())
	}
}

// TestReexecMapRefused: when a map is refused, Reexec says what the tool
// answered and stops the child, which never reaches stage 2.
func TestReexecMapRefused(t *testing.T) {
	cmd, _, _ := asCIUser(t, "run")
	cmd.Env = append(cmd.Env, wrongIDsEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil || len(out) > 0 {
		t.Fatalf("re-execution with ids that are not the caller's: %v, stdout %q", err, out)
	}
	if !strings.Contains(stderr.String(), "userns: newuidmap: ") || !strings.Contains(stderr.String(), "not allowed") {
		t.Errorf("the error does not say what newuidmap answered:\n%s", stderr.String())
	}
}

// asCIUser returns the test binary as the "reexec" helper run by the CI
// user with args, the user's uid and subordinate uid range.
func asCIUser(t *testing.T, args ...string) (*exec.Cmd, int, Range) {
	t.Helper()
	testutil.RequiresRoot(t)
	u, err := user.Lookup(ciUser)
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("user %s is missing: scripts/setup.sh creates it (%v)", ciUser, err)
		}
		t.Skipf("user %s is missing: run `sudo make setup` (%v)", ciUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	uids, _, err := Ranges(Caller{UID: uid, GID: gid, Name: u.Username})
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// go test builds the binary where only root may go, and t.TempDir
	// is below a directory only root may enter.
	dir, err := os.MkdirTemp("", "mcpbox-userns-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "userns.test")
	copyFile(t, self, bin)
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.Env = []string{helperEnv + "=reexec", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	return cmd, uid, uids
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
