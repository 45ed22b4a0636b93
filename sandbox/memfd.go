package sandbox

import (
	"fmt"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Memfd is how a sandbox keeps a program from executing code it wrote into
// memory. A memfd is a file on no mount, so the noexec of every writable
// mount does not reach it; each mode closes that another way. It is
// MemfdNoExecHook or MemfdDeny; which one a host can use is the caller's
// decision (the hook needs a kernel and a runtime that a sandbox cannot
// check from here).
type Memfd interface {
	// String names the mode: "hook" or "deny".
	String() string
	// memfd keeps the set closed: a mode that Spec does not know of
	// would build a sandbox with the hole open.
	memfd()
}

// MemfdNoExecHook makes runc run Path, the host path of mcpbox-init, as the
// sandbox's createContainer hook, which sets vm.memfd_noexec to 2 in the
// sandbox's own pid namespace (see WithMemfdNoExec). Every memfd is then
// created non-executable and sealed so, and memfd_create otherwise works.
//
// It needs Linux 6.6 or later (6.3 to 6.5 give 2 another meaning, and
// older kernels have no such setting) and a runtime that runs hooks as
// the host's root, which alone may raise the setting; on a host that
// enforces 2 itself the hook only checks it. The hook fails the sandbox
// wherever it cannot enforce the setting.
type MemfdNoExecHook struct {
	Path string
}

// MemfdDeny builds a sandbox in which memfd_create fails: Policy.Seccomp
// must refuse it whatever its arguments, and Spec checks that it does.
// The launcher's filter answers ENOSYS (seccomp.WithMemfdDenied), on which
// programs that use memfds (Chromium's shared memory, for one) fall back to
// files in /dev/shm or /tmp, which are noexec. It works on every kernel
// and under every runtime; what a server loses is memfd_create itself.
type MemfdDeny struct{}

func (MemfdNoExecHook) String() string { return "hook" }
func (MemfdNoExecHook) memfd()         {}
func (MemfdDeny) String() string       { return "deny" }
func (MemfdDeny) memfd()               {}

// errNoMemfd is returned for a Policy without a Memfd mode.
var errNoMemfd = fmt.Errorf("sandbox: no memfd mode (%T or %T): refusing to build a sandbox in which code written to memory could be executed", MemfdNoExecHook{}, MemfdDeny{})

// checkMemfd checks that mode can be built with the seccomp profile p.
func checkMemfd(mode Memfd, p *specs.LinuxSeccomp) error {
	switch m := mode.(type) {
	case nil:
		return errNoMemfd
	case MemfdNoExecHook:
		if !filepath.IsAbs(m.Path) {
			return fmt.Errorf("sandbox: memfd hook %q: not an absolute path", m.Path)
		}
		return nil
	case MemfdDeny:
		return checkMemfdRefused(p)
	}
	return fmt.Errorf("sandbox: memfd mode %T: not one this package builds (use %T or %T)", mode, MemfdNoExecHook{}, MemfdDeny{})
}

// memfdOpts are the spec options of mode, which checkMemfd accepted.
func memfdOpts(mode Memfd) []SpecOpt {
	if m, ok := mode.(MemfdNoExecHook); ok {
		return []SpecOpt{WithMemfdNoExec(m.Path)}
	}
	// MemfdDeny is all in the seccomp profile.
	return nil
}

// checkMemfdRefused fails unless p makes every memfd_create fail without
// running it: every rule that names memfd_create refuses, and if none
// does, the default action refuses. A rule for it that lets a seccomp
// agent or tracer decide (NOTIFY, TRACE) is not a refusal.
func checkMemfdRefused(p *specs.LinuxSeccomp) error {
	if p == nil {
		return ErrNoSeccomp
	}
	const name = "memfd_create"
	named := false
	for _, r := range p.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		named = true
		if !refuses(r.Action) {
			return fmt.Errorf("sandbox: memfd deny: the seccomp profile has a %s rule for %s: it must refuse the call (seccomp.WithMemfdDenied does)", r.Action, name)
		}
	}
	if !named && !refuses(p.DefaultAction) {
		return fmt.Errorf("sandbox: memfd deny: the seccomp profile has no rule for %s and its default action %s lets it run (seccomp.WithMemfdDenied refuses it)", name, p.DefaultAction)
	}
	return nil
}

// refuses reports whether a seccomp action fails a call without running it.
func refuses(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActErrno, specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap:
		return true
	}
	return false
}
