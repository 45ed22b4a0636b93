//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func identityProbes() []probe {
	return []probe{
		{name: "identity/caps-zero", category: "identity",
			tried: "read CapInh, CapPrm, CapEff, CapBnd and CapAmb from /proc/self/status; all must be 0",
			run:   probeCapsZero},
		{name: "identity/no-new-privs", category: "identity",
			tried: "read NoNewPrivs from /proc/self/status; must be 1",
			run:   statusEquals("NoNewPrivs", "1")},
		{name: "identity/seccomp-filter", category: "identity",
			tried: "read Seccomp from /proc/self/status; must be 2 (filter mode)",
			run:   statusEquals("Seccomp", "2")},
		{name: "identity/non-root-uid", category: "identity",
			tried: "getuid, geteuid and the Uid line of /proc/self/status; none may be 0",
			run:   probeNonRootUID},
		{name: "identity/non-root-gid", category: "identity",
			tried: "getgid, getegid and getgroups; none may be 0",
			run:   probeNonRootGID},
		{name: "identity/only-stdio-fds", category: "identity",
			tried: "list /proc/self/fd at start; only 0, 1 and 2 may be open",
			run:   probeOnlyStdio},
		{name: "identity/stdio-pipes", category: "identity",
			tried: "fstat fds 0, 1 and 2; each must be a pipe or FIFO",
			run:   probeStdioPipes},
		{name: "identity/cwd-inside-root", category: "identity",
			tried: "getcwd; must succeed and not be \"(unreachable)\"",
			run:   probeCwd},
	}
}

func readStatus() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	return string(b), err
}

func probeCapsZero(*env) result {
	st, err := readStatus()
	if err != nil {
		return errored(err.Error())
	}
	var bad []string
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		v, ok := statusField(st, k)
		if !ok {
			bad = append(bad, k+" missing")
			continue
		}
		n, err := strconv.ParseUint(v, 16, 64)
		if err != nil || n != 0 {
			bad = append(bad, k+"="+v)
		}
	}
	if len(bad) > 0 {
		return fail(outcomeAllowed, "capabilities held: "+strings.Join(bad, ", "))
	}
	return pass(outcomeDenied, "all capability sets are empty")
}

func statusEquals(field, want string) func(*env) result {
	return func(*env) result {
		st, err := readStatus()
		if err != nil {
			return errored(err.Error())
		}
		v, ok := statusField(st, field)
		if !ok {
			return errored(field + " not in /proc/self/status")
		}
		if v != want {
			return fail(outcomeAllowed, fmt.Sprintf("%s is %s, want %s", field, v, want))
		}
		return pass(outcomeDenied, fmt.Sprintf("%s is %s", field, v))
	}
}

func probeNonRootUID(*env) result {
	st, err := readStatus()
	if err != nil {
		return errored(err.Error())
	}
	uids, _ := statusField(st, "Uid")
	detail := fmt.Sprintf("uid=%d euid=%d Uid:%s", unix.Getuid(), unix.Geteuid(), uids)
	if unix.Getuid() == 0 || unix.Geteuid() == 0 {
		return fail(outcomeAllowed, detail)
	}
	for _, f := range strings.Fields(uids) {
		if f == "0" {
			return fail(outcomeAllowed, detail)
		}
	}
	return pass(outcomeDenied, detail)
}

func probeNonRootGID(*env) result {
	groups, err := unix.Getgroups()
	if err != nil {
		return errored(fmt.Sprintf("getgroups: %v", err))
	}
	detail := fmt.Sprintf("gid=%d egid=%d groups=%v", unix.Getgid(), unix.Getegid(), groups)
	if unix.Getgid() == 0 || unix.Getegid() == 0 {
		return fail(outcomeAllowed, detail)
	}
	for _, g := range groups {
		if g == 0 {
			return fail(outcomeAllowed, detail)
		}
	}
	return pass(outcomeDenied, detail)
}

// goRuntimeFD reports whether an fd open at start is one the Go runtime
// opened itself before main: since Go 1.25 it keeps the cgroup CPU limit
// files open to follow GOMAXPROCS, and polling stdio may create an epoll fd.
func goRuntimeFD(target string) bool {
	switch target {
	case "anon_inode:[eventpoll]", "anon_inode:[eventfd]":
		return true
	}
	if strings.HasPrefix(target, "/sys/fs/cgroup/") {
		switch filepath.Base(target) {
		case "cpu.max", "cpu.cfs_quota_us", "cpu.cfs_period_us":
			return true
		}
	}
	return false
}

func probeOnlyStdio(e *env) result {
	s := e.startFDs
	if s.err != nil {
		return errored(s.err.Error())
	}
	var extra, ignored []string
	var fds []int
	for fd := range s.fds {
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	for _, fd := range fds {
		if fd <= 2 {
			continue
		}
		t := s.fds[fd]
		if goRuntimeFD(t) {
			ignored = append(ignored, fmt.Sprintf("%d→%s", fd, t))
			continue
		}
		extra = append(extra, fmt.Sprintf("%d→%s", fd, t))
	}
	detail := fmt.Sprintf("open at start: %d fds", len(fds))
	if len(ignored) > 0 {
		detail += "; ignored the Go runtime's " + strings.Join(ignored, ", ")
	}
	if len(extra) > 0 {
		return fail(outcomeAllowed, "inherited fds: "+strings.Join(extra, ", ")+"; "+detail)
	}
	for fd := 0; fd <= 2; fd++ {
		if _, ok := s.fds[fd]; !ok {
			detail += fmt.Sprintf("; fd %d is not open", fd)
		}
	}
	return pass(outcomeDenied, detail)
}

func probeStdioPipes(*env) result {
	var bad, kinds []string
	for fd := 0; fd <= 2; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			bad = append(bad, fmt.Sprintf("fd %d: %v", fd, err))
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFIFO {
			bad = append(bad, fmt.Sprintf("fd %d is mode %#o, not a FIFO", fd, st.Mode&unix.S_IFMT))
			continue
		}
		kinds = append(kinds, fmt.Sprintf("fd %d FIFO", fd))
	}
	if len(bad) > 0 {
		return fail(outcomeAllowed, strings.Join(bad, "; "))
	}
	return pass(outcomeDenied, strings.Join(kinds, ", "))
}

func probeCwd(*env) result {
	buf := make([]byte, 4096)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return fail(outcomeError, fmt.Sprintf("getcwd: %v (the cwd may be outside the root)", err))
	}
	cwd := strings.TrimRight(string(buf[:n]), "\x00")
	if strings.HasPrefix(cwd, "(unreachable)") || !strings.HasPrefix(cwd, "/") {
		return fail(outcomeAllowed, "cwd is outside the root: "+cwd)
	}
	return pass(outcomeDenied, "cwd is "+cwd)
}
