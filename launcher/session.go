package launcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/launcher/memfd"
	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox"
	"github.com/mcpbox/mcpbox/sandbox/egress"
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// Labels mcpbox puts on its containers. gc uses the owner labels to find
// containers whose mcpbox process is gone.
const (
	labelOwnerPID   = "io.mcpbox.owner.pid"
	labelOwnerStart = "io.mcpbox.owner.start"
	labelStarted    = "io.mcpbox.started"
	labelCommand    = "io.mcpbox.command"
	labelSessionDir = "io.mcpbox.session-dir"
)

// Where mcpbox-init and the stdio FIFOs appear inside the sandbox.
const (
	sandboxInit = "/.mcpbox/init"
	sandboxIO   = "/.mcpbox/io"
)

// Run runs one server session and returns when it has ended and everything
// it created is gone. A server that exits non-zero gives an *ExitError; bad
// input gives a *UsageError before anything is created; a canceled ctx stops
// the server (stdin closed, SIGTERM, SIGKILL) and returns ctx's error.
func Run(ctx context.Context, opts Options) error {
	opts.setDefaults()
	j, err := resolveJob(ctx, opts)
	if err != nil {
		return err
	}
	return execute(ctx, opts, j)
}

// job is one container run, fully resolved: what runs, what it may see and
// reach, and how its stdio is handled.
type job struct {
	cmd     *command
	mounts  []sandbox.Mount // host paths granted beyond the runtime and cmd's own
	env     []string        // NAME=VALUE, beyond the base environment
	allow   *egress.Allowlist
	limits  sandbox.Limits
	workdir string
	label   string // the command line, for the container's label
	// uid and gid the process runs as.
	uid, gid uint32
	// toolAllow and toolDeny are the profile's tool filter (globs).
	toolAllow, toolDeny []string
	// policy is the broker's policies but the tool filter and writers.
	policy sessionPolicy
	// seccompAllow are syscalls allowed beyond the base filter.
	seccompAllow []string
	// image is the containerd image whose read-only view is the root
	// (rootfs image); "" means the host's runtime (rootfs host).
	image string
	// batch marks a job that is no MCP server (a package install step,
	// the selftest probe): its stdout goes to mcpbox's stderr, its stdin
	// is empty, and it runs until it exits.
	batch bool
}

