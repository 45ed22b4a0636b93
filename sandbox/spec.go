package sandbox

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// OCIVersion is the ociVersion written into every spec. runc 1.1.5
// implements runtime-spec 1.0.2 (it reports "1.0.2-dev") and does not
// check the field; the spec uses nothing newer than 1.0.2, so it claims
// 1.0.2 rather than the 1.2.1 of the Go types.
const OCIVersion = "1.0.2"

// Defaults for the zero values of Policy and Limits.
const (
	DefaultUID      = 65534 // nobody
	DefaultGID      = 65534 // nogroup
	DefaultHome     = "/home/sandbox"
	DefaultHostname = "mcpbox"

	DefaultMemory int64   = 512 << 20
	DefaultPids   int64   = 128
	DefaultCPUs   float64 = 1
	DefaultTmp    int64   = 64 << 20 // each of /tmp, /dev/shm and the home tmpfs
	DefaultNoFile uint64  = 4096
	// DefaultFSize caps the size of any one file the process writes, on a
	// tmpfs or on a writable bind alike.
	DefaultFSize uint64 = 1 << 30
)

// minCPUs keeps the CFS quota at or above the kernel's 1 ms minimum.
const minCPUs = 0.01

// ErrNoSeccomp is returned for a Policy without a seccomp profile.
var ErrNoSeccomp = errors.New("sandbox: no seccomp profile: refusing to build a sandbox without one")

// DefaultLimits returns the limits used for zero fields of Limits.
func DefaultLimits() Limits {
	return Limits{
		Memory: DefaultMemory,
		Pids:   DefaultPids,
		CPUs:   DefaultCPUs,
		Tmp:    DefaultTmp,
		NoFile: DefaultNoFile,
		FSize:  DefaultFSize,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.Memory == 0 {
		l.Memory = d.Memory
	}
	if l.Pids == 0 {
		l.Pids = d.Pids
	}
	if l.CPUs == 0 {
		l.CPUs = d.CPUs
	}
	if l.Tmp == 0 {
		l.Tmp = d.Tmp
	}
	if l.NoFile == 0 {
		l.NoFile = d.NoFile
	}
	if l.FSize == 0 {
		l.FSize = d.FSize
	}
	return l
}

func (l Limits) check() error {
	switch {
	case l.Memory < 0:
		return fmt.Errorf("sandbox: memory limit %d: negative", l.Memory)
	case l.Pids < 0:
		return fmt.Errorf("sandbox: pids limit %d: negative", l.Pids)
	case math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0) || l.CPUs < 0:
		return fmt.Errorf("sandbox: cpus %v: not a positive number", l.CPUs)
	case l.CPUs != 0 && l.CPUs < minCPUs:
		return fmt.Errorf("sandbox: cpus %v: below the minimum of %v", l.CPUs, minCPUs)
	case l.Tmp < 0:
		return fmt.Errorf("sandbox: tmpfs size %d: negative", l.Tmp)
	}
	return nil
}

// Spec validates p and builds the OCI runtime spec for it. Zero fields of
// p take the documented defaults. The spec has:
//
//   - root: p.Root, read-only; hostname p.Hostname.
//   - process: p.Args, exactly p.Env, cwd p.Cwd (or the home), uid:gid,
//     no supplementary groups, no terminal, every capability set empty,
//     noNewPrivileges, rlimits NOFILE, CORE=0 and FSIZE.
//   - mounts: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and
//     /sys/fs/cgroup (read-only), tmpfs /tmp and home (nosuid, nodev,
//     noexec, sized by Limits.Tmp), then p.Mounts as binds, writable ones
//     noexec unless marked WritableExec; sorted so that a parent is always
//     mounted before what lies inside it.
//   - namespaces pid, ipc, uts, mount, network (p.NetNS or a new one),
//     cgroup; no user namespace (see WithNamespaces).
//   - moby's masked and read-only paths.
//   - cgroup limits: memory (swap equal to it), pids, CPU quota, and a
//     device cgroup that allows only the standard character devices.
//   - linux.cgroupsPath p.CgroupsPath and seccomp p.Seccomp.
//   - p.Memfd: for MemfdNoExecHook, the createContainer hook that makes
//     every memfd non-executable (WithMemfdNoExec); for MemfdDeny nothing,
//     after checking that p.Seccomp refuses memfd_create.
func Spec(p Policy) (*specs.Spec, error) {
	p, err := resolve(p)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{Version: OCIVersion}
	opts := []SpecOpt{
		WithReadonlyRoot(p.Root),
		WithProcess(p.Args, p.Env, p.Cwd),
		WithUser(p.UID, p.GID),
		WithNoCapabilities(),
		WithNoNewPrivileges(),
		WithRlimits(p.Limits.NoFile, p.Limits.FSize),
		WithHostname(p.Hostname),
		WithSystemMounts(p.Limits.Tmp),
		WithTmpfs("/tmp", p.Limits.Tmp),
		WithHome(p.Home, p.Limits.Tmp, p.UID, p.GID),
		WithBinds(p.Mounts),
		WithNamespaces(p.NetNS),
		WithMaskedPaths(),
		WithReadonlyPaths(),
		WithLimits(p.Limits),
		WithDeviceAllowlist(),
		WithCgroupsPath(p.CgroupsPath),
		WithSeccomp(p.Seccomp),
	}
	if err := Compose(append(opts, memfdOpts(p.Memfd)...)...)(s); err != nil {
		return nil, err
	}
	return s, nil
}

// systemDirs are where the kernel filesystems are mounted; no bind may
// cover them or anything inside them.
func systemDirs() []string { return []string{"/proc", "/sys", "/dev"} }

