package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// host is where the package reads this host's facts: the real /proc files
// and /sys/fs/cgroup, or a fake tree in tests.
type host struct {
	root      string // where the cgroup file systems are mounted
	mountinfo string // the mountinfo file listing them
	cgroup    string // the /proc/PID/cgroup file of the process asking
	uidMap    string // the uid_map of that process's user namespace
}

func realHost(root string) host {
	return host{root: filepath.Clean(root), mountinfo: "/proc/self/mountinfo", cgroup: "/proc/self/cgroup", uidMap: "/proc/self/uid_map"}
}

// v1Controllers are the controllers a cgroup v1 hierarchy can carry. A
// hierarchy with none of them (name=systemd) limits nothing, and runc
// ignores failures to join it.
var v1Controllers = []string{"cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"}

// hierarchy is one mounted cgroup v1 hierarchy.
type hierarchy struct {
	dir         string   // its mount point
	controllers []string // the controllers it carries, e.g. cpu and cpuacct when co-mounted
}

func (h hierarchy) has(c string) bool { return contains(h.controllers, c) }

// layout is what is mounted under a root: a cgroup v2 file system at the
// root itself (unified), or cgroup v1 hierarchies directly below it (legacy,
// and hybrid with its v2 file system at root/unified, which runc only joins
// and which carries no limit controller).
type layout struct {
	unified bool
	v1      []hierarchy
}

func (h host) layout() (layout, error) {
	f, err := os.Open(h.mountinfo)
	if err != nil {
		return layout{}, fmt.Errorf("cgroups: read mounts: %w", err)
	}
	defer f.Close()
	var l layout
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		point, fstype, super, ok := parseMountinfo(sc.Text())
		if !ok {
			continue
		}
		switch {
		case fstype == "cgroup2" && point == h.root:
			l.unified = true
		case fstype == "cgroup" && filepath.Dir(point) == h.root && !seen[point]:
			var cs []string
			for _, o := range strings.Split(super, ",") {
				if contains(v1Controllers, o) {
					cs = append(cs, o)
				}
			}
			if len(cs) > 0 {
				seen[point] = true
				l.v1 = append(l.v1, hierarchy{dir: point, controllers: cs})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return layout{}, fmt.Errorf("cgroups: read mounts: %w", err)
	}
	return l, nil
}

// parseMountinfo splits a line of /proc/PID/mountinfo (proc(5)): the mount
// point is the fifth field, the file system type and super options follow
// the " - " separator after the optional fields.
func parseMountinfo(line string) (point, fstype, super string, ok bool) {
	pre, post, found := strings.Cut(line, " - ")
	if !found {
		return "", "", "", false
	}
	f, g := strings.Fields(pre), strings.Fields(post)
	if len(f) < 5 || len(g) < 3 {
		return "", "", "", false
	}
	return unescapeOctal(f[4]), g[0], g[2], true
}

// unescapeOctal undoes the kernel's \ooo escapes of space, tab, newline and
// backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unifiedCgroup returns the cgroup v2 path of h.cgroup's process: the
// "0::PATH" line of /proc/PID/cgroup.
func unifiedCgroup(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cgroups: read %s: %w", file, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("cgroups: %s has no cgroup v2 line", file)
}

// idMap is a user namespace's uid_map: inside, outside and count triples.
type idMap [][3]int64

func readIDMap(file string) (idMap, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return idMap{{0, 0, 1 << 32}}, nil // no user namespaces: identity
	}
	if err != nil {
		return nil, fmt.Errorf("cgroups: read %s: %w", file, err)
	}
	var m idMap
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) != 3 {
			continue
		}
		var e [3]int64
		for i, s := range f {
			if e[i], err = strconv.ParseInt(s, 10, 64); err != nil {
				return nil, fmt.Errorf("cgroups: read %s: %q: %w", file, line, err)
			}
		}
		m = append(m, e)
	}
	return m, nil
}

// inside returns how the host's uid appears in the namespace (files the
// user owns stat as that uid there), and false when it is not mapped.
func (m idMap) inside(host int) (int, bool) {
	for _, e := range m {
		if int64(host) >= e[1] && int64(host) < e[1]+e[2] {
			return int(e[0] + int64(host) - e[1]), true
		}
	}
	return -1, false
}

// outside returns the host's uid of the namespace's uid id.
func (m idMap) outside(id int) (int, bool) {
	for _, e := range m {
		if int64(id) >= e[0] && int64(id) < e[0]+e[2] {
			return int(e[1] + int64(id) - e[0]), true
		}
	}
	return -1, false
}

// readFields returns the words of a cgroup file such as cgroup.controllers.
func readFields(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(data)), nil
}

// limits returns the limit controllers among cs, in the order of
// limitControllers.
func limits(cs []string) []string {
	var out []string
	for _, c := range limitControllers {
		if contains(cs, c) {
			out = append(out, c)
		}
	}
	return out
}