// execute runs a job in a fresh sandbox: seccomp, containerd, network, the
// container and its stdio, and the cleanup of all of them.
func execute(ctx context.Context, opts Options, j *job) error {
	log := opts.Logger
	phase := newPhases(log)
	initPath, err := findInit(opts.InitPath)
	if err != nil {
		return err
	}
	var runtimeMounts []sandbox.Mount
	if j.image == "" {
		// In image mode the image is the runtime: nothing of the host's.
		if runtimeMounts, err = sandbox.HostRuntime(j.cmd.exe, currentUser(opts.Dirs).sandboxPaths()); err != nil {
			return fmt.Errorf("launcher: host runtime for %s: %w", j.cmd.exe, err)
		}
	}
	phase("resolve")

	host, err := memfd.ReadHost("/")
	if err != nil {
		return err
	}
	// containerd's runc runs hooks as the host's root.
	mfd := memfd.Choose(opts.Memfd, host, true, initPath)
	log.Info("memfd", "mode", mfd.Mode, "detail", mfd.Why)
	filter, err := seccompFilter(j.seccompAllow, mfd.Mode)
	if err != nil {
		return err
	}
	phase("seccomp")

	client, err := connect(ctx, opts.Address, opts.Namespace)
	if err != nil {
		return err
	}
	defer client.Close()
	phase("connect")
	// Sweep up after sessions whose mcpbox was killed. It runs beside the
	// session so it adds nothing to start-up.
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		gctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if removed, err := collect(gctx, client, opts.RunDir, log); err != nil {
			log.Debug("gc", "err", err)
		} else if len(removed) > 0 {
			log.Info("removed leftovers of dead sessions", "ids", removed)
		}
	}()
	defer func() { <-gcDone }()

	var img containerd.Image
	if j.image != "" {
		if img, err = ensureImage(ctx, client, opts, j.image); err != nil {
			return err
		}
		phase("image")
	}

	if o := opts.Observe; o != nil && o.OnIdentity != nil && !j.batch {
		o.OnIdentity(j.policy.broker.Identity)
	}
	var egressNet *network
	egressLog := opts.EgressLog
	if o := opts.Observe; o != nil && o.OnEgress != nil && !j.batch {
		if j.allow == nil {
			// Nothing is allowed, but every attempt is seen.
			if j.allow, err = egress.ParseAllowlist(nil); err != nil {
				return err
			}
		}
		sink := newEgressSink(o.OnEgress, opts.EgressLog)
		defer sink.Close()
		egressLog = sink
	}
	if j.allow != nil {
		if egressNet, err = startNetwork(j.allow, egressLog, log); err != nil {
			return fmt.Errorf("launcher: egress control could not be set up, so the server is not started: %w", err)
		}
		// Registered before the session's cleanup, so it runs after it:
		// the proxy outlives the container.
		defer egressNet.Close()
		phase("network")
	}

	id := "mcpbox-" + j.cmd.name + "-" + randomHex(4)
	notify := !j.batch && (opts.ReportViolations || (opts.Observe != nil && opts.Observe.Syscalls != nil))
	if notify {
		listener := filepath.Join(opts.RunDir, id, notifySocket)
		if filter, _, err = seccomp.WithNotify(filter, listener); err != nil {
			return fmt.Errorf("launcher: seccomp notification: %w", err)
		}
		if o := opts.Observe; o != nil && o.Exec {
			if filter, err = seccomp.WithNotifyExec(filter); err != nil {
				return fmt.Errorf("launcher: seccomp notification: %w", err)
			}
		}
		if o := opts.Observe; o != nil && o.Files {
			if filter, _, err = seccomp.WithFileNotify(filter); err != nil {
				return fmt.Errorf("launcher: seccomp notification: %w", err)
			}
			if o.Reads {
				if filter, err = seccomp.WithNotifyOpens(filter); err != nil {
					return fmt.Errorf("launcher: seccomp notification: %w", err)
				}
			}
		}
		if err := seccomp.Validate(filter); err != nil {
			return fmt.Errorf("launcher: seccomp profile with notification does not compile, so the server is not started: %w", err)
		}
	}
	s := &session{opts: opts, job: j, client: client, id: id, log: log, initPath: initPath, memfd: mfd.Mode, net: egressNet, exited: make(chan struct{}), notify: notify, image: img}
	defer s.cleanup()
	if err := s.prepare(runtimeMounts, filter); err != nil {
		return err
	}
	phase("spec")
	return s.run(ctx, phase)
}

// baseEnv is the environment every sandbox gets before the job's own.
func baseEnv() []string {
	return []string{"PATH=" + sandbox.DefaultPath, "HOME=" + sandbox.DefaultHome, "TMPDIR=/tmp"}
}

// cgroupsPath is the sandbox's cgroup, under each hierarchy's root.
func (s *session) cgroupsPath() string { return "/mcpbox/" + s.id }

// seccompFilter returns the sandbox's seccomp filter after checking that
// this kernel and libseccomp can enforce it. It fails closed. In memfd
// deny mode the filter refuses memfd_create.
func seccompFilter(extra []string, memfd sandbox.Memfd) (*specs.LinuxSeccomp, error) {
	if err := seccomp.CheckKernel(); err != nil {
		return nil, fmt.Errorf("launcher: seccomp cannot be enforced here, so the server is not started: %w", err)
	}
	p, err := seccomp.Default()
	if err != nil {
		return nil, fmt.Errorf("launcher: seccomp profile: %w", err)
	}
	if len(extra) > 0 {
		if p, err = seccomp.WithAllowed(p, extra...); err != nil {
			return nil, fmt.Errorf("launcher: seccomp profile: %w", err)
		}
	}
	if _, deny := memfd.(sandbox.MemfdDeny); deny {
		if p, err = seccomp.WithMemfdDenied(p); err != nil {
			return nil, fmt.Errorf("launcher: seccomp profile: %w", err)
		}
	}
	if err := seccomp.Validate(p); err != nil {
		return nil, fmt.Errorf("launcher: seccomp profile does not compile, so the server is not started: %w", err)
	}
	return p, nil
}

