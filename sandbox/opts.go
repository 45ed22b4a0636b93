package sandbox

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SpecOpt changes one aspect of a spec. Every option works on an empty
// &specs.Spec{} (it creates the sub-structs it needs) and options touch
// disjoint fields, so a set of options gives the same spec in any order.
type SpecOpt func(*specs.Spec) error

// Compose returns an option that applies opts in order and stops at the
// first error.
func Compose(opts ...SpecOpt) SpecOpt {
	return func(s *specs.Spec) error {
		for _, o := range opts {
			if err := o(s); err != nil {
				return err
			}
		}
		return nil
	}
}

func ensureProcess(s *specs.Spec) *specs.Process {
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	return s.Process
}

func ensureLinux(s *specs.Spec) *specs.Linux {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return s.Linux
}

func ensureResources(s *specs.Spec) *specs.LinuxResources {
	l := ensureLinux(s)
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	return l.Resources
}

// WithReadonlyRoot makes the host directory root the container's root
// filesystem, mounted read-only. root is absolute or relative to the
// bundle directory.
func WithReadonlyRoot(root string) SpecOpt {
	return func(s *specs.Spec) error {
		if err := checkRoot(root); err != nil {
			return err
		}
		s.Root = &specs.Root{Path: root, Readonly: true}
		return nil
	}
}

func checkRoot(root string) error {
	switch clean := filepath.Clean(root); {
	case root == "":
		return errors.New("sandbox: no root directory")
	case clean == "/":
		return errors.New("sandbox: root is the host's /: give an empty directory or an image root")
	case !filepath.IsAbs(root) && (clean == "." || clean == ".." || strings.HasPrefix(clean, "../")):
		return fmt.Errorf("sandbox: root %q: a relative root must lie inside the bundle", root)
	}
	return nil
}

// WithProcess sets the argv, the complete environment and the working
// directory, without a terminal. Nothing else is added to env.
func WithProcess(args, env []string, cwd string) SpecOpt {
	return func(s *specs.Spec) error {
		if len(args) == 0 {
			return errors.New("sandbox: process: no args")
		}
		if !filepath.IsAbs(cwd) {
			return fmt.Errorf("sandbox: process cwd %q: not an absolute path", cwd)
		}
		p := ensureProcess(s)
		p.Terminal = false
		p.Args = append([]string(nil), args...)
		p.Env = append([]string(nil), env...)
		p.Cwd = cwd
		return nil
	}
}

// WithUser runs the process as uid:gid with no supplementary groups.
func WithUser(uid, gid uint32) SpecOpt {
	return func(s *specs.Spec) error {
		p := ensureProcess(s)
		p.User = specs.User{UID: uid, GID: gid}
		return nil
	}
}

// WithNoCapabilities empties all five capability sets. The slices are
// non-nil, but encoding/json omits them (omitempty), so the JSON reads
// "capabilities": {}; runc treats a missing set as empty.
func WithNoCapabilities() SpecOpt {
	return func(s *specs.Spec) error {
		ensureProcess(s).Capabilities = &specs.LinuxCapabilities{
			Bounding:    []string{},
			Effective:   []string{},
			Inheritable: []string{},
			Permitted:   []string{},
			Ambient:     []string{},
		}
		return nil
	}
}

// WithNoNewPrivileges sets no_new_privs: setuid bits and file
// capabilities cannot raise privileges after exec.
func WithNoNewPrivileges() SpecOpt {
	return func(s *specs.Spec) error {
		ensureProcess(s).NoNewPrivileges = true
		return nil
	}
}

// WithNamespaces gives the sandbox its own pid, ipc, uts, mount, network
// and cgroup namespaces. netnsPath joins an existing network namespace;
// "" lets the runtime create one that has only a loopback interface.
//
// There is no user namespace: the process already runs as an unprivileged
// uid with no capabilities and no_new_privs, so a user namespace would add
// id mappings (and file ownership questions on every bind) without taking
// away anything it still has.
func WithNamespaces(netnsPath string) SpecOpt {
	return func(s *specs.Spec) error {
		if netnsPath != "" && !filepath.IsAbs(netnsPath) {
			return fmt.Errorf("sandbox: network namespace %q: not an absolute path", netnsPath)
		}
		ensureLinux(s).Namespaces = []specs.LinuxNamespace{
			{Type: specs.PIDNamespace},
			{Type: specs.IPCNamespace},
			{Type: specs.UTSNamespace},
			{Type: specs.MountNamespace},
			{Type: specs.NetworkNamespace, Path: netnsPath},
			{Type: specs.CgroupNamespace},
		}
		return nil
	}
}

