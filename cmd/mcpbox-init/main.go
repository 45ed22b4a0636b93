// Command mcpbox-init is the first process of every mcpbox sandbox. It is a
// static program (CGO_ENABLED=0), bind-mounted read-only into the sandbox and
// run as pid 1 in place of the server:
//
//	mcpbox-init IO_DIR -- CMD [ARGS...]
//
// It exists for two reasons. A server that is pid 1 of its namespace ignores
// every signal it has no handler for, so SIGTERM would never stop a Node
// server; mcpbox-init forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and
// SIGUSR2 to the server and reaps orphans. And the server's stdin, stdout and
// stderr are the FIFOs IO_DIR/stdin, IO_DIR/stdout and IO_DIR/stderr, whose
// other ends mcpbox holds, so MCP messages go between the server and mcpbox
// directly instead of through copies in containerd's shim (which also drops
// what a server writes just before it exits).
//
// It exits with the server's exit code, or 128+n if a signal n killed it. It
// does nothing else: no set-up of mounts, users or privileges (runc did all
// that before it started), and as pid 1 it never runs as anything but the
// sandbox's user.
//
// Its one other mode is `mcpbox-init --oci-hook=memfd-noexec`, which runc
// runs as root while it creates the sandbox, as a createContainer hook: it
// makes every memfd in the sandbox's pid namespace non-executable (see
// memfdHook), and refuses to run anywhere else.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == memfdHookArg {
		os.Exit(memfdHook(os.Stdin, os.Stderr))
	}
	os.Exit(run(os.Args[1:]))
}

// exitSetup is the code for an init that could not start the server; it
// matches `docker run --init`'s (tini) use of 126/127 loosely: 127 for a
// command that cannot be run, 126 for anything else.
const exitSetup = 126

func run(args []string) int {
	if len(args) < 3 || args[1] != "--" {
		fmt.Fprintln(os.Stderr, "mcpbox-init: usage: mcpbox-init IO_DIR -- CMD [ARGS...]")
		return exitSetup
	}
	// Register before starting the server so no signal is lost between.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCHLD)

	// Each open blocks until mcpbox has the other end open.
	var files [3]*os.File
	for i, name := range []string{"stderr", "stdin", "stdout"} {
		flag := os.O_WRONLY
		if name == "stdin" {
			flag = os.O_RDONLY
		}
		f, err := os.OpenFile(args[0]+"/"+name, flag, 0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mcpbox-init: open %s: %v\n", name, err)
			return exitSetup
		}
		files[i] = f
	}
	stderr, stdin, stdout := files[0], files[1], files[2]
	cmd := exec.Command(args[2], args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Start()
	// Only the server may hold the FIFOs: mcpbox must see EOF when the
	// server's side closes, and stdin's EOF must reach the server alone.
	stdin.Close()
	stdout.Close()
	if err != nil {
		fmt.Fprintf(stderr, "mcpbox-init: start %s: %v\n", args[2], err)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return 127
		}
		return exitSetup
	}
	stderr.Close()
	pid := cmd.Process.Pid

	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			// Signal the server alone; its children are its business,
			// and die with the namespace when it exits.
			syscall.Kill(pid, sig.(syscall.Signal))
			continue
		}
		// Reap every child that has exited: the server, or orphans
		// that were re-parented to pid 1.
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || got <= 0 {
				break
			}
			if got == pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
	return exitSetup
}
