//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The probes here try to make a file that runs with more than its caller's
// privileges: a set-user-ID or set-group-ID file, or one with file
// capabilities. Inside the sandbox every writable mount is nosuid, so such
// a file would matter only in a read-write grant, which is a host
// directory: there it runs with the identity of the user the server ran
// as, for whoever executes it. The probes make their files in a private
// directory (mode 0700) under /tmp and remove it, so even an attempt that
// succeeds leaves nothing another user could execute; what they test is
// that the calls are refused, which does not depend on the mount.

func setIDProbes() []probe {
	return []probe{
		{name: "fs/setuid-bit", category: fsCat,
			tried: "in a private directory in /tmp: create files with mode 04755 and 02755 (open, openat, creat, openat2, mknod, mknodat, O_TMPFILE), chmod, fchmod, fchmodat and fchmodat2 a file to them, mkdirat 02755, and link a set-user-ID file of the image in; no call may succeed and no file may end up set-user-ID or set-group-ID",
			run:   probeSetIDBits},
		{name: "fs/file-capability", category: fsCat,
			tried: "in a private directory in /tmp: set security.capability (CAP_SETUID, v2 and v3 with root uid 0) on a file with setxattr, lsetxattr, fsetxattr and setxattrat; all must be refused",
			run:   probeFileCapability},
	}
}

// setIDAttempt is one way to give a file S_ISUID or S_ISGID. run works in
// the directory that dirfd is open on (its path is dir) and returns the
// call's error. A call with resultOnly may succeed: only the mode of what it
// made counts (mkdir, whose mode the kernel strips of both bits).
type setIDAttempt struct {
	call       string
	resultOnly bool
	run        func(dirfd int, dir string) error
}

func setIDAttempts() []setIDAttempt {
	var as []setIDAttempt
	for _, m := range []uint32{0o4755, 0o2755} {
		name := func(call string) string { return fmt.Sprintf("%s-%o", call, m) }
		as = append(as,
			setIDAttempt{call: fmt.Sprintf("openat O_CREAT %#o", m), run: func(dirfd int, _ string) error {
				return closeIfOpen(unix.Openat(dirfd, name("openat"), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, m))
			}},
			// An unnamed file the walk cannot see; linkat would give it
			// a name, so its creation counts.
			setIDAttempt{call: fmt.Sprintf("openat O_TMPFILE %#o", m), run: func(dirfd int, _ string) error {
				return closeIfOpen(unix.Openat(dirfd, ".", unix.O_WRONLY|unix.O_TMPFILE|unix.O_CLOEXEC, m))
			}},
			setIDAttempt{call: fmt.Sprintf("openat2 O_CREAT %#o", m), run: func(dirfd int, _ string) error {
				return closeIfOpen(unix.Openat2(dirfd, name("openat2"), &unix.OpenHow{
					Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_CLOEXEC, Mode: uint64(m)}))
			}},
			setIDAttempt{call: fmt.Sprintf("mknodat S_IFREG|%#o", m), run: func(dirfd int, _ string) error {
				return unix.Mknodat(dirfd, name("mknodat"), unix.S_IFREG|m, 0)
			}},
			setIDAttempt{call: fmt.Sprintf("fchmodat %#o", m), run: func(dirfd int, _ string) error {
				return onPlainFile(dirfd, name("fchmodat"), func(int) error { return unix.Fchmodat(dirfd, name("fchmodat"), m, 0) })
			}},
			setIDAttempt{call: fmt.Sprintf("fchmod %#o", m), run: func(dirfd int, _ string) error {
				return onPlainFile(dirfd, name("fchmod"), func(fd int) error { return unix.Fchmod(fd, m) })
			}},
			setIDAttempt{call: fmt.Sprintf("fchmodat2 %#o", m), run: func(dirfd int, _ string) error {
				return onPlainFile(dirfd, name("fchmodat2"), func(int) error {
					p, err := unix.BytePtrFromString(name("fchmodat2"))
					if err != nil {
						return err
					}
					_, _, errno := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(m), 0, 0, 0)
					return errOf(errno)
				})
			}},
			setIDAttempt{call: fmt.Sprintf("mkdirat %#o", m), resultOnly: true, run: func(dirfd int, _ string) error {
				return unix.Mkdirat(dirfd, name("mkdirat"), m)
			}},
		)
		as = append(as, legacySetIDAttempts(m, name)...)
	}
	if src := setIDFileInImage(); src != "" {
		as = append(as, setIDAttempt{call: "link " + src, run: func(_ int, dir string) error {
			return unix.Link(src, filepath.Join(dir, "link"))
		}})
	}
	return as
}

// closeIfOpen closes what an open call returned and passes on its error.
func closeIfOpen(fd int, err error) error {
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// onPlainFile creates name (mode 0644) and calls f with it open; an error
// creating it is returned as is, which the probe reports as an error of
// its own, not as a refusal.
func onPlainFile(dirfd int, name string, f func(fd int) error) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &setupError{err}
	}
	defer unix.Close(fd)
	return f(fd)
}

// setupError is a failure before the attempt itself: the probe cannot tell.
type setupError struct{ err error }

func (e *setupError) Error() string { return "setup: " + e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

// setIDFileInImage returns a set-user-ID or set-group-ID file the sandbox
// can see (su, passwd... of the image or the host's /usr), or "".
func setIDFileInImage() string {
	for _, d := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				return filepath.Join(d, e.Name())
			}
		}
	}
	return ""
}

// privateDir makes a directory only this user can enter, under /tmp.
func privateDir(prefix string) (string, int, error) {
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		return "", -1, err
	}
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		os.RemoveAll(dir)
		return "", -1, err
	}
	return dir, dirfd, nil
}

