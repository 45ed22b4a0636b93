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
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// requireRootAndRunc skips unless the test runs as root with runc on
// PATH; under CI=true it fails instead, since CI always has both. These
// are tier-2 tests (see e2e/doc.go): -short runs them too.
func requireRootAndRunc(t *testing.T) string {
	t.Helper()
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
echo "rwexec=$(awk '$6 ~ /(^|,)rw(,|$)/ && $6 !~ /(^|,)noexec(,|$)/ {printf "%s ", $5}' /proc/self/mountinfo)"
echo done=yes
`

// buildInit builds cmd/mcpbox-init, statically as mcpbox ships it: the
// sandbox's memfd hook.
func buildInit(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "mcpbox-init")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/mcpbox-init")
	cmd.Dir = testutil.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build mcpbox-init: %v\n%s", err, b)
	}
	return out
}

// runSandboxed runs args with Spec's defaults, HostRuntime(args[0]) and
// the synthetic /etc under runc, and returns its stdout.
func runSandboxed(t *testing.T, runc string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runSandboxedWith(t, runc, nil, args...)
	if err != nil {
		t.Fatalf("runc run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	return stdout
}

// runSandboxedWith is runSandboxed with change applied to the policy
// first; it returns runc's error instead of failing the test.
func runSandboxedWith(t *testing.T, runc string, change func(*Policy), args ...string) (stdout, stderr string, err error) {
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

	mounts, err := HostRuntime(args[0], UserPaths{})
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
		Memfd: MemfdNoExecHook{Path: buildInit(t)},
	}
	if change != nil {
		change(&p)
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
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func TestRuncRunsSpec(t *testing.T) {
	runc := requireRootAndRunc(t)
	stdout := runSandboxed(t, runc, "/bin/sh", "-c", probeScript)
	got := keyValues(stdout)
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
		// No writable mount lets a program the sandbox wrote run.
		"rwexec": "",
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

// memfdScript runs in the sandbox as Python: a memfd can be created,
// written and read back, but not executed, by path or by descriptor, and
// MFD_EXEC is refused. It prints key=value lines.
const memfdScript = `
import os, sys
sys.stdout.reconfigure(line_buffering=True)  # nothing buffered is copied by fork
def errname(e):
    return os.strerror(e.errno) if e.errno else str(e)
print("noexec=" + open("/proc/sys/vm/memfd_noexec").read().strip())
fd = os.memfd_create("mcpbox-test", os.MFD_CLOEXEC)
exe = open("/bin/true", "rb").read()
os.write(fd, exe)
os.lseek(fd, 0, os.SEEK_SET)
print("readback=" + str(os.read(fd, len(exe)) == exe))
print("mode=" + oct(os.fstat(fd).st_mode & 0o777))
try:
    os.fchmod(fd, 0o755)
    print("chmod=ok")
except OSError as e:
    print("chmod=" + errname(e))
for how in ("path", "fd"):
    pid = os.fork()
    if pid == 0:
        try:
            if how == "path":
                os.execv("/proc/self/fd/%d" % fd, ["true"])
            else:
                os.execve(fd, ["true"], {})
        except OSError as e:
            print("exec_" + how + "=" + errname(e), flush=True)
        os._exit(3)
    _, st = os.waitpid(pid, 0)
    if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
        print("exec_" + how + "=ran")
try:
    os.close(os.memfd_create("mcpbox-test", os.MFD_CLOEXEC | 0x10))
    print("mfd_exec=ok")
except OSError as e:
    print("mfd_exec=" + errname(e))
print("done=yes")
`

// TestRuncMemfdNoExec runs Python in a sandbox built by Spec, with the real
// mcpbox-init as its memfd hook: memfds work as memory, but nothing written
// into one runs, and the host's own setting is untouched.
func TestRuncMemfdNoExec(t *testing.T) {
	runc := requireRootAndRunc(t)
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("needs %s: %v", python, err)
	}
	host, err := os.ReadFile("/proc/sys/vm/memfd_noexec")
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but the kernel has no vm.memfd_noexec (%v): the memfd hook is tested on Linux 6.6 or later", err)
		}
		t.Skipf("kernel without vm.memfd_noexec: %v", err)
	}
	out := runSandboxed(t, runc, python, "-c", memfdScript)
	got := keyValues(out)
	if got["done"] != "yes" {
		t.Fatalf("script did not finish:\n%s", out)
	}
	for k, want := range map[string]string{
		"noexec":    "2",
		"readback":  "True",
		"mode":      "0o666",
		"chmod":     "Operation not permitted", // F_SEAL_EXEC
		"exec_path": "Permission denied",
		"exec_fd":   "Permission denied",
		"mfd_exec":  "Permission denied",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if after, _ := os.ReadFile("/proc/sys/vm/memfd_noexec"); !bytes.Equal(after, host) {
		t.Errorf("the host's vm.memfd_noexec changed from %q to %q", host, after)
	}
}

// TestRuncMemfdHookFailsClosed: when the hook fails, runc does not start
// the process.
func TestRuncMemfdHookFailsClosed(t *testing.T) {
	runc := requireRootAndRunc(t)
	run := func(hook string) (bool, string, error) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := runSandboxedWith(t, runc, func(p *Policy) {
			if hook != "" {
				p.Memfd = MemfdNoExecHook{Path: hook}
			}
			p.Mounts = append(p.Mounts, Mount{Source: dir, Destination: "/out"})
		}, "/bin/sh", "-c", "touch /out/ran")
		_, serr := os.Stat(filepath.Join(dir, "ran"))
		return serr == nil, stderr, err
	}
	// The real hook: the process runs and leaves its mark.
	if ran, stderr, err := run(""); err != nil || !ran {
		t.Fatalf("with mcpbox-init as the hook: ran=%v, err=%v\n%s", ran, err, stderr)
	}
	ran, stderr, err := run("/bin/false")
	if err == nil {
		t.Errorf("runc ran the container although its memfd hook failed")
	}
	if ran {
		t.Errorf("the process ran although the hook failed")
	}
	if !strings.Contains(stderr, "hook") {
		t.Errorf("runc's error does not name the hook: %s", stderr)
	}
}

// memfdDenyScript runs in a deny-mode sandbox as Python: memfd_create
// fails as on a kernel without it, and what a program falls back to (a
// file in /dev/shm or an O_TMPFILE file in /tmp) does not run either, by
// path or by descriptor. It prints key=value lines.
const memfdDenyScript = `
import errno, os, shutil, sys
sys.stdout.reconfigure(line_buffering=True)  # nothing buffered is copied by fork
def name(e):
    return errno.errorcode.get(e.errno, str(e))
try:
    print("noexec=" + open("/proc/sys/vm/memfd_noexec").read().strip())
except OSError as e:
    print("noexec=" + name(e))
for label, flags in (("memfd", os.MFD_CLOEXEC), ("memfd_seal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | 0x8), ("mfd_exec", os.MFD_CLOEXEC | 0x10)):
    try:
        os.close(os.memfd_create("mcpbox-test", flags))
        print(label + "=ok")
    except OSError as e:
        print(label + "=" + name(e))
def run(label, target):
    pid = os.fork()
    if pid == 0:
        try:
            if isinstance(target, int):
                os.execve(target, ["true"], {})
            else:
                os.execv(target, ["true"])
        except OSError as e:
            print(label + "=" + name(e), flush=True)
        os._exit(3)
    _, st = os.waitpid(pid, 0)
    if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
        print(label + "=ran")
shutil.copy("/bin/true", "/dev/shm/true")
os.chmod("/dev/shm/true", 0o755)
run("shm_exec", "/dev/shm/true")
fd = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o755)
os.write(fd, open("/bin/true", "rb").read())
ro = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)
os.close(fd)
run("tmpfile_path", "/proc/self/fd/%d" % ro)
run("tmpfile_fd", ro)
print("done=yes")
`

// nodeScript exercises what Node needs from the kernel: the JIT's
// executable memory, WebAssembly, a worker thread and a child process.
const nodeScript = `
const { Worker } = require("worker_threads");
const { execFileSync } = require("child_process");
let f = (n) => n < 2 ? n : f(n - 1) + f(n - 2);
for (let i = 0; i < 200; i++) f(15);
const wasm = new WebAssembly.Instance(new WebAssembly.Module(Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0])));
const sh = execFileSync("/bin/sh", ["-c", "echo child"]).toString().trim();
new Worker("require('worker_threads').parentPort.postMessage(6*7)", { eval: true }).on("message", (m) => {
  console.log("node=" + f(20) + "," + m + "," + sh + "," + typeof wasm.exports);
  process.exit(0);
});
`

// TestRuncMemfdDeny runs Python and Node in deny-mode sandboxes (no hook,
// the real seccomp profile with WithMemfdDenied), as on a kernel or under
// a runtime where the hook cannot work: memfd_create fails with ENOSYS,
// nothing a program falls back to can be executed, and both run.
func TestRuncMemfdDeny(t *testing.T) {
	runc := requireRootAndRunc(t)
	for _, bin := range []string{"/usr/bin/python3", "/usr/bin/node"} {
		if _, err := os.Stat(bin); err != nil {
			if testutil.InCI() {
				t.Fatalf("CI=true but %s is missing: %v", bin, err)
			}
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	filter, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	if filter, err = seccomp.WithMemfdDenied(filter); err != nil {
		t.Fatal(err)
	}
	deny := func(p *Policy) { p.Memfd, p.Seccomp = MemfdDeny{}, filter }
	host, hostErr := os.ReadFile("/proc/sys/vm/memfd_noexec")

	out, stderr, err := runSandboxedWith(t, runc, deny, "/usr/bin/python3", "-c", memfdDenyScript)
	if err != nil {
		t.Fatalf("python: %v\n%s\n%s", err, out, stderr)
	}
	got := keyValues(out)
	if got["done"] != "yes" {
		t.Fatalf("script did not finish:\n%s\n%s", out, stderr)
	}
	for k, want := range map[string]string{
		"memfd":        "ENOSYS",
		"memfd_seal":   "ENOSYS",
		"mfd_exec":     "ENOSYS",
		"shm_exec":     "EACCES", // noexec
		"tmpfile_path": "EACCES", // noexec
		"tmpfile_fd":   "EPERM",  // execveat(AT_EMPTY_PATH)
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	// No hook ran: the sandbox sees the host's setting.
	if hostErr == nil && got["noexec"] != strings.TrimSpace(string(host)) {
		t.Errorf("vm.memfd_noexec inside = %q, host %q: a hook changed it", got["noexec"], host)
	}

	out, stderr, err = runSandboxedWith(t, runc, deny, "/usr/bin/node", "-e", nodeScript)
	if err != nil {
		t.Fatalf("node: %v\n%s\n%s", err, out, stderr)
	}
	if got := strings.TrimSpace(out); got != "node=6765,42,child,object" {
		t.Errorf("node printed %q, want node=6765,42,child,object\n%s", got, stderr)
	}
}

// TestRuncMemfdDenyChromium runs headless Chromium in a deny-mode sandbox:
// its shared memory, which it asks memfd_create for first (Chromium 156:
// "shared-memory-region", MFD_NOEXEC_SEAL), falls back to files in
// /dev/shm, and a page's script runs (V8's JIT included). Not with
// --single-process: Chromium 156 dies of SIGTRAP/SIGILL with it, on the
// host too.
func TestRuncMemfdDenyChromium(t *testing.T) {
	runc := requireRootAndRunc(t)
	const chromium = "/usr/lib/chromium/chromium" // Debian's; /usr/bin/chromium is a shell wrapper
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("needs Debian's chromium (not one of mcpbox's dependencies): %v", err)
	}
	filter, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	if filter, err = seccomp.WithMemfdDenied(filter); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runSandboxedWith(t, runc, func(p *Policy) {
		p.Memfd, p.Seccomp = MemfdDeny{}, filter
		p.Limits = Limits{Memory: 2 << 30, Pids: 512, CPUs: 2, Tmp: 512 << 20}
	}, chromium, "--headless", "--no-sandbox", "--no-zygote", "--disable-gpu",
		"--dump-dom", "data:text/html,<p id=x></p><script>document.getElementById('x').textContent='ran '+(6*7)</script>")
	if err != nil {
		t.Fatalf("chromium: %v\n%s\n%s", err, out, tail(stderr, 4000))
	}
	if !strings.Contains(out, `<p id="x">ran 42</p>`) {
		t.Errorf("chromium did not run the page's script:\n%s\n%s", out, tail(stderr, 4000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func keyValues(out string) map[string]string {
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	return got
}

// TestRuncWritableBindNoExec: a program copied into a writable bind does
// not run, unless the bind is marked WritableExec (the install step's).
func TestRuncWritableBindNoExec(t *testing.T) {
	runc := requireRootAndRunc(t)
	for _, tc := range []struct {
		name string
		file bool // bind one file instead of a directory
		m    Mount
		want string
	}{
		{"writable directory", false, Mount{}, "exec=no"},
		{"writable file", true, Mount{}, "exec=no"},
		{"WritableExec", false, Mount{WritableExec: true}, "exec=yes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			src, dst := dir, "/out"
			if tc.file {
				src, dst = filepath.Join(dir, "true"), "/out/true"
				if err := os.WriteFile(src, nil, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(src, 0o777); err != nil {
					t.Fatal(err)
				}
			}
			out, stderr, err := runSandboxedWith(t, runc, func(p *Policy) {
				m := tc.m
				m.Source, m.Destination = src, dst
				p.Mounts = append(p.Mounts, m)
			}, "/bin/sh", "-c", "cat /usr/bin/true >/out/true && chmod 0755 /out/true; if /out/true; then echo exec=yes; else echo exec=no; fi")
			if err != nil {
				t.Fatalf("runc run: %v\n%s", err, stderr)
			}
			if got := strings.TrimSpace(out); got != tc.want {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}
