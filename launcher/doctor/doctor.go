// Package doctor owns the host checks of `mcpbox doctor`: whether this host
// can run mcpbox's sandboxes (kernel, the runtime chosen and why,
// containerd, runc and crun, seccomp, memfd, cgroups, user namespaces and
// what the rootless runtime needs besides, nftables, runtimes,
// directories, helpers, clients), each as a Result with a fix. It changes
// nothing on the host but creating mcpbox's state and cache directories
// and the rootless runtime's state directory. It takes plain paths and
// values, and behaviours as funcs set by cmd; it must not import the
// launcher root (nor cmd, nor urfave/cli).
package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"

	"github.com/mcpbox/mcpbox/launcher/backend"
	"github.com/mcpbox/mcpbox/launcher/memfd"
	"github.com/mcpbox/mcpbox/sandbox"
)

// Status is how one check came out.
type Status string

// The statuses of a check.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is the result of one `mcpbox doctor` check.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix is a command (or a short instruction) that fixes a failure or
	// a warning; "" when there is nothing to do.
	Fix string `json:"fix,omitempty"`
}

// ClientConfig is one MCP client config file, as the clients check counts
// it.
type ClientConfig struct {
	Display string // the client's name, as users know it
	Stdio   int    // stdio servers in the file
	Wrapped int    // of which run through mcpbox
	Broken  bool   // the file cannot be read or parsed
}

// Options say where Run looks. Address, StateDir and CacheDir have no
// default: they are the launcher's, which cmd passes.
type Options struct {
	// Clients, when set, finds the MCP client config files on this
	// machine and adds a check of them.
	Clients func() []ClientConfig
	// Address is containerd's socket.
	Address string
	// StateDir and CacheDir are mcpbox's state and cache directories,
	// which must be writable.
	StateDir, CacheDir string
	// Executable is mcpbox's executable, next to which mcpbox-init and
	// mcpbox-probe must be installed; "" means os.Executable().
	Executable string
	// Root is prepended to the /proc and /sys paths the checks read; ""
	// means "/". Syscall-based checks always look at the running kernel.
	Root string
	// LookPath finds a command; nil means exec.LookPath.
	LookPath func(name string) (string, error)
	// Memfd is the --memfd setting sessions use (see memfd.Setting).
	Memfd memfd.Setting

	// Runtime is the runtime setting ("", auto, containerd, rootless) and
	// RuntimeFrom what set it (--runtime, MCPBOX_RUNTIME, the config
	// file's FILE:LINE; "" for the default).
	Runtime, RuntimeFrom string
	// ConfigFile is the user config file read, "" when there is none, and
	// ConfigRuntime the runtime it sets; ConfigErr is its mistake.
	ConfigFile, ConfigRuntime string
	ConfigErr                 error
	// Self is an mcpbox executable that runs ProbeChild when started
	// with ProbeCommand (cmd passes /proc/self/exe); "" leaves the user
	// namespaces check out.
	Self string
	// Caller is the user checked for; zero means the one running doctor.
	Caller Caller
	// XDGRuntimeDir is $XDG_RUNTIME_DIR, where the rootless runtime
	// keeps its state.
	XDGRuntimeDir string
	// RootlessStateDir makes and returns the rootless runtime's state
	// directory and why there; nil means backend.StateDir(XDGRuntimeDir,
	// StateDir), as sessions find it.
	RootlessStateDir func() (backend.StateLocation, error)
	// Limits says whether the rootless runtime can enforce the sandbox's
	// cgroup limits (memory, pids, cpu) for the caller, what it found, and
	// the command that fixes it. nil reports them as not enforced.
	Limits func() (ok bool, detail, fix string)
	// FileCaps reads a file's security.capability attribute; nil means
	// the file system's.
	FileCaps func(path string) []byte
}

