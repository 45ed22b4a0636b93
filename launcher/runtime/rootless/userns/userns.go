// Package userns runs mcpbox again inside a user namespace of its own,
// where it is root, so that the rootless runtime can make network
// namespaces, nftables rules and containers without privileges on the host.
//
// The namespace maps exactly three ids of each kind (see NSCaller,
// NSRoot, NSNobody): id 0 to the caller, so that everything mcpbox makes
// (session directories, FIFOs, pins, audit logs) belongs to the caller on
// the host, and ids 1 and 2 to the first two ids of the caller's
// subordinate range from /etc/subuid and /etc/subgid, written by the
// setuid newuidmap and newgidmap of the uidmap package. The container maps
// its own root to id 1, nobody to id 2 and the caller to id 0: the server
// never runs as root inside the sandbox; it runs as nobody — an id that is
// not the caller's, so that the caller's sockets, FIFOs and private files
// in a read-only grant stay closed to it — unless a grant needs the
// caller (a read-write grant: what the server writes there belongs to the
// caller). Every other id is unmapped, so that a chown to an id mcpbox did
// not mean fails instead of handing a file to a subordinate id.
//
// A process joins its new user namespace's capabilities only by executing
// a program once its ids are mapped, and the maps can be written only
// after the process exists: so the child waits on a pipe until newuidmap
// and newgidmap have run, then executes mcpbox once more (stage 2). That
// wait and exec (stage 1) happen in a C constructor before the Go runtime
// starts (stage1_cgo.go); Continue does the same where cgo is off.
//
// It imports nothing of the launcher.
package userns

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// envStage marks a process that mcpbox started in its user namespace; the
// value is "1:UID:GID" before the ids are mapped (the process waits on
// fd 3, then executes itself again) and "2:UID:GID" after.
const envStage = "MCPBOX_USERNS_STAGE"

// envKill asks mcpbox, run by KillAs, to send SIGKILL to the pid it holds
// and exit: the signal then comes from the id KillAs ran it as.
const envKill = "MCPBOX_USERNS_KILL"

// syncFD is the pipe the child waits on until its ids are mapped.
const syncFD = 3

// Caller is the user who started mcpbox, with ids as the host sees them.
type Caller struct {
	UID, GID int
	Name     string
}

// The ids of mcpbox's user namespace (uids and gids alike).
const (
	NSCaller = 0 // the caller
	NSRoot   = 1 // the container's root: the first subordinate id
	NSNobody = 2 // the sandbox's nobody: the second subordinate id
)

// Nobody is nobody's id inside the container (uid and gid).
const Nobody = 65534

// NSID is the id of mcpbox's namespace that the container maps its id
// (of a server's user: nobody or the caller) to: the owner to give a file
// mcpbox makes for that user.
func NSID(id uint32) int {
	if id == Nobody {
		return NSNobody
	}
	return NSCaller
}

// InContainer is the caller's uid and gid inside the container: the host's
// ids, unless they are 0 or nobody's, which the container's root and
// nobody hold there.
func (c Caller) InContainer() (uid, gid uint32) {
	pick := func(id int) uint32 {
		if id == 0 || id == Nobody {
			return 1000
		}
		return uint32(id)
	}
	return pick(c.UID), pick(c.GID)
}

