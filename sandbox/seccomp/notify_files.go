package seccomp

import (
	"fmt"
	"math/bits"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The open(2) flags that let an open change a file: write access, creation,
// truncation, appending. Their values are the same on amd64 and arm64, the
// only architectures the package builds profiles for (nativeArch), and are
// checked against golang.org/x/sys/unix in the tests. O_TMPFILE needs
// O_WRONLY or O_RDWR, so it is covered.
const (
	oWronly = 0x1
	oRdwr   = 0x2
	oCreat  = 0x40
	oTrunc  = 0x200
	oAppend = 0x400

	openWriteFlags = oWronly | oRdwr | oCreat | oTrunc | oAppend
)

// openFlagsArg is the index of the flags argument of the open calls that
// WithFileNotify splits by flags.
var openFlagsArg = map[string]uint{"open": 1, "openat": 2}

// fileNotifyNames are the calls that change the file system by their mere
// success; WithFileNotify notifies them when the profile allows them
// unconditionally.
func fileNotifyNames() []string {
	return []string{
		"chmod", "creat", "fchmodat", "link", "linkat", "mkdir", "mkdirat",
		"rename", "renameat", "renameat2", "rmdir", "symlink", "symlinkat",
		"truncate", "unlink", "unlinkat",
	}
}

// openSplitRules returns the rules WithFileNotify puts in place of the
// ALLOW of name (open or openat): ALLOW when none of openWriteFlags is set
// in the flags argument, and NOTIFY when any is, as one NOTIFY rule per
// flag bit with a single condition on the flags. One rule with five
// conditions on the flags argument would not do: runc turns conditions on
// one argument into separate rules (see check), and an AND of them is not
// what is meant anyway. With guard, every rule also carries name's mode
// guard, as the ALLOW it replaces did: a mode with S_ISUID or S_ISGID then
// matches no rule and gets the default EPERM, before the agent could allow
// it.
func openSplitRules(name string, guard bool) []specs.LinuxSyscall {
	idx := openFlagsArg[name]
	g, _ := modeGuard(name)
	args := func(flags specs.LinuxSeccompArg) []specs.LinuxSeccompArg {
		if guard {
			return []specs.LinuxSeccompArg{flags, g}
		}
		return []specs.LinuxSeccompArg{flags}
	}
	rules := []specs.LinuxSyscall{{
		Names:  []string{name},
		Action: specs.ActAllow,
		Args:   args(specs.LinuxSeccompArg{Index: idx, Value: openWriteFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}),
	}}
	for _, b := range []uint64{oWronly, oRdwr, oCreat, oTrunc, oAppend} {
		rules = append(rules, specs.LinuxSyscall{
			Names:  []string{name},
			Action: specs.ActNotify,
			Args:   args(specs.LinuxSeccompArg{Index: idx, Value: b, ValueTwo: b, Op: specs.OpMaskedEqual}),
		})
	}
	return rules
}

// checkOpenSplit accepts the rules for name only if they are exactly the
// shape openSplitRules builds, with or without the mode guard; check lets
// that shape, and nothing else, mix actions on one syscall.
//
// Why the shape is sound although libseccomp does not apply rules in
// order: the ALLOW rule matches flags&M == 0 (M = openWriteFlags) and each
// NOTIFY rule matches flags&b == b for one bit b of M, so no flags value
// matches the ALLOW rule and a NOTIFY rule, and every value matches one of
// them: the rules are disjoint and cover everything, and the order in which
// the filter tests them cannot change the result. None of them is
// unconditional, which is the case where libseccomp lets one rule override
// the others (db.c: a rule without conditions replaces a syscall's
// conditional chains). libseccomp keeps conditional rules of one syscall as
// comparisons on the same argument, each ending in its own action, so the
// filter it builds tests the masked comparisons in some order and takes the
// action of the first that matches, which by disjointness is the only
// action any match can have. The masks lie in the low 32 bits, where the kernel
// reads the int flags; whatever the upper half of the register holds does
// not change the result. The mode guard, when present, is the same
// condition in every rule: a call whose mode fails it fails in whichever
// rule its flags select, so it gets the default action whatever the order.
// The runc tests (TestFileNotifyRunc) check the compiled filter's
// behaviour end to end.
func checkOpenSplit(name string, rules []specs.LinuxSyscall) error {
	idx, ok := openFlagsArg[name]
	if !ok {
		return fmt.Errorf("seccomp: syscall %s has rules with different actions; libseccomp does not apply them in order", name)
	}
	shapeErr := func(format string, a ...any) error {
		return fmt.Errorf("seccomp: syscall %s has rules with different actions, which is only accepted as WithFileNotify's split on the open flags: %s", name, fmt.Sprintf(format, a...))
	}
	guard, _ := modeGuard(name)
	allows, withGuard := 0, 0
	var covered uint64
	for _, r := range rules {
		if r.ErrnoRet != nil {
			return shapeErr("a rule sets errnoRet")
		}
		conds := r.Args
		if len(conds) == 2 && conds[1] == guard {
			withGuard++
			conds = conds[:1]
		}
		if len(conds) != 1 {
			return shapeErr("a rule has %d conditions, want the flags and at most the mode guard", len(r.Args))
		}
		a := conds[0]
		if a.Index != idx || a.Op != specs.OpMaskedEqual {
			return shapeErr("condition %s on argument %d, want %s on argument %d", a.Op, a.Index, specs.OpMaskedEqual, idx)
		}
		switch r.Action {
		case specs.ActAllow:
			if a.Value != openWriteFlags || a.ValueTwo != 0 {
				return shapeErr("ALLOW rule matches flags&%#x == %#x, want flags&%#x == 0", a.Value, a.ValueTwo, uint64(openWriteFlags))
			}
			allows++
		case specs.ActNotify:
			b := a.Value
			if bits.OnesCount64(b) != 1 || b&openWriteFlags == 0 || a.ValueTwo != b {
				return shapeErr("NOTIFY rule matches flags&%#x == %#x, want one bit of %#x set", a.Value, a.ValueTwo, uint64(openWriteFlags))
			}
			if covered&b != 0 {
				return shapeErr("two NOTIFY rules for flag %#x", b)
			}
			covered |= b
		default:
			return shapeErr("action %s", r.Action)
		}
	}
	if allows != 1 || covered != openWriteFlags {
		return shapeErr("%d ALLOW rules and NOTIFY rules for flags %#x, want 1 and %#x", allows, covered, uint64(openWriteFlags))
	}
	if withGuard != 0 && withGuard != len(rules) {
		return shapeErr("%d of %d rules carry the mode guard, want all or none", withGuard, len(rules))
	}
	return nil
}
