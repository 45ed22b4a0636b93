package backend

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// StateDirError is a rootless state directory that cannot be used, with
// what is wrong and what fixes it.
type StateDirError struct {
	Dir     string
	Problem string
	Fix     string
}

func (e *StateDirError) Error() string {
	return fmt.Sprintf("rootless state directory %s: %s: %s", e.Dir, e.Problem, e.Fix)
}

// StateDir is the directory the rootless runtime keeps its state in:
// $XDG_RUNTIME_DIR/mcpbox when xdgRuntimeDir is a directory that is the
// caller's alone, as the XDG base directory spec requires of it (owned by
// the caller, mode 0700); else /tmp/mcpbox-UID with the caller's host uid.
// It creates the directory 0700 when it is missing, and refuses one that
// is a symlink, belongs to someone else or others may write into: anyone
// can make /tmp/mcpbox-UID first, to watch or feed what mcpbox keeps
// there. /tmp's sticky bit keeps anyone else from replacing it afterwards.
//
// The fallback is /tmp and not $TMPDIR so that `mcpbox gc`, started from
// another environment than the session, finds the same directory.
func StateDir(xdgRuntimeDir string) (string, error) {
	return stateDir(xdgRuntimeDir, "/tmp", os.Geteuid(), HostUID())
}

// RuntimeDirProblem says why xdgRuntimeDir cannot hold the rootless
// runtime's state, "" if it can.
func RuntimeDirProblem(xdgRuntimeDir string) string {
	return runtimeDirProblem(xdgRuntimeDir, os.Geteuid())
}

// stateDir is StateDir with the fallback's parent, the effective uid (the
// owner of what this process makes, as it sees it) and the caller's host
// uid (in the fallback's name) given.
func stateDir(xdg, tmp string, euid, hostUID int) (string, error) {
	if runtimeDirProblem(xdg, euid) == "" {
		return ensureDir(filepath.Join(xdg, "mcpbox"), euid)
	}
	return ensureDir(filepath.Join(tmp, "mcpbox-"+strconv.Itoa(hostUID)), euid)
}

func runtimeDirProblem(dir string, euid int) string {
	switch {
	case dir == "":
		return "XDG_RUNTIME_DIR is not set"
	case !filepath.IsAbs(dir):
		return fmt.Sprintf("XDG_RUNTIME_DIR=%s is not an absolute path", dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Sprintf("XDG_RUNTIME_DIR=%s: %v", dir, err)
	}
	uid, ok := owner(fi)
	switch {
	case !fi.IsDir():
		return fmt.Sprintf("XDG_RUNTIME_DIR=%s is not a directory", dir)
	case !ok || uid != euid:
		return fmt.Sprintf("XDG_RUNTIME_DIR=%s belongs to uid %d, not to this user (a variable kept across sudo or su?)", dir, uid)
	case fi.Mode().Perm() != 0o700:
		return fmt.Sprintf("XDG_RUNTIME_DIR=%s has mode %#o, not 0700", dir, fi.Mode().Perm())
	}
	return ""
}

// ensureDir makes dir (mode 0700) unless it exists, and checks that it is
// a directory of euid that nobody else may write into.
func ensureDir(dir string, euid int) (string, error) {
	bad := func(problem, fix string) (string, error) {
		return "", &StateDirError{Dir: dir, Problem: problem, Fix: fix}
	}
	err := os.Mkdir(dir, 0o700)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return bad(err.Error(), "set XDG_RUNTIME_DIR to a directory of yours with mode 0700")
	}
	created := err == nil
	fi, err := os.Lstat(dir)
	if err != nil {
		return bad(err.Error(), "set XDG_RUNTIME_DIR to a directory of yours with mode 0700")
	}
	uid, ok := owner(fi)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return bad("it is a symlink, which mcpbox does not follow there", "remove it: rm "+dir)
	case !fi.IsDir():
		return bad("it is not a directory", "remove it: rm "+dir)
	case !ok || uid != euid:
		return bad(fmt.Sprintf("it belongs to uid %d: someone else made it first", uid), "ask root to remove it (sudo rm -r "+dir+"), or set XDG_RUNTIME_DIR to a directory of yours with mode 0700")
	case fi.Mode().Perm()&0o022 != 0 && !created:
		return bad(fmt.Sprintf("others may write into it (mode %#o)", fi.Mode().Perm()), "remove it (rm -r "+dir+"); mcpbox makes it again, mode 0700")
	}
	// The umask may have taken bits mcpbox needs; a directory of ours with
	// read or search bits for others is closed again.
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return bad(err.Error(), "chmod 0700 "+dir)
		}
	}
	return dir, nil
}
