// Package rootless runs sandboxes without a daemon and without root: runc
// (or crun) driven through go-runc, from inside the user namespace that
// package userns made, where mcpbox is root. The container gets a user
// namespace of its own that maps its root to the namespace's id 1 (a
// subordinate id on the host) and the server's user to id 0 (the caller),
// so that the server never runs as root and what it writes into a
// read-write grant belongs to the caller.
//
// Limits need cgroups the caller may write. Where a subtree is delegated
// (see package cgroups) the container's cgroup is made under it; limits
// whose controller is not delegated are taken out of the spec and listed by
// Unenforced, for the launcher to say so or refuse.
//
// It implements launcher/runtime.Runtime and must not import the launcher,
// sandbox or profiles.
package rootless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/launcher/runtime/api"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/cgroups"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/userns"
)

// Annotations mcpbox puts on its containers' specs, which runc lists back:
// gc uses the owner to find containers whose mcpbox process is gone.
const (
	annotOwnerPID   = "io.mcpbox.owner.pid"
	annotOwnerStart = "io.mcpbox.owner.start"
	annotStarted    = "io.mcpbox.started"
	annotCommand    = "io.mcpbox.command"
	annotSessionDir = "io.mcpbox.session-dir"
)

// Options configure a rootless runtime.
type Options struct {
	// StateDir is runc's state directory (--root), the caller's own.
	StateDir string
	// Runtime is the OCI runtime binary: runc or crun.
	Runtime string
	// Caller is the user mcpbox runs for: whose delegated cgroup subtree,
	// if any, holds the containers' cgroups, and whose ids the container
	// maps.
	Caller userns.Caller
}

// Runtime runs containers with an OCI runtime binary.
type Runtime struct {
	opts Options
	// cg is where containers' cgroups go, and which limits work there.
	cg cgroups.Delegation
}

// ErrNotInUserNS is returned by Open outside mcpbox's user namespace.
var ErrNotInUserNS = errors.New("rootless: not inside mcpbox's user namespace")

// Open prepares the runtime: the state directory, and this process as the
// subreaper of the containers it creates, so that it can wait for them.
func Open(ctx context.Context, o Options) (*Runtime, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotInUserNS
	}
	if o.Runtime == "" {
		p, err := Find()
		if err != nil {
			return nil, err
		}
		o.Runtime = p
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("rootless: state directory: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("rootless: become a subreaper: %w", err)
	}
	return &Runtime{opts: o, cg: delegation(ctx, o.Caller.UID)}, nil
}

// delegation finds the caller's delegated cgroup subtree; on a cgroup v2
// host without one it asks the user's systemd for a scope holding this
// process. Without either, the Delegation says why and how to fix it.
func delegation(ctx context.Context, uid int) cgroups.Delegation {
	d, err := cgroups.Find(uid)
	if err != nil || d.Parent != "" || d.Version != 2 {
		return d
	}
	unit := fmt.Sprintf("mcpbox-%d.scope", os.Getpid())
	if sd, err := cgroups.StartScope(ctx, unit, os.Getpid()); err == nil {
		return sd
	} else if d.How != "" {
		d.How += "; asking systemd for a delegated scope failed: " + err.Error()
	}
	return d
}

// Find looks for runc, then crun, in PATH and the usual directories.
func Find() (string, error) {
	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p, nil
			}
		}
	}
	return "", errors.New("rootless: neither runc nor crun found: install one with `sudo apt install runc`")
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Unenforced lists the limits of spec that this runtime cannot enforce:
// the controllers that are not delegated; fix says how to get them.
func (r *Runtime) Unenforced(spec *specs.Spec) (missing []string, fix string) {
	if spec.Linux == nil {
		return nil, ""
	}
	missing = r.cg.Missing(cgroups.Wanted(spec.Linux.Resources))
	fix = r.cg.Fix
	if fix == "" {
		fix = r.cg.How
	}
	return missing, fix
}

func (r *Runtime) runc(logFile string) *runc.Runc {
	return &runc.Runc{Command: r.opts.Runtime, Root: r.opts.StateDir, Log: logFile, LogFormat: runc.JSON}
}

// Close has nothing to release.
func (r *Runtime) Close() error { return nil }

// ErrImageRoots is wrapped by Image and ImageRoot.
var ErrImageRoots = errors.New("image roots need containerd's image store, which only the containerd runtime has")

// Image refuses: image roots come from containerd's content store.
func (r *Runtime) Image(ctx context.Context, ref string) error {
	return fmt.Errorf("rootless: image %s: %w: run this profile as root with --runtime containerd, or use a profile without an image (rootfs host)", ref, ErrImageRoots)
}

