//go:build linux && cgo && seccomp

package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

const (
	// maxSyscallNr bounds the scan of libseccomp's table. x86_64 and
	// aarch64 number their syscalls below 512 (x32's start at 0x40000000
	// and are not the native ABI).
	maxSyscallNr = 1024
	// maxStringArg is how much of a string argument the agent reads.
	maxStringArg = 256
	// handshakeTimeout bounds how long runc may take to send the state
	// and the fd after connecting.
	handshakeTimeout = 10 * time.Second
)

// notifyRefused are the syscalls runc 1.1.5 refuses to notify: after
// loading the filter runc init writes the notify fd's number to its parent
// (syncParentSeccomp), so a notified write would hang the container before
// the agent ever got the fd (libcontainer/seccomp/seccomp_linux.go,
// InitSeccomp: "SCMP_ACT_NOTIFY cannot be used for the write syscall").
// read and close, also used there, may be notified: the parent holds the fd
// by then. runc also refuses SCMP_ACT_NOTIFY as the default action, which
// WithNotify never sets.
func notifyRefused() []string { return []string{"write"} }

// WithNotify returns a copy of p in which every syscall of the native
// architecture that p mentions in no rule at all, and therefore leaves to
// the default action, gets SCMP_ACT_NOTIFY, and whose listenerPath makes
// runc hand the notify fd to the agent listening there. It also returns the
// notified names, sorted.
//
// Syscalls p names in any rule keep their rules. For the partially allowed
// ones (socket, socketpair, clone, ioctl, personality, seccomp, and
// upstream's argument rules) this means the denied variants, such as
// socket(AF_PACKET), still fail with the default errno and are never seen
// by the agent: notifying them needs a NOTIFY rule with the negated
// conditions, and libseccomp lets an unconditional rule override
// conditional ones, so mixing actions on one syscall does not mean what it
// says (see check). Syscalls with an explicit ERRNO rule (clone3 and
// io_uring_* answer ENOSYS) keep it too. The names runc refuses to notify
// (write) stay at the default action.
//
// The table of syscalls is libseccomp's, so names the running libseccomp
// does not know are not notified; they keep the default action. p must deny
// by default: an allowing default leaves nothing to notify.
func WithNotify(p *specs.LinuxSeccomp, listenerPath string) (*specs.LinuxSeccomp, []string, error) {
	if err := check(p); err != nil {
		return nil, nil, fmt.Errorf("seccomp: notify: %w", err)
	}
	if !filepath.IsAbs(listenerPath) {
		return nil, nil, fmt.Errorf("seccomp: notify: listener path %q is not absolute: runc dials it from its own working directory", listenerPath)
	}
	switch p.DefaultAction {
	case specs.ActAllow, specs.ActLog, specs.ActNotify:
		return nil, nil, fmt.Errorf("seccomp: notify: the default action is %s; WithNotify notifies the calls the default denies, so it needs a denying default", p.DefaultAction)
	}
	arch, err := scmpNativeArch()
	if err != nil {
		return nil, nil, fmt.Errorf("seccomp: notify: %w", err)
	}
	skip := setOf(notifyRefused())
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			skip[n] = true
		}
	}
	seen := map[string]bool{}
	var names []string
	for nr := range maxSyscallNr {
		name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch)
		if err != nil || skip[name] || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	slices.Sort(names)
	q := copyProfile(p)
	q.ListenerPath = listenerPath
	if len(names) > 0 {
		q.Syscalls = append(q.Syscalls, specs.LinuxSyscall{Names: slices.Clone(names), Action: specs.ActNotify})
	}
	return q, names, nil
}

