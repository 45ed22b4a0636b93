package doctor

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/backend"
)

// Caller is the user doctor checks for.
type Caller struct {
	Name     string // "" when the uid has no name
	UID, GID int
}

// currentCaller is the user running doctor, with the host's ids.
func currentCaller() Caller {
	c := Caller{UID: backend.HostUID(), GID: os.Getegid()}
	if u, err := user.LookupId(strconv.Itoa(c.UID)); err == nil {
		c.Name = u.Username
	}
	return c
}

// who names the caller in messages and commands.
func (c Caller) who() string {
	if c.Name != "" {
		return c.Name
	}
	return strconv.Itoa(c.UID)
}

// checkConfig reports the user config file: what it sets, or the mistake
// in it (file, line, field). nil when there is no file.
func checkConfig(opts Options) []Result {
	c := Result{Name: "config"}
	switch {
	case opts.ConfigErr != nil:
		c.Status, c.Detail = Fail, opts.ConfigErr.Error()
		c.Fix = "correct the line named (mcpbox never rewrites the file)"
	case opts.ConfigFile != "":
		c.Status, c.Detail = OK, opts.ConfigFile
		if opts.ConfigRuntime != "" {
			c.Detail += ": runtime: " + opts.ConfigRuntime
		}
	default:
		return nil
	}
	return []Result{c}
}

// checkRuntime says which runtime sessions run in and why, as a session
// chooses it (backend.Choose); the kind is Containerd when the setting is
// refused, since that is what the caller gets once it is fixed.
func checkRuntime(ctx context.Context, opts Options) (string, Result) {
	c := Result{Name: "runtime"}
	from := opts.RuntimeFrom
	if from == "" {
		from = backend.Auto
	}
	choice, err := backend.Choose(ctx, opts.Runtime, opts.Address)
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s (%s): %v", opts.Runtime, from, err)
		c.Fix = "drop the rootless setting (" + from + "): as root, mcpbox runs sandboxes through containerd"
		return backend.Containerd, c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s (%s): %s", choice.Kind, from, choice.Why)
	return choice.Kind, c
}

// notUsed turns a check of the containerd runtime into a skip when the
// rootless runtime runs instead (the runtime check says why).
func notUsed(c Result) Result {
	c.Status, c.Detail, c.Fix = Skip, "not used: the rootless runtime runs", ""
	return c
}

// rootlessChecks are the checks of what only the rootless runtime needs.
// When containerd runs instead (a user who may open its socket), a
// failure is a warning: it matters only with --runtime rootless.
func rootlessChecks(opts Options, inUse bool) []Result {
	checks := []Result{
		checkIDMapTools(opts),
		checkSubIDs(opts),
		checkRootlessStateDir(opts),
		checkLimits(opts),
	}
	if !inUse {
		for i := range checks {
			if checks[i].Status == Fail {
				checks[i].Status = Warn
				checks[i].Detail += " (needed only with --runtime rootless)"
			}
		}
	}
	return checks
}

// Linux capability numbers (linux/capability.h) and the layout of the
// security.capability extended attribute (struct vfs_cap_data).
const (
	capSetgid            = 6
	capSetuid            = 7
	vfsCapRevisionMask   = 0xff000000
	vfsCapFlagsEffective = 0x000001
	vfsCapRevision1      = 0x01000000
	vfsCapRevision2      = 0x02000000
	vfsCapRevision3      = 0x03000000
)

// fileCapHas reports whether a security.capability attribute grants
// capability bit as permitted and effective in the host's user namespace:
// what `setcap cap_setuid=ep` writes. A v3 attribute with a non-zero root
// id counts only in a user namespace, so not here.
func fileCapHas(data []byte, bit int) bool {
	if len(data) < 12 {
		return false
	}
	magic := binary.LittleEndian.Uint32(data)
	switch magic & vfsCapRevisionMask {
	case vfsCapRevision1:
	case vfsCapRevision2:
		if len(data) < 20 {
			return false
		}
	case vfsCapRevision3:
		if len(data) < 24 || binary.LittleEndian.Uint32(data[20:]) != 0 {
			return false
		}
	default:
		return false
	}
	permitted := binary.LittleEndian.Uint32(data[4:])
	return magic&vfsCapFlagsEffective != 0 && permitted&(1<<bit) != 0
}

// privileged says how a newuidmap or newgidmap binary gets the capability
// it needs: setuid root, or a file capability; ok is false for neither.
func privileged(fi fs.FileInfo, fileCap []byte, bit int) (how string, ok bool) {
	uid, _, _ := fileOwner(fi)
	if fi.Mode()&fs.ModeSetuid != 0 && uid == 0 {
		return "setuid root", true
	}
	name := map[int]string{capSetuid: "cap_setuid", capSetgid: "cap_setgid"}[bit]
	if fileCapHas(fileCap, bit) {
		return "file capability " + name + "=ep", true
	}
	return fmt.Sprintf("mode %s, owner uid %d, no %s file capability", fi.Mode(), uid, name), false
}