// session is one container's life: its directory, container, task and IO.
type session struct {
	notify bool // a seccomp agent answers the syscalls the profile denies
	opts   Options
	job    *job
	client *containerd.Client
	id     string
	log    *slog.Logger

	dir       string
	initPath  string
	net       *network    // nil: no network but loopback
	signaled  atomic.Bool // mcpbox sent the server a signal to stop it
	container containerd.Container
	task      containerd.Task
	stdin     *os.File // our ends of the server's stdio FIFOs
	stdout    *fifoReader
	stderr    *fifoReader
	exited    chan struct{} // closed when the task has exited

	image     containerd.Image // the root's image in image mode, else nil
	imageDir  string           // where the image's view is mounted on the host
	view      bool             // the view snapshot (key id) exists
	leaseDone func(context.Context) error

	// memfd is how the sandbox keeps code written into memory from running.
	memfd sandbox.Memfd

	// pins hold the host objects behind the binds mcpbox checked, to
	// compare with what the runtime mounted (see pin_linux.go).
	pins []pin
}

// prepare creates the session directory (empty root, synthetic /etc files,
// FIFOs) and the container.
func (s *session) prepare(runtimeMounts []sandbox.Mount, filter *specs.LinuxSeccomp) error {
	cmd := s.job.cmd
	s.dir = filepath.Join(s.opts.RunDir, s.id)
	root := filepath.Join(s.dir, "rootfs")
	etc := filepath.Join(s.dir, "etc")
	for _, d := range []string{root, etc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("launcher: session dir: %w", err)
		}
	}
	// gc reads the owner file to tell a live session from a dead one; it
	// must never see it half written.
	owner := filepath.Join(s.dir, "owner")
	if err := os.WriteFile(owner+".tmp", []byte(ownerLabel()), 0o644); err != nil {
		return fmt.Errorf("launcher: session dir: %w", err)
	}
	if err := os.Rename(owner+".tmp", owner); err != nil {
		return fmt.Errorf("launcher: session dir: %w", err)
	}

	uid, gid := s.job.uid, s.job.gid
	mounts := append([]sandbox.Mount{}, runtimeMounts...)
	files := sandbox.SyntheticEtc(uid, gid, sandbox.DefaultHome, sandbox.DefaultHostname)
	if s.net != nil {
		files["/etc/resolv.conf"] = s.net.resolvConf()
	}
	// The run directory may be reached through a symlink.
	etc, err := filepath.EvalSymlinks(etc)
	if err != nil {
		return fmt.Errorf("launcher: session dir: %w", err)
	}
	for _, name := range sortedKeys(files) {
		host := filepath.Join(etc, filepath.Base(name))
		if err := os.WriteFile(host, files[name], 0o644); err != nil {
			return fmt.Errorf("launcher: write %s: %w", host, err)
		}
		mounts = append(mounts, sandbox.Mount{Source: host, Destination: name, ReadOnly: true})
	}
	mounts = append(mounts, cmd.mounts...)
	mounts = append(mounts, s.job.mounts...)

	// The server runs under mcpbox-init, with its stdin and stdout on
	// FIFOs that mcpbox holds the other ends of (see cmd/mcpbox-init).
	ioDir := filepath.Join(s.dir, "io")
	if err := os.Mkdir(ioDir, 0o755); err != nil {
		return fmt.Errorf("launcher: session dir: %w", err)
	}
	for _, name := range []string{"stdin", "stdout", "stderr"} {
		p := filepath.Join(ioDir, name)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return fmt.Errorf("launcher: fifo %s: %w", p, err)
		}
		if err := os.Chown(p, int(uid), int(gid)); err != nil {
			return fmt.Errorf("launcher: fifo %s: %w", p, err)
		}
	}
	initPath, err := filepath.EvalSymlinks(s.initPath)
	if err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	if ioDir, err = filepath.EvalSymlinks(ioDir); err != nil {
		return fmt.Errorf("launcher: session dir: %w", err)
	}
	mounts = append(mounts,
		sandbox.Mount{Source: initPath, Destination: sandboxInit, ReadOnly: true},
		sandbox.Mount{Source: ioDir, Destination: sandboxIO, ReadOnly: true})
	// Every bind's source is a path without symlinks (the grants and the
	// runtime were resolved when they were checked, mcpbox's own files
	// here), held open until runc has mounted it: run compares the two.
	mounts = dedupeMounts(mounts)
	if s.pins, err = pinMounts(mounts); err != nil {
		return err
	}
	cmdArgs := cmd.args
	var newOpts []containerd.NewContainerOpts
	if s.image != nil {
		imageMounts, argv0, err := s.mountImage(root, mounts)
		if err != nil {
			return err
		}
		mounts = append(mounts, imageMounts...)
		cmdArgs = append([]string{argv0}, cmd.args[1:]...)
		newOpts = append(newOpts, containerd.WithSnapshotter(containerd.DefaultSnapshotter), containerd.WithSnapshot(s.id))
	}
	args := append([]string{sandboxInit, sandboxIO, "--"}, cmdArgs...)

	env := append(baseEnv(), s.job.env...)
	netns := ""
	if s.net != nil {
		env = append(env, s.net.env()...)
		netns = s.net.ns.Path()
	}
	spec, err := sandbox.Spec(sandbox.Policy{
		Args:        args,
		Env:         env,
		Cwd:         s.job.workdir,
		Root:        root,
		Mounts:      dedupeMounts(mounts),
		UID:         uid,
		GID:         gid,
		Home:        sandbox.DefaultHome,
		Hostname:    sandbox.DefaultHostname,
		NetNS:       netns,
		CgroupsPath: s.cgroupsPath(),
		Limits:      s.job.limits,
		Seccomp:     filter,
		Memfd:       s.memfd,
	})
	if err != nil {
		return fmt.Errorf("launcher: %w", err)
	}

	command := s.job.label
	if len(command) > 1024 {
		command = command[:1024]
	}
	pid, start := ownerIdentity()
	ctx := context.Background()
	s.container, err = s.client.NewContainer(ctx, s.id, append(newOpts,
		containerd.WithRuntime(runtimeName, nil),
		containerd.WithSpec(spec),
		containerd.WithContainerLabels(map[string]string{
			labelOwnerPID:   pid,
			labelOwnerStart: start,
			labelStarted:    time.Now().UTC().Format(time.RFC3339),
			labelCommand:    command,
			labelSessionDir: s.dir,
		}))...,
	)
	if err != nil {
		return fmt.Errorf("launcher: create container %s: %w", s.id, err)
	}
	if s.leaseDone != nil {
		// The container holds the view now.
		if err := s.leaseDone(ctx); err != nil {
			s.log.Debug("release lease", "err", err)
		}
		s.leaseDone = nil
	}
	return nil
}