func (o *Options) setDefaults() {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.Caller == (Caller{}) {
		o.Caller = currentCaller()
	}
	if o.RootlessStateDir == nil {
		o.RootlessStateDir = func() (backend.StateLocation, error) { return backend.StateDir(o.XDGRuntimeDir, o.StateDir) }
	}
	if o.FileCaps == nil {
		o.FileCaps = fileCaps
	}
}

func (o *Options) path(p string) string { return filepath.Join(o.Root, p) }

// Run checks that this host can run mcpbox's sandboxes and returns one
// Result per item, in a fixed order: first the runtime sessions run in
// and why, then what that runtime needs. The checks of what only the
// rootless runtime needs are left out for root, to whom it is refused. It
// changes nothing on the host except creating mcpbox's state and cache
// directories, and the rootless runtime's, when they are missing.
func Run(ctx context.Context, opts Options) []Result {
	opts.setDefaults()
	kind, runtimeCheck := checkRuntime(ctx, opts)
	rootless := kind == backend.Rootless
	reach := checkContainerd(opts)
	version := checkContainerdVersion(ctx, opts.Address, reach.Status != Fail)
	if rootless {
		reach, version = notUsed(reach), notUsed(version)
	}
	checks := []Result{checkKernel()}
	checks = append(checks, checkConfig(opts)...)
	checks = append(checks,
		runtimeCheck,
		reach,
		version,
		checkRunc(ctx, opts),
		checkCrun(ctx, opts),
		checkSeccomp(opts),
		checkMemfdNoExec(opts, !rootless),
		checkCgroups(opts),
		checkUserNamespaces(ctx, opts, rootless),
	)
	if opts.Caller.UID != 0 {
		checks = append(checks, rootlessChecks(opts, rootless)...)
	}
	checks = append(checks, checkNftables(), checkOverlay(opts))
	checks = append(checks, checkRuntimes(ctx, opts)...)
	checks = append(checks,
		checkDir("state dir", opts.StateDir),
		checkDir("cache dir", opts.CacheDir),
	)
	checks = append(checks, checkHelpers(opts)...)
	if opts.Clients != nil {
		checks = append(checks, checkClients(opts.Clients()))
	}
	return checks
}

