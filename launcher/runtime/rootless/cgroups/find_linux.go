package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Find returns what is delegated now to the user whose id on the host is
// uid: on cgroup v1, the subtree /mcpbox-uid-UID that `sudo mcpbox setup
// rootless --user NAME` prepared; on cgroup v2, the cgroup this process runs
// under if systemd delegated it (a unit with Delegate=yes, which systemd
// marks with the trusted.delegate or user.delegate attribute). Find may run
// inside mcpbox's user namespace, where the user appears as uid 0; it
// assumes no cgroup namespace of mcpbox's own, as runc does.
//
// Nothing delegated is not an error: the Delegation then has no Parent and
// says why in How and what to do in Fix. Errors are facts of the host that
// cannot be read.
func Find(uid int) (Delegation, error) {
	name := strconv.Itoa(uid) // for messages only: setup takes a uid too
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return find(realHost(DefaultRoot), uid, name)
}

func find(h host, uid int, name string) (Delegation, error) {
	l, err := h.layout()
	if err != nil {
		return Delegation{}, err
	}
	ids, err := readIDMap(h.uidMap)
	if err != nil {
		return Delegation{}, err
	}
	owner, mapped := ids.inside(uid)
	if !mapped {
		owner = -1 // no file can be the user's
	}
	switch {
	case l.unified:
		return findV2(h, owner, name)
	case len(l.v1) > 0:
		return findV1(l.v1, uid, owner, name)
	default:
		return Delegation{How: "no cgroup file system is mounted at " + h.root}, nil
	}
}

// dirName is the cgroup v1 subtree prepared for the user uid. A uid rather
// than a name: no lookup inside a user namespace, no renamed user inheriting
// a subtree, and no clash with the cgroups containerd makes for its
// namespaces (/mcpbox, /mcpbox-compare).
func dirName(uid int) string { return "mcpbox-uid-" + strconv.Itoa(uid) }

func findV1(hs []hierarchy, uid, owner int, name string) (Delegation, error) {
	parent := "/" + dirName(uid)
	d := Delegation{Version: 1}
	var problems []string
	absent := 0
	for _, hier := range hs {
		problem, err := checkV1(filepath.Join(hier.dir, parent), hier, owner)
		if err != nil {
			return Delegation{}, err
		}
		if problem == "missing" {
			absent++
		}
		if problem != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", filepath.Join(hier.dir, parent), problem))
		}
	}
	fix := fmt.Sprintf("run `sudo mcpbox setup rootless --user %s` (again after every reboot: cgroupfs does not keep it)", name)
	switch {
	case absent == len(hs):
		d.How = fmt.Sprintf("cgroup v1 and no subtree delegated to %s", name)
		d.Fix = fix
		return d, nil
	case len(problems) > 0:
		// runc joins every controller hierarchy it knows once a
		// cgroupsPath is set, and fails on the first it cannot: a
		// partial subtree is as good as none.
		d.How = fmt.Sprintf("cgroup v1 subtree %s is incomplete (%s)", parent, strings.Join(problems, "; "))
		d.Fix = fix
		return d, nil
	}
	var cs []string
	for _, hier := range hs {
		cs = append(cs, hier.controllers...)
	}
	d.Parent = parent
	d.Controllers = limits(cs)
	d.How = fmt.Sprintf("cgroup v1 subtree %s prepared by `sudo mcpbox setup rootless --user %s`", parent, name)
	return d, nil
}

// checkV1 says what keeps the user from creating session cgroups in dir,
// or "" if nothing does.
func checkV1(dir string, hier hierarchy, owner int) (string, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "missing", nil
	}
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir() || !ok:
		return "not a directory", nil
	case int(st.Uid) != owner:
		return fmt.Sprintf("owned by uid %d, not the user", st.Uid), nil
	case fi.Mode().Perm()&0o300 != 0o300:
		return "not writable by its owner", nil
	}
	if hier.has("cpuset") {
		// runc copies cpuset.cpus and cpuset.mems down from the
		// parent, and writes the parent's own when they are empty,
		// which the user may not do.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return "", fmt.Errorf("cgroups: %w", err)
			}
			if strings.TrimSpace(string(v)) == "" {
				return f + " is empty", nil
			}
		}
	}
	return "", nil
}

func findV2(h host, owner int, name string) (Delegation, error) {
	d := Delegation{Version: 2}
	self, err := unifiedCgroup(h.cgroup)
	if err != nil {
		return Delegation{}, err
	}
	// The delegated cgroup is the nearest one at or above ours that
	// systemd marked; everything between it and us must be the user's
	// (cgroups the user made in it).
	top := ""
	for p := path.Clean(self); p != "/" && p != "."; p = path.Dir(p) {
		dir := filepath.Join(h.root, p)
		if !ownsV2(dir, owner) {
			break
		}
		if markedDelegated(dir) {
			top = p
			break
		}
	}
	if top == "" {
		d.How = fmt.Sprintf("cgroup v2 and mcpbox's cgroup %s is not delegated to %s", self, name)
		d.Fix = "run mcpbox under a systemd user instance (log in, or `sudo loginctl enable-linger " + name + "`) so that it can ask for a delegated scope"
		return d, nil
	}
	dir := filepath.Join(h.root, top)
	enabled, err := readFields(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return Delegation{}, fmt.Errorf("cgroups: %w", err)
	}
	usable := enabled
	if top != path.Clean(self) {
		// runc enables what is available in the parent of its
		// cgroup, which the kernel allows once no process lives
		// there directly.
		procs, err := readFields(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return Delegation{}, fmt.Errorf("cgroups: %w", err)
		}
		if len(procs) == 0 {
			if usable, err = readFields(filepath.Join(dir, "cgroup.controllers")); err != nil {
				return Delegation{}, fmt.Errorf("cgroups: %w", err)
			}
		}
	}
	d.Parent = top
	d.Controllers = limits(usable)
	d.How = fmt.Sprintf("cgroup v2 cgroup %s delegated by systemd", top)
	if top == path.Clean(self) {
		d.How += " (mcpbox runs in it, so it can enable no controller for its children)"
	}
	if len(d.Missing(limitControllers)) > 0 {
		d.Fix = fixV2
	}
	return d, nil
}

// fixV2 is how a user gets the controllers systemd did not delegate: the
// user's manager passes on only what user@.service was given.
const fixV2 = "ask an administrator to delegate them to users' systemd: `Delegate=cpu memory pids` in " +
	"/etc/systemd/system/user@.service.d/delegate.conf, `sudo systemctl daemon-reload`, then log in again"

// ownsV2 reports whether the user may create cgroups in dir and move
// processes through it: the directory and its cgroup.procs and
// cgroup.subtree_control are the user's (cgroup v2's delegation model).
func ownsV2(dir string, owner int) bool {
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || int(st.Uid) != owner {
			return false
		}
	}
	return true
}

// markedDelegated reports whether systemd marked dir as the cgroup of a
// unit with Delegate=yes (systemd 251 and later; the user manager, which
// may not write trusted attributes, uses user.delegate).
func markedDelegated(dir string) bool {
	buf := make([]byte, 8)
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		if n, err := unix.Getxattr(dir, attr, buf); err == nil && string(buf[:n]) == "1" {
			return true
		}
	}
	return false
}
