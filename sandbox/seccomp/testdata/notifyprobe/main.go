// Command notifyprobe runs inside a runc container in the notify tests. It is
// static (CGO_ENABLED=0) and uses only package syscall.
//
//	notifyprobe probe   tries ptrace(PTRACE_PEEKDATA) of a pid that does not exist, unshare(CLONE_NEWUSER),
//	                    mount("none", "/tmp", "tmpfs", 0, "") and
//	                    socket(AF_PACKET, SOCK_RAW, 0); prints name=errno lines
//	notifyprobe loop N  calls acct(NULL) N times; prints the errno of the last
//	                    call, how many failed with it, and the ns per call
//	notifyprobe files   reads /etc/hostname, tries to create /usr/lib/probe-x,
//	                    creates and writes /tmp/probe-y, makes /tmp/probe-d,
//	                    removes /tmp/probe-y, tries to create /tmp/probe-s
//	                    set-user-ID and make /tmp/probe-d set-group-ID;
//	                    prints name=errno lines (and how many bytes were
//	                    read and written)
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

func errno(e syscall.Errno) int { return int(e) }

func main() {
	// The probe really mounts, unshares and ptraces when nothing stops it:
	// run it only where the test's config.json put it.
	if os.Getenv("NOTIFYPROBE_SANDBOX") != "1" {
		fmt.Fprintln(os.Stderr, "notifyprobe: refusing to run outside the test sandbox (NOTIFYPROBE_SANDBOX=1 is not set)")
		os.Exit(2)
	}
	switch {
	case len(os.Args) == 2 && os.Args[1] == "probe":
		probe()
	case len(os.Args) == 3 && os.Args[1] == "loop":
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		loop(n)
	case len(os.Args) == 2 && os.Args[1] == "files":
		files()
	default:
		fmt.Fprintln(os.Stderr, "usage: notifyprobe probe | loop N | files")
		os.Exit(2)
	}
}

func probe() {
	// PTRACE_PEEKDATA of a pid that cannot exist: ESRCH when the kernel
	// runs it, EPERM when it is denied. (PTRACE_TRACEME, tried first,
	// makes the probe a tracee whose next signal stops it for good.)
	_, _, e := syscall.RawSyscall(syscall.SYS_PTRACE, syscall.PTRACE_PEEKDATA, 999999999, 0)
	fmt.Printf("ptrace=%d\n", errno(e))

	_, _, e = syscall.RawSyscall(syscall.SYS_UNSHARE, syscall.CLONE_NEWUSER, 0, 0)
	fmt.Printf("unshare=%d\n", errno(e))

	src, _ := syscall.BytePtrFromString("none")
	dst, _ := syscall.BytePtrFromString("/tmp")
	fstype, _ := syscall.BytePtrFromString("tmpfs")
	data, _ := syscall.BytePtrFromString("")
	_, _, e = syscall.Syscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(src)), uintptr(unsafe.Pointer(dst)),
		uintptr(unsafe.Pointer(fstype)), 0, uintptr(unsafe.Pointer(data)), 0)
	fmt.Printf("mount=%d\n", errno(e))

	fd, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, syscall.AF_PACKET, syscall.SOCK_RAW, 0)
	if e == 0 {
		syscall.Close(int(fd))
	}
	fmt.Printf("socket=%d\n", errno(e))
}

func loop(n int) {
	var last syscall.Errno
	same := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		_, _, e := syscall.Syscall(syscall.SYS_ACCT, 0, 0, 0)
		if i == 0 || e == last {
			same++
		}
		last = e
	}
	elapsed := time.Since(start)
	fmt.Printf("errno=%d same=%d ns=%d\n", errno(last), same, elapsed.Nanoseconds()/int64(max(n, 1)))
}

// openat calls openat(AT_FDCWD, path, flags, mode) itself, so that the
// test knows which syscall and flags the filter sees.
func openat(path string, flags int, mode uint32) (int, syscall.Errno) {
	p, _ := syscall.BytePtrFromString(path)
	fd, _, e := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(_AT_FDCWD), uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), 0, 0)
	return int(fd), e
}

// _AT_FDCWD is a variable: a negative constant does not convert to uintptr.
var _AT_FDCWD = -0x64

func files() {
	// 1. A read-only open: allowed by the filter, never notified.
	fd, e := openat("/etc/hostname", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	n := 0
	if e == 0 {
		buf := make([]byte, 64)
		n, _ = syscall.Read(fd, buf)
		syscall.Close(fd)
	}
	fmt.Printf("read=%d readn=%d\n", errno(e), n)

	// 2. A create under the read-only root: notified, then refused by
	// the kernel (EROFS) once the agent lets it run.
	fd, e = openat("/usr/lib/probe-x", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_CLOEXEC, 0o644)
	if e == 0 {
		syscall.Close(fd)
	}
	fmt.Printf("usr=%d\n", errno(e))

	// 3. A create and write on the tmpfs: notified, then done.
	fd, e = openat("/tmp/probe-y", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	n = 0
	if e == 0 {
		n, _ = syscall.Write(fd, []byte("probe\n"))
		syscall.Close(fd)
	}
	fmt.Printf("tmp=%d written=%d\n", errno(e), n)

	// 4. mkdirat(AT_FDCWD, "/tmp/probe-d", 0755)
	p, _ := syscall.BytePtrFromString("/tmp/probe-d")
	_, _, e = syscall.Syscall(syscall.SYS_MKDIRAT, uintptr(_AT_FDCWD), uintptr(unsafe.Pointer(p)), 0o755)
	fmt.Printf("mkdir=%d\n", errno(e))

	// 5. unlinkat(AT_FDCWD, "/tmp/probe-y", 0)
	p, _ = syscall.BytePtrFromString("/tmp/probe-y")
	_, _, e = syscall.Syscall(syscall.SYS_UNLINKAT, uintptr(_AT_FDCWD), uintptr(unsafe.Pointer(p)), 0)
	fmt.Printf("unlink=%d\n", errno(e))

	// 6. A set-user-ID create and a set-group-ID chmod on the tmpfs:
	// refused by the filter (EPERM) before the agent, which would allow
	// them, is asked.
	fd, e = openat("/tmp/probe-s", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o4755)
	if e == 0 {
		syscall.Close(fd)
	}
	fmt.Printf("setuid=%d\n", errno(e))
	p, _ = syscall.BytePtrFromString("/tmp/probe-d")
	_, _, e = syscall.Syscall(syscall.SYS_FCHMODAT, uintptr(_AT_FDCWD), uintptr(unsafe.Pointer(p)), 0o2755)
	fmt.Printf("setgid=%d\n", errno(e))
}
