package grant

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/userns"
	"github.com/mcpbox/mcpbox/sandbox"
)

// Grant is a host path given to the server, with how it was asked for.
type Grant struct {
	sandbox.Mount
	What string // "--mount ~/notes", "path argument /x", ..., for messages
}

// ids are a uid and gid the server can run as.
type ids struct {
	uid, gid uint32
	// you marks the caller seen from inside mcpbox's user namespace
	// (uid and gid 0 there), and subNobody the rootless sandbox's nobody
	// (a subordinate id of the caller's), as the rootless runtime sees
	// them.
	you, subNobody bool
}

func (i ids) String() string {
	if i.you {
		return "you (the rootless runtime runs the server as your user, with your primary group and no other groups)"
	}
	if i.subNobody {
		return "nobody (a subordinate id of yours, not you)"
	}
	if i.uid == sandbox.DefaultUID {
		return fmt.Sprintf("nobody (uid %d, gid %d)", i.uid, i.gid)
	}
	return fmt.Sprintf("uid %d, gid %d", i.uid, i.gid)
}

// SessionUser picks the uid and gid the server runs as, so that it can use
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
// ACL alone opens is refused. A refusal is an *Error.
func SessionUser(grants []Grant, log *slog.Logger) (uid, gid uint32, err error) {
	var cands []ids
	add := func(c ids) {
		if c.uid != 0 && c.gid != 0 && !slices.Contains(cands, c) {
			cands = append(cands, c)
		}
	}
	owner := func(g Grant) (ids, bool) {
		var st syscall.Stat_t
		if syscall.Stat(g.Source, &st) != nil || st.Uid == 0 {
			return ids{}, false
		}
		if st.Gid == 0 {
			st.Gid = sandbox.DefaultGID
		}
		return ids{uid: st.Uid, gid: st.Gid}, true
	}
	for _, g := range grants {
		if c, ok := owner(g); ok && !g.ReadOnly {
			add(c)
		}
	}
	nobody := ids{uid: sandbox.DefaultUID, gid: sandbox.DefaultGID}
	add(nobody)
	for _, g := range grants {
		if c, ok := owner(g); ok && g.ReadOnly {
			add(c)
		}
	}
	for _, g := range grants {
		var st syscall.Stat_t
		if syscall.Stat(g.Source, &st) == nil && st.Gid != 0 {
			add(ids{uid: sandbox.DefaultUID, gid: st.Gid})
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
	return 0, 0, &Error{Err: first}
}

// RootlessSessionUser is SessionUser for the rootless runtime, which
// runs this process inside mcpbox's user namespace: there the caller is
// uid and gid userns.NSCaller, the sandbox's nobody userns.NSNobody (a
// subordinate id of the caller's), and other users' files show an
// unmapped owner. The server runs as nobody — so that the caller's
// sockets, FIFOs and private files in a read-only grant stay closed to
// it — unless a grant needs the caller: a read-write grant (what the
// server writes there is then the caller's) or a read-only one nobody
// cannot read. Access is judged as the kernel will judge it, with the
// primary group only. It returns the ids the server has inside the
// sandbox.
func RootlessSessionUser(grants []Grant, log *slog.Logger) (uid, gid uint32, err error) {
	caller, ok := userns.Inside()
	if !ok {
		return 0, 0, errors.New("grant: the rootless runtime's user needs mcpbox's user namespace")
	}
	you := ids{uid: userns.NSCaller, gid: userns.NSCaller, you: true}
	nobody := ids{uid: userns.NSNobody, gid: userns.NSNobody, subNobody: true}
	cands := []ids{nobody, you}
	if slices.ContainsFunc(grants, func(g Grant) bool { return !g.ReadOnly }) {
		cands = []ids{you, nobody}
	}
	var first error
	for _, c := range cands {
		err := usable(grants, c)
		if err == nil {
			if c.you {
				log.Info("running the server as you: a grant needs it")
				uid, gid := caller.InContainer()
				return uid, gid, nil
			}
			return userns.Nobody, userns.Nobody, nil
		}
		if first == nil {
			first = err
		}
	}
	return 0, 0, &Error{Err: first}
}

// usable checks that the server, run as c, can use every grant.
func usable(grants []Grant, c ids) error {
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
			return fmt.Errorf("%s: %w", g.What, err)
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
func shownAt(grants []Grant, dir string, self Grant) string {
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
func grantError(g Grant, c ids, p string, st *syscall.Stat_t, verb string) error {
	hint := "make it accessible (chmod o+rX " + p + ") or grant a copy the server can read"
	switch {
	case c.you && verb == "write":
		hint = "grant it read-only, or grant a directory of yours"
	case c.you || c.subNobody:
		hint = "grant a path you can read, or a copy of it"
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
		g.What, c, p, st.Uid, st.Gid, st.Mode&0o7777, verb, hint)
}
