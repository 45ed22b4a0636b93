package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/errdefs"
)

// connect dials containerd and checks that it answers. When the socket is
// missing or refuses, the error says how to fix it rather than showing a
// gRPC back-off.
func connect(ctx context.Context, address, namespace string) (*containerd.Client, error) {
	unreachable := func(err error) error {
		return fmt.Errorf("%w at %s (%v): start it with `sudo systemctl start containerd` (or `sudo containerd &`), or point --containerd-address at its socket", ErrContainerdUnreachable, address, err)
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

// Connect dials containerd at address (DefaultAddress if "") with
// namespace (DefaultNamespace if "") as the client's default, and says how
// to start containerd when it does not answer (ErrContainerdUnreachable).
// The back ends of commands that work on containerd's stores
// (launcher/image) take the client it returns.
func Connect(ctx context.Context, address, namespace string) (*containerd.Client, error) {
	o := Options{Address: address, Namespace: namespace}
	o.setDefaults()
	return connect(ctx, o.Address, o.Namespace)
}

// GC removes the containers and session directories of sessions whose
// mcpbox process is gone, and returns the ids it removed.
func GC(ctx context.Context, address, namespace, runDir string, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if runDir == "" {
		runDir = DefaultRunDir
	}
	client, err := connect(ctx, address, namespace)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	return collect(ctx, client, runDir, log)
}

// collect is GC on an open client.
func collect(ctx context.Context, client *containerd.Client, runDir string, log *slog.Logger) ([]string, error) {
	containers, err := client.Containers(ctx, `labels."`+labelOwnerPID+`"`)
	if err != nil {
		return nil, fmt.Errorf("gc: list containers: %w", err)
	}
	var removed []string
	var errs []error
	known := map[string]bool{}
	for _, c := range containers {
		known[c.ID()] = true
		// The listing already holds the labels: no extra call per container.
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		labels := info.Labels
		if ownerAlive(labels[labelOwnerPID], labels[labelOwnerStart]) {
			continue
		}
		if err := removeContainer(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("gc: %s: %w", c.ID(), err))
			continue
		}
		if dir := labels[labelSessionDir]; dir != "" && filepath.Dir(filepath.Clean(dir)) == filepath.Clean(runDir) {
			if err := removeSessionDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("gc: %w", err))
			}
		}
		removed = append(removed, c.ID())
	}

	// Session directories whose container was never created (mcpbox died
	// before that) or is gone already.
	entries, err := os.ReadDir(runDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("gc: %w", err))
	}
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
	// Image views of sessions that died before their container held them.
	sn := client.SnapshotService(containerd.DefaultSnapshotter)
	var views []string
	err = sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		dir := info.Labels[labelSessionDir]
		if !strings.HasPrefix(info.Name, "mcpbox-") || known[info.Name] || filepath.Dir(filepath.Clean(dir)) != filepath.Clean(runDir) {
			return nil
		}
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			views = append(views, info.Name)
		}
		return nil
	}, `labels."`+labelSessionDir+`"`)
	if err != nil {
		errs = append(errs, fmt.Errorf("gc: list snapshots: %w", err))
	}
	for _, v := range views {
		if err := sn.Remove(ctx, v); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("gc: remove snapshot %s: %w", v, err))
			continue
		}
		removed = append(removed, v)
	}
	return removed, errors.Join(errs...)
}

// removeContainer kills and deletes a container's task, then the container.
func removeContainer(ctx context.Context, c containerd.Container) error {
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