// Inside reports whether this process runs in mcpbox's user namespace,
// and for whom. Its own ids there are 0.
//
// The variable alone proves nothing (anyone may set it): the kernel's
// uid_map must also be the one Reexec writes, with id 0 mapped to the
// caller it names — never the initial namespace's identity map, where
// the rootless runtime would map the server to the host's root.
func Inside() (Caller, bool) {
	v := os.Getenv(envStage)
	stage, c, err := parseStage(v)
	if err != nil || stage != "2" {
		return Caller{}, false
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil || !ownMap(string(b), c.UID) {
		return Caller{}, false
	}
	return c, true
}

// ownMap reports whether uid_map is the map Reexec writes for uid: id 0
// is uid (one id), ids 1 and 2 subordinate ones.
func ownMap(uidMap string, uid int) bool {
	lines := strings.Split(strings.TrimSpace(uidMap), "\n")
	if len(lines) != 2 || uid == 0 {
		return false
	}
	f := strings.Fields(lines[0])
	g := strings.Fields(lines[1])
	return len(f) == 3 && len(g) == 3 && f[0] == "0" && f[1] == strconv.Itoa(uid) && f[2] == "1" &&
		g[0] == "1" && g[2] == "2"
}

func parseStage(v string) (string, Caller, error) {
	f := strings.Split(v, ":")
	if len(f) != 3 {
		return "", Caller{}, fmt.Errorf("userns: %s=%q: not STAGE:UID:GID", envStage, v)
	}
	uid, err1 := strconv.Atoi(f[1])
	gid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return "", Caller{}, fmt.Errorf("userns: %s=%q: not STAGE:UID:GID", envStage, v)
	}
	c := Caller{UID: uid, GID: gid}
	if u, err := user.LookupId(f[1]); err == nil {
		c.Name = u.Username
	}
	return f[0], c, nil
}

// Continue is called first thing by main. In a stage-1 child it waits
// until its ids are mapped and executes the program again, and does not
// return; otherwise it returns at once. A stage-1 child whose parent
// failed to map it exits with status 125. Built with cgo, mcpbox has done
// this before main already: Continue is the fallback.
func Continue() {
	if pid := os.Getenv(envKill); pid != "" {
		kill(pid)
	}
	stage, c, err := parseStage(os.Getenv(envStage))
	if err != nil || stage != "1" {
		return
	}
	// Only a child Reexec started waits: its ids are not mapped yet, or
	// mapped by its parent just now. The variable set anywhere else is
	// dropped, not obeyed.
	if b, err := os.ReadFile("/proc/self/uid_map"); err != nil || (strings.TrimSpace(string(b)) != "" && !ownMap(string(b), c.UID)) {
		os.Unsetenv(envStage)
		return
	}
	sync := os.NewFile(syncFD, "userns-sync")
	var b [1]byte
	if n, _ := sync.Read(b[:]); n != 1 {
		os.Exit(125) // the parent said why
	}
	sync.Close()
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	env := append(withoutStage(os.Environ()), fmt.Sprintf("%s=2:%d:%d", envStage, c.UID, c.GID))
	err = unix.Exec("/proc/self/exe", append([]string{exe}, os.Args[1:]...), env)
	fmt.Fprintf(os.Stderr, "mcpbox: rootless: execute itself in its user namespace: %v\n", err)
	os.Exit(125)
}

func withoutStage(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, envStage+"=") {
			out = append(out, e)
		}
	}
	return out
}

// Range is a subordinate id range of /etc/subuid or /etc/subgid.
type Range struct{ Start, Count int }

// ErrNoRange is wrapped by Ranges when the caller has no subordinate range.
var ErrNoRange = errors.New("no subordinate id range")

// Ranges finds the caller's first subordinate uid and gid ranges, by name
// or by uid as newuidmap matches them.
func Ranges(c Caller) (uids, gids Range, err error) {
	if uids, err = readRange("/etc/subuid", c.Name, c.UID); err != nil {
		return
	}
	gids, err = readRange("/etc/subgid", c.Name, c.UID)
	return
}

func readRange(file, name string, uid int) (Range, error) {
	f, err := os.Open(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Range{}, fmt.Errorf("userns: %w", err)
	}
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
			if len(fields) != 3 || (fields[0] != name && fields[0] != strconv.Itoa(uid)) {
				continue
			}
			start, err1 := strconv.Atoi(fields[1])
			count, err2 := strconv.Atoi(fields[2])
			// Two ids: the container's root and its nobody.
			if err1 == nil && err2 == nil && start > 0 && count >= 2 {
				return Range{start, count}, nil
			}
		}
	}
	who := name
	if who == "" {
		who = strconv.Itoa(uid)
	}
	return Range{}, fmt.Errorf("userns: %w (of at least 2 ids) for %s in %s: the rootless runtime maps the sandbox's root and nobody to two of them; add one with `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s` (pick a range no other line of /etc/subuid uses; `mcpbox doctor` suggests one)", ErrNoRange, who, file, who)
}

