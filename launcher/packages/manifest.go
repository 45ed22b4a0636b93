package packages

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
)

// metaFile is the name of the metadata file in an entry directory. It is
// the one file the manifest does not list.
const metaFile = "mcpbox.json"

// File is one installed file in an entry's manifest.
type File struct {
	Path   string `json:"path"`             // slash-separated, relative to the entry directory
	Size   int64  `json:"size"`             // bytes; a symlink's is its target's length
	Mode   string `json:"mode"`             // st_mode's low 12 bits in octal, e.g. "0644"
	MTime  int64  `json:"mtime"`            // modification time, Unix nanoseconds
	SHA256 string `json:"sha256,omitempty"` // hex digest of a regular file's content
	Link   string `json:"link,omitempty"`   // a symlink's target; "" for a regular file
}

// CorruptError means a cache entry no longer matches what was installed.
// The entry must not be run; removing and reinstalling it fixes it.
type CorruptError struct {
	Path   string // the file or entry at fault
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("damaged package cache entry: %s: %s; remove it to reinstall", e.Path, e.Reason)
}

// seal prepares a finished install to become a cache entry: it takes the
// write bits for group and others and any setuid, setgid and sticky bits off
// every file and directory, refuses special files, and returns the manifest
// of every file but metaFile, with SHA-256 digests. Run as root, it also
// gives every file to the owner of dir's parent (the cache's): the install
// ran as another user (nobody), and every other process of that user could
// otherwise rewrite the cache.
func seal(dir string) ([]File, error) {
	var files []File
	var hashes []*File
	uid, gid, chown := owner(filepath.Dir(dir))
	chown = chown && os.Geteuid() == 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel == metaFile {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if chown {
			if err := chownTo(path, info, uid, gid); err != nil {
				return err
			}
		}
		switch typ := info.Mode().Type(); {
		case typ == fs.ModeDir:
			if m := info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); m&^0o755 != 0 {
				if err := os.Chmod(path, m.Perm()&0o755|0o700); err != nil {
					return err
				}
			}
			return nil
		case typ == fs.ModeSymlink:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			files = append(files, File{Path: filepath.ToSlash(rel), Size: int64(len(target)), Mode: modeString(info.Mode()), MTime: info.ModTime().UnixNano(), Link: target})
			return nil
		case typ != 0:
			return fmt.Errorf("%s: unexpected %s in an installed package", path, typ)
		}
		m := info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if m&^0o755 != 0 {
			m = m.Perm() & 0o755
			if err := os.Chmod(path, m); err != nil {
				return err
			}
		}
		files = append(files, File{Path: filepath.ToSlash(rel), Size: info.Size(), Mode: modeString(m), MTime: info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", dir, err)
	}
	for i := range files {
		if files[i].Link == "" {
			hashes = append(hashes, &files[i])
		}
	}
	err = forEach(len(hashes), func(i int) error {
		sum, err := hashFile(filepath.Join(dir, filepath.FromSlash(hashes[i].Path)))
		hashes[i].SHA256 = sum
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", dir, err)
	}
	return files, nil
}

// check compares dir with its manifest: every listed file must be there
// with the same type, size, mode and modification time (and symlink
// target), and nothing else may be. With full, it also compares every
// regular file's SHA-256.
func check(dir string, files []File, full bool) error {
	want := make(map[string]*File, len(files))
	for i := range files {
		want[files[i].Path] = &files[i]
	}
	seen := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return &CorruptError{Path: path, Reason: err.Error()}
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel == metaFile {
			return nil
		}
		f, ok := want[filepath.ToSlash(rel)]
		info, err := d.Info()
		if err != nil {
			return &CorruptError{Path: path, Reason: err.Error()}
		}
		if !ok {
			what := "file"
			if info.Mode().Perm()&0o111 != 0 {
				what = "executable file"
			}
			return &CorruptError{Path: path, Reason: "unexpected " + what + " (the install did not create it)"}
		}
		seen++
		if isLink := info.Mode().Type() == fs.ModeSymlink; isLink != (f.Link != "") || !isLink && !info.Mode().IsRegular() {
			return &CorruptError{Path: path, Reason: "file type changed to " + typeName(info.Mode())}
		}
		if f.Link != "" {
			target, err := os.Readlink(path)
			if err != nil {
				return &CorruptError{Path: path, Reason: err.Error()}
			}
			if target != f.Link {
				return &CorruptError{Path: path, Reason: fmt.Sprintf("symlink points to %q, installed as %q", target, f.Link)}
			}
			return nil
		}
		if info.Size() != f.Size {
			return &CorruptError{Path: path, Reason: fmt.Sprintf("size is %d bytes, installed as %d", info.Size(), f.Size)}
		}
		if m := modeString(info.Mode()); m != f.Mode {
			return &CorruptError{Path: path, Reason: fmt.Sprintf("mode is %s, installed as %s", m, f.Mode)}
		}
		if info.ModTime().UnixNano() != f.MTime {
			return &CorruptError{Path: path, Reason: "modified after it was installed"}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(files) {
		for _, f := range files {
			path := filepath.Join(dir, filepath.FromSlash(f.Path))
			if _, err := os.Lstat(path); err != nil {
				return &CorruptError{Path: path, Reason: "missing"}
			}
		}
		return &CorruptError{Path: dir, Reason: "the manifest lists a file twice"}
	}
	if !full {
		return nil
	}
	var regular []*File
	for i := range files {
		if files[i].Link == "" {
			regular = append(regular, &files[i])
		}
	}
	return forEach(len(regular), func(i int) error {
		path := filepath.Join(dir, filepath.FromSlash(regular[i].Path))
		sum, err := hashFile(path)
		if err != nil {
			return &CorruptError{Path: path, Reason: err.Error()}
		}
		if sum != regular[i].SHA256 {
			return &CorruptError{Path: path, Reason: "content changed (SHA-256 differs from the installed file's)"}
		}
		return nil
	})
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	}
	return "special file (" + strconv.Quote(m.Type().String()) + ")"
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// forEach calls fn(0..n-1) on one worker per CPU and returns the first
// error.
func forEach(n int, fn func(int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
		}()
	}
	var first error
feed:
	for i := range n {
		select {
		case next <- i:
		case first = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if first == nil {
		first = <-errs
	}
	return first
}