// scmpNativeArch is nativeArch as a libseccomp architecture.
func scmpNativeArch() (libseccomp.ScmpArch, error) {
	a, err := nativeArch(runtime.GOARCH)
	if err != nil {
		return 0, err
	}
	return libseccomp.GetArchFromString(strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_")))
}

// Agent answers the seccomp notifications of the containers whose runc
// connects to its socket. Each container's notify fd gets a goroutine that
// receives a notification, asks decide, and answers, one at a time: a slow
// decide makes that container's notified calls wait, nothing else.
type Agent struct {
	ln      *net.UnixListener
	decide  func(Event) Decision
	onEvent func(Event)
	events  chan Event
	names   [maxSyscallNr]string

	// wakeR is polled next to every notify fd; Close closes wakeW, which
	// makes wakeR report POLLHUP and ends every receive loop.
	wakeR, wakeW *os.File

	received, dropped atomic.Uint64

	mu       sync.Mutex
	counts   map[string]int
	conns    map[*net.UnixConn]bool
	closed   bool
	serveErr error // first error of a connection or receive loop

	loops    sync.WaitGroup // accept loop, handshakes and receive loops
	consumer sync.WaitGroup
	once     sync.Once
}

// ListenAgent listens on socketPath (a new unix socket, mode 0600, removed
// by Close) for runc's connections: runc connects once per container whose
// spec has that listenerPath, sends the container state and the notify fd,
// and hangs up. Only peers with the agent's uid or root are accepted. decide
// is called for every notified syscall and must not be nil.
//
// When the agent is closed, or a receive loop fails, notified calls of the
// containers still running fail with ENOSYS (the kernel's answer when no
// one listens), never succeed.
func ListenAgent(socketPath string, decide func(Event) Decision, opts AgentOptions) (*Agent, error) {
	if decide == nil {
		return nil, errors.New("seccomp: agent: nil decide function")
	}
	arch, err := scmpNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: agent: %w", err)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	a := &Agent{
		decide:  decide,
		onEvent: opts.OnEvent,
		counts:  map[string]int{},
		conns:   map[*net.UnixConn]bool{},
	}
	for nr := range a.names {
		if name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch); err == nil {
			a.names[nr] = name
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socketPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("seccomp: agent: listen: %w", err)
	}
	// The peer check below also covers the moment between bind and chmod.
	if err := os.Chmod(socketPath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("seccomp: agent: chmod %s: %w", socketPath, err)
	}
	a.ln = ln
	a.wakeR, a.wakeW, err = os.Pipe()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("seccomp: agent: pipe: %w", err)
	}
	if a.onEvent != nil {
		a.events = make(chan Event, opts.QueueSize)
		a.consumer.Add(1)
		go func() {
			defer a.consumer.Done()
			for ev := range a.events {
				a.onEvent(ev)
			}
		}()
	}
	a.loops.Add(1)
	go a.accept()
	return a, nil
}

// Stats returns how many notified calls were answered and how many of
// their events could not be queued for OnEvent. A notification the kernel
// withdrew before the answer arrived is not counted: the caller was
// interrupted by a signal and the restarted call is notified (and counted)
// anew, or the caller died. When the signal races with the answer the
// kernel may restart a call that was answered, so under signals the counts
// can exceed the calls made by a few; they never fall short.
func (a *Agent) Stats() (received, dropped uint64) {
	return a.received.Load(), a.dropped.Load()
}

// Counts returns the number of answered calls per syscall name, dropped
// events included.
func (a *Agent) Counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := make(map[string]int, len(a.counts))
	for k, v := range a.counts {
		c[k] = v
	}
	return c
}

// Close stops accepting containers, ends every receive loop, closes the
// notify fds, delivers the queued events and waits for all goroutines. It
// returns the first error a connection or receive loop hit, if any.
func (a *Agent) Close() error {
	var err error
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		for c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
		err = a.ln.Close()
		a.wakeW.Close()
		a.loops.Wait()
		a.wakeR.Close()
		if a.events != nil {
			close(a.events)
			a.consumer.Wait()
		}
		a.mu.Lock()
		if a.serveErr != nil {
			err = a.serveErr
		}
		a.mu.Unlock()
	})
	return err
}

func (a *Agent) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.serveErr == nil && !a.closed {
		a.serveErr = err
	}
}

func (a *Agent) accept() {
	defer a.loops.Done()
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.fail(fmt.Errorf("seccomp: agent: accept: %w", err))
			}
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.conns[c] = true
		a.loops.Add(1)
		a.mu.Unlock()
		go func() {
			defer a.loops.Done()
			fd, id, err := a.handshake(c)
			a.mu.Lock()
			delete(a.conns, c)
			a.mu.Unlock()
			c.Close()
			if err != nil {
				a.fail(err)
				return
			}
			a.serve(fd, id)
		}()
	}
}