// checkClients counts the stdio servers of the detected clients that do
// not run through mcpbox yet. Unsandboxed servers are a warning, not a
// failure: mcpbox itself works.
func checkClients(files []ClientConfig) Result {
	c := Result{Name: "clients", Status: OK}
	if len(files) == 0 {
		c.Detail = "no MCP client config found"
		return c
	}
	var names []string
	stdio, wrapped, broken := 0, 0, 0
	for _, f := range files {
		if f.Broken {
			broken++
			continue
		}
		names = append(names, f.Display)
		stdio += f.Stdio
		wrapped += f.Wrapped
	}
	c.Detail = fmt.Sprintf("%s: %d of %d stdio servers sandboxed", strings.Join(dedupe(names), ", "), wrapped, stdio)
	if stdio > wrapped {
		c.Status, c.Fix = Warn, "mcpbox wrap (shows the changes and asks first)"
		c.Detail += fmt.Sprintf("; %d still run with your full rights", stdio-wrapped)
	}
	if broken > 0 {
		c.Status, c.Fix = Warn, "mcpbox clients (names the files that do not parse)"
		c.Detail += fmt.Sprintf("; %d config file(s) do not parse", broken)
	}
	return c
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkContainerd says whose socket Address is and whether this user can
// talk to containerd through it.
func checkContainerd(opts Options) Result {
	c := Result{Name: "containerd"}
	addr := opts.Address
	start := "sudo make setup (in the mcpbox source tree; it installs and starts containerd)"
	if _, err := os.Stat(opts.path("/run/systemd/system")); err == nil {
		start = "sudo systemctl start containerd"
	}
	fi, err := os.Stat(addr)
	if err != nil {
		c.Status, c.Fix = Fail, start
		if errors.Is(err, fs.ErrNotExist) {
			c.Detail = fmt.Sprintf("no socket at %s: containerd is not running there", addr)
		} else {
			c.Detail = fmt.Sprintf("cannot look at %s: %v", addr, err)
			if errors.Is(err, fs.ErrPermission) {
				c.Fix = "run mcpbox as root: sudo mcpbox doctor"
			}
		}
		return c
	}
	if fi.Mode().Type() != fs.ModeSocket {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s is not a socket (%s)", addr, fi.Mode())
		c.Fix = "point --containerd-address (or MCPBOX_CONTAINERD_ADDRESS) at containerd's socket"
		return c
	}
	whose := fmt.Sprintf("%s (socket, mode %#o", addr, fi.Mode().Perm())
	if uid, gid, ok := fileOwner(fi); ok {
		whose += fmt.Sprintf(", owner %d:%d", uid, gid)
	}
	whose += ")"
	conn, err := net.DialTimeout("unix", addr, 2*time.Second)
	switch {
	case err == nil:
		conn.Close()
		c.Status, c.Detail = OK, fmt.Sprintf("%s, reachable as uid %d", whose, os.Geteuid())
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s: uid %d may not open it", whose, os.Geteuid())
		c.Fix = "use --runtime auto (the rootless runtime needs no root), or run mcpbox as root: sudo mcpbox doctor"
	case errors.Is(err, syscall.ECONNREFUSED):
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s: nothing answers (a socket left by a containerd that stopped)", whose)
		c.Fix = start
	default:
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("%s: %v", whose, err), start
	}
	return c
}

func checkContainerdVersion(ctx context.Context, addr string, reachable bool) Result {
	c := Result{Name: "containerd version"}
	if !reachable {
		c.Status, c.Detail = Skip, "skipped: containerd is not reachable"
		return c
	}
	client, err := containerd.New(addr, containerd.WithTimeout(5*time.Second))
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("connect to %s: %v", addr, err)
		c.Fix = "sudo mcpbox doctor"
		return c
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := client.Version(ctx)
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("ask %s for its version: %v", addr, err)
		c.Fix = "sudo mcpbox doctor"
		return c
	}
	c.Status, c.Detail = OK, v.Version
	if v.Revision != "" && v.Revision != v.Version {
		c.Detail += " (revision " + v.Revision + ")"
	}
	return c
}

// runcAdvisories are the runc vulnerabilities doctor warns about, with the
// first fixed release of each release line. A version on a line between
// or below the listed ones is vulnerable; one above the last is fixed.
var runcAdvisories = []struct {
	CVEs  []string
	Fixed []string
}{
	{CVEs: []string{"CVE-2024-21626"}, Fixed: []string{"1.1.12"}},
	{CVEs: []string{"CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"}, Fixed: []string{"1.2.8", "1.3.3", "1.4.0-rc.2"}},
}

// runcVersion is runc's version as `runc --version` reports it.
type runcVersion struct {
	Major, Minor, Patch int
	// RC is the release candidate number, 0 for a release.
	RC int
	// Raw is the version as printed, e.g. "1.1.5+ds1".
	Raw string
	// Distro is a distribution's packaging revision ("+ds1",
	// "1.1.5+ds1-1+deb12u1"): the package may carry backported fixes
	// that the upstream version does not show.
	Distro string
}

