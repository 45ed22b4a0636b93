package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcpbox/mcpbox/launcher/image"
	"github.com/mcpbox/mcpbox/launcher/runtime"
	ctrd "github.com/mcpbox/mcpbox/launcher/runtime/containerd"

	"github.com/containerd/containerd"
)

// Connect dials containerd at address (DefaultAddress if "") with
// namespace (DefaultNamespace if "") as the client's default, and says how
// to start containerd when it does not answer (ErrContainerdUnreachable).
// The back ends of commands that work on containerd's stores
// (launcher/image) take the client it returns.
func Connect(ctx context.Context, address, namespace string) (*containerd.Client, error) {
	o := Options{Address: address, Namespace: namespace}
	o.setDefaults()
	return ctrd.Connect(o.Address, o.Namespace)
}

// GC removes the containers and session directories of sessions whose
// mcpbox process is gone, in the runtime and run directory of opts, and
// returns the ids it removed.
func GC(ctx context.Context, opts Options) ([]string, error) {
	opts.setDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rt, err := openRuntime(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	return collect(ctx, rt, opts.RunDir, log)
}

// collect is GC through an open runtime: containers whose owner is dead,
// session directories no live mcpbox owns, and image views of sessions
// that died before their container held them.
func collect(ctx context.Context, rt runtime.Runtime, runDir string, log *slog.Logger) ([]string, error) {
	// A nil list means nothing could be listed; a partial one is used.
	leftovers, err := rt.Leftovers(ctx)
	if err != nil && leftovers == nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("gc: %w", err))
	}
	var removed []string
	known := map[string]bool{}
	var views []runtime.Leftover
	for _, l := range leftovers {
		if l.View {
			views = append(views, l)
			continue
		}
		known[l.ID] = true
		if l.Owner.PID == "" || ownerAlive(l.Owner.PID, l.Owner.Start) {
			continue // unread owner: never removed on a guess
		}
		if err := rt.Remove(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("gc: %s: %w", l.ID, err))
			continue
		}
		if dir := l.Owner.SessionDir; dir != "" && filepath.Dir(filepath.Clean(dir)) == filepath.Clean(runDir) {
			if err := removeSessionDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("gc: %w", err))
			}
		}
		removed = append(removed, l.ID)
	}
	dirs, err := collectDirs(runDir, known)
	removed = append(removed, dirs...)
	errs = append(errs, err)
	// A view whose session directory is gone has no session left to use it.
	for _, v := range views {
		dir := v.Owner.SessionDir
		if filepath.Dir(filepath.Clean(dir)) != filepath.Clean(runDir) {
			continue
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := rt.Remove(ctx, v); err != nil {
			errs = append(errs, fmt.Errorf("gc: %w", err))
			continue
		}
		removed = append(removed, v.ID)
	}
	return removed, errors.Join(errs...)
}

// collectDirs removes the session directories whose container was never
// created (mcpbox died before that) or is gone already, and whose owner is
// dead.
func collectDirs(runDir string, known map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(runDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("gc: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "mcpbox-") || known[e.Name()] {
			continue
		}
		dir := filepath.Join(runDir, e.Name())
		owner, err := os.ReadFile(filepath.Join(dir, "owner"))
		if f := strings.Fields(string(owner)); err == nil && len(f) == 2 {
			if ownerAlive(f[0], f[1]) {
				continue
			}
		} else if info, ierr := e.Info(); ierr != nil || time.Since(info.ModTime()) < time.Minute {
			continue // being created right now: its owner file is not there yet
		}
		if err := removeSessionDir(dir); err != nil {
			errs = append(errs, fmt.Errorf("gc: %w", err))
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// openRuntime connects to the runtime a session runs in.
func openRuntime(ctx context.Context, opts Options) (runtime.Runtime, error) {
	if opts.isRootless() {
		return openRootless(ctx, opts)
	}
	rt, err := ctrd.Open(opts.Address, opts.Namespace)
	if err != nil {
		return nil, err
	}
	rt.Ensure = func(ctx context.Context, c *containerd.Client, ref string) (containerd.Image, error) {
		img, err := image.Ensure(ctx, image.Options{Client: c, Progress: opts.Stderr, Logger: opts.Logger}, ref)
		if err != nil {
			return nil, profileImageError(err)
		}
		return img, nil
	}
	return rt, nil
}

// sweepBeside sweeps up after sessions whose mcpbox was killed. It runs
// beside the session, once after is closed: the session closes it when its
// server has answered, so that the sweep's runtime calls (runc list, or
// containerd's) do not compete with the start for the CPU. The returned
// func waits for it.
func sweepBeside(rt runtime.Runtime, runDir string, log *slog.Logger, after <-chan struct{}) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-after
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if removed, err := collect(ctx, rt, runDir, log); err != nil {
			log.Debug("gc", "err", err)
		} else if len(removed) > 0 {
			log.Info("removed leftovers of dead sessions", "ids", removed)
		}
	}()
	return func() { <-done }
}
