//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const fsCat = "filesystem"

func fsProbes() []probe {
	ps := []probe{
		{name: "fs/write-root", category: fsCat, tried: "create a new file in /", run: createIn("/")},
		{name: "fs/write-usr", category: fsCat, tried: "create a new file in /usr", run: createIn("/usr")},
		{name: "fs/write-etc", category: fsCat, tried: "create a new file in /etc", run: createIn("/etc")},
		{name: "fs/write-etc-passwd", category: fsCat, tried: "open /etc/passwd O_WRONLY (no write)", run: openWrite("/etc/passwd")},
		{name: "fs/write-proc-self-exe", category: fsCat, tried: "open /proc/self/exe O_WRONLY (no write)", run: openWrite("/proc/self/exe")},
		{name: "fs/write-proc-1-exe", category: fsCat, tried: "open /proc/1/exe O_WRONLY (no write)", run: openWrite("/proc/1/exe")},
		{name: "fs/write-sysrq-trigger", category: fsCat, tried: "open /proc/sysrq-trigger O_WRONLY (never writes)", run: openWrite("/proc/sysrq-trigger")},
		{name: "fs/write-core-pattern", category: fsCat, tried: "open /proc/sys/kernel/core_pattern O_WRONLY; if it opens, write back exactly what was read", run: writeBack("/proc/sys/kernel/core_pattern")},
		{name: "fs/write-uevent-helper", category: fsCat, tried: "open /sys/kernel/uevent_helper O_WRONLY; if it opens, write back exactly what was read", run: writeBack("/sys/kernel/uevent_helper")},
		{name: "fs/write-cgroup-procs", category: fsCat, tried: "open /sys/fs/cgroup/cgroup.procs O_WRONLY (no write)", run: openWrite("/sys/fs/cgroup/cgroup.procs")},
		{name: "fs/root-mount-ro", category: fsCat, tried: "find / in /proc/self/mountinfo; it must be mounted ro", run: probeRootRO},
		{name: "fs/tmp-mount-flags", category: fsCat, tried: "find the mounts of /tmp and $HOME in /proc/self/mountinfo; each must be nosuid,nodev,noexec", run: probeTmpFlags},
		{name: "fs/mknod-block", category: fsCat, tried: "mknod a block device 8:0 in /tmp", run: probeMknod},
		{name: "fs/dev-entries", category: fsCat, tried: "list /dev; only the standard container devices may be there", run: probeDev},
		{name: "fs/exec-tmp", category: fsCat, tried: "copy /proc/self/exe (or a #!/bin/sh script) to /tmp, chmod 0700 and exec it; noexec must refuse", run: execIn("/tmp")},
		{name: "fs/exec-home", category: fsCat, tried: "copy /proc/self/exe (or a #!/bin/sh script) to $HOME, chmod 0700 and exec it; noexec must refuse", run: execIn("$HOME")},
		{name: "fs/mmap-exec-tmp", category: fsCat, tried: "mmap a file in /tmp with PROT_EXEC; noexec must refuse", run: mmapExecIn("/tmp")},
		{name: "fs/mmap-exec-home", category: fsCat, tried: "mmap a file in $HOME with PROT_EXEC; noexec must refuse", run: mmapExecIn("$HOME")},
		{name: "fs/host-home", category: fsCat, tried: "list /root and /home/*; they must be absent, unreadable or empty", run: probeHostHome},
		{name: "fs/ssh-keys", category: fsCat, tried: "look for id_rsa, id_ecdsa, id_ed25519, id_dsa under /root/.ssh, /home/*/.ssh and $HOME/.ssh", run: probeSSHKeys},
		{name: "fs/runtime-sockets", category: fsCat, tried: "look for the containerd, docker, podman and cri-o sockets", run: probeRuntimeSockets},
		{name: "fs/sys-host-interfaces", category: fsCat, tried: "list /sys/class/net; every interface there must be one this network namespace has (net.Interfaces, over netlink)", run: probeSysInterfaces},
		{name: "fs/sys-foreign-cgroups", category: fsCat, tried: "walk /sys/fs/cgroup three levels deep; in the sandbox's view no cgroup but its own (the root of each hierarchy) may show", run: probeSysCgroups},
		{name: "fs/abstract-sockets", category: fsCat, tried: "list abstract unix sockets in /proc/net/unix and connect to each containerd/shim/docker one", run: probeAbstractSockets},
	}
	for _, m := range []struct{ name, path string }{
		{"fs/read-proc-kcore", "/proc/kcore"},
		{"fs/read-proc-keys", "/proc/keys"},
		{"fs/read-proc-timer-list", "/proc/timer_list"},
		{"fs/read-proc-sched-debug", "/proc/sched_debug"},
		{"fs/read-proc-interrupts", "/proc/interrupts"},
	} {
		ps = append(ps, probe{name: m.name, category: fsCat,
			tried: "read " + m.path + "; masked means no data or an error",
			run:   readMasked(m.path)})
	}
	for _, m := range []struct{ name, path string }{
		{"fs/list-proc-acpi", "/proc/acpi"},
		{"fs/list-sys-firmware", "/sys/firmware"},
		{"fs/list-sys-powercap", "/sys/devices/virtual/powercap"},
	} {
		ps = append(ps, probe{name: m.name, category: fsCat,
			tried: "list " + m.path + "; masked means empty or unreadable",
			run:   listMasked(m.path)})
	}
	return ps
}

func randSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// expandHome replaces "$HOME" by the home directory; "" if it is unset.
func expandHome(dir string) string {
	if dir == "$HOME" {
		return os.Getenv("HOME")
	}
	return dir
}

func createIn(dir string) func(*env) result {
	return func(*env) result {
		p := filepath.Join(dir, "mcpbox-probe-"+randSuffix())
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return denied(err, "")
		}
		unix.Close(fd)
		_ = unix.Unlink(p)
		return allowed("created (and removed) " + p)
	}
}

func openWrite(path string) func(*env) result {
	return func(*env) result {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			return denied(err, "")
		}
		unix.Close(fd)
		return allowed("opened " + path + " for writing (nothing written)")
	}
}

func writeBack(path string) func(*env) result {
	return func(*env) result {
		old, rerr := os.ReadFile(path)
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return denied(err, "")
		}
		defer unix.Close(fd)
		if rerr != nil {
			return allowed(fmt.Sprintf("opened %s for writing; nothing written because reading it failed: %v", path, rerr))
		}
		if _, err := unix.Write(fd, old); err != nil {
			r := allowed(fmt.Sprintf("opened %s for writing; writing back the same content failed: %v", path, err))
			r.Errno = errnoName(err)
			return r
		}
		return allowed(fmt.Sprintf("opened %s for writing and wrote back its own content", path))
	}
}

func readMasked(path string) func(*env) result {
	return func(*env) result {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return denied(err, "")
		}
		defer unix.Close(fd)
		buf := make([]byte, 4096)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return denied(err, "open succeeded, read failed: "+err.Error())
		}
		if n == 0 {
			return pass(outcomeDenied, "read returned no data (masked)")
		}
		return allowed(fmt.Sprintf("read %d bytes", n))
	}
}

func listMasked(path string) func(*env) result {
	return func(*env) result {
		ents, err := os.ReadDir(path)
		if err != nil {
			return denied(err, "")
		}
		if len(ents) == 0 {
			return pass(outcomeDenied, "empty (masked)")
		}
		return allowed(fmt.Sprintf("%d entries, e.g. %s", len(ents), names(ents, 5)))
	}
}

func names(ents []os.DirEntry, max int) string {
	var ns []string
	for i, e := range ents {
		if i == max {
			ns = append(ns, "…")
			break
		}
		ns = append(ns, e.Name())
	}
	return strings.Join(ns, ", ")
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	point, fstype string
	opts          map[string]bool // the mount's own options (ro, noexec...)
	super         map[string]bool // the filesystem's options
}

func readMounts() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountinfo(f)
}

