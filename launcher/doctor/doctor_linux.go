package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/sandbox/egress"
)

func checkKernel() Result {
	c := Result{Name: "os"}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("uname: %v", err)
		return c
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("%s %s %s", unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]))
	return c
}

func fileOwner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// seccompActions are the filter return actions mcpbox's profiles use, and
// whether the sandbox depends on each.
var seccompActions = []struct {
	name     string
	action   uint32
	required bool
}{
	{"kill_process", unix.SECCOMP_RET_KILL_PROCESS, true},
	{"errno", unix.SECCOMP_RET_ERRNO, true},
	{"user_notif", unix.SECCOMP_RET_USER_NOTIF, false},
	{"log", unix.SECCOMP_RET_LOG, false},
}

// seccompActionAvail asks the kernel whether it knows a filter action
// (seccomp(2) SECCOMP_GET_ACTION_AVAIL, Linux 4.14).
func seccompActionAvail(action uint32) error {
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	if errno != 0 {
		return errno
	}
	return nil
}

func checkSeccomp(opts Options) Result {
	c := Result{Name: "seccomp"}
	data, err := os.ReadFile(opts.path("/proc/self/status"))
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("read /proc/self/status: %v", err)
		return c
	}
	if !strings.Contains(string(data), "\nSeccomp:") {
		c.Status, c.Detail = Fail, "the kernel has no seccomp (no Seccomp field in /proc/self/status)"
		c.Fix = "use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER"
		return c
	}
	var avail, missing []string
	status := OK
	for _, a := range seccompActions {
		if err := seccompActionAvail(a.action); err != nil {
			missing = append(missing, a.name)
			if a.required {
				status = Fail
			} else if status == OK {
				status = Warn
			}
			continue
		}
		avail = append(avail, a.name)
	}
	c.Status = status
	c.Detail = "supported; actions: " + strings.Join(avail, ", ")
	if missing != nil {
		c.Detail += "; unavailable: " + strings.Join(missing, ", ")
		if status == Warn {
			c.Detail += " (the sandbox works; features built on them do not)"
		}
		c.Fix = "use a newer kernel (user_notif needs Linux 5.0, the others 4.14)"
	}
	return c
}

func checkCgroups(opts Options) Result {
	c := Result{Name: "cgroups"}
	var st unix.Statfs_t
	if err := unix.Statfs(opts.path("/sys/fs/cgroup"), &st); err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("statfs /sys/fs/cgroup: %v", err)
		c.Fix = "mount the cgroup filesystem at /sys/fs/cgroup (your init system normally does)"
		return c
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		c.Detail = "v2 (unified)"
		data, err := os.ReadFile(opts.path("/sys/fs/cgroup/cgroup.controllers"))
		if err != nil {
			c.Status, c.Detail = Fail, fmt.Sprintf("v2, but read cgroup.controllers: %v", err)
			return c
		}
		enabled := map[string]bool{}
		for _, name := range strings.Fields(string(data)) {
			enabled[name] = true
		}
		checkControllers(&c, enabled)
		return c
	}
	c.Detail = "v1"
	if _, err := os.Stat(opts.path("/sys/fs/cgroup/unified")); err == nil {
		c.Detail = "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)"
	}
	data, err := os.ReadFile(opts.path("/proc/cgroups"))
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s, but read /proc/cgroups: %v", c.Detail, err)
		return c
	}
	checkControllers(&c, procCgroups(data))
	return c
}

// checkNftables installs mcpbox's egress rules in a scratch network
// namespace, as a session does, then lists and deletes the tables. The
// namespace lives only as long as egress.NetNS's thread is in it. An
// ordinary user cannot; the user namespaces check does the same as root
// of a user namespace, as the rootless runtime would.
func checkNftables() Result {
	c := Result{Name: "nftables"}
	if os.Geteuid() != 0 {
		c.Status, c.Detail = Skip, "skipped: needs root (the user namespaces check installs the same rules in a user namespace)"
		return c
	}
	if err := egressRulesWork(); err != nil {
		c.Status, c.Detail = Fail, err.Error()
		c.Fix = "sudo modprobe -a nf_tables nft_nat nft_redir nft_ct"
		var ns netnsError
		if errors.As(err, &ns) {
			c.Fix = "check that the kernel has network namespaces (CONFIG_NET_NS)"
		}
		return c
	}
	c.Status, c.Detail = OK, "installed and removed mcpbox's egress rules in a scratch network namespace"
	return c
}

// netnsError is a network namespace that could not be made.
type netnsError struct{ error }

func (e netnsError) Unwrap() error { return e.error }

// egressRulesWork makes a network namespace, installs mcpbox's egress
// rules in it, lists them back and deletes them.
func egressRulesWork() error {
	ns, err := egress.NewNetNS()
	if err != nil {
		return netnsError{err}
	}
	defer ns.Close()
	if err := ns.Install(1); err != nil {
		return err
	}
	err = ns.Do(func() error {
		conn, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := conn.ListTables()
		if err != nil {
			return fmt.Errorf("list tables: %w", err)
		}
		if len(tables) == 0 {
			return errors.New("the rules were installed but no table is listed")
		}
		for _, t := range tables {
			conn.DelTable(t)
		}
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("delete tables: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("nftables in a network namespace: %w", err)
	}
	return nil
}
