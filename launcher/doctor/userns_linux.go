package doctor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProbeChild is the child of the user namespaces check: mcpbox started
// with ProbeCommand as root of a new user namespace, in a new network
// namespace, as the rootless runtime starts itself. It installs mcpbox's
// egress rules in a network namespace of its own, as a session does,
// lists them back and removes them.
func ProbeChild() error {
	return egressRulesWork()
}

// probeUserns starts self with ProbeCommand in a new user namespace (its
// uid 0 mapped to the caller, its gid 0 to the caller's gid, nothing
// else) and a new network namespace, and returns what failed. A
// multithreaded Go process cannot unshare a user namespace, so the check
// needs a process of its own.
func probeUserns(ctx context.Context, self string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, self, ProbeCommand)
	cmd.Env = []string{} // nothing of the caller's environment is needed
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("create a user namespace with a network namespace: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("inside a new user namespace: %s", lastLine(msg))
		}
		return fmt.Errorf("inside a new user namespace: %w", err)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// fileCaps reads a file's security.capability attribute; nil when it has
// none.
func fileCaps(path string) []byte {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(path, "security.capability", buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}