// maskedPaths is moby's list (daemon/pkg/oci/defaults.go). /proc/interrupts
// and the thermal_throttle directories are from GHSA-6fw5-f8r9-fgfm,
// powercap from GHSA-jq35-85cj-fj4p.
func maskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
}

// WithMaskedPaths hides moby's list of /proc and /sys entries that leak
// host information, plus /sys/devices/system/cpu/cpuN/thermal_throttle for
// each such directory on this host (runc skips paths that do not exist
// inside).
func WithMaskedPaths() SpecOpt {
	return func(s *specs.Spec) error {
		paths := maskedPaths()
		// Reading the host is what moby does too: the cpu numbers are the
		// host's, and the pattern has no I/O error worth failing on.
		tt, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle")
		sort.Slice(tt, func(i, j int) bool { return cpuNum(tt[i]) < cpuNum(tt[j]) })
		ensureLinux(s).MaskedPaths = append(paths, tt...)
		return nil
	}
}

func cpuNum(path string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(path)), "cpu"))
	return n
}

// WithReadonlyPaths makes moby's list of writable /proc entries read-only.
func WithReadonlyPaths() SpecOpt {
	return func(s *specs.Spec) error {
		ensureLinux(s).ReadonlyPaths = []string{
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger",
		}
		return nil
	}
}

// sizeOpt formats a tmpfs size option, in KiB when that is exact.
func sizeOpt(n int64) string {
	if n%1024 == 0 {
		return "size=" + strconv.FormatInt(n/1024, 10) + "k"
	}
	return "size=" + strconv.FormatInt(n, 10)
}

// WithSystemMounts adds the kernel filesystems every sandbox needs: /proc,
// a tmpfs /dev with devpts, /dev/shm (shmSize bytes, 0 means DefaultTmp) and
// mqueue, and read-only /sys and /sys/fs/cgroup. Each writable one is
// noexec, /dev included: nothing there is a program, and runc's masks of
// /proc files are binds of /dev/null that take over its flags.
func WithSystemMounts(shmSize int64) SpecOpt {
	return func(s *specs.Spec) error {
		if shmSize < 0 {
			return fmt.Errorf("sandbox: /dev/shm size %d: negative", shmSize)
		}
		if shmSize == 0 {
			shmSize = DefaultTmp
		}
		setMounts(s,
			specs.Mount{Destination: "/proc", Type: "proc", Source: "proc",
				Options: []string{"nosuid", "noexec", "nodev"}},
			specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "noexec", "strictatime", "mode=755", "size=65536k"}},
			// gid=5 is the kernel's tty group number, as in containerd's
			// and moby's defaults; it needs no /etc/group entry.
			specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", sizeOpt(shmSize)}},
			specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
				Options: []string{"nosuid", "noexec", "nodev"}},
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs",
				Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
				Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		)
		return nil
	}
}

// WithTmpfs mounts a world-writable (sticky) tmpfs of size bytes (0 means
// DefaultTmp) at dst, with nosuid, nodev and noexec.
func WithTmpfs(dst string, size int64) SpecOpt {
	return func(s *specs.Spec) error {
		if err := checkTmpfs(dst, size); err != nil {
			return err
		}
		if size == 0 {
			size = DefaultTmp
		}
		setMounts(s, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "noexec", "mode=1777", sizeOpt(size)}})
		return nil
	}
}

// WithHome mounts a private tmpfs of size bytes (0 means DefaultTmp) at dst,
// owned by uid:gid with mode 0700, with nosuid, nodev and noexec.
func WithHome(dst string, size int64, uid, gid uint32) SpecOpt {
	return func(s *specs.Spec) error {
		if err := checkTmpfs(dst, size); err != nil {
			return err
		}
		if size == 0 {
			size = DefaultTmp
		}
		setMounts(s, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "noexec", "mode=0700",
				"uid=" + strconv.FormatUint(uint64(uid), 10),
				"gid=" + strconv.FormatUint(uint64(gid), 10),
				sizeOpt(size)}})
		return nil
	}
}

