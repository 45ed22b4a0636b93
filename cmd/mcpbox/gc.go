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
			log, err := logger(c)
			if err != nil {
				return err
			}
			// TODO(lead): gc must sweep the runtime the sessions ran in. When
			// launcher.GC takes launcher.Options (or a runtime), resolve it
			// with chooseRuntime(c, &opts) as run does; until then gc sees
			// containerd only.
			removed, err := launcher.GC(c.Context, c.String("containerd-address"), c.String("namespace"), c.String("run-dir"), log)
			for _, id := range removed {
				fmt.Fprintf(os.Stderr, "removed %s\n", id)
			}
			return err
		},
	}
}
