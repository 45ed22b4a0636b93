package launcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpbox/mcpbox/launcher/grant"
	"github.com/mcpbox/mcpbox/launcher/memfd"
	"github.com/mcpbox/mcpbox/launcher/runtime"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/mcpbox/mcpbox/sandbox"
	"github.com/mcpbox/mcpbox/sandbox/egress"
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
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
	cmd    *command
	mounts []sandbox.Mount // host paths granted beyond the runtime and cmd's own
	env    []string        // NAME=VALUE, beyond the base environment
	allow  *egress.Allowlist
	limits sandbox.Limits
	// requireLimits refuses to start where the runtime cannot enforce
	// limits (--require-limits, the profile's limits.required).
	requireLimits bool
	workdir       string
	label         string // the command line, for the container's label
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
	// user is the caller's homes and credentials, as the job's grants
	// were checked against; the runtime directories are checked the same.
	user grant.User
	// onEgress sees the job's egress decisions (the install step's, to
	// explain a refused connection); nil for none.
	onEgress func(egress.Event)
}

// execute runs a job in a fresh sandbox: seccomp, the runtime, network,
// the container and its stdio, and the cleanup of all of them.
func execute(ctx context.Context, opts Options, j *job) error {
	phase := newPhases(opts.Logger)
	s := &session{opts: opts, job: j, log: opts.Logger, id: "mcpbox-" + j.cmd.name + "-" + randomHex(4), exited: make(chan struct{})}
	var err error
	if s.initPath, err = findInit(opts.InitPath); err != nil {
		return err
	}
	runtimeMounts, err := hostRuntimeMounts(j)
	if err != nil {
		return err
	}
	phase("resolve")
	filter, err := s.seccompProfile()
	if err != nil {
		return err
	}
	phase("seccomp")

	rt, err := openRuntime(ctx, opts)
	if err != nil {
		return err
	}
	defer rt.Close()
	phase("connect")
	settled := make(chan struct{})
	s.settled = sync.OnceFunc(func() { close(settled) })
	defer sweepBeside(rt, opts.RunDir, s.log, settled)()
	defer s.settled()
	if j.image != "" {
		if err := rt.Image(ctx, j.image); err != nil {
			if errors.Is(err, rootless.ErrImageRoots) {
				return &UsageError{Flag: "profile", Err: err}
			}
			return err
		}
		phase("image")
	}

	if o := opts.Observe; o != nil && o.OnIdentity != nil && !j.batch {
		o.OnIdentity(j.policy.broker.Identity)
	}
	closeNet, err := s.startNetwork()
	if err != nil {
		return err
	}
	// Deferred before the session's cleanup, so it runs after it: the
	// proxy outlives the container.
	defer closeNet()
	if s.net != nil {
		phase("network")
	}

	defer s.cleanup()
	if err := s.prepare(ctx, rt, runtimeMounts, filter); err != nil {
		return err
	}
	if u, ok := rt.(interface {
		Unenforced(*specs.Spec) ([]string, string)
	}); ok {
		if err := s.announceUnenforced(u.Unenforced(s.ociSpec)); err != nil {
			return err
		}
	}
	phase("spec")
	return s.run(ctx, rt, phase)
}

// hostRuntimeMounts are the host's runtime directories the command needs
// (rootfs host); in image mode the image is the runtime: nothing of the
// host's.
func hostRuntimeMounts(j *job) ([]sandbox.Mount, error) {
	if j.image != "" {
		return nil, nil
	}
	m, err := sandbox.HostRuntime(j.cmd.exe, j.user.SandboxPaths())
	if err != nil {
		return nil, fmt.Errorf("launcher: host runtime for %s: %w", j.cmd.exe, err)
	}
	return m, nil
}

// seccompProfile chooses how the sandbox keeps code written into memory
// from running, and builds the seccomp profile: the base filter, the job's
// extra syscalls, and the user notifications trial and --report-violations
// need.
func (s *session) seccompProfile() (*specs.LinuxSeccomp, error) {
	host, err := memfd.ReadHost("/")
	if err != nil {
		return nil, err
	}
	// containerd's runc runs hooks as the host's root; the rootless
	// runtime's runc as root of mcpbox's user namespace only.
	mfd := memfd.Choose(s.opts.Memfd, host, !s.opts.isRootless(), s.initPath)
	s.log.Info("memfd", "mode", mfd.Mode, "detail", mfd.Why)
	s.memfd = mfd.Mode
	o := s.opts.Observe
	s.notify = !s.job.batch && (s.opts.ReportViolations || (o != nil && o.Syscalls != nil))
	filter, err := seccomp.Build(seccompOptions(s.opts, s.job, mfd.Mode, s.notify, filepath.Join(s.opts.RunDir, s.id, notifySocket)))
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	return filter, nil
}

