package launcher

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/sandbox/egress"
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// Observe watches a session for `mcpbox trial`: what the server's cgroup
// used, every egress attempt, the syscalls the profile denies and, with
// Exec, the programs it ran. Nil fields watch nothing.
type Observe struct {
	// OnEgress receives every egress decision. Setting it gives the server
	// mcpbox's egress proxy even when nothing is allowed, so that its
	// attempts are seen (and refused) instead of failing unseen.
	OnEgress func(egress.Event)
	// OnUsage receives the cgroup's figures every UsageEvery (default
	// 100 ms) while the server runs, and once more at its end.
	OnUsage    func(Usage)
	UsageEvery time.Duration
	// OnIdentity receives the server's identity (package and version)
	// once it is resolved.
	OnIdentity func(broker.Identity)
	// Syscalls, when set, makes every syscall the profile denies outright
	// a user notification that mcpbox's agent answers with Syscalls'
	// decision; OnSyscall then receives each of them (under load, some
	// are only counted).
	Syscalls  func(seccomp.Event) seccomp.Decision
	OnSyscall func(seccomp.Event)
	// Exec also notifies execve and execveat (Syscalls must allow them),
	// so that every program the sandbox runs is seen.
	Exec bool
	// Files also notifies opens for writing and the calls that create,
	// delete or rename files (Syscalls must allow them: runc's own open
	// of its exec fifo is one), so that every attempt to change a file is
	// seen, refused by the sandbox's permissions or not.
	Files bool
	// Reads notifies every open, reads included (Files must be set too),
	// so that reads of secrets such as ~/.ssh are seen.
	Reads bool
}

// Usage is what a sandbox's cgroup has used.
type Usage struct {
	PeakMemory uint64        // bytes, the cgroup's high-water mark
	Pids       uint64        // tasks now
	CPU        time.Duration // CPU time used so far
}

// egressSink turns the egress log's JSON lines into events.
type egressSink struct {
	pw *io.PipeWriter
}

func newEgressSink(fn func(egress.Event), also io.Writer) *egressSink {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev egress.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				fn(ev)
			}
			if also != nil {
				also.Write(append(sc.Bytes(), '\n'))
			}
		}
		io.Copy(io.Discard, pr)
	}()
	return &egressSink{pw: pw}
}

func (e *egressSink) Write(p []byte) (int, error) { return e.pw.Write(p) }
func (e *egressSink) Close() error                { return e.pw.Close() }

// cgroupFiles are where a cgroup's figures are, under cgroup v2 or v1.
type cgroupFiles struct {
	peak, pids, cpu string
	cpuV2           bool
}

func findCgroup(path string) cgroupFiles {
	const root = "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		d := filepath.Join(root, path)
		return cgroupFiles{peak: filepath.Join(d, "memory.peak"), pids: filepath.Join(d, "pids.current"),
			cpu: filepath.Join(d, "cpu.stat"), cpuV2: true}
	}
	f := cgroupFiles{
		peak: filepath.Join(root, "memory", path, "memory.max_usage_in_bytes"),
		pids: filepath.Join(root, "pids", path, "pids.current"),
		cpu:  filepath.Join(root, "cpuacct", path, "cpuacct.usage"),
	}
	if _, err := os.Stat(filepath.Dir(f.cpu)); err != nil {
		f.cpu = filepath.Join(root, "cpu,cpuacct", path, "cpuacct.usage")
	}
	return f
}

func readUint(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// sample reads the cgroup's usage; ok is false once the cgroup is gone.
func (f cgroupFiles) sample() (u Usage, ok bool) {
	u.PeakMemory, ok = readUint(f.peak)
	u.Pids, _ = readUint(f.pids)
	if f.cpuV2 {
		if b, err := os.ReadFile(f.cpu); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, found := strings.CutPrefix(line, "usage_usec "); found {
					us, _ := strconv.ParseUint(v, 10, 64)
					u.CPU = time.Duration(us) * time.Microsecond
				}
			}
		}
	} else if ns, ok := readUint(f.cpu); ok {
		u.CPU = time.Duration(ns)
	}
	return u, ok
}

// watch samples the cgroup for OnUsage until stop is closed, and reports
// the last sample once more then.
func (o *Observe) watch(cgroupPath string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	f := findCgroup(cgroupPath)
	every := o.UsageEvery
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	var last Usage
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if u, ok := f.sample(); ok {
			last = u
			o.OnUsage(u)
		}
		select {
		case <-stop:
			o.OnUsage(last)
			return
		case <-tick.C:
		}
	}
}

// notifySocket is the name of the seccomp agent's socket in a session dir.
const notifySocket = "seccomp.sock"

// startAgent listens for runc's seccomp notification fd and answers the
// session's notified syscalls: by opts.Observe's decision, or, for
// --report-violations, by denying each one and reporting it on stderr and
// in the audit log.
func (s *session) startAgent(audit io.Writer) (*seccomp.Agent, error) {
	decide := func(seccomp.Event) seccomp.Decision { return seccomp.Deny }
	var onEvent func(seccomp.Event)
	if o := s.opts.Observe; o != nil && o.Syscalls != nil {
		decide, onEvent = o.Syscalls, o.OnSyscall
	}
	if s.opts.ReportViolations {
		prev := onEvent
		onEvent = func(ev seccomp.Event) {
			fmt.Fprintf(s.opts.Stderr, "mcpbox: denied syscall %s %s (the profile does not allow it)\n", ev.Syscall, broker.EscapeHidden(ev.Detail))
			if audit != nil {
				audit.Write(deniedSyscallLine(ev))
			}
			if prev != nil {
				prev(ev)
			}
		}
	}
	a, err := seccomp.ListenAgent(filepath.Join(s.dir, notifySocket), decide, seccomp.AgentOptions{OnEvent: onEvent})
	if err != nil {
		return nil, fmt.Errorf("launcher: seccomp agent: %w", err)
	}
	return a, nil
}