// under reports whether p is dir or inside it. Both must be clean.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// resolve fills the defaults of p and checks that a sandbox can be built
// from it.
func resolve(p Policy) (Policy, error) {
	if p.Seccomp == nil {
		return p, ErrNoSeccomp
	}
	if err := checkMemfd(p.Memfd, p.Seccomp); err != nil {
		return p, err
	}
	if len(p.Args) == 0 {
		return p, errors.New("sandbox: policy has no args: nothing to run")
	}
	if !filepath.IsAbs(p.Args[0]) {
		return p, fmt.Errorf("sandbox: program %q: not an absolute path (resolve it on the host first)", p.Args[0])
	}
	for _, a := range p.Args {
		if strings.ContainsRune(a, 0) {
			return p, fmt.Errorf("sandbox: argument %q: contains a NUL byte", a)
		}
	}
	for _, e := range p.Env {
		name, _, ok := strings.Cut(e, "=")
		if !ok || name == "" || strings.ContainsRune(e, 0) {
			return p, fmt.Errorf("sandbox: environment entry %q: not NAME=VALUE", e)
		}
	}

	if err := checkRoot(p.Root); err != nil {
		return p, err
	}

	switch {
	case p.UID == 0 && p.GID == 0:
		p.UID, p.GID = DefaultUID, DefaultGID
	case p.UID == 0:
		return p, fmt.Errorf("sandbox: uid 0 (with gid %d): running as root inside the sandbox is not supported", p.GID)
	case p.GID == 0:
		return p, fmt.Errorf("sandbox: gid 0 (with uid %d): the root group is not supported inside the sandbox", p.UID)
	}
	if p.UID == math.MaxUint32 || p.GID == math.MaxUint32 {
		return p, fmt.Errorf("sandbox: uid:gid %d:%d: 4294967295 is not a valid id", p.UID, p.GID)
	}

	if p.Hostname == "" {
		p.Hostname = DefaultHostname
	}
	if err := checkHostname(p.Hostname); err != nil {
		return p, err
	}

	if p.Home == "" {
		p.Home = DefaultHome
	}
	if !filepath.IsAbs(p.Home) {
		return p, fmt.Errorf("sandbox: home %q: not an absolute path", p.Home)
	}
	p.Home = filepath.Clean(p.Home)
	if p.Home == "/" || p.Home == "/tmp" {
		return p, fmt.Errorf("sandbox: home %s: must be a directory of its own", p.Home)
	}
	if strings.ContainsAny(p.Home, ":\n") {
		return p, fmt.Errorf("sandbox: home %q: contains ':' or a newline", p.Home)
	}
	for _, d := range systemDirs() {
		if under(p.Home, d) {
			return p, fmt.Errorf("sandbox: home %s: inside %s", p.Home, d)
		}
	}

	if p.Cwd == "" {
		p.Cwd = p.Home
	}
	if !filepath.IsAbs(p.Cwd) {
		return p, fmt.Errorf("sandbox: working directory %q: not an absolute path", p.Cwd)
	}
	if p.NetNS != "" && !filepath.IsAbs(p.NetNS) {
		return p, fmt.Errorf("sandbox: network namespace %q: not an absolute path", p.NetNS)
	}

	if err := p.Limits.check(); err != nil {
		return p, err
	}
	p.Limits = p.Limits.withDefaults()

	if err := checkMounts(p.Mounts, p.Home); err != nil {
		return p, err
	}
	return p, nil
}

func checkMounts(mounts []Mount, home string) error {
	// The tmpfs mounts Spec makes itself: a bind may go inside them (it is
	// mounted after them) but not replace them or sit above them, where
	// the runtime would create their mount points in the host directory.
	own := []string{"/tmp", home}
	seen := make(map[string]string, len(mounts))
	for _, m := range mounts {
		if !filepath.IsAbs(m.Source) {
			return fmt.Errorf("sandbox: mount %q: source is not an absolute path", m.Source)
		}
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("sandbox: mount %s: destination %q is not an absolute path", m.Source, m.Destination)
		}
		dst := filepath.Clean(m.Destination)
		if dst == "/" {
			return fmt.Errorf("sandbox: mount %s: destination / would replace the root", m.Source)
		}
		for _, d := range systemDirs() {
			if under(dst, d) {
				return fmt.Errorf("sandbox: mount %s: destination %s is inside %s, which the sandbox mounts itself", m.Source, dst, d)
			}
		}
		for _, d := range own {
			if dst == d {
				return fmt.Errorf("sandbox: mount %s: destination %s is the sandbox's own tmpfs", m.Source, dst)
			}
			if under(d, dst) {
				return fmt.Errorf("sandbox: mount %s: destination %s would hold the tmpfs %s, whose mount point the runtime would create in the host directory", m.Source, dst, d)
			}
		}
		if prev, ok := seen[dst]; ok {
			return fmt.Errorf("sandbox: mount %s: destination %s is already used by %s", m.Source, dst, prev)
		}
		seen[dst] = m.Source
	}
	return nil
}

// checkHostname accepts an RFC 1123 host name: dot-separated labels of
// letters, digits and inner hyphens, at most 63 bytes each.
func checkHostname(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("sandbox: hostname %q: must be 1 to 253 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		ok := len(label) > 0 && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for i := 0; ok && i < len(label); i++ {
			c := label[i]
			ok = c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		}
		if !ok {
			return fmt.Errorf("sandbox: hostname %q: not a valid host name", h)
		}
	}
	return nil
}
