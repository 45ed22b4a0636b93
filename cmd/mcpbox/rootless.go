package main

import (
	"os"
	"os/user"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/userns"
)

// runtimeKind is the runtime this process's sessions run in: rootless
// inside mcpbox's user namespace, else containerd.
func runtimeKind(c *cli.Context) string {
	if _, in := userns.Inside(); in {
		return launcher.RuntimeRootless
	}
	return launcher.RuntimeContainerd
}

// chosenRuntime resolves the runtime setting.
// TODO(i16-select): flag, config file and launcher.ChooseRuntime.
func chosenRuntime(c *cli.Context) string {
	switch v := os.Getenv("MCPBOX_RUNTIME"); v {
	case launcher.RuntimeContainerd, launcher.RuntimeRootless:
		return v
	}
	if os.Geteuid() == 0 {
		return launcher.RuntimeContainerd
	}
	return launcher.RuntimeRootless
}

// enterRootless runs the command again inside mcpbox's user namespace when
// its sessions run in the rootless runtime and this process is not there
// yet. done reports that it did; err then carries the exit status.
func enterRootless(c *cli.Context) (done bool, err error) {
	if _, in := userns.Inside(); in || chosenRuntime(c) != launcher.RuntimeRootless {
		return false, nil
	}
	caller := userns.Caller{UID: os.Getuid(), GID: os.Getgid()}
	if u, err := user.LookupId(strconv.Itoa(caller.UID)); err == nil {
		caller.Name = u.Username
	}
	code, err := userns.Reexec(caller)
	switch {
	case err != nil:
		return true, err
	case code != 0:
		return true, &launcher.ExitError{Code: code}
	}
	return true, nil
}
