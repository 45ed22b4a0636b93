//go:build unix

package backend

import (
	"io/fs"
	"syscall"
)

// owner is the uid that owns a file, as this process sees it.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}
