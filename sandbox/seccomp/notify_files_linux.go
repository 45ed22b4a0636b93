//go:build linux && cgo && seccomp

package seccomp

import (
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// WithFileNotify returns a copy of p, which must come from WithNotify (its
// ListenerPath set), in which the calls that change files reach the agent
// too, and the names of the calls it now notifies, sorted:
//
//   - open and openat with any of O_WRONLY, O_RDWR, O_CREAT, O_TRUNC or
//     O_APPEND in their flags are notified; read-only opens stay allowed
//     in the filter, so a program's ordinary reads cost nothing (see
//     openSplitRules and checkOpenSplit for why the two rules cannot
//     conflict);
//   - creat, mkdir, mkdirat, unlink, unlinkat, rmdir, rename, renameat,
//     renameat2, symlink, symlinkat, link, linkat, chmod, fchmodat and
//     truncate are notified whatever their arguments.
//
// Only the calls p allows unconditionally, or allows only under their mode
// guard (no S_ISUID or S_ISGID: see modeArgs), change; the guard stays on
// their NOTIFY rules, so a set-user-ID mode still fails with EPERM in the
// filter, whatever the agent would answer. A call p denies, or restricts
// by other arguments, keeps its rules and is not listed. Names the
// running libseccomp does not know on the native architecture (open,
// mkdir, ... on arm64) are left alone: the call does not exist there.
//
// The notification comes before the kernel looks at the file, so a call
// that the kernel will refuse (EROFS on a read-only /usr, EACCES) is seen
// too, with its path; answering Allow lets the kernel run it and give its
// own answer. The agent's decide function must Allow these calls to keep
// the sandbox working as before: runc init itself opens its exec fifo for
// writing after the filter is loaded, and Deny answers EPERM.
//
// Not seen: openat2, whose flags are in a struct seccomp cannot read (it
// keeps p's rule; Default answers it ENOSYS); changes through a file
// descriptor that is already open (write, ftruncate, fallocate, fchmod,
// fchown); chown, lchown, fchownat, mknod, mknodat, utimensat, the xattr
// calls; and the writes of memory-mapped files.
func WithFileNotify(p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, []string, error) {
	if err := check(p); err != nil {
		return nil, nil, fmt.Errorf("seccomp: file notify: %w", err)
	}
	if p.ListenerPath == "" {
		return nil, nil, errors.New("seccomp: file notify: the profile has no listener path: apply WithNotify first")
	}
	arch, err := scmpNativeArch()
	if err != nil {
		return nil, nil, fmt.Errorf("seccomp: file notify: %w", err)
	}
	known := func(name string) bool {
		nr, err := libseccomp.GetSyscallFromNameByArch(name, arch)
		return err == nil && nr >= 0
	}
	// A name qualifies only if every rule naming it is an ALLOW, either
	// unconditional or with exactly the name's mode guard (Default's rule
	// for chmod, creat, open...): then taking it out of those rules and
	// adding ours, which keep the guard, is the whole story of that call.
	unconditional := map[string]bool{}
	withGuard := map[string]bool{}
	other := map[string]bool{}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			switch {
			case r.Action == specs.ActAllow && len(r.Args) == 0:
				unconditional[n] = true
			case r.Action == specs.ActAllow && guarded(n, r.Args):
				withGuard[n] = true
			default:
				other[n] = true
			}
		}
	}
	take := map[string]bool{}
	var names []string
	for _, n := range append(fileNotifyNames(), "open", "openat") {
		// Unconditional and guarded at once would OR to unconditional;
		// the guard would then be lost, so such a name stays as it is.
		if unconditional[n] != withGuard[n] && !other[n] && known(n) && !take[n] {
			take[n] = true
			names = append(names, n)
		}
	}
	slices.Sort(names)
	q := copyProfile(p)
	if len(names) == 0 {
		return q, nil, nil
	}
	kept := q.Syscalls[:0]
	for _, r := range q.Syscalls {
		r.Names = slices.DeleteFunc(r.Names, func(n string) bool { return take[n] })
		if len(r.Names) > 0 {
			kept = append(kept, r)
		}
	}
	q.Syscalls = kept
	var plain []string
	for _, n := range names {
		_, split := openFlagsArg[n]
		switch {
		case split:
			q.Syscalls = append(q.Syscalls, openSplitRules(n, withGuard[n])...)
		case withGuard[n]:
			g, _ := modeGuard(n)
			q.Syscalls = append(q.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActNotify, Args: []specs.LinuxSeccompArg{g}})
		default:
			plain = append(plain, n)
		}
	}
	if len(plain) > 0 {
		q.Syscalls = append(q.Syscalls, specs.LinuxSyscall{Names: plain, Action: specs.ActNotify})
	}
	if err := check(q); err != nil {
		return nil, nil, fmt.Errorf("seccomp: file notify: %w", err)
	}
	return q, names, nil
}
