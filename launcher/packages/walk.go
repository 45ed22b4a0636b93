package packages

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strconv"
	"sync"
)

// fileStat is what a lookup knows about one file of an entry.
type fileStat struct {
	Path  string // slash-separated, relative to the entry directory
	Kind  byte   // 'f' regular file, 'l' symlink, '?' anything else
	Size  int64
	Mode  uint32 // permission, setuid, setgid and sticky bits, as in st_mode
	MTime int64  // Unix nanoseconds
	Link  string // symlink target
}

// unixMode returns the low 12 bits of st_mode for m.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

func modeString(m fs.FileMode) string { return strconv.FormatUint(uint64(0o10000|unixMode(m)), 8)[1:] }

// stamp digests the path, type, size, mode, modification time and link
// target of every file: equal stamps mean no file was added, removed,
// resized, re-moded or (unless its mtime was put back) rewritten.
func stamp(files []fileStat) string {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	h := sha256.New()
	buf := make([]byte, 0, 512)
	for _, f := range files {
		buf = append(buf[:0], f.Path...)
		buf = append(buf, 0, f.Kind, 0)
		buf = strconv.AppendInt(buf, f.Size, 10)
		buf = append(buf, 0)
		buf = strconv.AppendUint(buf, uint64(f.Mode), 8)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, f.MTime, 10)
		buf = append(buf, 0)
		buf = append(buf, f.Link...)
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// manifestStamp is the stamp of the files a manifest lists.
func manifestStamp(files []File) (string, error) {
	stats := make([]fileStat, len(files))
	for i, f := range files {
		mode, err := strconv.ParseUint(f.Mode, 8, 32)
		if err != nil {
			return "", err
		}
		kind := byte('f')
		if f.Link != "" {
			kind = 'l'
		}
		stats[i] = fileStat{Path: f.Path, Kind: kind, Size: f.Size, Mode: uint32(mode), MTime: f.MTime, Link: f.Link}
	}
	return stamp(stats), nil
}

// scan stats every file under root except metaFile, one directory at a
// time on one goroutine per CPU. It follows no symlinks.
func scan(root string) ([]fileStat, error) {
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		queue    = []string{""}
		active   int
		out      []fileStat
		firstErr error
		wg       sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []fileStat
			for {
				mu.Lock()
				for len(queue) == 0 && active > 0 && firstErr == nil {
					cond.Wait()
				}
				if len(queue) == 0 || firstErr != nil {
					out = append(out, local...)
					mu.Unlock()
					return
				}
				dir := queue[len(queue)-1]
				queue = queue[:len(queue)-1]
				active++
				mu.Unlock()

				subdirs, files, err := scanDir(root, dir)
				local = append(local, files...)

				mu.Lock()
				active--
				queue = append(queue, subdirs...)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return path.Join(dir, name)
}
