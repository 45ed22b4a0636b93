//go:build !linux

package packages

import (
	"io/fs"
	"os"
	"path/filepath"
)

// scanDir lists one directory of an entry: its subdirectories, and its
// other files stat'ed.
func scanDir(root, dir string) (subdirs []string, files []fileStat, err error) {
	ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		rel := joinRel(dir, e.Name())
		if e.IsDir() {
			subdirs = append(subdirs, rel)
			continue
		}
		if rel == metaFile {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		info, err := os.Lstat(p)
		if err != nil {
			return nil, nil, err
		}
		r := fileStat{Path: rel, Kind: '?', Size: info.Size(), Mode: unixMode(info.Mode()), MTime: info.ModTime().UnixNano()}
		switch {
		case info.Mode().IsRegular():
			r.Kind = 'f'
		case info.Mode()&os.ModeSymlink != 0:
			r.Kind = 'l'
			if r.Link, err = os.Readlink(p); err != nil {
				return nil, nil, err
			}
		}
		files = append(files, r)
	}
	return subdirs, files, nil
}

// owner is not implemented here: entries keep the owner the install gave.
func owner(path string) (uid, gid int, ok bool) { return 0, 0, false }

func chownTo(path string, info fs.FileInfo, uid, gid int) error { return nil }