func parseMountinfo(r io.Reader) ([]mount, error) {
	var ms []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		m := mount{point: unescapeMount(fields[4]), opts: map[string]bool{}, super: map[string]bool{}}
		for _, o := range strings.Split(fields[5], ",") {
			m.opts[o] = true
		}
		for i := 6; i < len(fields)-1; i++ {
			if fields[i] == "-" {
				m.fstype = fields[i+1]
				if i+3 < len(fields) {
					for _, o := range strings.Split(fields[i+3], ",") {
						m.super[o] = true
					}
				}
				break
			}
		}
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// mountFor returns the mount that holds path: the last (topmost) mount with
// the longest mount point that is a prefix of path.
func mountFor(ms []mount, path string) (mount, bool) {
	var best mount
	found := false
	for _, m := range ms {
		p := m.point
		if path == p || p == "/" || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			if !found || len(p) >= len(best.point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

func probeRootRO(*env) result {
	ms, err := readMounts()
	if err != nil {
		return errored(err.Error())
	}
	m, ok := mountFor(ms, "/")
	if !ok {
		return errored("no mount for / in /proc/self/mountinfo")
	}
	if !m.opts["ro"] {
		return fail(outcomeAllowed, "/ is mounted read-write ("+m.fstype+")")
	}
	return pass(outcomeDenied, "/ is mounted ro ("+m.fstype+")")
}

func probeTmpFlags(*env) result {
	ms, err := readMounts()
	if err != nil {
		return errored(err.Error())
	}
	dirs := []string{"/tmp"}
	if h := os.Getenv("HOME"); h != "" && h != "/tmp" {
		dirs = append(dirs, h)
	}
	var bad, good []string
	for _, d := range dirs {
		m, ok := mountFor(ms, d)
		if !ok {
			bad = append(bad, d+": no mount")
			continue
		}
		var missing []string
		for _, o := range []string{"nosuid", "nodev", "noexec"} {
			if !m.opts[o] {
				missing = append(missing, o)
			}
		}
		if len(missing) > 0 {
			bad = append(bad, fmt.Sprintf("%s (mount %s, %s) lacks %s", d, m.point, m.fstype, strings.Join(missing, ",")))
		} else {
			good = append(good, fmt.Sprintf("%s (mount %s, %s) ok", d, m.point, m.fstype))
		}
	}
	if len(bad) > 0 {
		return fail(outcomeAllowed, strings.Join(append(bad, good...), "; "))
	}
	return pass(outcomeDenied, strings.Join(good, "; "))
}

func probeMknod(*env) result {
	p := "/tmp/mcpbox-probe-blk-" + randSuffix()
	err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0)))
	if err != nil {
		return denied(err, "")
	}
	_ = unix.Unlink(p)
	return allowed("created (and removed) block device 8:0 at " + p)
}

var allowedDev = map[string]bool{
	"null": true, "zero": true, "full": true, "random": true, "urandom": true,
	"tty": true, "console": true, "pts": true, "ptmx": true, "shm": true,
	"fd": true, "stdin": true, "stdout": true, "stderr": true, "core": true,
	"mqueue": true,
}

func probeDev(*env) result {
	ents, err := os.ReadDir("/dev")
	if err != nil {
		return errored(err.Error())
	}
	var extra, seen []string
	for _, e := range ents {
		if allowedDev[e.Name()] {
			seen = append(seen, e.Name())
		} else {
			extra = append(extra, e.Name())
		}
	}
	if len(extra) > 0 {
		return fail(outcomeAllowed, "unexpected entries in /dev: "+strings.Join(extra, ", "))
	}
	return pass(outcomeDenied, "/dev holds only: "+strings.Join(seen, ", "))
}

// writeExecutable puts an executable file in dir: a copy of this program, or
// a shell script if the copy does not fit.
func writeExecutable(dir string) (string, string, error) {
	p := filepath.Join(dir, "mcpbox-probe-exec-"+randSuffix())
	self, err := os.ReadFile("/proc/self/exe")
	if err == nil {
		if err = os.WriteFile(p, self, 0o700); err == nil {
			return p, "a copy of /proc/self/exe", nil
		}
		_ = os.Remove(p)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o700); err != nil {
		_ = os.Remove(p)
		return "", "", err
	}
	return p, "a #!/bin/sh script", nil
}

func execIn(dir string) func(*env) result {
	return func(*env) result {
		d := expandHome(dir)
		if d == "" {
			return skipped("HOME is not set")
		}
		if dir == "$HOME" && d == "/tmp" {
			return skipped("HOME is /tmp, see fs/exec-tmp")
		}
		p, what, err := writeExecutable(d)
		if err != nil {
			return errored(fmt.Sprintf("could not write a file to exec: %v", err))
		}
		defer os.Remove(p)
		// Build the Cmd by hand: exec.Command would check X_OK with
		// faccessat first and never reach execve.
		cmd := &exec.Cmd{Path: p, Args: []string{p, childArg, "noop"}, Env: os.Environ()}
		if err := cmd.Start(); err != nil {
			return denied(err, fmt.Sprintf("execve of %s in %s: %v", what, d, err))
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return allowed(fmt.Sprintf("execve of %s in %s succeeded", what, d))
	}
}

func mmapExecIn(dir string) func(*env) result {
	return func(*env) result {
		d := expandHome(dir)
		if d == "" {
			return skipped("HOME is not set")
		}
		if dir == "$HOME" && d == "/tmp" {
			return skipped("HOME is /tmp, see fs/mmap-exec-tmp")
		}
		p := filepath.Join(d, "mcpbox-probe-mmap-"+randSuffix())
		if err := os.WriteFile(p, make([]byte, 4096), 0o700); err != nil {
			return errored(fmt.Sprintf("could not write a file to map: %v", err))
		}
		defer os.Remove(p)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return errored(err.Error())
		}
		defer unix.Close(fd)
		b, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
		if err != nil {
			return denied(err, "")
		}
		_ = unix.Munmap(b)
		return allowed("mapped a file in " + d + " with PROT_EXEC")
	}
}

// underHome reports whether p is the sandbox's own $HOME or holds it.
func underHome(p string) bool {
	h := os.Getenv("HOME")
	return h != "" && (h == p || strings.HasPrefix(h, p+"/"))
}

func probeHostHome(*env) result {
	var exposed, notes []string
	check := func(dir string) {
		if underHome(dir) {
			notes = append(notes, dir+" holds the sandbox's $HOME, not checked")
			return
		}
		ents, err := os.ReadDir(dir)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("%s: %s", dir, errnoOr(err)))
		case len(ents) == 0:
			notes = append(notes, dir+" empty")
		default:
			exposed = append(exposed, fmt.Sprintf("%s (%s)", dir, names(ents, 5)))
		}
	}
	check("/root")
	homes, err := os.ReadDir("/home")
	switch {
	case err != nil:
		notes = append(notes, "/home: "+errnoOr(err))
	default:
		if len(homes) == 0 {
			notes = append(notes, "/home empty")
		}
		for _, h := range homes {
			check(filepath.Join("/home", h.Name()))
		}
	}
	if len(exposed) > 0 {
		return fail(outcomeAllowed, "readable home directories: "+strings.Join(exposed, "; "))
	}
	return pass(outcomeDenied, strings.Join(notes, "; "))
}