// mountImage makes the root of an image-mode session: a read-only view
// snapshot of the image (for a layered image mounted on the host in the
// session directory), bound read-only into the empty root entry by entry
// around the mounts the session has already (taken). It returns those binds and the program's
// path inside: the command resolved on the host, which the image holds
// at the same path when it was built from the host's runtime; a program
// the image lacks (a static helper such as mcpbox-probe) is bound alone.
func (s *session) mountImage(root string, taken []sandbox.Mount) ([]sandbox.Mount, string, error) {
	ctx, done, err := s.client.WithLease(context.Background(), leases.WithRandomID(), leases.WithExpiration(time.Hour))
	if err != nil {
		return nil, "", fmt.Errorf("launcher: lease: %w", err)
	}
	s.leaseDone = done
	diffIDs, err := s.image.RootFS(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("launcher: image %s: %w", s.image.Name(), err)
	}
	sn := s.client.SnapshotService(containerd.DefaultSnapshotter)
	ms, err := sn.View(ctx, s.id, identity.ChainID(diffIDs).String(), snapshots.WithLabels(map[string]string{labelSessionDir: s.dir}))
	if err != nil {
		return nil, "", fmt.Errorf("launcher: read-only view of image %s: %w", s.image.Name(), err)
	}
	s.view = true
	var dir string
	if len(ms) == 1 && ms[0].Type == "bind" {
		// A single-layer image (what `mcpbox image build` makes): its
		// view is a read-only bind of the layer's directory, so the root
		// binds read straight from it. Nothing is mounted by mcpbox, which
		// keeps this working when mcpbox runs in a mount namespace of its
		// own (containerd's runc would not see mcpbox's mounts).
		dir = ms[0].Source
	} else {
		dir = filepath.Join(s.dir, "image")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, "", fmt.Errorf("launcher: session dir: %w", err)
		}
		for i := range ms {
			ms[i].Options = append(ms[i].Options, "ro")
		}
		if err := mount.All(ms, dir); err != nil {
			return nil, "", fmt.Errorf("launcher: mount image %s: %w", s.image.Name(), err)
		}
		s.imageDir = dir
	}

	cmd := s.job.cmd
	argv0 := cmd.args[0]
	var own []sandbox.Mount
	switch {
	case inImage(dir, argv0):
	case inImage(dir, cmd.exe):
		argv0 = cmd.exe
	default:
		s.log.Info("the program is not in the image; binding it alone", "program", cmd.exe, "image", s.image.Name())
		argv0 = cmd.exe
		own = append(own, sandbox.Mount{Source: cmd.exe, Destination: cmd.exe, ReadOnly: true})
	}
	taken = append(slices.Clone(taken), own...)
	dests := []string{"/proc", "/sys", "/dev", "/tmp", sandbox.DefaultHome}
	for _, m := range taken {
		dests = append(dests, filepath.Clean(m.Destination))
	}
	binds, links, err := imageBinds(dir, dests)
	if err != nil {
		return nil, "", err
	}
	for _, l := range links {
		p := filepath.Join(root, l.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, "", fmt.Errorf("launcher: session root: %w", err)
		}
		if err := os.Symlink(l.target, p); err != nil {
			return nil, "", fmt.Errorf("launcher: session root: %w", err)
		}
	}
	return append(binds, own...), argv0, nil
}