// handshake reads what runc 1.1.5 sends (sendContainerProcessState): one
// JSON specs.ContainerProcessState with the fds in SCM_RIGHTS, named by its
// Fds field. It returns the notify fd and the container id.
func (a *Agent) handshake(c *net.UnixConn) (libseccomp.ScmpFd, string, error) {
	if err := checkPeer(c); err != nil {
		return -1, "", err
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	var data []byte
	var fds []int
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*8))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		data = append(data, buf[:max(n, 0)]...)
		if oobn > 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr != nil {
				return -1, "", fmt.Errorf("seccomp: agent: parse control message: %w", perr)
			}
			for _, m := range msgs {
				if got, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, got...)
				}
			}
		}
		// runc sends everything in one sendmsg but does not hang up
		// before the container runs: a complete document with the fds
		// ends the handshake.
		if len(fds) > 0 && json.Valid(data) {
			break
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0 && oobn == 0) {
			break
		}
		if err != nil {
			return -1, "", fmt.Errorf("seccomp: agent: read container state: %w", err)
		}
		if len(data) > 1<<20 {
			return -1, "", errors.New("seccomp: agent: container state larger than 1 MiB")
		}
	}
	var st specs.ContainerProcessState
	if err := json.Unmarshal(data, &st); err != nil {
		return -1, "", fmt.Errorf("seccomp: agent: decode container state: %w", err)
	}
	i := slices.Index(st.Fds, specs.SeccompFdName)
	if i < 0 || i >= len(fds) {
		return -1, "", fmt.Errorf("seccomp: agent: container %s: runc sent fds %v and %d descriptors, none named %s", st.State.ID, st.Fds, len(fds), specs.SeccompFdName)
	}
	fd := fds[i]
	fds[i] = -1
	unix.CloseOnExec(fd)
	return libseccomp.ScmpFd(fd), st.State.ID, nil
}

// checkPeer accepts root and the agent's own uid: the socket's mode keeps
// others out, except in the moment between bind and chmod.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("seccomp: agent: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("seccomp: agent: peer credentials: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("seccomp: agent: peer credentials: %w", cerr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("seccomp: agent: refused connection from uid %d (pid %d)", cred.Uid, cred.Pid)
	}
	return nil
}

// serve answers fd's notifications until the container's last process
// exits (POLLHUP) or the agent closes, then closes fd.
func (a *Agent) serve(fd libseccomp.ScmpFd, container string) {
	defer unix.Close(int(fd))
	pfds := []unix.PollFd{
		{Fd: int32(fd), Events: unix.POLLIN},
		{Fd: int32(a.wakeR.Fd()), Events: unix.POLLIN},
	}
	for {
		pfds[0].Revents, pfds[1].Revents = 0, 0
		if _, err := unix.Poll(pfds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			a.fail(fmt.Errorf("seccomp: agent: container %s: poll: %w", container, err))
			return
		}
		if pfds[1].Revents != 0 {
			return
		}
		if pfds[0].Revents&unix.POLLIN == 0 {
			return // POLLHUP: no process uses the filter any more
		}
		req, err := libseccomp.NotifReceive(fd)
		if err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue // the caller died before we got to it
			}
			a.fail(fmt.Errorf("seccomp: agent: container %s: receive: %w", container, err))
			return
		}
		ev := a.event(fd, req, container)
		resp := &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.EPERM)}
		if a.decide(ev) == Allow {
			resp = &libseccomp.ScmpNotifResp{ID: req.ID, Flags: libseccomp.NotifRespFlagContinue}
		}
		if err := libseccomp.NotifRespond(fd, resp); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				// Withdrawn: a signal interrupted the call, which the
				// kernel restarts as a new notification, or the caller
				// died. Only answered calls are counted.
				continue
			}
			a.fail(fmt.Errorf("seccomp: agent: container %s: respond to %s: %w", container, ev.Syscall, err))
			return
		}
		a.record(ev)
	}
}

func (a *Agent) record(ev Event) {
	a.received.Add(1)
	a.mu.Lock()
	a.counts[ev.Syscall]++
	a.mu.Unlock()
	if a.events == nil {
		return
	}
	select {
	case a.events <- ev:
	default:
		a.dropped.Add(1)
	}
}

