package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/profiles"
)

func profilesCommand() *cli.Command {
	return &cli.Command{
		Name:  "profiles",
		Usage: "list, show, validate and create sandbox profiles",
		Subcommands: []*cli.Command{
			{
				Name:         "list",
				Usage:        "list the built-in and your profiles",
				OnUsageError: usageError,
				Flags:        []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action:       profilesList,
			},
			{
				Name:         "show",
				Usage:        "print a profile's effective form (after extends)",
				ArgsUsage:    "NAME|FILE",
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return &launcher.UsageError{Err: errors.New("name one profile")}
					}
					p, _, err := launcher.Catalog(launcher.Dirs{}).Resolve(c.Args().First(), "", "")
					if err != nil {
						return err
					}
					b, err := p.YAML()
					if err != nil {
						return err
					}
					_, err = os.Stdout.Write(b)
					return err
				},
			},
			{
				Name:         "validate",
				Usage:        "check profile files; errors name file, line and field",
				ArgsUsage:    "FILE...",
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return &launcher.UsageError{Err: errors.New("name at least one profile file")}
					}
					cat := launcher.Catalog(launcher.Dirs{})
					var errs []error
					for _, f := range c.Args().Slice() {
						if _, err := cat.LoadFile(f); err != nil {
							errs = append(errs, err)
							continue
						}
						fmt.Fprintf(os.Stdout, "%s: ok\n", f)
					}
					if len(errs) > 0 {
						return &launcher.UsageError{Err: errors.Join(errs...)}
					}
					return nil
				},
			},
			{
				Name:         "init",
				Usage:        "print a starter profile for a command (save it in your profile directory and edit)",
				ArgsUsage:    "-- CMD [ARGS...]",
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					b, err := launcher.StarterProfile(c.Args().Slice())
					if err != nil {
						return err
					}
					_, err = os.Stdout.Write(b)
					return err
				},
			},
		},
	}
}

func profilesList(c *cli.Context) error {
	ps, err := launcher.Catalog(launcher.Dirs{}).List()
	if c.Bool("json") {
		type row struct {
			Name, Description, Source string
			Match                     []profiles.Match
		}
		var rows []row
		for _, p := range ps {
			rows = append(rows, row{p.Name, p.Description, p.Source, p.Match})
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(rows); eerr != nil {
			return eerr
		}
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSOURCE\tMATCH\tDESCRIPTION")
	for _, p := range ps {
		var m []string
		for _, x := range p.Match {
			m = append(m, x.Ecosystem+":"+x.Package)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Source, strings.Join(m, ","), p.Description)
	}
	w.Flush()
	return err // profiles that failed to load, after those that did
}