func errnoOr(err error) string {
	if n := errnoName(err); n != "" {
		return n
	}
	return err.Error()
}

func probeSSHKeys(*env) result {
	dirs := []string{"/root/.ssh"}
	if homes, err := os.ReadDir("/home"); err == nil {
		for _, h := range homes {
			dirs = append(dirs, filepath.Join("/home", h.Name(), ".ssh"))
		}
	}
	if h := os.Getenv("HOME"); h != "" {
		dirs = append(dirs, filepath.Join(h, ".ssh"))
	}
	var found []string
	for _, d := range dirs {
		for _, k := range []string{"id_rsa", "id_ecdsa", "id_ed25519", "id_dsa"} {
			p := filepath.Join(d, k)
			if _, err := os.Lstat(p); err == nil {
				found = append(found, p)
			}
		}
	}
	if len(found) > 0 {
		return fail(outcomeAllowed, "private keys visible: "+strings.Join(found, ", "))
	}
	return pass(outcomeDenied, fmt.Sprintf("no private keys in %d directories", len(dirs)))
}

var runtimeSockets = []string{
	"/run/containerd/containerd.sock",
	"/run/containerd/containerd.sock.ttrpc",
	"/var/run/docker.sock",
	"/run/docker.sock",
	"/run/podman/podman.sock",
	"/var/run/crio/crio.sock",
	"/run/buildkit/buildkitd.sock",
}

