//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// childArg is the hidden argv[1] of a probe child: the probe re-executes
// /proc/self/exe as `mcpbox-probe __probe-child NAME ARGS...` for every
// attempt that, if it succeeded, would change the process's own view of the
// system (mounts, namespaces, root) or its state (seccomp filters,
// personality). The child prints its result as one JSON object on stdout and
// exits 0; a signal that kills it tells the parent the rest.
const childArg = "__probe-child"

// childFunc is one attempt run inside a child. args are the child's extra
// arguments after its name.
type childFunc func(args []string) result

// childTable maps a child's name to its attempt.
func childTable() map[string]childFunc {
	m := map[string]childFunc{
		"noop": func([]string) result { return pass(outcomeSkipped, "noop") },
		"hold": childHold,
	}
	for k, v := range kernelChildren() {
		m[k] = v
	}
	for k, v := range resourceChildren() {
		m[k] = v
	}
	for k, v := range execChildren() {
		m[k] = v
	}
	return m
}

// childMain is main for a probe child. The child checks for the sandbox
// again: someone could run `mcpbox-probe __probe-child kernel/mount-tmpfs`
// by hand on the host. A child of a probe run with -compare passes
// checkCompare instead.
func childMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "mcpbox-probe: child: missing name")
		return exitUsage
	}
	if err := checkSandbox(1); err != nil && (os.Getenv(compareEnv) != "1" || checkCompare(1) != nil) {
		fmt.Fprintf(os.Stderr, "mcpbox-probe: child refusing to run: %v\n", err)
		return exitRefused
	}
	fn, ok := childTable()[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "mcpbox-probe: child: unknown name %q\n", args[0])
		return exitUsage
	}
	r := fn(args[1:])
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return exitUsage
	}
	return 0
}

// childHold waits a while and exits; it stands for one process of a fork
// bomb where no assembly fork exists.
func childHold([]string) result {
	time.Sleep(10 * time.Second)
	return pass(outcomeSkipped, "held")
}

// childRun is what a finished child left behind.
type childRun struct {
	started  bool
	startErr error       // fork/exec failed (an unshare or clone flag was refused)
	res      *result     // what the child printed, if anything
	stdout   []byte      // raw stdout
	stderr   string      // the tail of its stderr
	exitCode int         // -1 if signalled
	signal   unix.Signal // the signal that killed it, or 0
	timedOut bool
}

// runChild re-executes the probe as child name with args and waits for it
// until the probe's deadline.
func runChild(ctx context.Context, attr *syscall.SysProcAttr, name string, args ...string) childRun {
	cmd := exec.CommandContext(ctx, "/proc/self/exe", append([]string{childArg, name}, args...)...)
	cmd.Env = os.Environ()
	cmd.SysProcAttr = attr
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	var cr childRun
	if err := cmd.Start(); err != nil {
		cr.startErr = err
		return cr
	}
	cr.started = true
	werr := cmd.Wait()
	cr.timedOut = ctx.Err() != nil
	cr.stdout = stdout.Bytes()
	cr.stderr = tail(stderr.String(), 400)
	cr.exitCode = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		cr.signal = unix.Signal(ws.Signal())
	}
	// A seccomp SECCOMP_RET_TRAP raises SIGSYS, which the Go runtime turns
	// into a crash with exit status 2 instead of a death by signal.
	if cr.signal == 0 && strings.Contains(cr.stderr, "SIGSYS") {
		cr.signal = unix.SIGSYS
	}
	// Progress lines may come before the result, which is the last JSON line.
	for _, line := range bytes.Split(cr.stdout, []byte("\n")) {
		var r result
		if bytes.HasPrefix(line, []byte("{")) && json.Unmarshal(line, &r) == nil && r.Outcome != "" {
			cr.res = &r
		}
	}
	if werr != nil && cr.exitCode == 0 && cr.signal == 0 {
		cr.stderr = tail(cr.stderr+" "+werr.Error(), 400)
	}
	return cr
}

// asResult turns a child run into a result: what the child reported, or a
// denial if seccomp killed it with SIGSYS, or an error.
func (cr childRun) asResult() result {
	switch {
	case cr.startErr != nil:
		return errored(fmt.Sprintf("could not start the probe child: %v", cr.startErr))
	case cr.res != nil:
		return *cr.res
	case cr.signal == unix.SIGSYS:
		r := pass(outcomeDenied, "the child was killed by SIGSYS (seccomp)")
		r.Signal = "SIGSYS"
		return r
	case cr.timedOut:
		return errored("the probe child did not finish in time")
	case cr.signal != 0:
		r := errored(fmt.Sprintf("the probe child was killed by %s", unix.SignalName(cr.signal)))
		r.Signal = unix.SignalName(cr.signal)
		return r
	case cr.exitCode == exitRefused:
		return errored("the probe child refused to run: " + cr.stderr)
	default:
		return errored(fmt.Sprintf("the probe child exited %d without a result: %s", cr.exitCode, cr.stderr))
	}
}

// childResult runs child name and returns its result.
func childResult(e *env, name string, args ...string) result {
	return runChild(e.ctx, nil, name, args...).asResult()
}

// isolatedChildResult runs child name in a private mount namespace when the
// sandbox lets it create one, so that a mount that succeeds cannot change
// the probe's own view; otherwise (the expected case) it runs the child in
// the sandbox's mount namespace and passes "shared", and the child undoes
// anything that succeeds at once.
func isolatedChildResult(e *env, name string, args ...string) result {
	attr := &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	cr := runChild(e.ctx, attr, name, append([]string{"private"}, args...)...)
	if cr.startErr == nil {
		r := cr.asResult()
		r.Detail = strings.TrimSpace(r.Detail + " (child ran in a private mount namespace: unshare(CLONE_NEWNS) was allowed)")
		return r
	}
	return runChild(e.ctx, nil, name, append([]string{"shared"}, args...)...).asResult()
}

// startOnly starts the noop child with attr and reports whether the kernel
// let it start: for clone and unshare flags that Go's fork applies in the
// single-threaded child (CLONE_NEWUSER cannot be unshared by a
// multi-threaded Go process).
func startOnly(e *env, attr *syscall.SysProcAttr, what string) result {
	cr := runChild(e.ctx, attr, "noop")
	if cr.startErr != nil {
		var en syscall.Errno
		if errors.As(cr.startErr, &en) {
			return denied(en, fmt.Sprintf("%s: %v", what, en))
		}
		return errored(fmt.Sprintf("%s: %v", what, cr.startErr))
	}
	return allowed(what + " succeeded: a child started in the new namespace")
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
