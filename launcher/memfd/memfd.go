// Package memfd owns the --memfd setting: which of sandbox's memfd modes
// (the hook that makes memfds non-executable, or memfd_create refused) a
// session's sandbox uses on a host, and why, in words for the log and for
// doctor. It reads the two /proc files that decide it and does nothing
// else; it must not import the launcher, which, with launcher/doctor,
// imports it.
package memfd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mcpbox/mcpbox/sandbox"
)

// Setting says how sessions choose the way their sandbox keeps code
// written into memory (a memfd) from being executed: the --memfd flag.
// Every choice is closed; they differ in what a server keeps.
type Setting int

const (
	// Auto uses the hook where this host supports it and refuses
	// memfd_create elsewhere. The zero value.
	Auto Setting = iota
	// Hook always uses the hook (sandbox.MemfdNoExecHook), even where
	// mcpbox does not expect it to work: a kernel whose release hides a
	// backport, say. The hook fails the sandbox if it cannot enforce the
	// setting, so the server does not start rather than run unprotected.
	Hook
	// Deny always refuses memfd_create in the sandbox
	// (sandbox.MemfdDeny).
	Deny
)

// ParseSetting reads a --memfd value: auto, hook or deny.
func ParseSetting(s string) (Setting, error) {
	switch s {
	case "auto", "":
		return Auto, nil
	case "hook":
		return Hook, nil
	case "deny":
		return Deny, nil
	}
	return Auto, fmt.Errorf("%q: use auto, hook or deny", s)
}

func (m Setting) String() string {
	switch m {
	case Auto:
		return "auto"
	case Hook:
		return "hook"
	case Deny:
		return "deny"
	}
	return "memfd(" + strconv.Itoa(int(m)) + ")"
}

// The /proc files the choice reads.
const (
	ReleasePath = "/proc/sys/kernel/osrelease"
	NoExecPath  = "/proc/sys/vm/memfd_noexec"
)

// Host is what decides whether the memfd hook can work on this host:
// two small /proc files, read once per session.
type Host struct {
	release string // the kernel's release, as uname -r prints it
	noexec  int    // the host's vm.memfd_noexec; -1: the kernel has none
}

// ReadHost reads the kernel release and vm.memfd_noexec under root
// ("/" for this host).
func ReadHost(root string) (Host, error) {
	rel, err := os.ReadFile(filepath.Join(root, ReleasePath))
	if err != nil {
		return Host{}, fmt.Errorf("memfd: kernel release: %w", err)
	}
	h := Host{release: strings.TrimSpace(string(rel)), noexec: -1}
	b, err := os.ReadFile(filepath.Join(root, NoExecPath))
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("memfd: read %s: %w", NoExecPath, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || v < 0 || v > 2 {
		return h, fmt.Errorf("memfd: %s reads %q, not 0, 1 or 2", NoExecPath, strings.TrimSpace(string(b)))
	}
	h.noexec = v
	return h, nil
}

// HookProblem says why the memfd hook cannot work here, or "" if it can.
// rootHooks says whether the runtime runs OCI hooks as root of the host's
// user namespace: containerd's runc does. A rootless runtime (runc run by
// an ordinary user in a user namespace) does not, and no root of a user
// namespace may write /proc/sys/vm/memfd_noexec (the file is the host
// root's, mode 0644); there the hook works only on a host that enforces
// 2 itself, which every pid namespace then inherits and the hook checks.
func (h Host) HookProblem(rootHooks bool) string {
	switch {
	case h.noexec < 0:
		return fmt.Sprintf("kernel %s has no vm.memfd_noexec", h.release)
	case !releaseAtLeast(h.release, 6, 6):
		// 6.3 to 6.5 shipped a vm.memfd_noexec whose 2 refuses every
		// memfd_create without MFD_NOEXEC_SEAL (Python's os.memfd_create
		// and most C programs), as a ratchet rather than per namespace.
		return fmt.Sprintf("kernel %s has the vm.memfd_noexec of Linux 6.3 to 6.5, whose 2 breaks programs that create memfds", h.release)
	case !rootHooks && h.noexec < 2:
		return fmt.Sprintf("the runtime is not the host's root, which alone may raise vm.memfd_noexec (%d on the host)", h.noexec)
	}
	return ""
}

// releaseAtLeast reports whether a kernel release ("6.1.0-13-amd64",
// "6.18.44-fc") is major.minor or later. An unreadable release is not.
func releaseAtLeast(release string, major, minor int) bool {
	maj, rest, _ := strings.Cut(release, ".")
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	x, err1 := strconv.Atoi(maj)
	y, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return false
	}
	return x > major || x == major && y >= minor
}

// Choice is the mode a session's sandbox uses, and why, in words for the
// log and for doctor.
type Choice struct {
	Mode sandbox.Memfd
	Why  string
}

// Choose picks the memfd mode of a sandbox on host h, whose runtime
// runs hooks as the host's root if rootHooks, with initPath (mcpbox-init's
// host path) as the hook.
func Choose(setting Setting, h Host, rootHooks bool, initPath string) Choice {
	hook := sandbox.MemfdNoExecHook{Path: initPath}
	problem := h.HookProblem(rootHooks)
	switch setting {
	case Deny:
		return Choice{sandbox.MemfdDeny{}, fmt.Sprintf("memfd_create refused inside (--memfd deny; kernel %s)", h.release)}
	case Hook:
		if problem != "" {
			return Choice{hook, fmt.Sprintf("hook (--memfd hook, although %s: the sandbox does not start if the hook cannot enforce vm.memfd_noexec=2)", problem)}
		}
	default: // Auto
		if problem != "" {
			return Choice{sandbox.MemfdDeny{}, fmt.Sprintf("memfd_create refused inside (%s)", problem)}
		}
	}
	return Choice{hook, fmt.Sprintf("hook: vm.memfd_noexec=2 in each sandbox's pid namespace (kernel %s, %d on the host)", h.release, h.noexec)}
}
