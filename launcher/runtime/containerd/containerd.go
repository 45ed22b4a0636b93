// Package containerd runs sandboxes through a containerd daemon (root): the
// runc v2 shim, containers labelled with their owner so that gc finds dead
// sessions' leftovers, image roots as read-only snapshot views.
//
// It implements launcher/runtime.Runtime (with the values of
// launcher/runtime/api) and must not import the launcher or its parent.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
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

	"github.com/mcpbox/mcpbox/launcher/runtime/api"
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

// shim is the containerd runtime shim mcpbox uses.
const shim = "io.containerd.runc.v2"

// ErrUnreachable is returned when containerd does not answer on its
// socket. The message says how to fix it.
var ErrUnreachable = errors.New("containerd is not reachable")

// Runtime is a connection to containerd in one namespace.
type Runtime struct {
	client    *containerd.Client
	namespace string
	// Ensure finds image ref in the namespace, pulling or unpacking it
	// when needed (see launcher/image); nil refuses image roots.
	Ensure func(ctx context.Context, c *containerd.Client, ref string) (containerd.Image, error)
	// images are the images Image made ready, by reference.
	images map[string]containerd.Image
}

// Connect dials containerd and checks that it answers. When the socket is
// missing or refuses, the error says how to fix it rather than showing a
// gRPC back-off.
func Connect(address, namespace string) (*containerd.Client, error) {
	unreachable := func(err error) error {
		return fmt.Errorf("%w at %s (%v): start it with `sudo systemctl start containerd` (or `sudo containerd &`), or point --containerd-address at its socket", ErrUnreachable, address, err)
	}
	// Fail fast on the common cases before gRPC starts its retries.
	conn, err := net.DialTimeout("unix", address, 2*time.Second)
	if err != nil {
		return nil, unreachable(err)
	}
	conn.Close()
	client, err := containerd.New(address, containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, unreachable(err)
	}
	return client, nil
}

// Open connects to containerd at address and works in namespace.
func Open(address, namespace string) (*Runtime, error) {
	client, err := Connect(address, namespace)
	if err != nil {
		return nil, err
	}
	return &Runtime{client: client, namespace: namespace}, nil
}

// Client is the connection, for the image commands that share it.
func (r *Runtime) Client() *containerd.Client { return r.client }

// Close closes the connection.
func (r *Runtime) Close() error { return r.client.Close() }

// Create creates the container and its task; the task's process has made
// its mounts and waits to be started.
func (r *Runtime) Create(ctx context.Context, cfg api.Config) (_ api.Container, err error) {
	c := &container{client: r.client, id: cfg.ID, exited: make(chan api.Exit, 1)}
	var newOpts []containerd.NewContainerOpts
	if v, ok := cfg.Image.(*view); ok && v != nil {
		c.view = v
		newOpts = append(newOpts, containerd.WithSnapshotter(containerd.DefaultSnapshotter), containerd.WithSnapshot(cfg.ID))
	} else if cfg.Image != nil {
		return nil, fmt.Errorf("containerd: image root %s was not made by containerd", cfg.Image.Name())
	}
	command := cfg.Owner.Command
	if len(command) > 1024 {
		command = command[:1024]
	}
	c.c, err = r.client.NewContainer(ctx, cfg.ID, append(newOpts,
		containerd.WithRuntime(shim, nil),
		containerd.WithSpec(cfg.Spec),
		containerd.WithContainerLabels(map[string]string{
			labelOwnerPID:   cfg.Owner.PID,
			labelOwnerStart: cfg.Owner.Start,
			labelStarted:    cfg.Owner.Started.UTC().Format(time.RFC3339),
			labelCommand:    command,
			labelSessionDir: cfg.Owner.SessionDir,
		}))...,
	)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", cfg.ID, err)
	}
	if c.view != nil {
		c.view.held() // the container holds the view now
	}
	defer func() {
		if err != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, c.Delete(dctx))
		}
	}()
	// All the server's stdio goes through FIFOs in the spec; the shim's is
	// /dev/null.
	if c.task, err = c.c.NewTask(ctx, cio.NullIO); err != nil {
		return nil, fmt.Errorf("create task %s: %w", cfg.ID, err)
	}
	c.watchOOM()
	// Waiting must begin before the task starts, or a fast exit is lost.
	exitCh, err := c.task.Wait(context.Background())
	if err != nil {
		return nil, fmt.Errorf("wait task %s: %w", cfg.ID, err)
	}
	go c.forwardExit(exitCh)
	return c, nil
}