func checkTmpfs(dst string, size int64) error {
	if !filepath.IsAbs(dst) {
		return fmt.Errorf("sandbox: tmpfs %q: not an absolute path", dst)
	}
	if size < 0 {
		return fmt.Errorf("sandbox: tmpfs %s: negative size %d", dst, size)
	}
	return nil
}

// WithBinds adds each Mount as a bind mount: non-recursive (so a read-only
// bind has no writable submounts, and host mounts below the source stay
// out), nosuid and nodev, plus ro as the Mount asks, and noexec when the
// Mount asks or is writable without WritableExec. A bind replaces an
// earlier mount at the same destination.
func WithBinds(mounts []Mount) SpecOpt {
	return func(s *specs.Spec) error {
		ms := make([]specs.Mount, 0, len(mounts))
		for _, m := range mounts {
			if !filepath.IsAbs(m.Source) {
				return fmt.Errorf("sandbox: bind %q: source is not an absolute path", m.Source)
			}
			if !filepath.IsAbs(m.Destination) {
				return fmt.Errorf("sandbox: bind %s: destination %q is not an absolute path", m.Source, m.Destination)
			}
			opts := []string{"bind", "nosuid", "nodev"}
			if m.NoExec || !m.ReadOnly && !m.WritableExec {
				opts = append(opts, "noexec")
			}
			if m.ReadOnly {
				opts = append(opts, "ro")
			}
			ms = append(ms, specs.Mount{
				Destination: filepath.Clean(m.Destination),
				Type:        "bind",
				Source:      m.Source,
				Options:     opts,
			})
		}
		setMounts(s, ms...)
		return nil
	}
}

// setMounts adds ms to s.Mounts, replacing mounts with the same
// destination, and keeps s.Mounts in canonical order: by the depth of the
// destination, then by destination. A mount is thus always made after
// every mount above it (/usr before /usr/local/x, /dev before /dev/pts,
// /home before /home/sandbox), and the result does not depend on the order
// in which options ran. Mounts at the same depth never cover each other,
// so their relative order does not matter to the runtime.
func setMounts(s *specs.Spec, ms ...specs.Mount) {
	for _, m := range ms {
		m.Destination = filepath.Clean(m.Destination)
		replaced := false
		for i := range s.Mounts {
			if filepath.Clean(s.Mounts[i].Destination) == m.Destination {
				s.Mounts[i] = m
				replaced = true
				break
			}
		}
		if !replaced {
			s.Mounts = append(s.Mounts, m)
		}
	}
	sort.SliceStable(s.Mounts, func(i, j int) bool {
		a, b := s.Mounts[i].Destination, s.Mounts[j].Destination
		if da, db := depth(a), depth(b); da != db {
			return da < db
		}
		return a < b
	})
}

// depth counts the components of a clean absolute path ("/" is 0).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// cpuPeriod is the CFS period in microseconds; quota is CPUs × period.
const cpuPeriod = 100000

// WithLimits sets the cgroup limits: memory with swap equal to it (no
// swap), the number of tasks, and a CPU quota. Zero fields take the
// defaults (see DefaultLimits); Tmp, NoFile and FSize are not cgroup
// limits and are used by WithSystemMounts, WithTmpfs, WithHome and
// WithRlimits.
func WithLimits(l Limits) SpecOpt {
	return func(s *specs.Spec) error {
		if err := l.check(); err != nil {
			return err
		}
		l = l.withDefaults()
		mem := l.Memory
		swap := l.Memory // memory+swap in cgroup v1 terms: no swap at all
		quota := int64(math.Round(l.CPUs * cpuPeriod))
		period := uint64(cpuPeriod)
		r := ensureResources(s)
		r.Memory = &specs.LinuxMemory{Limit: &mem, Swap: &swap}
		r.Pids = &specs.LinuxPids{Limit: l.Pids}
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
		return nil
	}
}