func (a *Agent) event(fd libseccomp.ScmpFd, req *libseccomp.ScmpNotifReq, container string) Event {
	ev := Event{
		Nr:        int(req.Data.Syscall),
		Pid:       req.Pid,
		Time:      time.Now(),
		Container: container,
	}
	copy(ev.Args[:], req.Data.Args)
	if ev.Nr >= 0 && ev.Nr < len(a.names) && a.names[ev.Nr] != "" {
		ev.Syscall = a.names[ev.Nr]
	} else {
		ev.Syscall = "syscall_" + strconv.Itoa(ev.Nr)
	}
	ev.Detail = decode(ev.Syscall, ev.Args, func(addr uint64) string {
		return readString(fd, req.ID, req.Pid, addr)
	})
	return ev
}

// pathArg gives the index of the path argument of the path syscalls that
// can be notified.
var pathArg = map[string]int{
	"acct": 0, "chdir": 0, "chmod": 0, "chown": 0, "chroot": 0, "creat": 0,
	"execve": 0, "execveat": 1, "fchmodat": 1, "fchownat": 1, "lchown": 0,
	"link": 0, "linkat": 1, "mkdir": 0, "mkdirat": 1, "mknod": 0,
	"mknodat": 1, "name_to_handle_at": 1, "open": 0, "openat": 1,
	"openat2": 1, "rename": 0, "renameat": 1, "renameat2": 1, "rmdir": 0,
	"swapoff": 0, "swapon": 0, "symlink": 1, "symlinkat": 2, "truncate": 0,
	"umount2": 0, "unlink": 0, "unlinkat": 1, "uselib": 0, "utimes": 0,
	"fsopen": 0, "open_tree": 1, "quotactl": 1,
}

// decode renders the arguments that say what a call was for. str reads a
// NUL-terminated string from the caller's memory.
func decode(name string, args [6]uint64, str func(uint64) string) string {
	switch name {
	case "socket", "socketpair":
		return familyName(args[0]) + " " + sockTypeName(args[1]) + " proto=" + strconv.FormatUint(args[2], 10)
	case "clone":
		return "flags=" + cloneFlagNames(args[0])
	case "unshare":
		return "flags=" + cloneFlagNames(args[0])
	case "setns":
		return "fd=" + strconv.FormatInt(int64(int32(args[0])), 10) + " nstype=" + cloneFlagNames(args[1])
	case "mount":
		return fmt.Sprintf("source=%s target=%s fstype=%s flags=%#x", str(args[0]), str(args[1]), str(args[2]), args[3])
	case "pivot_root":
		return fmt.Sprintf("new_root=%s put_old=%s", str(args[0]), str(args[1]))
	case "ptrace":
		return ptraceRequestName(args[0]) + " pid=" + strconv.FormatInt(int64(int32(args[1])), 10)
	case "kill", "tkill":
		return fmt.Sprintf("pid=%d sig=%d", int32(args[0]), int32(args[1]))
	case "open":
		return "path=" + str(args[0]) + " flags=" + openFlagNames(args[1]) + openMode(args[1], args[2])
	case "openat":
		return dirfd(args[0]) + "path=" + str(args[1]) + " flags=" + openFlagNames(args[2]) + openMode(args[2], args[3])
	case "creat":
		return "path=" + str(args[0]) + fmt.Sprintf(" mode=%#o", args[1]&0o7777)
	case "rename", "link":
		return "path=" + str(args[0]) + " to=" + str(args[1])
	case "renameat", "renameat2", "linkat":
		return dirfd(args[0]) + "path=" + str(args[1]) + " to=" + dirfd(args[2]) + str(args[3])
	case "symlink":
		return "path=" + str(args[1]) + " target=" + str(args[0])
	case "symlinkat":
		return dirfd(args[1]) + "path=" + str(args[2]) + " target=" + str(args[0])
	case "mkdirat", "unlinkat", "fchmodat":
		return dirfd(args[0]) + "path=" + str(args[1])
	}
	if i, ok := pathArg[name]; ok {
		return "path=" + str(args[i])
	}
	return fmt.Sprintf("args=%#x,%#x,%#x,%#x,%#x,%#x", args[0], args[1], args[2], args[3], args[4], args[5])
}