// lookTool finds a command on PATH, else in the system directories that an
// ordinary user's PATH may lack.
func lookTool(opts Options, name string, dirs ...string) (string, error) {
	path, err := opts.LookPath(name)
	for _, dir := range dirs {
		if err == nil {
			break
		}
		path, err = opts.LookPath(filepath.Join(dir, name))
	}
	return path, err
}

// checkIDMapTools looks for newuidmap and newgidmap, which the rootless
// runtime runs to map a subordinate id into its user namespace, and checks
// that they can: setuid root (Debian) or with a file capability (Fedora).
func checkIDMapTools(opts Options) Result {
	c := Result{Name: "newuidmap/newgidmap"}
	var found, missing, weak []string
	for _, tool := range []struct {
		name string
		bit  int
	}{{"newuidmap", capSetuid}, {"newgidmap", capSetgid}} {
		path, err := lookTool(opts, tool.name, "/usr/bin", "/usr/sbin", "/bin")
		if err != nil {
			missing = append(missing, tool.name)
			continue
		}
		fi, err := os.Stat(path)
		if err != nil {
			weak = append(weak, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		how, ok := privileged(fi, opts.FileCaps(path), tool.bit)
		if !ok {
			weak = append(weak, fmt.Sprintf("%s: %s", path, how))
			continue
		}
		found = append(found, fmt.Sprintf("%s (%s)", path, how))
	}
	switch {
	case missing != nil:
		c.Status = Fail
		c.Detail = "not installed: " + strings.Join(missing, ", ") + ": the rootless runtime maps a subordinate id with them"
		c.Fix = "sudo apt install uidmap"
	case weak != nil:
		c.Status = Fail
		c.Detail = strings.Join(weak, "; ") + ": without privilege they cannot map a subordinate id"
		c.Fix = "sudo apt install --reinstall uidmap (installs them setuid root)"
	default:
		c.Status, c.Detail = OK, strings.Join(found, ", ")
	}
	return c
}

// subRange is one line of /etc/subuid or /etc/subgid.
type subRange struct {
	owner        string // a user name or a uid
	start, count int
}

func (r subRange) end() int { return r.start + r.count }

func (r subRange) String() string {
	return fmt.Sprintf("%d-%d (%d ids)", r.start, r.end()-1, r.count)
}

// readSubIDs reads /etc/subuid or /etc/subgid; a missing file has no
// ranges. Lines that do not parse are skipped, as newuidmap skips them.
func readSubIDs(file string) ([]subRange, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []subRange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Split(line, ":")
		if line == "" || strings.HasPrefix(line, "#") || len(fields) != 3 {
			continue
		}
		start, err1 := strconv.Atoi(fields[1])
		count, err2 := strconv.Atoi(fields[2])
		if err1 == nil && err2 == nil && start >= 0 && count > 0 {
			out = append(out, subRange{fields[0], start, count})
		}
	}
	return out, sc.Err()
}

// findRange is the caller's first range, by name or by uid, as the
// rootless runtime picks it (userns.Ranges): at least 2 ids, since the
// runtime maps two subordinate ids (the container's root and its nobody)
// and leaves every other id unmapped.
func findRange(ranges []subRange, c Caller) (subRange, bool) {
	for _, r := range ranges {
		if r.start > 0 && r.count >= 2 && (r.owner == c.Name && c.Name != "" || r.owner == strconv.Itoa(c.UID)) {
			return r, true
		}
	}
	return subRange{}, false
}

// Where usermod's --add-subuids ranges go, after shadow's defaults
// (SUB_UID_MIN, SUB_UID_COUNT in login.defs): 65536 ids, the size other
// rootless tools (podman, rootlesskit) expect, so one range serves them
// all.
const (
	subIDMin   = 100000
	subIDCount = 65536
)

// freeRange is the lowest range of count ids from min that overlaps none
// of taken.
func freeRange(taken []subRange, min, count int) subRange {
	sorted := append([]subRange(nil), taken...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].start < sorted[j].start })
	start := min
	for _, r := range sorted {
		if r.end() <= start {
			continue
		}
		if r.start >= start+count {
			break
		}
		start = r.end()
	}
	return subRange{start: start, count: count}
}

// checkSubIDs looks for the caller's subordinate uid and gid ranges, and
// when one is missing, suggests one that no line of either file uses.
func checkSubIDs(opts Options) Result {
	c := Result{Name: "subordinate ids"}
	subuid, subgid := opts.path("/etc/subuid"), opts.path("/etc/subgid")
	uids, err := readSubIDs(subuid)
	if err == nil {
		var gids []subRange
		if gids, err = readSubIDs(subgid); err == nil {
			return subIDsResult(c, opts.Caller, uids, gids)
		}
	}
	c.Status, c.Detail = Fail, err.Error()
	c.Fix = "sudo chmod 0644 /etc/subuid /etc/subgid"
	return c
}