// WithDeviceAllowlist denies every device in the device cgroup, then
// allows the standard character devices (null, zero, full, random,
// urandom, tty, ptmx and the devpts ptys), like containerd's defaults.
// runc creates those nodes itself; the spec adds no others.
func WithDeviceAllowlist() SpecOpt {
	return func(s *specs.Spec) error {
		dev := func(major, minor int64) specs.LinuxDeviceCgroup {
			d := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Access: "rwm"}
			if minor >= 0 {
				d.Minor = &minor
			}
			return d
		}
		ensureResources(s).Devices = []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			dev(1, 3),    // null
			dev(1, 5),    // zero
			dev(1, 7),    // full
			dev(1, 8),    // random
			dev(1, 9),    // urandom
			dev(5, 0),    // tty
			dev(5, 2),    // ptmx
			dev(136, -1), // pts/*
		}
		return nil
	}
}

// WithRlimits sets RLIMIT_NOFILE to noFile, RLIMIT_CORE to 0 (no core
// dumps of a process that may hold secrets) and RLIMIT_FSIZE to fSize,
// soft and hard alike. Zero means DefaultNoFile / DefaultFSize.
func WithRlimits(noFile, fSize uint64) SpecOpt {
	return func(s *specs.Spec) error {
		if noFile == 0 {
			noFile = DefaultNoFile
		}
		if fSize == 0 {
			fSize = DefaultFSize
		}
		ensureProcess(s).Rlimits = []specs.POSIXRlimit{
			{Type: "RLIMIT_NOFILE", Hard: noFile, Soft: noFile},
			{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
			{Type: "RLIMIT_FSIZE", Hard: fSize, Soft: fSize},
		}
		return nil
	}
}

// WithSeccomp installs the seccomp filter p. A nil p is an error: there is
// no option that removes seccomp.
func WithSeccomp(p *specs.LinuxSeccomp) SpecOpt {
	return func(s *specs.Spec) error {
		if p == nil {
			return ErrNoSeccomp
		}
		if p.DefaultAction == "" {
			return errors.New("sandbox: seccomp profile has no default action")
		}
		ensureLinux(s).Seccomp = p
		return nil
	}
}

// MemfdHookArg is the argument with which mcpbox-init runs as the hook
// that WithMemfdNoExec installs (cmd/mcpbox-init spells it the same).
const MemfdHookArg = "--oci-hook=memfd-noexec"

// memfdHookTimeout bounds the hook, in seconds: it writes one sysctl and
// creates two memfds to check it.
const memfdHookTimeout = 10

// WithMemfdNoExec makes runc run hook, the host path of mcpbox-init, with
// MemfdHookArg as the sandbox's only createContainer hook. runc runs such a
// hook from its init process inside the sandbox's new pid namespace, before
// it loads seccomp, drops capabilities and starts the process; the hook sets
// vm.memfd_noexec to 2 there, and the sandbox cannot lower it (it has no
// capabilities, and no pid namespace is less strict than its parent). Every
// memfd in the sandbox is then created without exec permission and sealed
// so, and memfd_create(MFD_EXEC) fails: a program cannot write code into
// memory and execve it, although every writable mount is noexec. The hook
// fails, and with it the container, if it cannot enforce the setting. Spec
// adds it for MemfdNoExecHook; MemfdDeny is for hosts where it cannot work.
//
// A hook because nothing else can set it: runc refuses vm.* keys in
// linux.sysctl (only namespaced sysctls it lists are accepted), and the
// sandbox's own processes have no capabilities.
func WithMemfdNoExec(hook string) SpecOpt {
	return func(s *specs.Spec) error {
		if !filepath.IsAbs(hook) {
			return fmt.Errorf("sandbox: memfd hook %q: not an absolute path", hook)
		}
		timeout := memfdHookTimeout
		if s.Hooks == nil {
			s.Hooks = &specs.Hooks{}
		}
		s.Hooks.CreateContainer = []specs.Hook{{Path: hook, Args: []string{hook, MemfdHookArg}, Timeout: &timeout}}
		return nil
	}
}

// WithHostname sets the hostname inside the UTS namespace.
func WithHostname(h string) SpecOpt {
	return func(s *specs.Spec) error {
		if err := checkHostname(h); err != nil {
			return err
		}
		s.Hostname = h
		return nil
	}
}

// WithCgroupsPath sets linux.cgroupsPath, the runtime's name for the
// sandbox's cgroup.
func WithCgroupsPath(p string) SpecOpt {
	return func(s *specs.Spec) error {
		ensureLinux(s).CgroupsPath = p
		return nil
	}
}
