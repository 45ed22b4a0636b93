package apparmor

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// CheckInstalled checks that only root can change what runs at binary, an
// absolute path with its symlinks resolved: the file and every directory
// above it belong to root, neither their group nor others may write them,
// and no file system on the way is mounted nosuid. The profile lifts the
// user-namespace restriction for whatever is at that path, so a file that
// a user could replace — theirs, in a directory they may write into, on
// removable media or on a FUSE mount of theirs (both of which the kernel
// or udisks mount nosuid, and whose owners the user decides) — would lift
// it for any program they put there. Group-writable counts as replaceable
// whatever the group: a POSIX ACL that lets a user write shows as group
// write in the mode.
func CheckInstalled(binary string) error {
	if err := checkPath(binary); err != nil {
		return err
	}
	for p := binary; ; p = filepath.Dir(p) {
		if problem := rootOnly(p, p == binary); problem != "" {
			return fmt.Errorf("%w %s: %s", ErrReplaceable, binary, problem)
		}
		if p == "/" {
			return nil
		}
	}
}

// rootOnly says who besides root could change p, "" if nobody could.
func rootOnly(p string, file bool) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return err.Error()
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return p + ": no owner known"
	case fi.Mode()&fs.ModeSymlink != 0:
		return p + " is a symlink (give the path with symlinks resolved)"
	case file && !fi.Mode().IsRegular():
		return p + " is not a regular file"
	case !file && !fi.IsDir():
		return p + " is not a directory"
	case st.Uid != 0:
		return fmt.Sprintf("%s belongs to uid %d, not root", p, st.Uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Sprintf("%s may be written by its group or others (mode %#o)", p, st.Mode&0o7777)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(p, &sfs); err != nil {
		return fmt.Sprintf("%s: %v", p, err)
	}
	if sfs.Flags&unix.ST_NOSUID != 0 {
		return p + " is on a file system mounted nosuid, as removable media and users' FUSE mounts are, whose files are whatever their owner brings"
	}
	return ""
}