// run starts the task, brokers stdio until the server exits, and maps the
// exit status.
func (s *session) run(ctx context.Context, phase func(string)) error {
	bg := context.Background()
	ioDir := filepath.Join(s.dir, "io")
	// mcpbox holds the server's stdin open read-write: that never blocks,
	// lets mcpbox-init's read-only open return at once, and the server
	// sees EOF when mcpbox closes it, as the only writer.
	in, err := os.OpenFile(filepath.Join(ioDir, "stdin"), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("launcher: open stdin fifo: %w", err)
	}
	s.stdin = in
	s.stdout = openFifoReader(filepath.Join(ioDir, "stdout"))
	s.stderr = openFifoReader(filepath.Join(ioDir, "stderr"))
	var audit io.WriteCloser
	if !s.job.batch {
		if audit, err = s.job.policy.openAudit(s.opts); err != nil {
			return err
		}
		if audit != nil {
			defer audit.Close()
		}
	}
	if s.notify {
		// runc hands over the notification fd while it creates the task.
		agent, err := s.startAgent(audit)
		if err != nil {
			return err
		}
		defer agent.Close()
	}
	// All the server's stdio goes through the FIFOs above; the shim's is
	// /dev/null.
	s.task, err = s.container.NewTask(bg, cio.NullIO)
	if err != nil {
		return fmt.Errorf("launcher: create task %s: %w", s.id, err)
	}
	// runc has made the mounts; the server has not run yet.
	if err := verifyPins(s.task.Pid(), s.pins); err != nil {
		return err
	}
	phase("create")

	var oom atomic.Bool
	evctx, stopEvents := context.WithCancel(bg)
	defer stopEvents()
	events, _ := s.client.Subscribe(evctx, `topic=="/tasks/oom"`)
	go func() {
		for e := range events {
			v, err := typeurl.UnmarshalAny(e.Event)
			if ev, ok := v.(*apievents.TaskOOM); err == nil && ok && ev.ContainerID == s.id {
				oom.Store(true)
			}
		}
	}()

	exitCh, err := s.task.Wait(bg)
	if err != nil {
		return fmt.Errorf("launcher: wait task %s: %w", s.id, err)
	}
	if err := s.task.Start(bg); err != nil {
		return fmt.Errorf("launcher: start task %s: %w", s.id, err)
	}
	phase("start")
	if o := s.opts.Observe; o != nil && o.OnUsage != nil && !s.job.batch {
		stopWatch, watchDone := make(chan struct{}), make(chan struct{})
		go o.watch(s.cgroupsPath(), stopWatch, watchDone)
		defer func() { close(stopWatch); <-watchDone }()
	}

	bopts := s.job.policy.broker
	bopts.MaxMessage, bopts.Diag, bopts.Logger = s.opts.MaxMessage, s.opts.Stderr, s.opts.Logger
	bopts.ToolAllow, bopts.ToolDeny = s.job.toolAllow, s.job.toolDeny
	if !s.job.batch {
		if audit != nil {
			bopts.Audit = audit
		}
	} else {
		bopts = broker.Options{MaxMessage: s.opts.MaxMessage, Diag: s.opts.Stderr, Logger: s.opts.Logger}
	}
	b := broker.New(bopts)
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		io.Copy(s.opts.Stderr, s.stderr)
	}()
	toClient := make(chan error, 1)
	clientGone := make(chan error, 1)
	if s.job.batch {
		// An install step's output is progress for the user; it has no
		// input, and ends when it exits.
		go func() {
			_, err := io.Copy(s.opts.Stderr, s.stdout)
			toClient <- err
		}()
		go s.closeStdin()
	} else {
		go func() {
			out := &firstWrite{w: s.opts.Stdout, first: func() { phase("first byte") }}
			toClient <- b.ServerToClient(out, s.stdout)
		}()
		go func() {
			err := b.ClientToServer(s.stdin, s.opts.Stdin)
			s.closeStdin()
			clientGone <- err
		}()
	}

	var stopOnce sync.Once
	var stopReason atomic.Value // string
	stop := func(reason string, grace bool) {
		stopOnce.Do(func() {
			stopReason.Store(reason)
			go s.stop(grace)
		})
	}

	var status containerd.ExitStatus
	var brokerErr error
