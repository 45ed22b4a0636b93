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

// StateLocation is where the rootless runtime keeps its state, and why
// there.
type StateLocation struct {
	Dir string
	// RuntimeDirProblem says why Dir is not $XDG_RUNTIME_DIR/mcpbox, ""
	// when it is.
	RuntimeDirProblem string
	// Tmp says why Dir is not /tmp/mcpbox-UID either: nil unless Dir is
	// the last fallback, in the caller's home.
	Tmp *StateDirError
}

// Sessions is the rootless sessions' directory in Dir, made 0700.
func (l StateLocation) Sessions() (string, error) {
	dir := filepath.Join(l.Dir, "sessions")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("rootless run directory: %w", err)
	}
	return dir, nil
}

// Why says why Dir is not in $XDG_RUNTIME_DIR, "" when it is.
func (l StateLocation) Why() string {
	if l.Tmp == nil {
		return l.RuntimeDirProblem
	}
	return l.RuntimeDirProblem + "; " + l.Tmp.Dir + ": " + l.Tmp.Problem
}

// StateDir finds the directory the rootless runtime keeps its state in,
// the first usable of:
//
//   - $XDG_RUNTIME_DIR/mcpbox, when xdgRuntimeDir is a directory that is
//     the caller's alone, as the XDG base directory spec requires of it
//     (owned by the caller, mode 0700);
//   - /tmp/mcpbox-UID, with the caller's host uid, for sessions without
//     one (ssh without pam_systemd, su, cron, CI);
//   - stateHome/run, stateHome being $XDG_STATE_HOME/mcpbox (made with
//     its parents; a relative one, as with HOME unset, is no place), for
//     when /tmp/mcpbox-UID cannot be used: anyone may make that first, and
//     were it the end of the line, any local user could keep the caller
//     from running mcpbox until root removed it.
//
// It creates the directory 0700 when it is missing, and never uses one
// that is a symlink, belongs to someone else or others may write into: in
// /tmp that would let its maker watch or feed what mcpbox keeps there.
// /tmp's sticky bit keeps anyone else from replacing a directory of the
// caller's afterwards. Nobody else can write into the caller's own
// $XDG_RUNTIME_DIR, so a problem with the directory there is an error,
// not a reason to look further.
//
// The second place is /tmp and not $TMPDIR so that `mcpbox gc`, started from
// another environment than the session, finds the same directory. The
// home fallback outlives a reboot, unlike the other two: gc tells a dead
// session from a live one by its owner's pid and start time, which a
// reboot does not recycle together. On a home on NFS the FIFOs and unix
// sockets that mcpbox and runc make there still work: their data never
// leaves the local kernel. Its paths are longer, though, and a socket's
// path must fit in 108 bytes.
func StateDir(xdgRuntimeDir, stateHome string) (StateLocation, error) {
	return stateDir(xdgRuntimeDir, "/tmp", stateHome, os.Geteuid(), HostUID())
}

// RuntimeDirProblem says why xdgRuntimeDir cannot hold the rootless
// runtime's state, "" if it can.
func RuntimeDirProblem(xdgRuntimeDir string) string {
	return runtimeDirProblem(xdgRuntimeDir, os.Geteuid())
}

// stateDir is StateDir with the /tmp fallback's parent, the effective uid
// (the owner of what this process makes, as it sees it) and the caller's
// host uid (in the fallback's name) given.
func stateDir(xdg, tmp, stateHome string, euid, hostUID int) (StateLocation, error) {
	loc := StateLocation{RuntimeDirProblem: runtimeDirProblem(xdg, euid)}
	if loc.RuntimeDirProblem == "" {
		dir, err := ensureDir(filepath.Join(xdg, "mcpbox"), euid)
		if err != nil {
			return StateLocation{}, err
		}
		loc.Dir = dir
		return loc, nil
	}
	dir, err := ensureDir(filepath.Join(tmp, "mcpbox-"+strconv.Itoa(hostUID)), euid)
	if err == nil {
		loc.Dir = dir
		return loc, nil
	}
	loc.Tmp = err
	if !filepath.IsAbs(stateHome) {
		err.Fix += "; or set HOME (or XDG_STATE_HOME) to a directory of yours, for mcpbox to keep its state in instead"
		return StateLocation{}, err
	}
	home := filepath.Join(stateHome, "run")
	var homeErr *StateDirError
	if mkErr := os.MkdirAll(stateHome, 0o700); mkErr != nil {
		homeErr = &StateDirError{Dir: home, Problem: mkErr.Error(), Fix: "set XDG_RUNTIME_DIR to a directory of yours with mode 0700"}
	} else {
		dir, homeErr = ensureDir(home, euid)
	}
	if homeErr != nil {
		homeErr.Problem += " (tried after " + err.Dir + ": " + err.Problem + ")"
		homeErr.Fix += "; or: " + err.Fix
		return StateLocation{}, homeErr
	}
	loc.Dir = dir
	return loc, nil
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
func ensureDir(dir string, euid int) (string, *StateDirError) {
	bad := func(problem, fix string) (string, *StateDirError) {
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