// container is one containerd container with its task.
type container struct {
	client  *containerd.Client
	id      string
	c       containerd.Container
	task    containerd.Task
	view    *view // the image root, nil for a plain directory
	oom     atomic.Bool
	stopOOM context.CancelFunc
	exited  chan api.Exit
}

func (c *container) ID() string              { return c.id }
func (c *container) Pid() uint32             { return c.task.Pid() }
func (c *container) Exited() <-chan api.Exit { return c.exited }
func (c *container) OOMKilled() bool         { return c.oom.Load() }

func (c *container) Start(ctx context.Context) error {
	if err := c.task.Start(ctx); err != nil {
		return fmt.Errorf("start task %s: %w", c.id, err)
	}
	return nil
}

func (c *container) Signal(ctx context.Context, sig syscall.Signal, all bool) error {
	var opts []containerd.KillOpts
	if all {
		opts = append(opts, containerd.WithKillAll)
	}
	return c.task.Kill(ctx, sig, opts...)
}

// watchOOM notes the kernel's OOM kills in the container.
func (c *container) watchOOM() {
	ctx, cancel := context.WithCancel(context.Background())
	c.stopOOM = cancel
	events, _ := c.client.Subscribe(ctx, `topic=="/tasks/oom"`)
	go func() {
		for e := range events {
			v, err := typeurl.UnmarshalAny(e.Event)
			if ev, ok := v.(*apievents.TaskOOM); err == nil && ok && ev.ContainerID == c.id {
				c.oom.Store(true)
			}
		}
	}()
}

func (c *container) forwardExit(exitCh <-chan containerd.ExitStatus) {
	status := <-exitCh
	exit := api.Exit{Code: int(status.ExitCode())}
	if err := status.Error(); err != nil {
		if errdefs.IsUnavailable(err) || status.ExitCode() == containerd.UnknownExitStatus {
			exit.Err = fmt.Errorf("lost containerd while %s was running (%v): the session is over; once containerd is back (`mcpbox doctor` says how), `mcpbox gc` removes what is left", c.id, err)
		} else {
			exit.Err = fmt.Errorf("wait for %s: %w", c.id, err)
		}
	}
	c.exited <- exit
}

// Delete removes the task, the image view's host mount, and the container
// with its snapshot, in that order.
func (c *container) Delete(ctx context.Context) error {
	var errs []error
	if c.stopOOM != nil {
		c.stopOOM()
	}
	if c.task != nil {
		if _, err := c.task.Delete(ctx, containerd.WithProcessKill); err != nil {
			errs = append(errs, fmt.Errorf("delete task %s: %w", c.id, err))
		}
	}
	if c.view != nil {
		if err := c.view.unmount(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		errs = append(errs, fmt.Errorf("delete container %s: %w", c.id, err))
	}
	return errors.Join(errs...)
}

// view is an image's read-only snapshot view, mounted on the host when it
// has more than one layer.
type view struct {
	client    *containerd.Client
	key, name string
	dir       string // where its files are
	mounted   string // dir when mcpbox mounted it, else ""
	leaseDone func(context.Context) error
	container bool // a container holds the view: deleting it removes it
}

func (v *view) Dir() string  { return v.dir }
func (v *view) Name() string { return v.name }

func (v *view) held() {
	v.container = true
	if v.leaseDone != nil {
		if err := v.leaseDone(context.Background()); err == nil {
			v.leaseDone = nil
		}
	}
}

func (v *view) unmount() error {
	if v.mounted == "" {
		return nil
	}
	if err := mount.UnmountAll(v.mounted, 0); err != nil {
		return fmt.Errorf("unmount image %s: %w", v.mounted, err)
	}
	v.mounted = ""
	return nil
}

// Release unmounts the view and, when no container took it, removes it.
func (v *view) Release(ctx context.Context) error {
	errs := []error{v.unmount()}
	if !v.container {
		if err := v.client.SnapshotService(containerd.DefaultSnapshotter).Remove(ctx, v.key); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove image view %s: %w", v.key, err))
		}
	}
	if v.leaseDone != nil {
		if err := v.leaseDone(ctx); err != nil {
			errs = append(errs, fmt.Errorf("release lease: %w", err))
		}
		v.leaseDone = nil
	}
	return errors.Join(errs...)
}

