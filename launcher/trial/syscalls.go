package trial

import (
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// fileSyscalls are the notified calls that change files: they go to the
// report's files, not its syscalls.
var fileSyscalls = map[string]string{
	"open": ChangeModified, "openat": ChangeModified, "openat2": ChangeModified, "creat": ChangeCreated,
	"mkdir": ChangeCreated, "mkdirat": ChangeCreated, "unlink": ChangeDeleted, "unlinkat": ChangeDeleted, "rmdir": ChangeDeleted,
	"rename": ChangeModified, "renameat": ChangeModified, "renameat2": ChangeModified, "truncate": ChangeModified,
	"chmod": ChangeModified, "fchmodat": ChangeModified, "symlink": ChangeCreated, "symlinkat": ChangeCreated, "link": ChangeCreated, "linkat": ChangeCreated,
}

// syscallRecorder answers and records the notified syscalls.
type syscallRecorder struct {
	enforce bool
	mu      sync.Mutex
	all     []seccomp.Event
}

func newSyscallRecorder(enforce bool) *syscallRecorder { return &syscallRecorder{enforce: enforce} }

// decide lets a syscall run (observation) or denies it (--enforce). The
// never-grantable ones (mount, unshare, ptrace, bpf, module loading, …)
// are denied in observation too: a generated profile would never allow
// them, and letting them run only to watch would open the kernel surface
// the sandbox exists to close. File changes are never denied by the
// trial: the sandbox's own permissions decide them, the trial only sees
// them.
func (s *syscallRecorder) decide(ev seccomp.Event) seccomp.Decision {
	if _, file := fileSyscalls[ev.Syscall]; file || ev.Syscall == "execve" || ev.Syscall == "execveat" {
		return seccomp.Allow
	}
	if s.enforce || NeverGranted(ev.Syscall) {
		return seccomp.Deny
	}
	return seccomp.Allow
}

const maxEvents = 100000

func (s *syscallRecorder) record(ev seccomp.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) < maxEvents {
		s.all = append(s.all, ev)
	}
}

func (s *syscallRecorder) events() []seccomp.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seccomp.Event(nil), s.all...)
}

// summary groups the events into the report's syscalls and files.
func (s *syscallRecorder) summary(home string) ([]Syscall, []FileChange, []Process, []FileRead) {
	verdict := VerdictAllowed
	if s.enforce {
		verdict = VerdictDenied
	}
	by := map[string]*Syscall{}
	files := map[string]*FileChange{}
	var procs []Process
	reads := map[string]int{}
	ran := map[string]bool{}
	for _, ev := range s.events() {
		if ev.Syscall == "execve" || ev.Syscall == "execveat" {
			// A shell or execvp tries each $PATH entry in turn; only a
			// program that exists ran. The sandbox sees the host's
			// runtime directories, so the host says which exist.
			p := pathOf(ev.Detail)
			if _, err := os.Stat(p); p == "" || p == "/.mcpbox/init" || err != nil {
				continue
			}
			argv := execArgv(ev, p)
			if key := strings.Join(argv, "\x00"); !ran[key] {
				ran[key] = true
				procs = append(procs, Process{PID: int(ev.Pid), Argv: argv})
			}
			continue
		}
		if change, ok := fileSyscalls[ev.Syscall]; ok {
			path := pathOf(ev.Detail)
			if path == "" || strings.HasPrefix(path, "/proc/self/fd/") || strings.HasPrefix(path, "/.mcpbox/") {
				continue // runc's exec fifo, mcpbox-init's stdio, or nothing to show
			}
			if (ev.Syscall == "open" || ev.Syscall == "openat") && !writeFlags(ev.Detail) {
				if secretPath(path, home) {
					reads[path]++
				}
				continue
			}
			if f := files[path]; f == nil {
				files[path] = &FileChange{Path: path, Change: change}
			}
			continue
		}
		sc := by[ev.Syscall]
		if sc == nil {
			v := verdict
			if NeverGranted(ev.Syscall) {
				v = VerdictDenied
			}
			sc = &Syscall{Name: ev.Syscall, Verdict: v}
			by[ev.Syscall] = sc
		}
		sc.Count++
		if ev.Detail != "" && len(sc.Examples) < maxExamples && !slices.Contains(sc.Examples, ev.Detail) {
			sc.Examples = append(sc.Examples, ev.Detail)
		}
	}
	var calls []Syscall
	for _, sc := range by {
		calls = append(calls, *sc)
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].Name < calls[j].Name })
	var fs []FileChange
	for _, f := range files {
		fs = append(fs, *f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path })
	var rs []FileRead
	for p, n := range reads {
		rs = append(rs, FileRead{Path: p, Count: n})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Path < rs[j].Path })
	return calls, fs, procs, rs
}

// writeFlags reports whether an open's decoded flags ask for writing.
func writeFlags(detail string) bool {
	for _, f := range []string{"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"} {
		if strings.Contains(detail, f) {
			return true
		}
	}
	return false
}

// secretNames mark credentials wherever they are.
var secretNames = []string{"/.ssh", "id_rsa", "id_ed25519", "id_ecdsa", "/.aws/", "/.gnupg", "/.kube/config", "/.docker/config.json",
	"/.netrc", "/.npmrc", "/.pypirc", "/.git-credentials", "/.config/gh/", "/.env", "mcp.json", "claude_desktop_config.json",
	"/etc/shadow", "/.password-store", "/.config/gcloud"}

// secretPath reports whether a read of path is worth reporting: anything
// under $HOME (the sandbox's is empty, so a read there looks for the
// user's files) and credential files anywhere.
func secretPath(path, home string) bool {
	if home != "" && strings.HasPrefix(path, home+"/") {
		return true
	}
	for _, s := range secretNames {
		if strings.Contains(path, s) {
			return true
		}
	}
	return false
}

// execArgv is what is known of an exec's command line: the program, and
// the arguments the agent decoded, if any.
func execArgv(ev seccomp.Event, path string) []string {
	argv := []string{path}
	if _, rest, ok := strings.Cut(ev.Detail, " argv="); ok {
		argv = append(argv[:0], strings.Fields(rest)...)
	}
	return argv
}

// pathOf takes the path out of an event's decoded arguments ("path=/x …").
func pathOf(detail string) string {
	for _, f := range strings.Fields(detail) {
		if p, ok := strings.CutPrefix(f, "path="); ok {
			return strings.Trim(p, `"`)
		}
	}
	return ""
}
