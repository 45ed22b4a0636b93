//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The probes here try to run a program that no grant put in place: written
// into memory (a memfd), into an anonymous file on a writable mount
// (O_TMPFILE), or onto any writable mount. What they execute is always a
// copy of this program with execMarkerArg, which prints that it ran and
// exits, so an attempt that succeeds does nothing else.

// execMarkerArg as the only argument makes the program print execMarker's
// result on stdout and exit 0. It runs without the sandbox check because it
// does nothing else.
const execMarkerArg = "__exec-marker"

func execProbes() []probe {
	return []probe{
		{name: "fs/exec-memfd", category: fsCat,
			tried: "memfd_create, write a copy of /proc/self/exe into it and execve /proc/self/fd/N (it would only print a marker)",
			run:   probeExecMemfd},
		{name: "fs/execveat-memfd", category: fsCat,
			tried: "in a child: memfd_create, write a copy of /proc/self/exe and execveat(fd, \"\", AT_EMPTY_PATH), which is fexecve",
			run:   func(e *env) result { return childResult(e, "fs/execveat-memfd") }},
		{name: "fs/memfd-mfd-exec", category: fsCat,
			tried: "memfd_create(MFD_EXEC), asking the kernel for an executable memfd",
			run:   probeMemfdExecFlag},
		{name: "fs/exec-tmpfile", category: fsCat,
			tried: "open an O_TMPFILE file in /tmp, /dev/shm and $HOME, write a copy of /proc/self/exe and execve /proc/self/fd/N",
			run:   probeExecTmpfile},
		{name: "fs/exec-dev-shm", category: fsCat,
			tried: "copy /proc/self/exe (or a #!/bin/sh script) to /dev/shm, chmod 0700 and exec it; noexec must refuse",
			run:   execIn("/dev/shm")},
		{name: "fs/writable-mounts-noexec", category: fsCat,
			tried: "list /proc/self/mountinfo; every writable mount that can hold a file must be noexec",
			run:   probeWritableMountsNoexec},
	}
}

func execChildren() map[string]childFunc {
	return map[string]childFunc{"fs/execveat-memfd": childExecveatMemfd}
}

// execMarker is what a successful exec attempt runs: it says so, naming
// the file this process was executed from.
func execMarker(stdout io.Writer) int {
	self, _ := os.Readlink("/proc/self/exe")
	r := allowed("executed: a program ran from " + self)
	if err := json.NewEncoder(stdout).Encode(r); err != nil {
		return exitUsage
	}
	return exitPass
}

// copySelf writes this program into fd, which it closes, and returns a
// read-only descriptor of the same file: the kernel refuses to execute a
// file open for writing (ETXTBSY), which is no defence, so the attempt
// must not stop there.
func copySelf(fd int) (int, error) {
	defer unix.Close(fd)
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return -1, err
	}
	for len(self) > 0 {
		n, err := unix.Write(fd, self)
		if err != nil {
			return -1, err
		}
		self = self[n:]
	}
	return unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

// execMarkerAt executes path with execMarkerArg in a child process and
// reports whether the kernel ran it. what names the file for the detail.
func execMarkerAt(e *env, path, what string) result {
	// Built by hand: exec.Command would check X_OK with faccessat first
	// and never reach execve.
	var stdout bytes.Buffer
	cmd := &exec.Cmd{Path: path, Args: []string{path, execMarkerArg}, Env: os.Environ(), Stdout: &stdout}
	if err := cmd.Start(); err != nil {
		return denied(err, fmt.Sprintf("execve of %s: %v", what, err))
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-e.ctx.Done():
			_ = cmd.Process.Kill()
		case <-done:
		}
	}()
	_ = cmd.Wait()
	close(done)
	return allowed(fmt.Sprintf("execve of %s succeeded; it printed %s", what, strings.TrimSpace(tail(stdout.String(), 200))))
}

func probeExecMemfd(e *env) result {
	fd, err := unix.MemfdCreate("mcpbox-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return denied(err, "memfd_create: "+err.Error())
	}
	if fd, err = copySelf(fd); err != nil {
		return errored(fmt.Sprintf("could not write a copy of this program into the memfd: %v", err))
	}
	defer unix.Close(fd)
	r := execMarkerAt(e, "/proc/self/fd/"+strconv.Itoa(fd), "a memfd holding a copy of this program")
	return withMemfdSetting(r)
}

// withMemfdSetting adds the sandbox's vm.memfd_noexec to a result's detail.
func withMemfdSetting(r result) result {
	if b, err := os.ReadFile("/proc/sys/vm/memfd_noexec"); err == nil {
		r.Detail += "; vm.memfd_noexec=" + strings.TrimSpace(string(b))
	}
	return r
}