// Tools finds newuidmap and newgidmap.
func Tools() (newuidmap, newgidmap string, err error) {
	find := func(name string) (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/bin"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("userns: %s not found: the rootless runtime needs it to map a subordinate id; install it with `sudo apt install uidmap`", name)
	}
	if newuidmap, err = find("newuidmap"); err != nil {
		return
	}
	newgidmap, err = find("newgidmap")
	return
}

// Reexec runs this program again with the same arguments, environment and
// stdio in a new user namespace, waits for it, passes it the signals this
// process gets, and returns its exit status (128+n for a signal). If this
// process dies, the child gets SIGTERM, so that it stops its sandbox.
// Once the child is on its way to stage 2 it logs, at debug level, how long
// getting there took (a "phase" as the launcher logs them); log may be nil.
func Reexec(c Caller, log *slog.Logger) (int, error) {
	begin := time.Now()
	uids, gids, err := Ranges(c)
	if err != nil {
		return 0, err
	}
	newuidmap, newgidmap, err := Tools()
	if err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("userns: %w", err)
	}
	defer w.Close()
	// Pdeathsig follows the thread that started the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       os.Args,
		Env:        append(withoutStage(os.Environ()), fmt.Sprintf("%s=1:%d:%d", envStage, c.UID, c.GID)),
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: []*os.File{r},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			Pdeathsig:  syscall.SIGTERM,
		},
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		return 0, fmt.Errorf("userns: start mcpbox in a new user namespace: %w (does `unshare --user true` work? `mcpbox doctor` checks)", err)
	}
	r.Close()
	pid := strconv.Itoa(cmd.Process.Pid)
	if err := mapIDs(newuidmap, pid, c.UID, uids); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	if err := mapIDs(newgidmap, pid, c.GID, gids); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	if _, err := w.Write([]byte{1}); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, fmt.Errorf("userns: %w", err)
	}
	w.Close()
	if log != nil {
		log.Debug("phase", "name", "user namespace", "took", time.Since(begin).Round(time.Microsecond))
	}
	return wait(cmd)
}

// mapIDs maps id 0 to the caller's id, and ids 1 and 2 to the first two
// subordinate ids.
func mapIDs(tool, pid string, own int, r Range) error {
	out, err := exec.Command(tool, pid, "0", strconv.Itoa(own), "1", "1", strconv.Itoa(r.Start), "2").CombinedOutput()
	if err != nil {
		return fmt.Errorf("userns: %s: %v: %s", filepath.Base(tool), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// wait passes signals to the child until it exits, and returns its status.
func wait(cmd *exec.Cmd) (int, error) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("userns: %w", err)
	}
	return 0, nil
}

// HostUID is the caller's uid on the host: the effective uid, or, inside
// mcpbox's user namespace (where it is 0), the caller's.
func HostUID() int {
	if c, ok := Inside(); ok {
		return c.UID
	}
	return os.Geteuid()
}

// KillAs sends SIGKILL to pid as id of mcpbox's namespace (NSNobody:
// the sandbox's nobody), from a child run as that id. A container left by
// a dead session lives in a user namespace that was a child of that
// session's mcpbox's, of which this process has no capability: only the
// same user may signal it. It returns nil when the process is gone.
func KillAs(pid, id int) error {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{envKill + "=" + strconv.Itoa(pid)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(id), Gid: uint32(id), Groups: []uint32{}}}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("userns: kill %d as id %d: %v: %s", pid, id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// kill is KillAs's child: it signals, says why it could not, and exits.
func kill(pid string) {
	n, err := strconv.Atoi(pid)
	if err == nil && n > 1 {
		err = unix.Kill(n, unix.SIGKILL)
	} else if err == nil {
		err = fmt.Errorf("pid %d refused", n)
	}
	if err != nil && err != unix.ESRCH {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}
