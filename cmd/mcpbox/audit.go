package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/audit"
)

func auditCommand() *cli.Command {
	common := func() []cli.Flag {
		return []cli.Flag{
			&cli.StringFlag{Name: "server", Usage: "only this server's log (default: all servers)"},
			&cli.StringFlag{Name: "tool", Usage: "only records about this tool"},
			&cli.StringFlag{Name: "method", Usage: "only records of this JSON-RPC method, e.g. tools/call"},
			&cli.BoolFlag{Name: "json", Usage: "print the log lines unchanged"},
			&cli.StringFlag{Name: "dir", Hidden: true, Usage: "audit directory (default: $XDG_STATE_HOME/mcpbox/audit)"},
		}
	}
	return &cli.Command{
		Name:  "audit",
		Usage: "show the audit logs of MCP sessions",
		Subcommands: []*cli.Command{
			{
				Name:         "show",
				Usage:        "print the audit records that match",
				OnUsageError: usageError,
				Flags: append(common(),
					&cli.StringFlag{Name: "since", Usage: "only records since a duration ago (1h, 30m), an RFC 3339 time or a date (2006-01-02)"},
				),
				Action: func(c *cli.Context) error {
					since, err := parseSince(c.String("since"))
					if err != nil {
						return err
					}
					return printAudit(c, since, audit.Output{Last: -1})
				},
			},
			{
				Name:         "tail",
				Usage:        "print the last audit records, and with --follow new ones as they come",
				OnUsageError: usageError,
				Flags: append(common(),
					&cli.IntFlag{Name: "n", Value: 20, Usage: "how many records"},
					&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new records until interrupted"},
				),
				Action: func(c *cli.Context) error {
					if c.Int("n") < 0 {
						return &launcher.UsageError{Flag: "n", Err: fmt.Errorf("%d: use a count of 0 or more", c.Int("n"))}
					}
					return printAudit(c, time.Time{}, audit.Output{Last: c.Int("n"), Follow: c.Bool("follow")})
				},
			},
		},
	}
}

func printAudit(c *cli.Context, since time.Time, o audit.Output) error {
	dir := c.String("dir")
	if dir == "" {
		dir = filepath.Join(launcher.DefaultDirs().State, "audit")
	}
	o.JSON = c.Bool("json")
	o.Color = colorOutput(os.Stdout)
	q := audit.Query{Server: c.String("server"), Since: since, Tool: c.String("tool"), Method: c.String("method")}
	if q.Server == "" {
		servers, err := audit.Servers(dir)
		if err != nil {
			return err
		}
		if len(servers) == 0 {
			fmt.Fprintf(os.Stderr, "mcpbox: no audit logs in %s yet\n", dir)
			if !o.Follow {
				return nil
			}
		}
	}
	warn := func(err error) { fmt.Fprintf(os.Stderr, "mcpbox: warning: %v\n", err) }
	err := audit.Print(c.Context, os.Stdout, dir, q, o, warn)
	var server *audit.ServerError
	switch {
	case errors.Is(err, syscall.EPIPE):
		return nil // the reader (head, less) has seen enough
	case errors.As(err, &server):
		return &launcher.UsageError{Flag: "server", Err: err}
	}
	return err
}

// parseSince reads --since: a duration ago, an RFC 3339 time, or a local date.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, &launcher.UsageError{Flag: "since", Err: fmt.Errorf("%q: use a positive duration, meaning that long ago", s)}
		}
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, &launcher.UsageError{Flag: "since", Err: fmt.Errorf("%q: use a duration like 1h or 30m, an RFC 3339 time like 2026-11-26T12:00:00Z, or a date like 2026-11-26", s)}
}

// colorOutput reports whether f is a terminal and NO_COLOR is unset.
func colorOutput(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