// seccompOptions are the sandbox's seccomp options: the profile's extra
// syscalls, memfd_create refused in memfd deny mode, and, when an agent
// answers the syscalls the profile denies (notify), the listener it waits
// on and what trial mode watches besides.
func seccompOptions(opts Options, j *job, memfd sandbox.Memfd, notify bool, listener string) seccomp.Options {
	so := seccomp.Options{Allow: j.seccompAllow}
	_, so.DenyMemfd = memfd.(sandbox.MemfdDeny)
	if notify {
		so.Listener = listener
		if o := opts.Observe; o != nil {
			so.NotifyExec, so.NotifyFiles, so.NotifyReads = o.Exec, o.Files, o.Files && o.Reads
		}
	}
	return so
}

// startNetwork gives the sandbox its own network namespace with mcpbox's
// egress proxy when anything is allowed or trial watches egress; without
// it the sandbox has loopback only. The returned func closes it.
func (s *session) startNetwork() (func(), error) {
	var trial func(egress.Event)
	if o := s.opts.Observe; o != nil && o.OnEgress != nil && !s.job.batch {
		trial = o.OnEgress
	}
	// Watched by trial, a server that may reach nothing still gets the
	// proxy (a nil allowlist allows nothing), so that every attempt is seen.
	if s.job.allow == nil && trial == nil {
		return func() {}, nil
	}
	onEgress := trial
	if own := s.job.onEgress; own != nil {
		onEgress = own
		if trial != nil {
			onEgress = func(ev egress.Event) { own(ev); trial(ev) }
		}
	}
	n, err := egress.Start(s.job.allow, egressEvents(s.opts.EgressLog, onEgress), s.log)
	if err != nil {
		return nil, fmt.Errorf("launcher: egress control could not be set up, so the server is not started: %w", err)
	}
	s.net = n
	return func() { n.Close() }, nil
}

// baseEnv is the environment every sandbox gets before the job's own.
func baseEnv() []string {
	return []string{"PATH=" + sandbox.DefaultPath, "HOME=" + sandbox.DefaultHome, "TMPDIR=/tmp"}
}

// cgroupsPath is the sandbox's cgroup, under each hierarchy's root.
func (s *session) cgroupsPath() string { return "/mcpbox/" + s.id }

// session is one container's life: its directory, container and IO.
type session struct {
	opts Options
	job  *job
	id   string
	log  *slog.Logger

	dir      string
	initPath string
	notify   bool            // a seccomp agent answers the syscalls the profile denies
	net      *egress.Network // nil: no network but loopback
	// memfd is how the sandbox keeps code written into memory from running.
	memfd sandbox.Memfd

	image     runtime.ImageRoot // the root's image in image mode, else nil
	container runtime.Container
	signaled  atomic.Bool // mcpbox sent the server a signal to stop it
	stdin     *os.File    // our ends of the server's stdio FIFOs
	stdout    *fifoReader
	stderr    *fifoReader
	exited    chan struct{} // closed when the server has exited
	// settled lets the sweep of dead sessions' leftovers begin, off the
	// path of the start: called when the server's first byte has
	// reached the client (a batch job's server: when it has started), or
	// when the session ends before.
	settled func()

	ociSpec *specs.Spec // what prepare built for the runtime

	// pins hold the host objects behind the binds mcpbox checked, to
	// compare with what the runtime mounted (see launcher/grant/pin_linux.go).
	pins grant.Pins
}

// cleanup deletes the container, the FIFOs, the image view and the
// session directory. It runs whatever happened before.
func (s *session) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.container != nil {
		if err := s.container.Delete(ctx); err != nil {
			s.log.Warn("delete container", "id", s.id, "err", err)
		}
	}
	s.pins.Close()
	if s.stdin != nil {
		s.stdin.Close()
		s.stdout.Close()
		s.stderr.Close()
	}
	if s.image != nil {
		if err := s.image.Release(ctx); err != nil {
			s.log.Warn("release image view", "id", s.id, "err", err)
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
