//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// requireRootAndRunc skips unless the test runs as root with runc on
// PATH (and not with -short); under CI=true it fails instead, since CI
// always has both.
func requireRootAndRunc(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root and runc: not in -short mode")
	}
	testutil.RequiresRoot(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but runc is not installed (%v): CI must provide it (run `make setup`)", err)
		}
		t.Skip("needs root and runc")
	}
	return runc
}

// probeScript prints key=value lines about the sandbox it runs in.
const probeScript = `
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
echo "user=$(id -un)"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \t' | tr ':' '='
echo "hostname=$(cat /proc/sys/kernel/hostname)"
if touch /x 2>/dev/null; then echo root=rw; else echo root=ro; fi
if touch /usr/x 2>/dev/null; then echo usr=rw; else echo usr=ro; fi
if echo hi >/tmp/f; then echo tmp=rw; else echo tmp=ro; fi
cp /usr/bin/true /tmp/true
if /tmp/true 2>/dev/null; then echo tmpexec=yes; else echo tmpexec=no; fi
echo "home=$(stat -c '%u:%g:%a' "$HOME")"
echo "cwd=$(pwd)"
echo "net=$(ls /sys/class/net | tr '\n' ' ')"
echo "nofile=$(ulimit -n)"
echo "core=$(ulimit -c)"
echo "kcore=$(head -c 16 /proc/kcore | wc -c)"
if echo 1 >/proc/sys/kernel/hostname 2>/dev/null; then echo procsys=rw; else echo procsys=ro; fi
if [ -d /sys/fs/cgroup/memory ]; then
  echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
  echo "swap=$(( $(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes) - $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) ))"
  echo "pids=$(cat /sys/fs/cgroup/pids/pids.max)"
else
  echo "memory=$(cat /sys/fs/cgroup/memory.max)"
  echo "swap=$(cat /sys/fs/cgroup/memory.swap.max)"
  echo "pids=$(cat /sys/fs/cgroup/pids.max)"
fi
echo "rootdir=$(ls / | tr '\n' ' ')"
echo "env=$(env | sort | tr '\n' ' ')"
echo "passwd=$(grep -c . /etc/passwd)"
echo done=yes
`

// runSandboxed runs args with Spec's defaults, HostRuntime(args[0]) and
// the synthetic /etc under runc, and returns its stdout.
func runSandboxed(t *testing.T, runc string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	etc := filepath.Join(dir, "etc")
	state := filepath.Join(dir, "state")
	for _, d := range []string{root, etc, state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	mounts, err := HostRuntime(args[0])
	if err != nil {
		t.Fatal(err)
	}
	for dst, content := range SyntheticEtc(0, 0, "", "") {
		src := filepath.Join(etc, filepath.Base(dst))
		if err := os.WriteFile(src, content, 0o644); err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, Mount{Source: src, Destination: dst, ReadOnly: true, NoExec: true})
	}

	id := "mcpbox-sandbox-test-" + randomHex(t)
	p := Policy{
		Args:        args,
		Env:         []string{"PATH=" + DefaultPath, "HOME=" + DefaultHome, "ONLY=this"},
		Root:        root,
		Mounts:      mounts,
		CgroupsPath: "/" + id,
		// Allow everything except keyctl: these tests are about the spec,
		// the real filter is sandbox/seccomp's.
		Seccomp: &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno}},
		},
	}
	s, err := Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		// runc run deletes the container when it exits; this catches a
		// test that failed half way.
		_ = exec.Command(runc, "--root", state, "delete", "--force", id).Run()
		for _, cg := range []string{filepath.Join("/sys/fs/cgroup/pids", id), filepath.Join("/sys/fs/cgroup", id)} {
			if _, err := os.Stat(cg); err == nil {
				t.Errorf("cgroup %s left behind", cg)
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runc, "--root", state, "run", "--bundle", dir, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestRuncRunsSpec(t *testing.T) {
	runc := requireRootAndRunc(t)
	stdout := runSandboxed(t, runc, "/bin/sh", "-c", probeScript)
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	if got["done"] != "yes" {
		t.Fatalf("probe did not finish:\n%s", stdout)
	}
	t.Logf("probe output: %v", got)

	zeroCaps := "0000000000000000"
	for k, want := range map[string]string{
		"uid":        "65534",
		"gid":        "65534",
		"groups":     "65534",
		"user":       "nobody",
		"CapInh":     zeroCaps,
		"CapPrm":     zeroCaps,
		"CapEff":     zeroCaps,
		"CapBnd":     zeroCaps,
		"CapAmb":     zeroCaps,
		"NoNewPrivs": "1",
		"Seccomp":    "2",
		"hostname":   DefaultHostname,
		"root":       "ro",
		"usr":        "ro",
		"tmp":        "rw",
		"tmpexec":    "no",
		"home":       "65534:65534:700",
		"cwd":        DefaultHome,
		"net":        "lo",
		"nofile":     "4096",
		"core":       "0",
		"kcore":      "0",
		"procsys":    "ro",
		"memory":     "536870912",
		"swap":       "0",
		"pids":       "128",
		"env":        "HOME=/home/sandbox ONLY=this PATH=" + DefaultPath + " PWD=/home/sandbox",
		"passwd":     "2",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	// Only what was bound, the mount points runc made, and nothing else
	// of the host's root.
	for _, name := range strings.Fields(got["rootdir"]) {
		switch name {
		case "bin", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "sys", "tmp", "usr":
		default:
			t.Errorf("unexpected /%s in the sandbox root", name)
		}
	}
}

// TestRuncRunsNode runs the host's node, the runtime most MCP servers
// need, from HostRuntime's binds alone.
func TestRuncRunsNode(t *testing.T) {
	runc := requireRootAndRunc(t)
	const node = "/usr/bin/node"
	if _, err := os.Stat(node); err != nil {
		t.Skipf("needs %s: %v", node, err)
	}
	out := runSandboxed(t, runc, node, "-e",
		`const os = require("os"); console.log(JSON.stringify({v: process.version, user: os.userInfo().username, tmp: os.tmpdir(), home: os.homedir()}))`)
	var got struct{ V, User, Tmp, Home string }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	if !strings.HasPrefix(got.V, "v") || got.User != "nobody" || got.Tmp != "/tmp" || got.Home != DefaultHome {
		t.Errorf("node in the sandbox: %+v", got)
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
