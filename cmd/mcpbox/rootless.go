package main

import (
	"os"
	"os/user"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/userns"
)

// enterRootless runs the command again inside mcpbox's user namespace when
// its sessions run in the rootless runtime and this process is not there
// yet. done reports that it did; err then carries the exit status.
func enterRootless(c *cli.Context) (done bool, err error) {
	if _, in := userns.Inside(); in {
		return false, nil
	}
	log, err := logger(c)
	if err != nil {
		return true, err
	}
	opts := launcher.Options{Address: c.String("containerd-address"), Logger: log}
	if err := chooseRuntime(c, &opts); err != nil {
		return true, err
	}
	if opts.Runtime != launcher.RuntimeRootless {
		return false, nil
	}
	caller := userns.Caller{UID: os.Getuid(), GID: os.Getgid()}
	if u, err := user.LookupId(strconv.Itoa(caller.UID)); err == nil {
		caller.Name = u.Username
	}
	code, err := userns.Reexec(caller, log)
	switch {
	case err != nil:
		return true, err
	case code != 0:
		return true, &launcher.ExitError{Code: code}
	}
	return true, nil
}
