//go:build linux

// Command mcpbox-probe runs inside an mcpbox sandbox and tries to escape it
// the way an attacker would: it checks its identity, writes where it should
// not, calls the kernel interfaces a container breakout uses, reaches for the
// network and exhausts resources. `mcpbox selftest` and the integration tests
// run it and read its results.
//
// Each probe prints one JSON object on stderr:
//
//	{"name":"kernel/mount-tmpfs","category":"kernel","tried":"...","outcome":"denied","errno":"EPERM","pass":true}
//
// followed by {"summary":true,"total":N,"passed":P,"failed":F}. The exit
// status is 0 when every probe passed, 1 when one failed, 2 on bad usage and 3
// when the program refuses to run because it is not inside a sandbox.
//
// A probe that succeeds changes the machine it runs on, so the program does
// not start unless it can see that it is inside an mcpbox sandbox (see
// checkSandbox), every attempt that could change its own view of the system
// (mount, unshare, setns, pivot_root, chroot...) runs in a child process,
// and each privileged call uses arguments that keep it harmless even if it is
// allowed: the same host name, the same time, an invalid reboot magic.
//
// With -compare (used by `make compare` to run the same probes under other
// sandboxes) it may also run outside mcpbox, but only where a probe that
// succeeds cannot hurt the host: see checkCompare.
//
// It deliberately does not judge the sandbox's configuration beyond what an
// attacker inside could observe, and it never prints environment values.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit codes.
const (
	exitPass    = 0
	exitFail    = 1
	exitUsage   = 2
	exitRefused = 3
)

// Outcomes of a probe.
const (
	outcomeDenied  = "denied"  // the attempt failed, as it should
	outcomeAllowed = "allowed" // the attempt succeeded
	outcomeError   = "error"   // the probe could not tell
	outcomeSkipped = "skipped" // the probe did not apply
)

var categories = map[string]bool{
	"identity":    true,
	"filesystem":  true,
	"kernel":      true,
	"network":     true,
	"resources":   true,
	"environment": true,
}

const defaultTimeout = 5 * time.Second

// probe is one escape attempt. run fills only the outcome fields of the
// result; the runner adds name, category and tried.
type probe struct {
	name     string
	category string
	tried    string
	timeout  time.Duration // 0 means defaultTimeout
	run      func(*env) result
}

