package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:         "pull",
		Usage:        "install a server package (npx/uvx form) into the cache, in a sandbox, without running it",
		ArgsUsage:    "-- npx -y PKG[@VERSION] | uvx PKG",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "update", Usage: "install the version asked for again instead of the one pinned in the cache"},
			&cli.StringFlag{Name: "profile", Usage: "profile NAME or FILE (its install.scripts setting applies)"},
			&cli.StringFlag{Name: "find-links", Usage: "install Python packages from this directory of wheels"},
		},
		Action: func(c *cli.Context) error {
			if done, err := enterRootless(c); done {
				return err
			}
			log, err := logger(c)
			if err != nil {
				return err
			}
			memfd, err := memfdSetting(c)
			if err != nil {
				return err
			}
			opts := launcher.Options{
				Address: c.String("containerd-address"), Namespace: c.String("namespace"), RunDir: c.String("run-dir"),
				Command: c.Args().Slice(), Profile: c.String("profile"), Update: c.Bool("update"), FindLinks: c.String("find-links"),
				Stderr: os.Stderr, Logger: log, Memfd: memfd,
			}
			if err := chooseRuntime(c, &opts); err != nil {
				return err
			}
			e, err := launcher.Pull(c.Context, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stdout, "%s %s\t%s\n", e.Meta.Name, e.Meta.Version, e.Dir)
			return nil
		},
	}
}

func packagesCommand() *cli.Command {
	return &cli.Command{
		Name:  "packages",
		Usage: "list or remove installed server packages",
		Subcommands: []*cli.Command{
			{
				Name:         "list",
				Usage:        "list installed packages",
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					entries, err := launcher.PackageCache(launcher.Dirs{}).List()
					if err != nil {
						return err
					}
					for _, e := range entries {
						fmt.Fprintf(os.Stdout, "%s\t%s\t%s\t%s\n", e.Meta.Ecosystem, e.Meta.Name, e.Meta.Version, e.Meta.InstalledAt.Format("2006-01-02 15:04"))
					}
					return nil
				},
			},
			{
				Name:         "rm",
				Usage:        "remove a package (all versions unless --version)",
				ArgsUsage:    "NAME",
				OnUsageError: usageError,
				Flags:        []cli.Flag{&cli.StringFlag{Name: "version", Usage: "remove only this version"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return &launcher.UsageError{Err: fmt.Errorf("name one package, e.g. `mcpbox packages rm @modelcontextprotocol/server-memory`")}
					}
					return launcher.PackageCache(launcher.Dirs{}).Remove(c.Args().First(), c.String("version"))
				},
			},
		},
	}
}