// childExecveatMemfd runs in a child: if execveat succeeds, this process
// becomes the marker, which prints the result.
func childExecveatMemfd([]string) result {
	fd, err := unix.MemfdCreate("mcpbox-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return denied(err, "memfd_create: "+err.Error())
	}
	if fd, err = copySelf(fd); err != nil {
		return errored(fmt.Sprintf("could not write a copy of this program into the memfd: %v", err))
	}
	defer unix.Close(fd)
	err = execveat(fd, "", []string{"mcpbox-probe", execMarkerArg}, os.Environ(), unix.AT_EMPTY_PATH)
	return withMemfdSetting(denied(err, "execveat(memfd, \"\", AT_EMPTY_PATH): "+err.Error()))
}

// execveat is the raw system call; it returns only on failure.
func execveat(dirfd int, path string, argv, envv []string, flags int) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	av, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	ev, err := syscall.SlicePtrFromStrings(envv)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&av[0])), uintptr(unsafe.Pointer(&ev[0])), uintptr(flags), 0)
	return errno
}

func probeMemfdExecFlag(e *env) result {
	fd, err := unix.MemfdCreate("mcpbox-probe", unix.MFD_CLOEXEC|unix.MFD_EXEC)
	if err != nil {
		// Kernels before 6.3 do not know the flag (EINVAL); all their
		// memfds are executable, which fs/exec-memfd shows.
		return denied(err, "memfd_create(MFD_EXEC): "+err.Error())
	}
	r := allowed("memfd_create(MFD_EXEC) succeeded")
	if fd, err := copySelf(fd); err == nil {
		r.Detail += "; " + execMarkerAt(e, "/proc/self/fd/"+strconv.Itoa(fd), "it").Detail
		unix.Close(fd)
	}
	return r
}

func probeExecTmpfile(e *env) result {
	dirs := []string{"/tmp", "/dev/shm"}
	if h := os.Getenv("HOME"); h != "" && h != "/tmp" {
		dirs = append(dirs, h)
	}
	var ran, refused []string
	for _, d := range dirs {
		fd, err := unix.Open(d, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
		if err != nil {
			refused = append(refused, fmt.Sprintf("%s: O_TMPFILE %s", d, errnoOr(err)))
			continue
		}
		r := func() result {
			fd, err := copySelf(fd)
			if err != nil {
				return errored(fmt.Sprintf("%s: could not write into the O_TMPFILE file: %v", d, err))
			}
			defer unix.Close(fd)
			return execMarkerAt(e, "/proc/self/fd/"+strconv.Itoa(fd), "an O_TMPFILE file in "+d)
		}()
		switch {
		case r.Outcome == outcomeError:
			return r
		case r.Pass:
			refused = append(refused, fmt.Sprintf("%s: execve %s", d, r.Errno))
		default:
			ran = append(ran, r.Detail)
		}
	}
	if len(ran) > 0 {
		return allowed(strings.Join(append(ran, refused...), "; "))
	}
	return pass(outcomeDenied, strings.Join(refused, "; "))
}

// writableExecMounts returns the mounts of ms that are writable, not noexec
// and could hold a program: every one but a device node (runc masks /proc
// files with binds of /dev/null, which nothing can be written into as a
// file or executed from). isDevice tells a mount point's type.
func writableExecMounts(ms []mount, isDevice func(string) bool) []mount {
	var out []mount
	for _, m := range ms {
		if !m.opts["rw"] || m.super["ro"] || m.opts["noexec"] {
			continue
		}
		if isDevice(m.point) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func isDeviceNode(path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	t := st.Mode & unix.S_IFMT
	return t == unix.S_IFCHR || t == unix.S_IFBLK
}

func probeWritableMountsNoexec(*env) result {
	ms, err := readMounts()
	if err != nil {
		return errored(err.Error())
	}
	if len(ms) == 0 {
		return errored("/proc/self/mountinfo lists no mounts")
	}
	bad := writableExecMounts(ms, isDeviceNode)
	if len(bad) == 0 {
		n := 0
		for _, m := range ms {
			if m.opts["rw"] && !m.super["ro"] {
				n++
			}
		}
		return pass(outcomeDenied, fmt.Sprintf("%d mounts, %d writable, every writable one noexec or a device", len(ms), n))
	}
	var names []string
	for _, m := range bad {
		names = append(names, fmt.Sprintf("%s (%s)", m.point, m.fstype))
	}
	return fail(outcomeAllowed, "writable and executable: "+strings.Join(names, ", "))
}
