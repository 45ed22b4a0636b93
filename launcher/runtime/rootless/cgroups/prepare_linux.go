package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// PrepareV1 delegates the cgroup v1 subtree /mcpbox-uid-UID to the user
// (userName, for messages; uid, gid) under root (DefaultRoot on every supported host):
// in every controller hierarchy mounted there it makes the directory and
// gives it to the user, who may then create session cgroups in it, set their
// limits and move their own processes into them. It returns the directories
// it created; running it again creates nothing and repairs ownership.
//
// Every hierarchy, not only memory, pids and cpu: once a cgroupsPath is set,
// runc joins each controller hierarchy it knows and fails on the first it
// cannot. The subtree's own files (its limits, cgroup.procs) stay root's, so
// an administrator may cap the whole subtree; its cpuset is filled from the
// root's, since runc would otherwise write it. cgroupfs keeps none of this
// across a reboot.
//
// It needs root, and refuses a cgroup v2 (unified) host, where delegation is
// systemd's to give.
func PrepareV1(root, userName string, uid, gid int) ([]string, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("cgroups: prepare a subtree for %s: only root can: run `sudo mcpbox setup rootless --user %s`", userName, userName)
	}
	return prepareV1(realHost(root), userName, uid, gid)
}

func prepareV1(h host, name string, uid, gid int) ([]string, error) {
	if uid <= 0 {
		return nil, fmt.Errorf("cgroups: %s (uid %d) needs no delegation: root owns every cgroup", name, uid)
	}
	l, err := h.layout()
	if err != nil {
		return nil, err
	}
	if l.unified {
		return nil, fmt.Errorf("cgroups: %s is cgroup v2 (unified), where there is nothing to prepare: "+
			"`mcpbox run` asks the user's systemd for a delegated scope (the user needs a systemd user instance: "+
			"log in, or `sudo loginctl enable-linger %s`)", h.root, name)
	}
	if len(l.v1) == 0 {
		return nil, fmt.Errorf("cgroups: no cgroup v1 controller hierarchy is mounted under %s", h.root)
	}
	var created []string
	for _, hier := range l.v1 {
		dir := filepath.Join(hier.dir, dirName(uid))
		made, err := prepareDir(dir, hier, uid, gid)
		if made {
			created = append(created, dir)
		}
		if err != nil {
			return created, err
		}
	}
	return created, nil
}

// prepareDir makes dir in hier if it is missing and gives it to uid:gid.
func prepareDir(dir string, hier hierarchy, uid, gid int) (made bool, err error) {
	err = os.Mkdir(dir, 0o755)
	made = err == nil
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("cgroups: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return made, fmt.Errorf("cgroups: %s exists and is not a cgroup directory", dir)
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return made, fmt.Errorf("cgroups: %w", err)
	}
	if hier.has("cpuset") {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if err := copyIfEmpty(filepath.Join(dir, f), filepath.Join(hier.dir, f)); err != nil {
				return made, err
			}
		}
	}
	if hier.has("memory") {
		// Old kernels default to flat accounting; limits an
		// administrator sets on the subtree must cover its sessions.
		// Recent kernels have only hierarchical accounting and read 1.
		if err := replaceIf(filepath.Join(dir, "memory.use_hierarchy"), "0", "1"); err != nil {
			return made, err
		}
	}
	return made, nil
}

// copyIfEmpty writes the content of from into file when file is empty.
func copyIfEmpty(file, from string) error {
	return writeIf(file, func(cur string) (string, bool, error) {
		if cur != "" {
			return "", false, nil
		}
		v, err := os.ReadFile(from)
		if err != nil {
			return "", false, fmt.Errorf("cgroups: %w", err)
		}
		return strings.TrimSpace(string(v)), true, nil
	})
}

// replaceIf writes new into file when it reads old.
func replaceIf(file, old, new string) error {
	return writeIf(file, func(cur string) (string, bool, error) { return new, cur == old, nil })
}

func writeIf(file string, next func(cur string) (string, bool, error)) error {
	cur, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	v, write, err := next(strings.TrimSpace(string(cur)))
	if err != nil || !write {
		return err
	}
	if err := os.WriteFile(file, []byte(v), 0); err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	return nil
}
