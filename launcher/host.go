package launcher

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/mount"
	"github.com/moby/sys/mountinfo"

	"github.com/mcpbox/mcpbox/sandbox"
)

// newPhases returns a function that logs, at debug level, how long each
// phase of start-up took since the previous one, so the slowest is visible.
func newPhases(log *slog.Logger) func(string) {
	start := time.Now()
	last := start
	var mu sync.Mutex
	return func(name string) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		log.Debug("phase", "name", name, "took", now.Sub(last).Round(time.Microsecond), "since_start", now.Sub(start).Round(time.Microsecond))
		last = now
	}
}

// firstWrite calls first once, before the first write to w.
type firstWrite struct {
	w     io.Writer
	first func()
	once  sync.Once
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(f.first)
	return f.w.Write(p)
}

// grant is a host path given to the server, with how it was asked for.
type grant struct {
	sandbox.Mount
	what string // "--mount ~/notes", "path argument /x", ..., for messages
}

// ids are a uid and gid the server can run as.
type ids struct{ uid, gid uint32 }

func (i ids) String() string {
	if i.uid == sandbox.DefaultUID {
		return fmt.Sprintf("nobody (uid %d, gid %d)", i.uid, i.gid)
	}
	return fmt.Sprintf("uid %d, gid %d", i.uid, i.gid)
}

// sessionUser picks the uid and gid the server runs as, so that it can use
// every grant, and refuses grants no allowed user can use: such a grant
// would start a server that then fails with "not found" or "permission
// denied". Root is never used.
//
// The owner of a read-write grant comes first, so that the server writes
// there as the user who owns the files (as `docker run --user` would);
// then nobody; then the owner of a read-only grant that nobody cannot
// read (a 0700 folder, the norm for private ones); then nobody with the
// group of such a grant. The first of them that can use every grant is
// taken. Access is judged as the kernel would for that uid and gid with no
// supplementary groups: the permission bits of each grant (read, and
// write for read-write) and search permission on every directory above it
// inside the sandbox that another grant shows (the directories runc
// creates for mount points are 0755). ACLs are not read: a grant that an
// ACL alone opens is refused.
func sessionUser(grants []grant, log *slog.Logger) (uid, gid uint32, err error) {
	var cands []ids
	add := func(c ids) {
		if c.uid != 0 && c.gid != 0 && !slices.Contains(cands, c) {
			cands = append(cands, c)
		}
	}
	owner := func(g grant) (ids, bool) {
		var st syscall.Stat_t
		if syscall.Stat(g.Source, &st) != nil || st.Uid == 0 {
			return ids{}, false
		}
		if st.Gid == 0 {
			st.Gid = sandbox.DefaultGID
		}
		return ids{st.Uid, st.Gid}, true
	}
	for _, g := range grants {
		if c, ok := owner(g); ok && !g.ReadOnly {
			add(c)
		}
	}
	nobody := ids{sandbox.DefaultUID, sandbox.DefaultGID}
	add(nobody)
	for _, g := range grants {
		if c, ok := owner(g); ok && g.ReadOnly {
			add(c)
		}
	}
	for _, g := range grants {
		var st syscall.Stat_t
		if syscall.Stat(g.Source, &st) == nil && st.Gid != 0 {
			add(ids{sandbox.DefaultUID, st.Gid})
		}
	}
	var first error
	for _, c := range cands {
		err := usable(grants, c)
		if err == nil {
			if c != nobody {
				log.Info("running the server as the user that can use its grants", "uid", c.uid, "gid", c.gid)
			}
			return c.uid, c.gid, nil
		}
		if first == nil {
			first = err
		}
	}
	return 0, 0, &UsageError{Err: first}
}

// usable checks that the server, run as c, can use every grant.
func usable(grants []grant, c ids) error {
	for _, g := range grants {
		dest := filepath.Clean(g.Destination)
		// The directories above the grant inside the sandbox: those that
		// another grant shows must let c through.
		for _, dir := range ancestors(dest) {
			host := shownAt(grants, dir, g)
			if host == "" {
				continue // a mount point runc made (0755), or the root
			}
			var st syscall.Stat_t
			if err := syscall.Stat(host, &st); err != nil {
				continue
			}
			if !permits(&st, c, 0o1) {
				return grantError(g, c, host, &st, "pass through")
			}
		}
		var st syscall.Stat_t
		if err := syscall.Stat(g.Source, &st); err != nil {
			return fmt.Errorf("%s: %w", g.what, err)
		}
		want, verb := uint32(0o4), "read"
		if uint32(st.Mode)&syscall.S_IFMT == syscall.S_IFDIR {
			want |= 0o1
		}
		if !g.ReadOnly {
			want, verb = want|0o2, "write"
		}
		if !permits(&st, c, want) {
			return grantError(g, c, g.Source, &st, verb)
		}
	}
	return nil
}