// result is what one probe prints.
type result struct {
	Name     string `json:"name"`
	Category string `json:"category"`
	Tried    string `json:"tried"`
	Outcome  string `json:"outcome"`
	Errno    string `json:"errno,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Pass     bool   `json:"pass"`
	Detail   string `json:"detail,omitempty"`
}

type summary struct {
	Summary bool `json:"summary"`
	Total   int  `json:"total"`
	Passed  int  `json:"passed"`
	Failed  int  `json:"failed"`
}

// env is what probes know about the sandbox they are in.
type env struct {
	ctx        context.Context // cancelled at the probe's deadline
	expectEnv  []string        // names allowed in the environment besides the base set
	tmpfsLimit int64           // 0: not given
	pidsLimit  int64           // 0: not given
	memLimit   int64           // 0: not given
	startFDs   fdSnapshot      // open fds when main started
}

// allProbes is the table of every probe, in the order they run. Resource
// probes come last so that exhausting something cannot disturb the others.
func allProbes() []probe {
	var ps []probe
	ps = append(ps, identityProbes()...)
	ps = append(ps, environProbes()...)
	ps = append(ps, fsProbes()...)
	ps = append(ps, execProbes()...)
	ps = append(ps, setIDProbes()...)
	ps = append(ps, kernelProbes()...)
	ps = append(ps, networkProbes()...)
	ps = append(ps, resourceProbes()...)
	return ps
}

func main() {
	// Before anything opens a file: which fds did we inherit?
	fds := snapshotFDs()
	if len(os.Args) == 2 && os.Args[1] == execMarkerArg {
		os.Exit(execMarker(os.Stdout))
	}
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(childMain(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], fds, os.Stdout, os.Stderr))
}

func run(args []string, fds fdSnapshot, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("mcpbox-probe", flag.ContinueOnError)
	fl.SetOutput(stderr)
	list := fl.Bool("list", false, "print the probes' names and categories as JSON lines on stdout and exit")
	notSandbox := fl.Bool("i-know-this-is-not-a-sandbox", false, "allow -list outside a sandbox (never allows running probes)")
	runRE := fl.String("run", "", "run only the probes whose name matches this regular expression")
	expectEnv := fl.String("expect-env", "", "comma-separated environment variable names allowed besides PATH, HOME and MCPBOX_SANDBOX")
	tmpfsLimit := fl.Int64("tmpfs-limit", 0, "size of the /tmp tmpfs in bytes (resource probe is skipped without it)")
	pidsLimit := fl.Int64("pids-limit", 0, "the sandbox's pids limit (resource probe is skipped without it)")
	memLimit := fl.Int64("memory-limit", 0, "the sandbox's memory limit in bytes (resource probe is skipped without it)")
	compare := fl.Bool("compare", false, "run outside an mcpbox sandbox to compare sandboxes; needs "+compareEnv+"=1 and a non-root user or pid 1 of a container")
	if err := fl.Parse(args); err != nil {
		return exitUsage
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "mcpbox-probe: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	if *notSandbox && !*list {
		fmt.Fprintln(stderr, "mcpbox-probe: -i-know-this-is-not-a-sandbox only works with -list; probes never run outside an mcpbox sandbox")
		return exitRefused
	}
	if *compare && !*list {
		if err := checkCompare(0); err != nil {
			fmt.Fprintf(stderr, "mcpbox-probe: refusing to run with -compare: %v. The probes try to escape a sandbox and would change this machine if they succeeded; `make compare` runs them safely.\n", err)
			return exitRefused
		}
	} else if !(*list && *notSandbox) {
		if err := checkSandbox(0); err != nil {
			fmt.Fprintf(stderr, "mcpbox-probe: refusing to run: %v. The probes try to escape a sandbox and would change this machine if they succeeded; run them with `mcpbox selftest`.\n", err)
			return exitRefused
		}
	}
	var filter *regexp.Regexp
	if *runRE != "" {
		re, err := regexp.Compile(*runRE)
		if err != nil {
			fmt.Fprintf(stderr, "mcpbox-probe: -run: %v\n", err)
			return exitUsage
		}
		filter = re
	}
	for _, v := range []*int64{tmpfsLimit, pidsLimit, memLimit} {
		if *v < 0 {
			fmt.Fprintln(stderr, "mcpbox-probe: limits must not be negative")
			return exitUsage
		}
	}

	var probes []probe
	for _, p := range allProbes() {
		if filter == nil || filter.MatchString(p.name) {
			probes = append(probes, p)
		}
	}
	if *list {
		enc := json.NewEncoder(stdout)
		for _, p := range probes {
			_ = enc.Encode(struct {
				Name     string `json:"name"`
				Category string `json:"category"`
				Tried    string `json:"tried"`
			}{p.name, p.category, p.tried})
		}
		return exitPass
	}

	expected := splitList(*expectEnv)
	if *compare {
		expected = append(expected, compareEnv)
	}
	e := env{
		expectEnv:  expected,
		tmpfsLimit: *tmpfsLimit,
		pidsLimit:  *pidsLimit,
		memLimit:   *memLimit,
		startFDs:   fds,
	}
	enc := json.NewEncoder(stderr)
	sum := summary{Summary: true}
	for _, p := range probes {
		r := runProbe(p, e)
		_ = enc.Encode(r)
		sum.Total++
		if r.Pass {
			sum.Passed++
		} else {
			sum.Failed++
		}
	}
	_ = enc.Encode(sum)
	if sum.Failed > 0 {
		return exitFail
	}
	return exitPass
}

// runProbe runs p with its deadline. A probe stuck in a system call cannot be
// interrupted; it is reported as an error and left behind so the rest run.
func runProbe(p probe, e env) result {
	timeout := p.timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	e.ctx = ctx
	done := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- result{Outcome: outcomeError, Detail: fmt.Sprintf("probe panicked: %v", v)}
			}
		}()
		done <- p.run(&e)
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(timeout + time.Second):
		r = result{Outcome: outcomeError, Detail: fmt.Sprintf("probe did not finish within %s", timeout)}
	}
	r.Name, r.Category, r.Tried = p.name, p.category, p.tried
	return r
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// Helpers that build results.

func pass(outcome, detail string) result {
	return result{Outcome: outcome, Pass: true, Detail: detail}
}

func fail(outcome, detail string) result {
	return result{Outcome: outcome, Pass: false, Detail: detail}
}

func skipped(detail string) result {
	return result{Outcome: outcomeSkipped, Pass: true, Detail: detail}
}

func errored(detail string) result {
	return result{Outcome: outcomeError, Pass: false, Detail: detail}
}

// denied reports an attempt that failed with err; it passes.
func denied(err error, detail string) result {
	r := pass(outcomeDenied, detail)
	r.Errno = errnoName(err)
	if detail == "" {
		r.Detail = err.Error()
	}
	return r
}

// allowed reports an attempt that succeeded; it fails.
func allowed(detail string) result {
	return fail(outcomeAllowed, detail)
}

// deniedUnless reports err == nil as allowed and any error as denied.
func deniedUnless(err error, what string) result {
	if err == nil {
		return allowed(what + " succeeded")
	}
	return denied(err, "")
}

// The marks of an mcpbox sandbox.
const (
	sandboxEnv      = "MCPBOX_SANDBOX"
	sandboxInitPath = "/.mcpbox/init"
)

// checkSandbox returns an error naming every sign of an mcpbox sandbox that
// is missing. All must hold: MCPBOX_SANDBOX=1, /.mcpbox/init exists, and the
// process is pid 1 or a child of pid 1 (mcpbox-init runs the probe as its
// child). depth is 1 for a probe child re-executed by the probe: its parent
// is the probe, so its grandparent must be pid 1 (or its parent pid 1).
func checkSandbox(depth int) error {
	var missing []string
	if os.Getenv(sandboxEnv) != "1" {
		missing = append(missing, sandboxEnv+"=1 is not set")
	}
	var st unix.Stat_t
	if err := unix.Stat(sandboxInitPath, &st); err != nil {
		missing = append(missing, fmt.Sprintf("%s: %v", sandboxInitPath, err))
	}
	pid, ppid := os.Getpid(), os.Getppid()
	ok := pid == 1 || ppid == 1
	if !ok && depth > 0 {
		gp, err := parentOf(ppid)
		ok = err == nil && gp == 1
	}
	if !ok {
		if depth == 0 {
			missing = append(missing, fmt.Sprintf("pid is %d and parent pid is %d, neither is 1", pid, ppid))
		} else {
			missing = append(missing, fmt.Sprintf("parent pid %d is not pid 1 and not a child of pid 1", ppid))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not inside an mcpbox sandbox: %s", strings.Join(missing, "; "))
	}
	return nil
}

// compareEnv must be 1 for -compare.
const compareEnv = "MCPBOX_COMPARE"

// checkCompare returns an error unless the probe may run outside an mcpbox
// sandbox to be compared with other sandboxes. MCPBOX_COMPARE=1 must be set,
// and a probe that succeeds must not be able to hurt the host: either the
// process is not root (the host's own permission checks still apply), or it
// is pid 1 of its own pid namespace, which on a host is the init system and
// never this program. depth is 1 for a probe child: as root its parent must
// be pid 1 and the same program.
func checkCompare(depth int) error {
	if os.Getenv(compareEnv) != "1" {
		return fmt.Errorf("%s=1 is not set", compareEnv)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	pid, ppid := os.Getpid(), os.Getppid()
	if depth == 0 {
		if pid != 1 {
			return fmt.Errorf("running as root with pid %d: as root -compare only runs as pid 1 of a container", pid)
		}
		return nil
	}
	if ppid != 1 {
		return fmt.Errorf("running as root and parent pid %d is not 1", ppid)
	}
	var self, init unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	if err := unix.Stat("/proc/1/exe", &init); err != nil {
		return fmt.Errorf("running as root and pid 1 cannot be checked: %w", err)
	}
	if self.Dev != init.Dev || self.Ino != init.Ino {
		return errors.New("running as root and pid 1 is not this program")
	}
	return nil
}

// parentOf reads the parent pid of pid from /proc.
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	v, ok := statusField(string(b), "PPid")
	if !ok {
		return 0, fmt.Errorf("no PPid in /proc/%d/status", pid)
	}
	return strconv.Atoi(v)
}

// statusField returns the value of a "Name:\tvalue" line of a
// /proc/PID/status file.
func statusField(status, name string) (string, bool) {
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// errnoName returns the symbolic errno in err ("EPERM"), "ETIMEDOUT" for a
// deadline, or "" when err holds none.
func errnoName(err error) string {
	if err == nil {
		return ""
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
		return "errno " + strconv.Itoa(int(en))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return "ETIMEDOUT"
	}
	return ""
}

// errnoIs reports whether err holds one of errs.
func errnoIs(err error, errs ...syscall.Errno) bool {
	for _, e := range errs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// fdSnapshot is the list of fds open when main started, with their
// /proc/self/fd link targets.
type fdSnapshot struct {
	fds     map[int]string
	err     error
	dirFD   int // the fd used to read /proc/self/fd
	takenAt string
}

// snapshotFDs lists /proc/self/fd with raw system calls, so that nothing the
// Go runtime opens later for os.File polling shows up.
func snapshotFDs() fdSnapshot {
	s := fdSnapshot{fds: map[int]string{}, dirFD: -1, takenAt: "start of main"}
	fd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		s.err = fmt.Errorf("open /proc/self/fd: %w", err)
		return s
	}
	defer unix.Close(fd)
	s.dirFD = fd
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err != nil {
			s.err = fmt.Errorf("read /proc/self/fd: %w", err)
			return s
		}
		if n <= 0 {
			break
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			n, err := strconv.Atoi(name)
			if err != nil || n == fd {
				continue
			}
			target, _ := os.Readlink("/proc/self/fd/" + name)
			s.fds[n] = target
		}
	}
	return s
}
