//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// legacySetIDAttempts are the calls of fs/setuid-bit that exist on amd64
// only (arm64 has just the *at forms): open, creat, chmod and mknod, made
// by number because Go's wrappers call the *at forms.
func legacySetIDAttempts(m uint32, name func(string) string) []setIDAttempt {
	// sys makes the call on dir/name(call); the pointer is converted in
	// the Syscall expression, which keeps the path alive.
	sys := func(nr uintptr, dir, call string, a1, a2 uintptr) error {
		p, err := unix.BytePtrFromString(filepath.Join(dir, name(call)))
		if err != nil {
			return err
		}
		r, _, errno := unix.Syscall(nr, uintptr(unsafe.Pointer(p)), a1, a2)
		if errno == 0 && (nr == unix.SYS_OPEN || nr == unix.SYS_CREAT) {
			unix.Close(int(r))
		}
		return errOf(errno)
	}
	return []setIDAttempt{
		{call: fmt.Sprintf("open O_CREAT %#o", m), run: func(_ int, dir string) error {
			return sys(unix.SYS_OPEN, dir, "open", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uintptr(m))
		}},
		{call: fmt.Sprintf("creat %#o", m), run: func(_ int, dir string) error {
			return sys(unix.SYS_CREAT, dir, "creat", uintptr(m), 0)
		}},
		{call: fmt.Sprintf("mknod S_IFREG|%#o", m), run: func(_ int, dir string) error {
			return sys(unix.SYS_MKNOD, dir, "mknod", uintptr(unix.S_IFREG|m), 0)
		}},
		{call: fmt.Sprintf("chmod %#o", m), run: func(dirfd int, dir string) error {
			return onPlainFile(dirfd, name("chmod"), func(int) error {
				return sys(unix.SYS_CHMOD, dir, "chmod", uintptr(m), 0)
			})
		}},
	}
}