// ImageRoot refuses, as Image does.
func (r *Runtime) ImageRoot(ctx context.Context, ref, id, sessionDir string) (api.ImageRoot, error) {
	return nil, r.Image(ctx, ref)
}

// Create writes the bundle beside the spec's root and runs `runc create`.
func (r *Runtime) Create(ctx context.Context, cfg api.Config) (_ api.Container, err error) {
	if cfg.Image != nil {
		return nil, r.Image(ctx, cfg.Image.Name())
	}
	spec, err := r.adapt(cfg)
	if err != nil {
		return nil, err
	}
	bundle := filepath.Join(cfg.Owner.SessionDir, "bundle")
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return nil, fmt.Errorf("rootless: bundle: %w", err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("rootless: spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return nil, fmt.Errorf("rootless: bundle: %w", err)
	}
	c := &container{rt: r, id: cfg.ID, bundle: bundle, log: filepath.Join(bundle, "runc.log"), cgroup: spec.Linux.CgroupsPath, exited: make(chan api.Exit, 1), pidfd: -1}
	if err := mountSysfs(sysDir(cfg)); err != nil {
		c.deleteState()
		return nil, err
	}
	c.sys = sysDir(cfg)
	if spec.Linux.CgroupsPath != "" && slices.Contains(r.cg.Controllers, cgroups.Memory) {
		c.memoryCgroup = spec.Linux.CgroupsPath
	}
	pidFile := filepath.Join(bundle, "pid")
	io, err := runc.NewNullIO()
	if err != nil {
		return nil, fmt.Errorf("rootless: %w", err)
	}
	defer io.Close()
	if err := c.runc().Create(ctx, cfg.ID, bundle, &runc.CreateOpts{IO: io, PidFile: pidFile}); err != nil {
		err = fmt.Errorf("create container %s: %w%s", cfg.ID, err, c.logTail())
		c.deleteState()
		return nil, err
	}
	defer func() {
		if err != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, c.Delete(dctx))
		}
	}()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("rootless: container %s: %w", cfg.ID, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("rootless: container %s: pid file %q", cfg.ID, b)
	}
	c.pid = pid
	// Signals go through a pidfd: after the process is reaped its pid may
	// be another process's, but the pidfd still means this one.
	if c.pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
		return nil, fmt.Errorf("rootless: container %s: pidfd: %w", cfg.ID, err)
	}
	go c.reap()
	return c, nil
}

// sysDir is where Create mounts the sandbox's sysfs.
func sysDir(cfg api.Config) string { return filepath.Join(cfg.Owner.SessionDir, "sys") }