func probeSetIDBits(*env) result {
	dir, dirfd, err := privateDir("mcpbox-probe-setid-")
	if err != nil {
		return errored(fmt.Sprintf("could not make a private directory in /tmp: %v", err))
	}
	defer os.RemoveAll(dir)
	defer unix.Close(dirfd)

	var succeeded, setup []string
	refused := map[string][]string{} // errno name → calls
	for _, a := range setIDAttempts() {
		err := a.run(dirfd, dir)
		var se *setupError
		switch {
		case err == nil && !a.resultOnly:
			succeeded = append(succeeded, a.call)
		case err == nil:
		case errors.As(err, &se):
			setup = append(setup, fmt.Sprintf("%s: %v", a.call, err))
		default:
			n := errnoOr(err)
			refused[n] = append(refused[n], a.call)
		}
	}
	marked, err := setIDFilesIn(dir)
	if err != nil {
		return errored(fmt.Sprintf("walk %s: %v", dir, err))
	}
	if len(succeeded) > 0 || len(marked) > 0 {
		var parts []string
		if len(succeeded) > 0 {
			parts = append(parts, "succeeded: "+strings.Join(succeeded, ", "))
		}
		if len(marked) > 0 {
			parts = append(parts, "set-ID files made: "+strings.Join(marked, ", "))
		}
		return allowed(strings.Join(parts, "; "))
	}
	if len(setup) > 0 {
		return errored(strings.Join(setup, "; "))
	}
	return setIDRefusals(refused, "no file is set-user-ID or set-group-ID (mkdirat made its directories without the bits)")
}

// setIDRefusals is the passing result of a probe whose calls were all
// refused: the errno when they share one, and which calls got which.
func setIDRefusals(refused map[string][]string, note string) result {
	var errnos, parts []string
	for n := range refused {
		errnos = append(errnos, n)
	}
	sort.Strings(errnos)
	for _, n := range errnos {
		parts = append(parts, n+": "+strings.Join(refused[n], ", "))
	}
	if note != "" {
		parts = append(parts, note)
	}
	r := pass(outcomeDenied, strings.Join(parts, "; "))
	if len(errnos) == 1 {
		r.Errno = errnos[0]
	}
	return r
}

// setIDFilesIn lists the files under dir with S_ISUID or S_ISGID.
func setIDFilesIn(dir string) ([]string, error) {
	var marked []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			marked = append(marked, fmt.Sprintf("%s %#o", filepath.Base(p), st.Mode&0o7777))
		}
		return nil
	})
	return marked, err
}

// vfsCapData is a struct vfs_cap_data (v2) or vfs_ns_cap_data (v3) giving
// CAP_SETUID, permitted and effective: what `setcap cap_setuid+ep` writes.
func vfsCapData(v3 bool) []byte {
	const (
		revision2 = 0x02000000
		revision3 = 0x03000000
		effective = 0x000001
	)
	magic, size := uint32(revision2|effective), 20
	if v3 {
		magic, size = revision3|effective, 24
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b[0:], magic)
	binary.LittleEndian.PutUint32(b[4:], 1<<unix.CAP_SETUID) // permitted, low word
	// inheritable, the high words and (v3) the root uid 0 stay zero.
	return b
}

func probeFileCapability(*env) result {
	dir, dirfd, err := privateDir("mcpbox-probe-fcaps-")
	if err != nil {
		return errored(fmt.Sprintf("could not make a private directory in /tmp: %v", err))
	}
	defer os.RemoveAll(dir)
	defer unix.Close(dirfd)
	const name = "file"
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o755)
	if err != nil {
		return errored(fmt.Sprintf("could not create a file: %v", err))
	}
	defer unix.Close(fd)
	path := filepath.Join(dir, name)
	const attr = "security.capability"
	attempts := []struct {
		call string
		run  func() error
	}{
		{"setxattr v2", func() error { return unix.Setxattr(path, attr, vfsCapData(false), 0) }},
		{"setxattr v3", func() error { return unix.Setxattr(path, attr, vfsCapData(true), 0) }},
		{"lsetxattr v2", func() error { return unix.Lsetxattr(path, attr, vfsCapData(false), 0) }},
		{"fsetxattr v2", func() error { return unix.Fsetxattr(fd, attr, vfsCapData(false), 0) }},
		{"setxattrat v2", func() error { return setxattrat(dirfd, name, attr, vfsCapData(false)) }},
	}
	var succeeded []string
	refused := map[string][]string{}
	for _, a := range attempts {
		err := a.run()
		switch {
		case err == nil:
			succeeded = append(succeeded, a.call)
		case errnoIs(err, unix.EPERM, unix.ENOSYS):
			n := errnoName(err)
			refused[n] = append(refused[n], a.call)
		default:
			r := fail(outcomeAllowed, fmt.Sprintf("%s passed the permission check and failed only on its arguments: %v", a.call, err))
			r.Errno = errnoName(err)
			return r
		}
	}
	if len(succeeded) > 0 {
		return allowed("file capabilities set with " + strings.Join(succeeded, ", "))
	}
	return setIDRefusals(refused, "")
}

// setxattrat calls setxattrat(2) (Linux 6.13) with struct xattr_args.
func setxattrat(dirfd int, path, attr string, value []byte) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	a, err := unix.BytePtrFromString(attr)
	if err != nil {
		return err
	}
	args := struct {
		value uint64
		size  uint32
		flags uint32
	}{uint64(uintptr(unsafe.Pointer(&value[0]))), uint32(len(value)), 0}
	_, _, errno := unix.Syscall6(unix.SYS_SETXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), 0,
		uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(value)
	return errOf(errno)
}