func dialUnix(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", addr)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

func probeRuntimeSockets(e *env) result {
	var found []string
	for _, p := range runtimeSockets {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := dialUnix(e.ctx, p); err != nil {
			found = append(found, fmt.Sprintf("%s exists (connect: %s)", p, errnoOr(err)))
		} else {
			found = append(found, p+" exists and accepts connections")
		}
	}
	if len(found) > 0 {
		return fail(outcomeAllowed, strings.Join(found, "; "))
	}
	return pass(outcomeDenied, fmt.Sprintf("none of %d runtime sockets exist", len(runtimeSockets)))
}

// abstractSockets returns the abstract names ("@...") in /proc/net/unix.
func abstractSockets() ([]string, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseAbstract(f)
}

func parseAbstract(r io.Reader) ([]string, error) {
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || !strings.HasPrefix(fields[7], "@") {
			continue
		}
		seen[fields[7]] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, sc.Err()
}

func probeAbstractSockets(e *env) result {
	all, err := abstractSockets()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return denied(err, "/proc/net/unix: "+err.Error())
		}
		return errored(err.Error())
	}
	var tried, open []string
	for _, n := range all {
		l := strings.ToLower(n)
		if !strings.Contains(l, "containerd") && !strings.Contains(l, "shim") && !strings.Contains(l, "docker") {
			continue
		}
		tried = append(tried, n)
		if dialUnix(e.ctx, n) == nil {
			open = append(open, n)
		}
	}
	if len(open) > 0 {
		return fail(outcomeAllowed, "connected to "+strings.Join(open, ", "))
	}
	if len(tried) > 0 {
		return pass(outcomeDenied, fmt.Sprintf("%d abstract sockets, %d runtime ones all refused: %s", len(all), len(tried), strings.Join(tried, ", ")))
	}
	return pass(outcomeDenied, fmt.Sprintf("%d abstract sockets visible, none of a container runtime", len(all)))
}

// probeSysInterfaces looks for the host's network interfaces in /sys: a
// sysfs mounted (or bound) from another network namespace shows that
// namespace's interfaces, with their addresses and counters.
func probeSysInterfaces(*env) result {
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil && !os.IsNotExist(err) {
		return pass(outcomeDenied, "/sys/class/net: "+err.Error())
	}
	ifaces, ierr := net.Interfaces()
	if ierr != nil {
		return errored("net.Interfaces: " + ierr.Error())
	}
	own := map[string]bool{}
	for _, i := range ifaces {
		own[i.Name] = true
	}
	var foreign []string
	for _, e := range ents {
		if !own[e.Name()] {
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) > 0 {
		return fail(outcomeAllowed, "/sys/class/net shows interfaces of another network namespace: "+strings.Join(foreign, ", "))
	}
	return pass(outcomeDenied, fmt.Sprintf("/sys/class/net shows %d interface(s), all of this namespace", len(ents)))
}

// probeSysCgroups looks for other cgroups than the sandbox's own under
// /sys/fs/cgroup: a cgroup namespace shows the sandbox's cgroup as each
// hierarchy's root, and a sandbox cannot make children (read-only); a
// bind of the host's /sys shows every cgroup of the machine, other
// sessions' included.
func probeSysCgroups(*env) result {
	var found []string
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			// A hierarchy's root holds files; a directory inside one is a
			// cgroup. Hierarchies sit at depth 1 (v1, hybrid) or are the
			// top itself (v2).
			if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
				found = append(found, p)
				continue
			}
			if depth < 3 {
				walk(p, depth+1)
			}
		}
	}
	walk("/sys/fs/cgroup", 1)
	if len(found) > 0 {
		if len(found) > 5 {
			found = append(found[:5], fmt.Sprintf("(%d more)", len(found)-5))
		}
		return fail(outcomeAllowed, "cgroups other than the sandbox's own show: "+strings.Join(found, ", "))
	}
	return pass(outcomeDenied, "no cgroup but the sandbox's own shows under /sys/fs/cgroup")
}