// mountSysfs mounts a sysfs read-only at dir from a network namespace of
// its own, which has nothing but a loopback interface: what the sandbox's
// /sys shows of networks (like the containerd runtime's sysfs, mounted in
// the sandbox's own network namespace), instead of the host's interfaces
// and its whole cgroup tree, which a bind of the host's /sys would show.
// The mount lives in mcpbox's mount namespace only. The thread that made
// it never returns to the Go scheduler: it ends, with its namespace.
func mountSysfs(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("rootless: sysfs: %w", err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("rootless: sysfs: network namespace: %w", err)
			return
		}
		if err := unix.Mount("sysfs", dir, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			errc <- fmt.Errorf("rootless: mount sysfs: %w", err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// adapt is the session's spec with what a rootless container needs: its
// own user namespace, /sys bound rather than mounted, devpts without a
// group the namespace does not map, and the cgroup and limits that the
// delegation allows. The session's spec is not changed.
func (r *Runtime) adapt(cfg api.Config) (*specs.Spec, error) {
	var spec specs.Spec
	b, err := json.Marshal(cfg.Spec)
	if err != nil {
		return nil, fmt.Errorf("rootless: spec: %w", err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("rootless: spec: %w", err)
	}
	if spec.Process == nil || spec.Linux == nil {
		return nil, errors.New("rootless: spec has no process or no linux section")
	}
	maps, err := r.idMaps(spec.Process.User.UID, spec.Process.User.GID)
	if err != nil {
		return nil, err
	}
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings, spec.Linux.GIDMappings = maps[0], maps[1]
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		switch {
		case m.Type == "sysfs":
			// A container that joins a network namespace its user
			// namespace does not own may not mount sysfs: it gets the
			// one Create mounted for it (mountSysfs), not the host's.
			*m = specs.Mount{Destination: m.Destination, Type: "bind", Source: sysDir(cfg), Options: []string{"bind", "ro", "nosuid", "noexec", "nodev"}}
		case m.Type == "devpts":
			m.Options = slices.DeleteFunc(m.Options, func(o string) bool { return strings.HasPrefix(o, "gid=") })
		}
	}
	spec.Mounts = slices.DeleteFunc(spec.Mounts, func(m specs.Mount) bool { return m.Type == "cgroup" || m.Type == "cgroup2" })
	r.limit(&spec, cfg.ID)
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	command := cfg.Owner.Command
	if len(command) > 1024 {
		command = command[:1024]
	}
	spec.Annotations[annotOwnerPID] = cfg.Owner.PID
	spec.Annotations[annotOwnerStart] = cfg.Owner.Start
	spec.Annotations[annotStarted] = cfg.Owner.Started.UTC().Format(time.RFC3339)
	spec.Annotations[annotCommand] = command
	spec.Annotations[annotSessionDir] = cfg.Owner.SessionDir
	return &spec, nil
}

// idMaps are the container's uid and gid maps onto mcpbox's namespace:
// its root to userns.NSRoot, nobody to userns.NSNobody, the caller's ids
// (Caller.InContainer) to userns.NSCaller. The process must run as nobody
// or as the caller: never as root.
func (r *Runtime) idMaps(uid, gid uint32) ([2][]specs.LinuxIDMapping, error) {
	cuid, cgid := r.opts.Caller.InContainer()
	if (uid != userns.Nobody && uid != cuid) || (gid != userns.Nobody && gid != cgid) {
		return [2][]specs.LinuxIDMapping{}, fmt.Errorf("rootless: spec runs the process as %d:%d: the rootless runtime runs a server as nobody (%d) or as you (%d:%d), never as root", uid, gid, userns.Nobody, cuid, cgid)
	}
	m := func(caller uint32) []specs.LinuxIDMapping {
		return []specs.LinuxIDMapping{
			{ContainerID: 0, HostID: userns.NSRoot, Size: 1},
			{ContainerID: userns.Nobody, HostID: userns.NSNobody, Size: 1},
			{ContainerID: caller, HostID: userns.NSCaller, Size: 1},
		}
	}
	return [2][]specs.LinuxIDMapping{m(cuid), m(cgid)}, nil
}

// limit keeps the limits whose controller is delegated, under a cgroup of
// the container's own in the delegated subtree, and drops the others.
func (r *Runtime) limit(spec *specs.Spec, id string) {
	res := spec.Linux.Resources
	spec.Linux.CgroupsPath = ""
	if res == nil {
		return
	}
	// runc ignores the device cgroup when rootless; the seccomp filter
	// and the bound device nodes are what restrict devices.
	res.Devices = nil
	has := func(c string) bool { return r.cg.Parent != "" && slices.Contains(r.cg.Controllers, c) }
	if !has("memory") {
		res.Memory = nil
	}
	if !has("pids") {
		res.Pids = nil
	}
	if !has("cpu") {
		res.CPU = nil
	}
	if res.Memory == nil && res.Pids == nil && res.CPU == nil {
		spec.Linux.Resources = nil
		return
	}
	spec.Linux.CgroupsPath = filepath.Join(r.cg.Parent, id)
}

// container is one runc container.
type container struct {
	rt           *Runtime
	id           string
	bundle       string
	log          string
	pid          int
	cgroup       string // the container's cgroup path, "" without one
	memoryCgroup string // the container's memory cgroup path, when delegated
	exited       chan api.Exit
	pidfd        int    // the first process's pidfd, -1 before it exists
	sys          string // the sysfs mount Create made, "" before
	oom          bool
	once         sync.Once
}

func (c *container) runc() *runc.Runc        { return c.rt.runc(c.log) }
func (c *container) ID() string              { return c.id }
func (c *container) Pid() uint32             { return uint32(c.pid) }
func (c *container) Exited() <-chan api.Exit { return c.exited }
func (c *container) Start(ctx context.Context) error {
	if err := c.runc().Start(ctx, c.id); err != nil {
		return fmt.Errorf("start container %s: %w%s", c.id, err, c.logTail())
	}
	return nil
}

// reap waits for the container's first process, which this process adopts
// as subreaper once `runc create` has exited.
func (c *container) reap() {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(c.pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		exit := api.Exit{}
		switch {
		case err != nil:
			exit.Err = fmt.Errorf("rootless: wait for container %s: %w", c.id, err)
		case ws.Signaled():
			exit.Code = 128 + int(ws.Signal())
		default:
			exit.Code = ws.ExitStatus()
		}
		c.oom = c.oomKilled()
		c.exited <- exit
		return
	}
}

// oomKilled reads the kernel's OOM kill count of the container's memory
// cgroup, when it has one.
func (c *container) oomKilled() bool {
	if c.memoryCgroup == "" {
		return false
	}
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", c.memoryCgroup, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup", c.memoryCgroup, "memory.events"),
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" && f[1] != "0" {
				return true
			}
		}
	}
	return false
}