// Image makes image ref ready for ImageRoot: there, pinned as asked,
// unpacked. Its errors are Ensure's, unchanged.
func (r *Runtime) Image(ctx context.Context, ref string) error {
	if r.Ensure == nil {
		return fmt.Errorf("containerd: no image support configured for %s", ref)
	}
	img, err := r.Ensure(ctx, r.client, ref)
	if err != nil {
		return err
	}
	if r.images == nil {
		r.images = map[string]containerd.Image{}
	}
	r.images[ref] = img
	return nil
}

// ImageRoot makes a read-only view snapshot of the image; for a layered
// image it is mounted on the host in the session directory.
func (r *Runtime) ImageRoot(ctx context.Context, ref, id, sessionDir string) (_ api.ImageRoot, err error) {
	img, ok := r.images[ref]
	if !ok {
		if err := r.Image(ctx, ref); err != nil {
			return nil, err
		}
		img = r.images[ref]
	}
	lctx, done, err := r.client.WithLease(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	v := &view{client: r.client, key: id, name: img.Name(), leaseDone: done}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, v.Release(rctx))
		}
	}()
	diffIDs, err := img.RootFS(lctx)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name(), err)
	}
	sn := r.client.SnapshotService(containerd.DefaultSnapshotter)
	ms, err := sn.View(lctx, id, identity.ChainID(diffIDs).String(), snapshots.WithLabels(map[string]string{labelSessionDir: sessionDir}))
	if err != nil {
		return nil, fmt.Errorf("read-only view of image %s: %w", img.Name(), err)
	}
	if len(ms) == 1 && ms[0].Type == "bind" {
		// A single-layer image (what `mcpbox image build` makes): its
		// view is a read-only bind of the layer's directory, so the root
		// binds read straight from it. Nothing is mounted by mcpbox, which
		// keeps this working when mcpbox runs in a mount namespace of its
		// own (containerd's runc would not see mcpbox's mounts).
		v.dir = ms[0].Source
		return v, nil
	}
	dir := filepath.Join(sessionDir, "image")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("session dir: %w", err)
	}
	for i := range ms {
		ms[i].Options = append(ms[i].Options, "ro")
	}
	if err := mount.All(ms, dir); err != nil {
		return nil, fmt.Errorf("mount image %s: %w", img.Name(), err)
	}
	v.dir, v.mounted = dir, dir
	return v, nil
}

// Leftovers lists mcpbox's containers with their owners, and the image
// views no container holds.
func (r *Runtime) Leftovers(ctx context.Context) ([]api.Leftover, error) {
	containers, err := r.client.Containers(ctx, `labels."`+labelOwnerPID+`"`)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := []api.Leftover{} // non-nil: the containers were listed
	var errs []error
	known := map[string]bool{}
	for _, c := range containers {
		known[c.ID()] = true
		// The listing already holds the labels: no extra call per container.
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			// Listed without its owner: gc keeps it and its directory.
			errs = append(errs, err)
			out = append(out, api.Leftover{ID: c.ID()})
			continue
		}
		l := info.Labels
		started, _ := time.Parse(time.RFC3339, l[labelStarted])
		out = append(out, api.Leftover{ID: c.ID(), Owner: api.Owner{
			PID: l[labelOwnerPID], Start: l[labelOwnerStart], Started: started,
			Command: l[labelCommand], SessionDir: l[labelSessionDir]}})
	}
	err = r.client.SnapshotService(containerd.DefaultSnapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.HasPrefix(info.Name, "mcpbox-") && !known[info.Name] {
			out = append(out, api.Leftover{ID: info.Name, View: true, Owner: api.Owner{SessionDir: info.Labels[labelSessionDir]}})
		}
		return nil
	}, `labels."`+labelSessionDir+`"`)
	if err != nil {
		errs = append(errs, fmt.Errorf("list snapshots: %w", err))
	}
	return out, errors.Join(errs...)
}

// Remove kills and deletes a leftover container's task, then the
// container; or removes a leftover image view.
func (r *Runtime) Remove(ctx context.Context, l api.Leftover) error {
	if l.View {
		err := r.client.SnapshotService(containerd.DefaultSnapshotter).Remove(ctx, l.ID)
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove snapshot %s: %w", l.ID, err)
		}
		return nil
	}
	c, err := r.client.LoadContainer(ctx, l.ID)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("load container: %w", err)
	}
	task, err := c.Task(ctx, nil)
	switch {
	case err == nil:
		// A stopped task refuses the kill; the delete below handles it.
		_ = task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll)
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task: %w", err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("load task: %w", err)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container: %w", err)
	}
	return nil
}