var (
	semverRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:-rc\.?(\d+))?(.*)$`)
	// A Debian revision ("-1", "-1+deb12u1", "-0ubuntu1") or repack
	// suffix ("+ds1", "+dfsg").
	distroRE = regexp.MustCompile(`-\d|\+ds|\+dfsg|deb\d|ubuntu`)
)

// parseVersion parses "1.2.3", "v1.2.3", "1.4.0-rc.2" and the same with a
// distribution suffix.
func parseVersion(s string) (runcVersion, error) {
	m := semverRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return runcVersion{}, fmt.Errorf("not a version: %q", s)
	}
	v := runcVersion{Raw: strings.TrimSpace(s)}
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		v.RC, _ = strconv.Atoi(m[4])
	}
	if distroRE.MatchString(m[5]) {
		v.Distro = v.Raw
	}
	return v, nil
}

// parseRuncVersion reads the output of `runc --version`:
//
//	runc version 1.1.5+ds1
//	commit: 1.1.5+ds1-1+deb12u1
func parseRuncVersion(out string) (runcVersion, error) {
	var v runcVersion
	var found bool
	var commit string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "runc version "); ok {
			var err error
			if v, err = parseVersion(rest); err != nil {
				return v, fmt.Errorf("runc --version: %w", err)
			}
			found = true
		} else if rest, ok := strings.CutPrefix(line, "commit: "); ok {
			commit = strings.TrimSpace(rest)
		}
	}
	if !found {
		return v, fmt.Errorf("runc --version: no version in %q", strings.TrimSpace(out))
	}
	// Debian puts its package version in the commit line; upstream puts
	// `git describe` there ("v1.1.12-0-g51d5e94"), which is no distro.
	if cv, err := parseVersion(commit); err == nil && cv.Distro != "" && !strings.HasPrefix(commit, "v") {
		v.Distro = commit
	}
	return v, nil
}

// less reports whether v is an earlier upstream version than w.
func (v runcVersion) less(w runcVersion) bool {
	a := [3]int{v.Major, v.Minor, v.Patch}
	b := [3]int{w.Major, w.Minor, w.Patch}
	if a != b {
		for i := range a {
			if a[i] != b[i] {
				return a[i] < b[i]
			}
		}
	}
	// A release candidate comes before its release.
	switch {
	case v.RC == w.RC:
		return false
	case v.RC == 0:
		return false
	case w.RC == 0:
		return true
	}
	return v.RC < w.RC
}

// vulnerable reports whether v predates the fix on its release line.
func vulnerable(v runcVersion, fixed []string) bool {
	var lines []runcVersion
	for _, f := range fixed {
		fv, err := parseVersion(f)
		if err != nil {
			panic(err) // the table is wrong
		}
		lines = append(lines, fv)
	}
	for _, f := range lines {
		if v.Major == f.Major && v.Minor == f.Minor {
			return v.less(f)
		}
	}
	return v.less(lines[0])
}

// runcWarning returns the warning for v, or "" when no advisory applies,
// and the CVEs it names.
func runcWarning(v runcVersion) (string, []string) {
	var parts, cves []string
	for _, a := range runcAdvisories {
		if vulnerable(v, a.Fixed) {
			parts = append(parts, fmt.Sprintf("%s (fixed in %s)", strings.Join(a.CVEs, ", "), strings.Join(a.Fixed, " / ")))
			cves = append(cves, a.CVEs...)
		}
	}
	if parts == nil {
		return "", nil
	}
	up := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.RC != 0 {
		up += fmt.Sprintf("-rc.%d", v.RC)
	}
	if v.Distro != "" {
		return fmt.Sprintf("upstream %s predates the fixes for %s; Debian may have backported fixes; check `apt changelog runc`", up, strings.Join(parts, " and ")), cves
	}
	return fmt.Sprintf("%s is vulnerable to %s", up, strings.Join(parts, " and ")), cves
}

func checkRunc(ctx context.Context, opts Options) Result {
	c := Result{Name: "runc"}
	path, err := opts.LookPath("runc")
	if err != nil {
		// A user's PATH on Debian has no sbin directories.
		for _, p := range []string{"/usr/local/sbin/runc", "/usr/sbin/runc", "/sbin/runc", "/usr/bin/runc"} {
			if path, err = opts.LookPath(p); err == nil {
				break
			}
		}
	}
	if err != nil {
		c.Status, c.Detail = Fail, "runc is not installed (not on PATH nor in /usr/sbin)"
		c.Fix = "sudo apt-get install runc"
		return c
	}
	out, err := commandOutput(ctx, path, "--version")
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s --version: %v", path, err)
		c.Fix = "reinstall runc: sudo apt-get install --reinstall runc"
		return c
	}
	v, err := parseRuncVersion(out)
	if err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("%s: %v", path, err)
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s (%s)", v.Raw, path)
	if v.Distro != "" && v.Distro != v.Raw {
		c.Detail = fmt.Sprintf("%s, package %s (%s)", v.Raw, v.Distro, path)
	}
	if warning, cves := runcWarning(v); warning != "" {
		c.Status = Warn
		c.Detail += ": " + warning
		if v.Distro != "" {
			c.Fix = "apt changelog runc | grep -E '" + strings.Join(cves, "|") + "'"
		} else {
			c.Fix = "upgrade runc to 1.2.8, 1.3.3 or later"
		}
	}
	return c
}

// commandOutput runs a short query command and returns its stdout.
func commandOutput(ctx context.Context, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("%w: %s", err, firstLine(msg))
		}
		return "", err
	}
	return stdout.String(), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// procCgroups returns the v1 controllers /proc/cgroups lists and whether
// each is enabled.
func procCgroups(data []byte) map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		m[f[0]] = f[3] == "1"
	}
	return m
}

// cgroupControllers are the controllers mcpbox's limits need.
var cgroupControllers = []string{"memory", "pids", "cpu"}

// checkControllers reports which of cgroupControllers are missing or
// disabled in enabled (name → enabled).
func checkControllers(c *Result, enabled map[string]bool) {
	var bad []string
	for _, name := range cgroupControllers {
		if on, ok := enabled[name]; !ok {
			bad = append(bad, name+" missing")
		} else if !on {
			bad = append(bad, name+" disabled")
		}
	}
	if bad != nil {
		c.Status = Fail
		c.Detail += "; " + strings.Join(bad, ", ")
		c.Fix = "enable the controllers on the kernel command line (e.g. cgroup_enable=memory cgroup_memory=1) and reboot"
		return
	}
	c.Status = OK
	c.Detail += "; " + strings.Join(cgroupControllers, ", ") + " enabled"
}

// checkMemfdNoExec says which way sandboxes on this host keep code written
// into memory from running, as a session would choose it (memfd.Choose):
// the hook where the kernel has a usable vm.memfd_noexec, else
// memfd_create refused inside. Both are closed; the second takes memfds
// away from servers, which is worth a warning when the setting was not
// asked for.
func checkMemfdNoExec(opts Options, rootHooks bool) Result {
	c := Result{Name: "memfd noexec"}
	host, err := memfd.ReadHost(opts.Root)
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		return c
	}
	// containerd's runc runs hooks as root; the rootless runtime's runc
	// runs them as root of a user namespace.
	choice := memfd.Choose(opts.Memfd, host, rootHooks, "mcpbox-init")
	c.Status, c.Detail = OK, choice.Why
	_, deny := choice.Mode.(sandbox.MemfdDeny)
	switch {
	case deny && opts.Memfd == memfd.Auto:
		c.Status = Warn
		c.Detail += ": programs that use memfds fall back to files (Chromium to /dev/shm) or fail"
		c.Fix = "Linux 6.6 or later lets each sandbox keep memfd_create, with vm.memfd_noexec=2 (Debian 12: the kernel from bookworm-backports)"
		if host.HookProblem(true) == "" {
			// Only the rootless runtime's hooks cannot raise it.
			c.Fix = "sudo sysctl -w vm.memfd_noexec=2 (host-wide: every program's memfds become non-executable)"
		}
	case !deny && host.HookProblem(rootHooks) != "":
		c.Status = Warn
		c.Fix = "use --memfd auto, which refuses memfd_create inside where the hook cannot work"
	}
	return c
}

func checkOverlay(opts Options) Result {
	c := Result{Name: "overlayfs"}
	data, err := os.ReadFile(opts.path("/proc/filesystems"))
	if err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("read /proc/filesystems: %v", err)
		return c
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == "overlay" {
			c.Status, c.Detail = OK, "overlay is in /proc/filesystems"
			return c
		}
	}
	c.Status = Warn
	c.Detail = "overlay is not in /proc/filesystems: containerd's overlayfs snapshotter (image rootfs) needs it"
	c.Fix = "sudo modprobe overlay"
	return c
}

// checkRuntimes looks for the language runtimes servers run on: node (with
// npm for npx servers) and python3 (for uvx servers). One of node and
// python3 is needed; a missing one of the others is a warning.
func checkRuntimes(ctx context.Context, opts Options) []Result {
	type runtime struct {
		name, why, fix string
		version        func(string) string
	}
	runtimes := []runtime{
		{"node", "npx servers need it", "sudo apt-get install nodejs npm", strings.TrimSpace},
		{"npm", "npx servers need it", "sudo apt-get install npm", strings.TrimSpace},
		{"python3", "uvx servers need it", "sudo apt-get install python3 python3-venv", func(s string) string {
			return strings.TrimPrefix(strings.TrimSpace(s), "Python ")
		}},
	}
	found := map[string]bool{}
	checks := make([]Result, len(runtimes))
	for i, rt := range runtimes {
		c := Result{Name: rt.name}
		path, err := opts.LookPath(rt.name)
		if err != nil {
			c.Status, c.Detail, c.Fix = Warn, fmt.Sprintf("not on PATH: %s", rt.why), rt.fix
			checks[i] = c
			continue
		}
		found[rt.name] = true
		out, err := commandOutput(ctx, path, "--version")
		if err != nil {
			c.Status, c.Detail = Warn, fmt.Sprintf("%s --version: %v", path, err)
		} else {
			c.Status, c.Detail = OK, fmt.Sprintf("%s (%s)", rt.version(firstLine(out)), path)
		}
		checks[i] = c
	}
	if !found["node"] && !found["python3"] {
		for i := range checks {
			if checks[i].Name == "node" || checks[i].Name == "python3" {
				checks[i].Status = Fail
				checks[i].Detail = "not on PATH: servers need node or python3"
			}
		}
	}
	return checks
}

// checkDir makes sure dir exists (creating it 0700) and takes a file.
func checkDir(name, dir string) Result {
	c := Result{Name: name}
	fail := func(err error) Result {
		c.Status, c.Detail = Fail, err.Error()
		c.Fix = fmt.Sprintf("sudo chown -R %d:%d %s", os.Getuid(), os.Getgid(), dir)
		if errors.Is(err, fs.ErrNotExist) || dir == "" {
			c.Fix = "set HOME, or XDG_STATE_HOME and XDG_CACHE_HOME, to a writable directory"
		}
		return c
	}
	if dir == "" {
		return fail(errors.New("no directory: HOME is not set"))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return fail(err)
	}
	_, err = f.WriteString("mcpbox doctor\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return fail(err)
	}
	c.Status, c.Detail = OK, dir+" is writable"
	return c
}

// checkHelpers looks for mcpbox-init and mcpbox-probe next to mcpbox, where
// the launcher's findInit and findProbe look.
func checkHelpers(opts Options) []Result {
	exe := opts.Executable
	var exeErr error
	if exe == "" {
		if exe, exeErr = os.Executable(); exeErr == nil {
			exe, exeErr = filepath.EvalSymlinks(exe)
		}
	}
	var checks []Result
	for _, name := range []string{"mcpbox-init", "mcpbox-probe"} {
		c := Result{Name: name}
		if exeErr != nil {
			c.Status, c.Detail = Fail, fmt.Sprintf("find mcpbox's executable: %v", exeErr)
			checks = append(checks, c)
			continue
		}
		path := filepath.Join(filepath.Dir(exe), name)
		if !isExecutable(path) {
			c.Status, c.Detail = Fail, fmt.Sprintf("missing at %s", path)
			c.Fix = fmt.Sprintf("make build (in the mcpbox source tree), then install bin/%s next to %s", name, exe)
		} else {
			c.Status, c.Detail = OK, path
		}
		checks = append(checks, c)
	}
	return checks
}

// isExecutable reports whether path is a regular file with an execute bit:
// what the launcher accepts as a helper.
func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
