// Package sandbox turns a Policy into an OCI runtime spec.
//
// It owns the shape of the sandbox: the read-only root, the host runtime
// binds of the "host" rootfs mode (HostRuntime) and its synthetic /etc
// files (SyntheticEtc), tmpfs mounts, namespaces, masked paths,
// capabilities, rlimits, cgroup limits and how memfds are kept from being
// executed (Memfd). Spec builds the whole spec from
// a Policy; the SpecOpt options it composes are exported for callers that
// assemble a spec themselves. It is pure: it builds a specs.Spec and reads
// host paths only to decide what to bind or mask. It does not create
// files, talk to containerd or choose a seccomp profile; the caller passes
// one in, and a Policy without one is an error (fail closed).
package sandbox

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mount is a host path made visible inside the sandbox. It becomes a
// non-recursive bind mount with nosuid and nodev: mounts below Source on
// the host are not carried along.
type Mount struct {
	Source      string // absolute host path
	Destination string // absolute path inside the sandbox
	ReadOnly    bool
	// NoExec forbids executing (and mmap PROT_EXEC of) files under a
	// read-only mount. Set it for data grants; leave it false for
	// anything that holds programs or shared libraries (HostRuntime,
	// package caches with native addons). A writable mount is noexec
	// whatever NoExec says, unless WritableExec is set.
	NoExec bool
	// WritableExec keeps a writable mount executable. Without it a
	// program the sandbox wrote there could be run, which is code that no
	// grant put in place (the same hole as executing a memfd). Only the
	// package install step sets it: npm's install scripts run programs
	// from the node_modules they are installing. Ignored, and NoExec
	// applies, on a read-only mount.
	WritableExec bool
}

// Limits are the resource limits of one sandbox. Zero means "use the
// default" (DefaultLimits).
type Limits struct {
	Memory int64   // bytes; swap is set equal to it (no swap)
	Pids   int64   // max tasks in the cgroup
	CPUs   float64 // CPU quota in cores
	Tmp    int64   // bytes for each tmpfs (/tmp, /dev/shm, $HOME)
	NoFile uint64  // RLIMIT_NOFILE
	FSize  uint64  // RLIMIT_FSIZE in bytes
}

// Policy is everything that decides what a sandboxed process may see and do.
type Policy struct {
	// Args is the process argv; Args[0] must be an absolute path that is
	// visible inside the sandbox.
	Args []string
	// Env is the complete environment ("NAME=VALUE"). Nothing is inherited.
	Env []string
	// Cwd is the working directory inside the sandbox; "" means Home.
	Cwd string
	// Root is the host directory used as the (read-only) root filesystem:
	// an absolute path, or a path relative to the bundle ("rootfs", where
	// containerd mounts an image's snapshot). In host rootfs mode it is
	// an empty directory the caller created for this session; the runtime
	// creates the mount points in it before it makes it read-only.
	Root string
	// Mounts are bind mounts. Callers put the host runtime (HostRuntime),
	// synthetic /etc files and user grants here. Destinations must be
	// unique and stay out of /proc, /sys and /dev; a bind may go inside
	// /tmp or Home but not replace or contain them. The order does not
	// matter: Spec mounts every parent before what lies inside it.
	Mounts []Mount
	// UID and GID the process runs as. Both zero means 65534:65534
	// (nobody:nogroup). Running as root inside the sandbox is not
	// supported: exactly one of them zero is an error.
	UID, GID uint32
	// Home is the path of the tmpfs home directory; "" means /home/sandbox.
	Home string
	// Hostname inside the UTS namespace; "" means "mcpbox".
	Hostname string
	// NetNS is the path of an existing network namespace to join. "" asks
	// the runtime for a new one, which has only a loopback interface.
	NetNS string
	// CgroupsPath is passed to the runtime as linux.cgroupsPath.
	CgroupsPath string
	Limits      Limits
	// Seccomp is the filter to install. nil is an error: a sandbox without
	// seccomp is never built.
	Seccomp *specs.LinuxSeccomp
	// Memfd is how the sandbox keeps code written into memory from being
	// executed: MemfdNoExecHook or MemfdDeny. nil is an error: a sandbox
	// in which a program can write code into a memfd and execute it is
	// never built.
	Memfd Memfd
}