func subIDsResult(c Result, who Caller, uids, gids []subRange) Result {
	u, uok := findRange(uids, who)
	g, gok := findRange(gids, who)
	if uok && gok {
		c.Status = OK
		c.Detail = fmt.Sprintf("%s: uids %s in /etc/subuid, gids %s in /etc/subgid", who.who(), u, g)
		return c
	}
	var files []string
	if !uok {
		files = append(files, "/etc/subuid")
	}
	if !gok {
		files = append(files, "/etc/subgid")
	}
	c.Status = Fail
	c.Detail = fmt.Sprintf("no range for %s in %s: the rootless runtime maps the sandbox's root and its nobody to two subordinate ids", who.who(), strings.Join(files, " nor in "))
	free := freeRange(append(append([]subRange(nil), uids...), gids...), subIDMin, subIDCount)
	span := fmt.Sprintf("%d-%d", free.start, free.end()-1)
	if who.Name == "" {
		// usermod needs a name; the files also take a uid.
		c.Fix = fmt.Sprintf("echo %d:%d:%d | sudo tee -a %s", who.UID, free.start, free.count, strings.Join(files, " "))
		return c
	}
	c.Fix = "sudo usermod"
	if !uok {
		c.Fix += " --add-subuids " + span
	}
	if !gok {
		c.Fix += " --add-subgids " + span
	}
	c.Fix += " " + who.Name
	return c
}

// checkRootlessStateDir says where the rootless runtime keeps its state:
// $XDG_RUNTIME_DIR/mcpbox, or a fallback and why (see backend.StateDir,
// which makes the directory). The last fallback, in the home, is a
// warning: someone else made /tmp/mcpbox-UID, which only root can undo.
func checkRootlessStateDir(opts Options) Result {
	c := Result{Name: "runtime dir"}
	loc, err := opts.RootlessStateDir()
	var se *backend.StateDirError
	switch {
	case errors.As(err, &se):
		c.Status, c.Detail, c.Fix = Fail, se.Dir+": "+se.Problem, se.Fix
		if problem := backend.RuntimeDirProblem(opts.XDGRuntimeDir); problem != "" {
			c.Detail = problem + "; " + c.Detail
		}
	case err != nil:
		c.Status, c.Detail = Fail, err.Error()
	case loc.Tmp != nil:
		c.Status, c.Detail, c.Fix = Warn, loc.Why()+": the rootless runtime keeps its state in "+loc.Dir, loc.Tmp.Fix
	case loc.RuntimeDirProblem == "":
		c.Status, c.Detail = OK, loc.Dir+" (in $XDG_RUNTIME_DIR)"
	case opts.XDGRuntimeDir == "":
		c.Status, c.Detail = OK, loc.Dir+" (XDG_RUNTIME_DIR is not set)"
	default:
		c.Status, c.Detail = Warn, loc.RuntimeDirProblem+": the rootless runtime keeps its state in "+loc.Dir
		c.Fix = "unset XDG_RUNTIME_DIR, or point it at a directory of yours with mode 0700"
	}
	return c
}

// checkLimits says whether the rootless runtime can enforce the sandbox's
// cgroup limits, through opts.Limits. Sessions run without them, saying
// so: a warning, not a failure.
func checkLimits(opts Options) Result {
	c := Result{Name: "limits"}
	fix := "sudo mcpbox setup rootless --user " + opts.Caller.who()
	if opts.Limits == nil {
		c.Status, c.Fix = Warn, fix
		c.Detail = "not enforced: memory, pids, cpu (this build cannot place rootless sandboxes in a cgroup)"
		return c
	}
	ok, detail, f := opts.Limits()
	c.Status, c.Detail = OK, detail
	if !ok {
		c.Status, c.Fix = Warn, f
		if c.Fix == "" {
			c.Fix = fix
		}
	}
	return c
}

// checkCrun reports crun, which the rootless runtime may use instead of
// runc. It is optional.
func checkCrun(ctx context.Context, opts Options) Result {
	c := Result{Name: "crun"}
	path, err := lookTool(opts, "crun", "/usr/local/bin", "/usr/bin", "/usr/sbin")
	if err != nil {
		c.Status, c.Detail = Skip, "not installed (optional: runc is enough)"
		return c
	}
	out, err := commandOutput(ctx, path, "--version")
	if err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("%s --version: %v", path, err)
		c.Fix = "sudo apt-get install --reinstall crun"
		return c
	}
	v, ok := strings.CutPrefix(firstLine(out), "crun version ")
	if !ok {
		c.Status, c.Detail = Warn, fmt.Sprintf("%s --version: no version in %q", path, firstLine(out))
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s (%s)", strings.TrimSpace(v), path)
	return c
}
