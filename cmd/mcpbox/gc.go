package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
)

func gcCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "gc",
		Usage:        "remove containers and files left by mcpbox sessions whose process is gone",
		Description: "A session whose mcpbox was killed (SIGKILL, a crash, a reboot of containerd) can leave its container,\n" +
			"its processes and its session directory behind. gc removes those whose owner process is gone, in the\n" +
			"runtime you would run in: as an ordinary user, your rootless containers (in $XDG_RUNTIME_DIR/mcpbox, or its fallback);\n" +
			"as root, containerd's. Live sessions are never touched. Sessions also sweep dead ones when they start.",
		Action: func(c *cli.Context) error {
			if done, err := enterRootless(c); done {
				return err
			}
			log, err := logger(c)
			if err != nil {
				return err
			}
			opts := launcher.Options{Address: c.String("containerd-address"), Namespace: c.String("namespace"), RunDir: c.String("run-dir"), Logger: log}
			if err := chooseRuntime(c, &opts); err != nil {
				return err
			}
			removed, err := launcher.GC(c.Context, opts)
			for _, id := range removed {
				fmt.Fprintf(os.Stderr, "removed %s\n", id)
			}
			return err
		},
	}
}