func (c *container) OOMKilled() bool { return c.oom }

// Cgroup is the container's cgroup below each hierarchy's root: under the
// caller's delegated subtree, not where the session's spec put it; "" when
// the container has no cgroup of its own (no limit controller is
// delegated), and its usage cannot be told from the caller's.
func (c *container) Cgroup() string { return c.cgroup }

// Signal signals the first process; with all, every process of the
// container: SIGKILL to the first process of a pid namespace kills them
// all, other signals go through runc.
func (c *container) Signal(ctx context.Context, sig syscall.Signal, all bool) error {
	if !all || sig == syscall.SIGKILL {
		if err := unix.PidfdSendSignal(c.pidfd, sig, nil, 0); err != nil && err != unix.ESRCH {
			return fmt.Errorf("signal container %s: %w", c.id, err)
		}
		return nil
	}
	return c.runc().Kill(ctx, c.id, int(sig), &runc.KillOpts{All: true})
}

// Delete kills what still runs, deletes runc's state and the bundle.
func (c *container) Delete(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		if c.pidfd >= 0 {
			unix.PidfdSendSignal(c.pidfd, unix.SIGKILL, nil, 0)
			unix.Close(c.pidfd)
			c.pidfd = -1
		}
		err = c.runc().Delete(ctx, c.id, &runc.DeleteOpts{Force: true})
		if err != nil && !notExist(err) {
			err = fmt.Errorf("delete container %s: %w", c.id, err)
		} else {
			err = nil
		}
		c.deleteState()
	})
	return err
}

// deleteState removes the bundle, and unmounts the sandbox's sysfs.
func (c *container) deleteState() {
	if c.sys != "" {
		unix.Unmount(c.sys, unix.MNT_DETACH)
		os.Remove(c.sys)
	}
	os.RemoveAll(c.bundle)
}

func notExist(err error) bool {
	s := err.Error()
	return strings.Contains(s, "does not exist") || strings.Contains(s, "not exist")
}

// logTail is the runtime's last error messages, for an error.
func (c *container) logTail() string {
	b, err := os.ReadFile(c.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	var msgs []string
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e struct{ Level, Msg string }
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") {
			msgs = append(msgs, e.Msg)
		}
	}
	if len(msgs) == 0 {
		return ": " + string(bytes.TrimSpace(b))
	}
	return ": " + strings.Join(msgs, "; ")
}

// Leftovers lists the containers in the state directory with the owner
// their annotations name.
func (r *Runtime) Leftovers(ctx context.Context) ([]api.Leftover, error) {
	list, err := r.runc("").List(ctx)
	if err != nil {
		return nil, fmt.Errorf("rootless: list containers: %w", err)
	}
	var out []api.Leftover
	for _, c := range list {
		a := c.Annotations
		l := api.Leftover{ID: c.ID}
		if a != nil {
			l.Owner = api.Owner{PID: a[annotOwnerPID], Start: a[annotOwnerStart], Command: a[annotCommand], SessionDir: a[annotSessionDir]}
			l.Owner.Started, _ = time.Parse(time.RFC3339, a[annotStarted])
		}
		out = append(out, l)
	}
	return out, nil
}

// Remove kills and deletes one leftover container.
func (r *Runtime) Remove(ctx context.Context, l api.Leftover) error {
	rc := r.runc("")
	// The container's user namespace was a child of the dead session's
	// mcpbox's, not of this one's: runc's SIGKILL, sent with this
	// process's capabilities, reaches only a server that runs as the
	// caller. One that runs as the sandbox's nobody is killed as nobody.
	if st, err := rc.State(ctx, l.ID); err == nil && st.Pid > 1 && st.Status != "stopped" {
		if err := unix.Kill(st.Pid, unix.SIGKILL); err == unix.EPERM {
			if err := userns.KillAs(st.Pid, userns.NSNobody); err != nil {
				return fmt.Errorf("rootless: %s: %w", l.ID, err)
			}
		}
	}
	if err := rc.Delete(ctx, l.ID, &runc.DeleteOpts{Force: true}); err != nil && !notExist(err) {
		return fmt.Errorf("rootless: delete %s: %w", l.ID, err)
	}
	// runc's errors are text: make sure "does not exist" was the truth.
	if _, err := rc.State(ctx, l.ID); err == nil {
		return fmt.Errorf("rootless: delete %s: runc still lists it", l.ID)
	}
	return nil
}
