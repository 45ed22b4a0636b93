//go:build linux && cgo && seccomp

package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

const (
	// bpfMaxInsns is the kernel's limit on the length of one filter
	// (BPF_MAXINSNS); stubMargin leaves room for the ENOSYS stub runc's
	// patchbpf puts in front of the filter libseccomp generates.
	bpfMaxInsns = 4096
	stubMargin  = 64
	// minAPI is the libseccomp API level mcpbox needs: 2 means the seccomp(2)
	// syscall and TSYNC, so a filter reaches every thread of a process.
	minAPI = 2
	// actionsAvail lists the actions the kernel supports (Linux >= 4.14).
	actionsAvail = "/proc/sys/kernel/seccomp/actions_avail"
)

// Validate reports whether runc 1.1.5 can install p on this machine with the
// meaning p states: the native architecture only, every action and operator
// known, no rule shape whose meaning runc changes (see check), every syscall
// in a non-ALLOW rule known to libseccomp, and the whole profile compiled
// into a filter that fits the kernel's size limit. The filter is built but
// never loaded.
//
// An unknown name in an ALLOW rule is accepted: runc skips it, which leaves
// the call denied. An unknown name in any other rule is an error, because
// skipping it changes the answer (clone3 would get EPERM instead of ENOSYS,
// and glibc falls back to clone only on ENOSYS).
func Validate(p *specs.LinuxSeccomp) error {
	filter, err := compile(p)
	if err != nil {
		return err
	}
	defer filter.Release()
	n, err := bpfLen(filter)
	if err != nil {
		return err
	}
	if n > bpfMaxInsns-stubMargin {
		return fmt.Errorf("seccomp: filter compiles to %d BPF instructions; with runc's stub that exceeds the kernel's limit of %d", n, bpfMaxInsns)
	}
	return nil
}

// CheckKernel fails unless the running kernel can enforce mcpbox's profile:
// seccomp filter mode, the actions the profile uses, and a libseccomp API
// level that includes TSYNC.
func CheckKernel() error {
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: kernel without seccomp support (prctl PR_GET_SECCOMP: %w): mcpbox needs a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER", err)
	}
	avail, err := os.ReadFile(actionsAvail)
	if err != nil {
		return fmt.Errorf("seccomp: read %s: %w: seccomp filters need Linux >= 4.14 with CONFIG_SECCOMP_FILTER and /proc mounted", actionsAvail, err)
	}
	if missing := missingActions(string(avail)); len(missing) > 0 {
		return fmt.Errorf("seccomp: kernel lacks seccomp action %s (it has: %s): upgrade the kernel", strings.Join(missing, ", "), strings.TrimSpace(string(avail)))
	}
	api, err := libseccomp.GetAPI()
	if err != nil {
		return fmt.Errorf("seccomp: libseccomp API level: %w: install libseccomp >= 2.5", err)
	}
	if api < minAPI {
		maj, mnr, mic := libseccomp.GetLibraryVersion()
		return fmt.Errorf("seccomp: libseccomp %d.%d.%d reports API level %d, need >= %d (seccomp(2) with TSYNC): upgrade the kernel or libseccomp", maj, mnr, mic, api, minAPI)
	}
	return nil
}

// CheckNames fails for names that are not syscalls of the native
// architecture according to libseccomp: typos in a profile's seccomp.allow,
// which WithAllowed cannot catch.
func CheckNames(names ...string) error {
	var bad []string
	for _, n := range names {
		if nr, err := libseccomp.GetSyscallFromName(n); err != nil || nr < 0 {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("seccomp: not a syscall on %s (libseccomp %s): %s", runtime.GOARCH, libVersion(), strings.Join(bad, ", "))
	}
	return nil
}

// compile builds the filter runc 1.1.5 builds from p
// (libcontainer/seccomp.InitSeccomp and matchCall), minus patchbpf's ENOSYS
// stub, but fails where runc would silently change the meaning of p. The
// caller releases the filter.
func compile(p *specs.LinuxSeccomp) (*libseccomp.ScmpFilter, error) {
	if err := check(p); err != nil {
		return nil, err
	}
	native, err := nativeArch(runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	filter, err := newFilter(p)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			filter.Release()
		}
	}()
	if err := addArches(filter, p.Architectures, native); err != nil {
		return nil, err
	}
	if err := setAttrs(filter, p); err != nil {
		return nil, err
	}
	for _, r := range p.Syscalls {
		if err := addRule(filter, r); err != nil {
			return nil, err
		}
	}
	ok = true
	return filter, nil
}