// dirfd names the directory a relative path of an *at call starts from,
// unless it is the working directory (AT_FDCWD), as "dirfd=N ". The path
// is shown as the caller passed it, relative or not.
func dirfd(fd uint64) string {
	if int32(fd) == unix.AT_FDCWD {
		return ""
	}
	return "dirfd=" + strconv.FormatInt(int64(int32(fd)), 10) + " "
}

var openFlags = []struct {
	bit  uint64
	name string
}{
	{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"}, {unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_DSYNC, "O_DSYNC"}, {unix.O_DIRECT, "O_DIRECT"}, {unix.O_LARGEFILE, "O_LARGEFILE"},
	{unix.O_NOFOLLOW, "O_NOFOLLOW"}, {unix.O_NOATIME, "O_NOATIME"}, {unix.O_CLOEXEC, "O_CLOEXEC"},
	{unix.O_PATH, "O_PATH"},
}

// openFlagNames renders open(2) flags: the access mode first, then the
// other flags by name, and any rest in hex. O_TMPFILE and O_SYNC include
// other bits (O_DIRECTORY, O_DSYNC) and are named as a whole.
func openFlagNames(f uint64) string {
	f &= 0xffffffff // the kernel reads an int
	parts := []string{[]string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}[f&unix.O_ACCMODE]}
	f &^= unix.O_ACCMODE
	for _, whole := range []struct {
		bits uint64
		name string
	}{{unix.O_TMPFILE, "O_TMPFILE"}, {unix.O_SYNC, "O_SYNC"}, {unix.O_DIRECTORY, "O_DIRECTORY"}} {
		if f&whole.bits == whole.bits {
			parts = append(parts, whole.name)
			f &^= whole.bits
		}
	}
	for _, n := range openFlags {
		if f&n.bit != 0 {
			parts = append(parts, n.name)
			f &^= n.bit
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", f))
	}
	return strings.Join(parts, "|")
}

// openMode shows the mode argument when the flags make the kernel use it.
func openMode(flags, mode uint64) string {
	if flags&unix.O_CREAT == 0 && flags&unix.O_TMPFILE != unix.O_TMPFILE {
		return ""
	}
	return fmt.Sprintf(" mode=%#o", mode&0o7777)
}

// readString reads a NUL-terminated string of at most maxStringArg bytes at
// addr in pid's memory and returns it quoted. The notification id is
// checked afterwards: if it is no longer valid the process is gone and pid
// may name another process by now, so what was read is not trusted
// (seccomp_unotify(2), NOTES). The string is only what the memory held when
// read: the caller can change it before the kernel looks, so it informs a
// log, never an Allow.
func readString(fd libseccomp.ScmpFd, id uint64, pid uint32, addr uint64) string {
	if addr == 0 {
		return "NULL"
	}
	f, err := os.Open("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/mem")
	if err != nil {
		return "?"
	}
	defer f.Close()
	buf := make([]byte, maxStringArg)
	n, err := f.ReadAt(buf, int64(addr))
	if n == 0 && err != nil {
		return "?"
	}
	if libseccomp.NotifIDValid(fd, id) != nil {
		return "?"
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		return strconv.Quote(string(buf[:i]))
	}
	return strconv.Quote(string(buf)) + "..."
}

var families = map[uint64]string{
	unix.AF_UNSPEC: "AF_UNSPEC", unix.AF_UNIX: "AF_UNIX", unix.AF_INET: "AF_INET",
	unix.AF_INET6: "AF_INET6", unix.AF_NETLINK: "AF_NETLINK", unix.AF_PACKET: "AF_PACKET",
	unix.AF_BLUETOOTH: "AF_BLUETOOTH", unix.AF_CAN: "AF_CAN", unix.AF_VSOCK: "AF_VSOCK",
	unix.AF_XDP: "AF_XDP", unix.AF_ALG: "AF_ALG", unix.AF_KEY: "AF_KEY",
	unix.AF_TIPC: "AF_TIPC", unix.AF_RDS: "AF_RDS", unix.AF_APPLETALK: "AF_APPLETALK",
	unix.AF_AX25: "AF_AX25", unix.AF_X25: "AF_X25", unix.AF_IPX: "AF_IPX",
	unix.AF_LLC: "AF_LLC", unix.AF_NFC: "AF_NFC", unix.AF_PPPOX: "AF_PPPOX",
	unix.AF_QIPCRTR: "AF_QIPCRTR", unix.AF_SMC: "AF_SMC", unix.AF_MCTP: "AF_MCTP",
}

func familyName(f uint64) string {
	if n, ok := families[f]; ok {
		return n
	}
	return "AF_" + strconv.FormatUint(f, 10)
}

func sockTypeName(t uint64) string {
	var s string
	switch t &^ (unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC) {
	case unix.SOCK_STREAM:
		s = "SOCK_STREAM"
	case unix.SOCK_DGRAM:
		s = "SOCK_DGRAM"
	case unix.SOCK_RAW:
		s = "SOCK_RAW"
	case unix.SOCK_SEQPACKET:
		s = "SOCK_SEQPACKET"
	case unix.SOCK_RDM:
		s = "SOCK_RDM"
	case unix.SOCK_PACKET:
		s = "SOCK_PACKET"
	default:
		s = fmt.Sprintf("type=%#x", t&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC))
	}
	if t&unix.SOCK_NONBLOCK != 0 {
		s += "|SOCK_NONBLOCK"
	}
	if t&unix.SOCK_CLOEXEC != 0 {
		s += "|SOCK_CLOEXEC"
	}
	return s
}

