// Package audit owns mcpbox's audit log files: the line every writer emits
// (Entry, encoded by AppendEntry: the broker's lines and the seccomp
// agent's), the size-rotated file that several processes share (File), and
// reading the logs back: selecting records (Query, Read), following them
// across rotation and printing them as readable, terminal-safe lines
// (Print, Format). It takes plain directories and paths; it sits below the
// launcher and must not import it, nor the CLI library: callers map its
// typed errors (ServerError) to exit codes.
//
// Audit logs are JSON lines in <State>/audit/<server>.jsonl, rotated to
// <server>.jsonl.1 (newest) … <server>.jsonl.N. Several mcpbox processes
// may append to one file (two sessions of one server): each line is one
// O_APPEND write, and rotation is serialized across processes with flock
// on <server>.jsonl.lock. Writers hold the lock for each write (a few
// syscalls), so a line never lands in a file that has just been rotated
// away and no file grows past the limit; readers hold it shared only while
// they open the set of files, then read from their descriptors.
package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	DefaultMaxSize int64 = 16 << 20 // rotate when the file would grow past this
	DefaultKeep          = 5        // rotated files kept besides the current one
)

// File is an append-only, size-rotated audit log. It is safe for
// concurrent use, in one process and across processes. Each Write must be
// one whole line.
type File struct {
	path    string
	maxSize int64
	keep    int

	mu   sync.Mutex
	f    *os.File // the open log; nil once closed
	lock *os.File // path + ".lock", for flock
}

// Open opens (creating it and its directories if needed) the audit
// log at path. A maxSize <= 0 means DefaultMaxSize, a keep < 0 means
// DefaultKeep; keep 0 keeps no rotated file.
func Open(path string, maxSize int64, keep int) (*File, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if keep < 0 {
		keep = DefaultKeep
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory for %s: %w (check that its parent is writable)", path, err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open lock file: %w (check that %s is writable)", err, filepath.Dir(path))
	}
	a := &File{path: path, maxSize: maxSize, keep: keep, lock: lock}
	if err := a.reopen(); err != nil {
		lock.Close()
		return nil, err
	}
	return a, nil
}

func (a *File) reopen() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w (check that %s is writable)", a.path, err, filepath.Dir(a.path))
	}
	if a.f != nil {
		a.f.Close()
	}
	a.f = f
	return nil
}

func (a *File) flock(how int) error {
	for {
		err := unix.Flock(int(a.lock.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("audit: lock %s.lock: %w", a.path, err)
			}
			return nil
		}
	}
}

// Write appends p, one whole line, rotating first if p would take the file
// past its size limit.
func (a *File) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return 0, fmt.Errorf("audit: write %s: %w", a.path, os.ErrClosed)
	}
	if err := a.flock(unix.LOCK_EX); err != nil {
		return 0, err
	}
	defer a.flock(unix.LOCK_UN)
	full, err := a.follow(len(p))
	if err != nil {
		return 0, err
	}
	if full {
		if err := a.rotate(); err != nil {
			return 0, err
		}
	}
	return a.f.Write(p)
}

// follow reopens the path if another process rotated it away from under
// our descriptor, and reports whether n more bytes call for a rotation.
func (a *File) follow(n int) (full bool, err error) {
	cur, err := a.f.Stat()
	if err != nil {
		return false, fmt.Errorf("audit: stat %s: %w", a.path, err)
	}
	onDisk, err := os.Stat(a.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("audit: stat %s: %w", a.path, err)
	}
	if err != nil || !os.SameFile(cur, onDisk) {
		if err := a.reopen(); err != nil {
			return false, err
		}
		if cur, err = a.f.Stat(); err != nil {
			return false, fmt.Errorf("audit: stat %s: %w", a.path, err)
		}
	}
	return cur.Size() > 0 && cur.Size()+int64(n) > a.maxSize, nil
}

// rotate shifts path.(keep-1) → path.keep … path → path.1 (dropping the
// old path.keep) and opens a fresh path. The caller holds the lock.
func (a *File) rotate() error {
	if a.keep == 0 {
		if err := os.Remove(a.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate %s: %w", a.path, err)
		}
		return a.reopen()
	}
	for i := a.keep - 1; i >= 1; i-- {
		from, to := a.path+"."+strconv.Itoa(i), a.path+"."+strconv.Itoa(i+1)
		if err := os.Rename(from, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate %s: %w", a.path, err)
		}
	}
	if err := os.Rename(a.path, a.path+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: rotate %s: %w", a.path, err)
	}
	return a.reopen()
}

// Close closes the log. Later writes fail.
func (a *File) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.lock.Close()
	a.f = nil
	return err
}
