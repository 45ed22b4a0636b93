//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// memfdHookArg, as the only argument, makes mcpbox-init the
// createContainer hook that sandbox.WithMemfdNoExec puts into every
// sandbox's spec; sandbox.MemfdHookArg is the same string.
const memfdHookArg = "--oci-hook=memfd-noexec"

const (
	memfdNoExecPath = "/proc/sys/vm/memfd_noexec"
	// memfdNoExecEnforced is the strictest value of vm.memfd_noexec: every
	// memfd is created without exec permission and sealed so (F_SEAL_EXEC),
	// and memfd_create(MFD_EXEC) fails with EACCES.
	memfdNoExecEnforced = 2
	// initPidNSIno is the inode number of the host's (initial) pid
	// namespace, PROC_PID_INIT_INO in include/linux/proc_ns.h.
	initPidNSIno = 0xEFFFFFFC
)

// memfdHook sets vm.memfd_noexec to 2 in the pid namespace it runs in and
// checks that the kernel now refuses to make a memfd executable. mcpbox
// installs it only where it expects it to work (Linux 6.6 or later, a
// runtime that runs hooks as the host's root); elsewhere the sandbox's
// seccomp filter refuses memfd_create instead (sandbox.MemfdDeny).
//
// runc runs it as a createContainer hook: from its init process, inside the
// container's new pid namespace (the hook is a child of that namespace's
// pid 1), as root with every capability, before it loads seccomp, drops
// capabilities and starts mcpbox-init proper. The kernel applies the value
// to the writer's pid namespace and its descendants, and no namespace can
// be made less strict than its parent, so nothing in the sandbox, which has
// no capabilities, can undo it. A value of 2 that the namespace already
// inherits is accepted without a write: a caller that cannot write (a
// rootless runtime, whose root is not the host's) still passes where the
// host enforces it.
//
// It is the only thing mcpbox-init does as root, and it refuses to run
// anywhere but in a pid namespace of its own under pid 1: run on the host it
// would make every memfd on the machine non-executable (runc itself
// re-executes a copy of itself from one).
func memfdHook(stdin io.Reader, stderr io.Writer) int {
	// runc writes the container's state to the hook's stdin; read it so
	// that runc's write never fails, though nothing in it is needed.
	_, _ = io.Copy(io.Discard, io.LimitReader(stdin, 1<<20))
	if err := checkHookContext(); err != nil {
		fmt.Fprintf(stderr, "mcpbox-init: memfd hook: %v\n", err)
		return exitSetup
	}
	if err := enforceMemfdNoExec(); err != nil {
		fmt.Fprintf(stderr, "mcpbox-init: memfd hook: %v\n", err)
		return exitSetup
	}
	return 0
}

// checkHookContext fails unless the process is a child of pid 1 in a pid
// namespace other than the host's, which is where runc runs a
// createContainer hook.
func checkHookContext() error {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return fmt.Errorf("read the pid namespace: %w", err)
	}
	if st.Ino == initPidNSIno {
		return errors.New("refusing to run in the host's pid namespace: this mode is runc's createContainer hook for an mcpbox sandbox and would change vm.memfd_noexec for the whole machine")
	}
	if ppid := os.Getppid(); ppid != 1 {
		return fmt.Errorf("refusing to run with parent pid %d: as runc's createContainer hook the parent is the container's pid 1", ppid)
	}
	return nil
}

// enforceMemfdNoExec raises vm.memfd_noexec to 2 in this pid namespace
// unless it is there already, and then checks what the kernel does: an
// ordinary memfd is created without exec permission, and MFD_EXEC fails.
func enforceMemfdNoExec() error {
	v, err := readMemfdNoExec()
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("this kernel has no %s (added in Linux 6.3), so a program in the sandbox could write code into a memfd and execute it: run mcpbox with --memfd deny (or auto), which refuses memfd_create in the sandbox instead of using this hook", memfdNoExecPath)
	}
	if err != nil {
		return err
	}
	if v < memfdNoExecEnforced {
		f, err := os.OpenFile(memfdNoExecPath, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(strconv.Itoa(memfdNoExecEnforced) + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("set %s to %d in the sandbox's pid namespace (it is %d): %w; the hook needs the host's root, or a host that sets vm.memfd_noexec=2 itself: run mcpbox with --memfd deny", memfdNoExecPath, memfdNoExecEnforced, v, err)
		}
		if v, err = readMemfdNoExec(); err != nil {
			return err
		}
		if v < memfdNoExecEnforced {
			return fmt.Errorf("%s reads %d after writing %d", memfdNoExecPath, v, memfdNoExecEnforced)
		}
	}

	fd, err := unix.MemfdCreate("mcpbox-init-check", unix.MFD_CLOEXEC)
	if err != nil {
		// Linux 6.3 to 6.5 refuse memfd_create without MFD_NOEXEC_SEAL at
		// 2 instead of implying it, which breaks Node and Chromium.
		return fmt.Errorf("memfd_create without flags fails with vm.memfd_noexec=%d (%w): this kernel refuses what programs in the sandbox need; run mcpbox with --memfd deny", v, err)
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("fstat a memfd: %w", err)
	}
	if st.Mode&0o111 != 0 {
		return fmt.Errorf("a memfd is created with mode %#o at vm.memfd_noexec=%d: the kernel does not enforce the setting", st.Mode&0o7777, v)
	}
	if fd, err := unix.MemfdCreate("mcpbox-init-check", unix.MFD_CLOEXEC|unix.MFD_EXEC); err == nil {
		unix.Close(fd)
		return fmt.Errorf("memfd_create(MFD_EXEC) succeeds at vm.memfd_noexec=%d: the kernel does not enforce the setting", v)
	}
	return nil
}

func readMemfdNoExec() (int, error) {
	b, err := os.ReadFile(memfdNoExecPath)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", memfdNoExecPath, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read %s: %q is not a number", memfdNoExecPath, b)
	}
	return v, nil
}