var nsFlags = []struct {
	bit  uint64
	name string
}{
	{unix.CLONE_NEWNS, "CLONE_NEWNS"}, {unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
	{unix.CLONE_NEWUTS, "CLONE_NEWUTS"}, {unix.CLONE_NEWIPC, "CLONE_NEWIPC"},
	{unix.CLONE_NEWUSER, "CLONE_NEWUSER"}, {unix.CLONE_NEWPID, "CLONE_NEWPID"},
	{unix.CLONE_NEWNET, "CLONE_NEWNET"}, {unix.CLONE_NEWTIME, "CLONE_NEWTIME"},
}

// cloneFlagNames names the namespace flags in f and shows the rest in hex.
// CLONE_NEWTIME shares its bit with CSIGNAL's range in clone(2); it is
// named all the same, as unshare and setns mean it.
func cloneFlagNames(f uint64) string {
	var parts []string
	for _, n := range nsFlags {
		if f&n.bit != 0 {
			parts = append(parts, n.name)
			f &^= n.bit
		}
	}
	if f != 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%#x", f))
	}
	return strings.Join(parts, "|")
}

var ptraceRequests = map[uint64]string{
	unix.PTRACE_TRACEME: "PTRACE_TRACEME", unix.PTRACE_PEEKTEXT: "PTRACE_PEEKTEXT",
	unix.PTRACE_PEEKDATA: "PTRACE_PEEKDATA", unix.PTRACE_PEEKUSR: "PTRACE_PEEKUSER",
	unix.PTRACE_POKETEXT: "PTRACE_POKETEXT", unix.PTRACE_POKEDATA: "PTRACE_POKEDATA",
	unix.PTRACE_POKEUSR: "PTRACE_POKEUSER", unix.PTRACE_CONT: "PTRACE_CONT",
	unix.PTRACE_KILL: "PTRACE_KILL", unix.PTRACE_SINGLESTEP: "PTRACE_SINGLESTEP",
	unix.PTRACE_GETREGS: "PTRACE_GETREGS", unix.PTRACE_SETREGS: "PTRACE_SETREGS",
	unix.PTRACE_ATTACH: "PTRACE_ATTACH", unix.PTRACE_DETACH: "PTRACE_DETACH",
	unix.PTRACE_SYSCALL: "PTRACE_SYSCALL", unix.PTRACE_SETOPTIONS: "PTRACE_SETOPTIONS",
	unix.PTRACE_GETEVENTMSG: "PTRACE_GETEVENTMSG", unix.PTRACE_SEIZE: "PTRACE_SEIZE",
	unix.PTRACE_INTERRUPT: "PTRACE_INTERRUPT", unix.PTRACE_LISTEN: "PTRACE_LISTEN",
	unix.PTRACE_GETREGSET: "PTRACE_GETREGSET", unix.PTRACE_SETREGSET: "PTRACE_SETREGSET",
	unix.PTRACE_GET_SYSCALL_INFO: "PTRACE_GET_SYSCALL_INFO",
}

func ptraceRequestName(r uint64) string {
	if n, ok := ptraceRequests[r]; ok {
		return n
	}
	return fmt.Sprintf("request=%#x", r)
}