// newFilter creates a filter with p's default action.
func newFilter(p *specs.LinuxSeccomp) (*libseccomp.ScmpFilter, error) {
	defAct, err := scmpAction(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: default action: %w", err)
	}
	if defAct == libseccomp.ActNotify {
		return nil, errors.New("seccomp: SCMP_ACT_NOTIFY cannot be the default action")
	}
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp: new filter (libseccomp %s): %w", libVersion(), err)
	}
	return filter, nil
}

// addArches adds the architectures of the profile, which must be the
// native one only.
func addArches(filter *libseccomp.ScmpFilter, arches []specs.Arch, native specs.Arch) error {
	for _, a := range arches {
		name, found := strings.CutPrefix(string(a), "SCMP_ARCH_")
		sa, err := libseccomp.GetArchFromString(strings.ToLower(name))
		if !found || err != nil {
			return fmt.Errorf("seccomp: unknown architecture %q", a)
		}
		if a != native {
			return fmt.Errorf("seccomp: architecture %s is not the native %s; mcpbox filters allow the native ABI only", a, native)
		}
		if err := filter.AddArch(sa); err != nil {
			return fmt.Errorf("seccomp: add architecture %s: %w", a, err)
		}
	}
	return nil
}

// setAttrs sets the filter attributes runc sets: the profile's flags, the
// binary tree for long profiles, and no no_new_privs of its own.
func setAttrs(filter *libseccomp.ScmpFilter, p *specs.LinuxSeccomp) error {
	for _, f := range p.Flags {
		var err error
		switch f {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// libseccomp-golang always sets TSYNC.
		case specs.LinuxSeccompFlagLog:
			err = filter.SetLogBit(true)
		case specs.LinuxSeccompFlagSpecAllow:
			err = filter.SetSSB(true)
		default:
			err = errors.New("not supported by runc 1.1.5")
		}
		if err != nil {
			return fmt.Errorf("seccomp: flag %s: %w", f, err)
		}
	}
	// Like runc: a binary tree beats a linear scan for long profiles; an
	// old libseccomp without it still builds a correct filter.
	if len(p.Syscalls) > 32 {
		_ = filter.SetOptimize(2)
	}
	// runc sets no_new_privs itself, from the spec.
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return fmt.Errorf("seccomp: clear no_new_privs attribute: %w", err)
	}
	return nil
}

// addRule adds one rule of the profile, for each of its syscalls, as runc
// does: a name unknown to libseccomp is skipped in an ALLOW or LOG rule and
// an error in any other.
func addRule(filter *libseccomp.ScmpFilter, r specs.LinuxSyscall) error {
	act, err := scmpAction(r.Action, r.ErrnoRet)
	if err != nil {
		return fmt.Errorf("seccomp: rule for %s: %w", strings.Join(r.Names, ","), err)
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(r.Args))
	for _, a := range r.Args {
		op, err := scmpOp(a.Op)
		if err != nil {
			return fmt.Errorf("seccomp: rule for %s: %w", strings.Join(r.Names, ","), err)
		}
		c, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		if err != nil {
			return fmt.Errorf("seccomp: rule for %s: %w", strings.Join(r.Names, ","), err)
		}
		conds = append(conds, c)
	}
	for _, name := range r.Names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			if r.Action == specs.ActAllow || r.Action == specs.ActLog {
				continue // runc skips it; the call stays denied
			}
			return fmt.Errorf("seccomp: syscall %s in a %s rule is unknown to libseccomp %s; runc would drop the rule", name, r.Action, libVersion())
		}
		if len(conds) == 0 {
			err = filter.AddRule(nr, act)
		} else {
			err = filter.AddRuleConditional(nr, act, conds)
		}
		if err != nil {
			return fmt.Errorf("seccomp: add rule for %s: %w", name, err)
		}
	}
	return nil
}

// bpfLen returns the number of BPF instructions filter compiles to.
func bpfLen(filter *libseccomp.ScmpFilter) (int, error) {
	fd, err := unix.MemfdCreate("mcpbox-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("seccomp: export filter: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "mcpbox-seccomp")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return 0, fmt.Errorf("seccomp: export filter: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("seccomp: export filter: %w", err)
	}
	return int(st.Size() / 8), nil // struct sock_filter is 8 bytes
}

// scmpAction converts like runc's getAction: ERRNO and TRACE without an
// errno mean EPERM, SCMP_ACT_KILL kills the thread.
func scmpAction(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	v := verdictOf(a, errnoRet)
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(v.Errno)), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(v.Errno)), nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
}

func scmpOp(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	}
	return libseccomp.CompareInvalid, fmt.Errorf("unknown operator %q", op)
}

func libVersion() string {
	maj, mnr, mic := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", maj, mnr, mic)
}
