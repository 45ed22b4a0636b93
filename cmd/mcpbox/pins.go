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
	"github.com/mcpbox/mcpbox/launcher/pins"
)

func pinsCommand() *cli.Command {
	dirFlag := &cli.StringFlag{Name: "dir", Usage: "pin directory", DefaultText: "$XDG_STATE_HOME/mcpbox/pins", Hidden: true}
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "pins",
		Usage:        "show, approve or reset the pinned tool definitions of servers",
		Description: "On a server's first tools/list (and prompts/resources lists) mcpbox pins each definition's\n" +
			"SHA-256. A later new or changed definition is withheld (tools.pin: block) until approved here.",
		Subcommands: []*cli.Command{
			{
				Name: "list", Usage: "list pinned servers", OnUsageError: usageError,
				Flags:  []cli.Flag{dirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: pinsList,
			},
			{
				Name: "diff", Usage: "show what changed since a server's definitions were pinned", ArgsUsage: "SERVER",
				Flags: []cli.Flag{dirFlag}, OnUsageError: usageError,
				Action: pinsDiff,
			},
			{
				Name: "approve", Usage: "accept the new or changed definitions of a server (all, or those named)", ArgsUsage: "SERVER [NAME...]",
				Flags: []cli.Flag{dirFlag}, OnUsageError: usageError,
				Action: pinsApprove,
			},
			{
				Name: "reset", Usage: "forget a server's pins (a corrupt pin file too); its next session pins anew", ArgsUsage: "SERVER",
				Flags: []cli.Flag{dirFlag}, OnUsageError: usageError,
				Action: pinsReset,
			},
		},
	}
}

// pinsDir is --dir, or the pins directory of the user's state.
func pinsDir(c *cli.Context) string {
	if d := c.String("dir"); d != "" {
		return d
	}
	return launcher.DefaultDirs().PinsDir()
}

// findPins finds the pin record the first argument names.
func findPins(c *cli.Context) (pins.Record, error) {
	if c.NArg() < 1 {
		return pins.Record{}, &launcher.UsageError{Err: fmt.Errorf("name a server: mcpbox pins %s SERVER (see mcpbox pins list)", c.Command.Name)}
	}
	r, err := pins.Find(pinsDir(c), c.Args().First())
	// A name that picks no server, or several, is the user's to fix.
	var fe *pins.FindError
	if errors.As(err, &fe) {
		err = &launcher.UsageError{Err: err}
	}
	return r, err
}

// findReadablePins is findPins for the commands that need the pins
// themselves: a corrupt file can only be reset.
func findReadablePins(c *cli.Context) (pins.Record, error) {
	r, err := findPins(c)
	if err == nil && r.Err != nil {
		err = fmt.Errorf("%v: check the file, then run `mcpbox pins reset %s`", r.Err, r.Name)
	}
	return r, err
}

func pinsList(c *cli.Context) error {
	recs, err := pins.List(pinsDir(c))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		type row struct {
			Server   string `json:"server"`
			Identity string `json:"identity,omitempty"`
			Version  string `json:"version,omitempty"`
			Pinned   int    `json:"pinned"`
			Pending  int    `json:"pending"`
			File     string `json:"file"`
			Error    string `json:"error,omitempty"`
		}
		rows := []row{}
		for _, r := range recs {
			x := row{Server: r.Name, File: r.File.Path}
			if r.Set != nil {
				x.Identity, x.Version, x.Pinned, x.Pending = r.Set.Identity, r.Set.Version, r.Set.PinnedCount(), r.Set.PendingCount()
			} else {
				x.Error = r.Err.Error()
			}
			rows = append(rows, x)
		}
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(rows)
	}
	if len(recs) == 0 {
		fmt.Fprintf(os.Stderr, "no pins in %s yet: a server's first tools/list records them\n", pinsDir(c))
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVER\tIDENTITY\tVERSION\tPINNED\tPENDING")
	for _, r := range recs {
		if r.Set == nil {
			fmt.Fprintf(w, "%s\t(unreadable: %v; mcpbox pins reset %s)\t\t\t\n", r.Name, r.Err, r.Name)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\n", r.Name, r.Set.Identity, dash(r.Set.Version), r.Set.PinnedCount(), r.Set.PendingCount())
	}
	return w.Flush()
}

func pinsDiff(c *cli.Context) error {
	r, err := findReadablePins(c)
	if err != nil {
		return err
	}
	d := r.Set.Diff()
	if d == "" {
		fmt.Fprintf(os.Stderr, "%s: nothing changed since it was pinned\n", r.Name)
		return nil
	}
	fmt.Fprint(os.Stdout, d)
	return nil
}

func pinsApprove(c *cli.Context) error {
	r, err := findReadablePins(c)
	if err != nil {
		return err
	}
	names := c.Args().Tail()
	done := r.Set.Approve(names...)
	if len(done) == 0 {
		if len(names) > 0 {
			return &launcher.UsageError{Err: fmt.Errorf("%s has no pending definition named %s; see mcpbox pins diff %s", r.Name, strings.Join(names, ", "), r.Name)}
		}
		fmt.Fprintf(os.Stderr, "%s: nothing to approve\n", r.Name)
		return nil
	}
	if err := r.File.Save(r.Set); err != nil {
		return err
	}
	for _, n := range done {
		fmt.Fprintf(os.Stderr, "approved %s\n", n)
	}
	return nil
}

func pinsReset(c *cli.Context) error {
	r, err := findPins(c)
	if err != nil {
		return err
	}
	if err := pins.Reset(r); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "removed the pins of %s (%s)\n", r.Name, r.File.Path)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
