//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package packages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Lock takes an exclusive lock on the package spec names (any version),
// waiting until it is free or ctx ends. Hold it from Lookup to Commit so
// that two first runs of one package install it once: the second finds the
// first's entry when it gets the lock. The lock is flock(2) on the
// package's .lock file, so it also excludes other processes, and the kernel
// drops it if the holder dies. Call unlock exactly once.
func (c *Cache) Lock(ctx context.Context, spec *Spec) (unlock func(), err error) {
	pkg, err := c.pkgDir(spec)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", spec.Name, err)
	}
	path := filepath.Join(pkg, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", spec.Name, err)
	}
	wait := 2 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("waiting for another mcpbox to finish installing %s: %w", spec.Name, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, nil
}