wait:
	for {
		select {
		case status = <-exitCh:
			break wait
		case <-ctx.Done():
			stop("interrupted", true)
			ctx = context.Background() // fire once
		case err := <-clientGone:
			if err != nil {
				s.log.Debug("client stream ended", "err", err)
			}
			clientGone = nil
			stop("client closed its stdin", true)
		case err := <-toClient:
			toClient = nil
			if err != nil {
				brokerErr = err
				stop(err.Error(), !errors.Is(err, broker.ErrMessageTooLarge))
			}
		}
	}
	close(s.exited)
	// Drain what the server wrote before it exited. Its FIFO ends when the
	// last writer in the sandbox is gone, which the exit of pid 1 ensures;
	// if mcpbox-init never opened it, closing our end ends the read.
	if toClient != nil {
		select {
		case err := <-toClient:
			if err != nil && brokerErr == nil {
				brokerErr = err
			}
		case <-time.After(2 * time.Second):
			s.stdout.Close()
			if err := <-toClient; err != nil && brokerErr == nil && !errors.Is(err, os.ErrClosed) {
				brokerErr = err
			}
		}
	}
	select {
	case <-stderrDone:
	case <-time.After(2 * time.Second):
		s.stderr.Close()
		<-stderrDone
	}

	code := int(status.ExitCode())
	if err := status.Error(); err != nil {
		if errdefs.IsUnavailable(err) || status.ExitCode() == containerd.UnknownExitStatus {
			return fmt.Errorf("launcher: lost containerd while %s was running (%v): the session is over; once containerd is back (`mcpbox doctor` says how), `mcpbox gc` removes what is left", s.id, err)
		}
		return fmt.Errorf("launcher: wait for %s: %w", s.id, err)
	}
	s.log.Debug("server exited", "id", s.id, "code", code)
	switch {
	case errors.Is(brokerErr, broker.ErrMessageTooLarge):
		return &ExitError{Code: 1, Reason: brokerErr.Error()}
	case oom.Load():
		mem := s.job.limits.Memory
		if mem == 0 {
			mem = sandbox.DefaultLimits().Memory
		}
		return &ExitError{Code: code, Reason: fmt.Sprintf("killed by the kernel: out of memory at the sandbox's limit of %s; raise it with --memory", profiles.FormatSize(mem))}
	}
	if r, _ := stopReason.Load().(string); r != "" {
		if r == "interrupted" {
			return fmt.Errorf("launcher: session %s: %w", s.id, context.Canceled)
		}
		if r == "client closed its stdin" && s.signaled.Load() {
			return nil // the client ended the session and mcpbox had to stop the server
		}
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// closeStdin ends the server's stdin: mcpbox holds the only writing end of
// its FIFO. It waits until mcpbox-init has opened its end (it opens stdin
// before stdout): closing the last open end earlier would drop what the
// client already sent.
func (s *session) closeStdin() {
	select {
	case <-s.stdout.Opened():
	case <-s.exited:
	}
	s.stdin.Close()
}

// stop ends the server: optionally a grace period after stdin was closed,
// then SIGTERM, then SIGKILL, each after StopTimeout.
func (s *session) stop(grace bool) {
	wait := func() bool {
		select {
		case <-s.exited:
			return true
		case <-time.After(s.opts.StopTimeout):
			return false
		}
	}
	s.closeStdin()
	if grace && wait() {
		return
	}
	s.signaled.Store(true)
	if grace {
		if err := s.task.Kill(context.Background(), syscall.SIGTERM); err != nil {
			s.log.Debug("sigterm", "err", err)
		}
		if wait() {
			return
		}
	}
	if err := s.task.Kill(context.Background(), syscall.SIGKILL, containerd.WithKillAll); err != nil {
		s.log.Debug("sigkill", "err", err)
	}
}

// cleanup deletes the task, the container, the FIFOs and the session
// directory. It runs whatever happened before.
func (s *session) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.task != nil {
		if _, err := s.task.Delete(ctx, containerd.WithProcessKill); err != nil {
			s.log.Warn("delete task", "id", s.id, "err", err)
		}
	}
	closePins(s.pins)
	if s.stdin != nil {
		s.stdin.Close()
		s.stdout.Close()
		s.stderr.Close()
	}
	if s.imageDir != "" {
		if err := mount.UnmountAll(s.imageDir, 0); err != nil {
			s.log.Warn("unmount image", "dir", s.imageDir, "err", err)
		}
	}
	if s.container != nil {
		if err := s.container.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			s.log.Warn("delete container", "id", s.id, "err", err)
		}
	} else if s.view {
		if err := s.client.SnapshotService(containerd.DefaultSnapshotter).Remove(ctx, s.id); err != nil && !errdefs.IsNotFound(err) {
			s.log.Warn("remove image view", "id", s.id, "err", err)
		}
	}
	if s.leaseDone != nil {
		if err := s.leaseDone(ctx); err != nil {
			s.log.Debug("release lease", "err", err)
		}
	}
	if s.dir != "" {
		if err := removeSessionDir(s.dir); err != nil {
			s.log.Warn("remove session dir", "dir", s.dir, "err", err)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