// ancestors returns the directories above the clean absolute path p, from
// the top, without "/".
func ancestors(p string) []string {
	var out []string
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// shownAt returns the host path that the sandbox path dir shows through
// the deepest grant other than self at or above it, or "".
func shownAt(grants []grant, dir string, self grant) string {
	best, host := -1, ""
	for _, h := range grants {
		d := filepath.Clean(h.Destination)
		if h.Destination == self.Destination || !within(dir, d) || len(d) <= best {
			continue
		}
		rel, err := filepath.Rel(d, dir)
		if err != nil {
			continue
		}
		best, host = len(d), filepath.Join(h.Source, rel)
	}
	return host
}

// permits reports whether the permission bits of st give c the access in
// want (4 read, 2 write, 1 execute/search), as the kernel decides for a
// process with no supplementary groups and no capabilities: the owner's
// bits if c owns it, else the group's if c is in its group, else the
// others'.
func permits(st *syscall.Stat_t, c ids, want uint32) bool {
	mode := uint32(st.Mode) & 0o777
	var bits uint32
	switch {
	case st.Uid == c.uid:
		bits = mode >> 6
	case st.Gid == c.gid:
		bits = mode >> 3 & 0o7
	default:
		bits = mode & 0o7
	}
	return bits&want == want
}

// grantError says why the server, run as c, cannot use g: what stops it
// at the host path p, and what to do about it.
func grantError(g grant, c ids, p string, st *syscall.Stat_t, verb string) error {
	hint := "make it accessible (chmod o+rX " + p + ") or grant a copy the server can read"
	switch {
	case verb == "write" && st.Uid == 0:
		hint = "mcpbox never runs a server as root: chown it to your user (the server then runs as that user), or grant it read-only"
	case verb == "write":
		hint = "grant it read-only, or let that user write there"
	case st.Uid == 0:
		hint = "mcpbox never runs a server as root: make it readable for others (chmod o+rX " + p + ") or grant a copy owned by your user"
	case st.Uid != c.uid:
		hint = "the server runs as one user, and the grants belong to different users (or to root): grant paths of one owner, or make this one readable for others (chmod o+rX " + p + ")"
	}
	return fmt.Errorf("%s cannot work: the server would run as %s, and %s (owner %d, group %d, mode %04o) does not let it %s: %s",
		g.what, c, p, st.Uid, st.Gid, st.Mode&0o7777, verb, hint)
}

// findInit returns the mcpbox-init binary: the given path, else the one
// installed next to mcpbox's own executable.
func findInit(path string) (string, error) {
	return findHelper("mcpbox-init", path, "`make build` puts both in bin/")
}

// findProbe returns the mcpbox-probe binary: path, or the one next to
// mcpbox's executable.
func findProbe(path string) (string, error) {
	return findHelper("mcpbox-probe", path, "`make build` puts it in bin/")
}

// findHelper returns the executable name at path, or next to mcpbox's own
// executable when path is "".
func findHelper(name, path, how string) (string, error) {
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("launcher: find %s: %w", name, err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return "", fmt.Errorf("launcher: find %s: %w", name, err)
		}
		path = filepath.Join(filepath.Dir(exe), name)
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("launcher: %s is missing at %s: install it next to mcpbox (%s)", name, path, how)
	}
	return path, nil
}

// ownerIdentity returns this process's pid and its start time (clock ticks
// since boot), which together name it even after the pid is reused.
func ownerIdentity() (pid, start string) {
	pid = strconv.Itoa(os.Getpid())
	return pid, processStart(pid)
}

func ownerLabel() string {
	pid, start := ownerIdentity()
	return pid + " " + start + "\n"
}

// processStart reads field 22 of /proc/PID/stat; "" if the process is gone.
func processStart(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// ownerAlive tells whether the process named by pid and start still runs.
func ownerAlive(pid, start string) bool {
	if pid == "" {
		return false
	}
	got := processStart(pid)
	return got != "" && (start == "" || got == start)
}

// removeSessionDir deletes a session directory, but only after checking
// that nothing is mounted below it: a bind mount left there would make
// RemoveAll delete the host files behind it.
func removeSessionDir(dir string) error {
	dir = filepath.Clean(dir)
	// An image-mode session's image view, which a killed mcpbox leaves
	// mounted; anything else mounted below dir is refused below.
	if img := filepath.Join(dir, "image"); isMountPoint(img) {
		if err := mount.UnmountAll(img, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", img, err)
		}
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("check mounts under %s: %w", dir, err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("refusing to remove %s: %s is still mounted", dir, mounts[0].Mountpoint)
	}
	return os.RemoveAll(dir)
}

func isMountPoint(p string) bool {
	mounted, err := mountinfo.Mounted(p)
	return err == nil && mounted
}

// dedupeMounts drops a mount that an earlier one already provides: a path
// inside an earlier bind of the same host tree with the same mode (the
// executable's directory inside the script's package tree, say). A later
// mount at the same destination replaces the earlier one, so a user's
// --mount overrides a default. sandbox orders the result.
func dedupeMounts(in []sandbox.Mount) []sandbox.Mount {
	var out []sandbox.Mount
	index := map[string]int{}
next:
	for _, m := range in {
		if i, ok := index[m.Destination]; ok {
			out[i] = m
			continue
		}
		for _, p := range out {
			rel, err := filepath.Rel(p.Destination, m.Destination)
			if err == nil && p.ReadOnly == m.ReadOnly && p.NoExec == m.NoExec && rel != "." && !strings.HasPrefix(rel, "..") &&
				filepath.Join(p.Source, rel) == m.Source {
				continue next
			}
		}
		index[m.Destination] = len(out)
		out = append(out, m)
	}
	return out
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
