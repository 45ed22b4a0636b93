package cgroups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The test binary re-executes itself as an unprivileged user in a user
// namespace (os/exec's helper-process pattern) to do what mcpbox's rootless
// runtime will do there. helperEnv names the helper to run.
const helperEnv = "MCPBOX_CGROUPS_TEST_HELPER"

var helpers = map[string]func(args []string) (any, error){
	"v1":    helperV1,
	"hog":   helperHog,
	"enter": helperEnter,
	"dial":  helperDial,
}

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		out, err := helpers[name](os.Args[1:])
		if err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
			os.Exit(1)
		}
		if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// nobody is the unprivileged user the helpers run as.
const nobody = 65534

// asUser returns a command that runs the test binary's helper name as uid
// nobody, as root of a new user namespace that maps only nobody (what
// mcpbox's re-exec does for its caller), with a mount namespace when
// mounts is set (runc needs one it owns). The binary is copied where
// nobody can read it: go test builds it in a directory only root enters.
func asUser(t *testing.T, mounts bool, name string, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(sharedDir(t), "cgroups.test")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{helperEnv + "=" + name, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = userNamespace(mounts)
	return cmd
}

// userNamespace makes the child root of a new user namespace where uid and
// gid 0 are nobody on the host, with no supplementary groups.
func userNamespace(mounts bool) *syscall.SysProcAttr {
	flags := uintptr(syscall.CLONE_NEWUSER)
	if mounts {
		flags |= syscall.CLONE_NEWNS
	}
	return &syscall.SysProcAttr{
		Cloneflags:  flags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: nobody, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: nobody, Size: 1}},
		// Root's groups must go: setgroups is allowed because root
		// writes the maps.
		GidMappingsEnableSetgroups: true,
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
	}
}

// sharedDir is a temporary directory nobody may read and write.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mcpbox-cgroups-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// runHelper runs cmd and decodes what the helper printed into out.
func runHelper(t *testing.T, cmd *exec.Cmd, out any) {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", cmd.Env[0], err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", cmd.Env[0], err, stdout, stderr.String())
	}
}

// v1Report is what helperV1 saw.
type v1Report struct {
	UID          []string // the helper's uid_map line
	Cgroups      string   // its /proc/self/cgroup after moving itself
	MemoryLimit  string   // memory.limit_in_bytes read back
	HogSignal    string   // how the process over the limit ended
	OOMKills     string   // memory.oom_control's oom_kill after it
	ForkRefused  string   // what sh said when pids.max forbade its fork
	CPUQuota     string   // cpu.cfs_quota_us read back
	ParentLimitW string   // writing the subtree's own limit
}

// helperV1 does, as the delegated user inside a user namespace, what runc
// does with a session's cgroup: in each of memory, pids and cpu it makes
// session below the delegated subtree (args: the subtree's directories in
// memory, pids and cpu), writes a limit and moves a process in.
func helperV1(args []string) (any, error) {
	if len(args) != 3 {
		return nil, errors.New("want the memory, pids and cpu subtrees")
	}
	mem, pids, cpu := filepath.Join(args[0], "session"), filepath.Join(args[1], "session"), filepath.Join(args[2], "session")
	var r v1Report
	uidMap, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return nil, err
	}
	r.UID = strings.Fields(string(uidMap))

	// memory: the helper moves itself in, then starts a process that
	// allocates past the limit.
	const limit = 48 << 20
	if err := mkWrite(mem, map[string]string{"memory.limit_in_bytes": strconv.Itoa(limit)}); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(mem, "memory.memsw.limit_in_bytes")); err == nil {
		// Without it the allocation may go to swap instead.
		if err := os.WriteFile(filepath.Join(mem, "memory.memsw.limit_in_bytes"), []byte(strconv.Itoa(limit)), 0); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(mem, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return nil, err
	}
	if r.MemoryLimit, err = readTrim(filepath.Join(mem, "memory.limit_in_bytes")); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	hog := exec.Command(self)
	hog.Env = []string{helperEnv + "=hog"}
	err = hog.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return nil, fmt.Errorf("the process over the limit: %v", err)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.HogSignal = ws.Signal().String()
	} else {
		r.HogSignal = exit.String()
	}
	oom, err := os.ReadFile(filepath.Join(mem, "memory.oom_control"))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(oom), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			r.OOMKills = v
		}
	}

	// pids: a shell moves itself into a cgroup that allows one task,
	// then tries to fork. (The helper stays out: the Go runtime needs
	// threads of its own.)
	if err := mkWrite(pids, map[string]string{"pids.max": "1"}); err != nil {
		return nil, err
	}
	sh := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && (true) && echo forked`, "sh", pids)
	out, _ := sh.CombinedOutput()
	r.ForkRefused = strings.TrimSpace(string(out))

	// cpu: a quota, and the helper moves itself in.
	if err := mkWrite(cpu, map[string]string{"cpu.cfs_quota_us": "50000"}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cpu, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return nil, err
	}
	if r.CPUQuota, err = readTrim(filepath.Join(cpu, "cpu.cfs_quota_us")); err != nil {
		return nil, err
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	r.Cgroups = string(cg)

	// The subtree's own limit is root's.
	if err := os.WriteFile(filepath.Join(args[0], "memory.limit_in_bytes"), []byte("1"), 0); err != nil {
		r.ParentLimitW = err.Error()
	} else {
		r.ParentLimitW = "written"
	}
	return r, nil
}

// helperHog allocates and touches far more memory than helperV1's limit.
func helperHog([]string) (any, error) {
	var keep [][]byte
	for i := 0; i < 64; i++ {
		b := make([]byte, 8<<20)
		for j := range b {
			b[j] = byte(j)
		}
		keep = append(keep, b)
	}
	return len(keep), nil
}

func mkWrite(dir string, files map[string]string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0); err != nil {
			return err
		}
	}
	return nil
}

func readTrim(file string) (string, error) {
	b, err := os.ReadFile(file)
	return strings.TrimSpace(string(b)), err
}

// enterReport is what helperEnter saw.
type enterReport struct {
	Enabled []string
	Moved   string // the error moving the process into session, or ""
}

// helperEnter runs enter on a delegated cgroup v2 directory (args[0]) as the
// user, then moves process args[1] from the leaf into a session cgroup
// beside it, as runc would move a container's first process.
func helperEnter(args []string) (any, error) {
	if len(args) != 2 {
		return nil, errors.New("want the delegated directory and a pid")
	}
	enabled, err := enter(args[0])
	if err != nil {
		return nil, err
	}
	r := enterReport{Enabled: enabled}
	session := filepath.Join(args[0], "session")
	if err := os.Mkdir(session, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(session, "cgroup.procs"), []byte(args[1]), 0); err != nil {
		r.Moved = err.Error()
	}
	return r, nil
}

// helperDial connects to the session bus the way StartScope does, from
// inside the user namespace, and says whether the bus let it in.
func helperDial([]string) (any, error) {
	conn, err := userBus(realHost(DefaultRoot))(context.Background())
	if err != nil {
		return err.Error(), nil
	}
	conn.Close()
	return "connected", nil
}
