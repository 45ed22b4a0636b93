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
