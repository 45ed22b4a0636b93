package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/clientconfig"
)

func clientsCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "clients",
		Usage:        "list the MCP clients configured on this machine and how many of their servers are sandboxed",
		Flags:        []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			files := clientconfig.Detect(clientconfig.HostEnv())
			if c.Bool("json") {
				if files == nil {
					files = []clientconfig.Detected{}
				}
				e := json.NewEncoder(os.Stdout)
				e.SetIndent("", "  ")
				return e.Encode(files)
			}
			if len(files) == 0 {
				fmt.Fprintln(os.Stderr, "no MCP client config found (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, Gemini CLI, Codex, Zed)")
				return nil
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CLIENT\tSCOPE\tSTDIO SERVERS\tSANDBOXED\tFILE")
			for _, f := range files {
				if f.Error != "" {
					fmt.Fprintf(w, "%s\t%s\t-\t-\t%s (unreadable: %s)\n", f.Display, f.Scope, f.Path, f.Error)
					continue
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", f.Display, f.Scope, f.Stdio, f.Wrapped, f.Path)
			}
			return w.Flush()
		},
	}
}

func wrapFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "client", Usage: "only this client's files (claude-desktop, claude-code, cursor, vscode, windsurf, gemini, codex, zed)"},
		&cli.StringSliceFlag{Name: "server", Usage: "only this server entry"},
		&cli.StringFlag{Name: "config", Usage: "edit this config FILE instead of the detected ones"},
		&cli.BoolFlag{Name: "dry-run", Usage: "show the changes, write nothing"},
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "write without asking"},
	}
}

func wrapCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "wrap",
		Usage:        "put the stdio servers of your MCP clients behind `mcpbox run`, entry by entry",
		Description: "Rewrites each stdio entry whose command is npx, uvx, node, python, python3, pipx, bunx or deno\n" +
			"(any command with --all) to run through mcpbox, keeping env, cwd and every other key, comments and\n" +
			"formatting. Shows a diff and asks first; keeps a timestamped backup next to each file. `mcpbox unwrap`\n" +
			"undoes it.",
		Flags:  append(wrapFlags(), &cli.BoolFlag{Name: "all", Usage: "wrap any command, not just package runners and interpreters"}),
		Action: func(c *cli.Context) error { return wrapAction(c, false) },
	}
}

func unwrapCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "unwrap",
		Usage:        "undo `mcpbox wrap`: entries run their original command again",
		Flags:        wrapFlags(),
		Action:       func(c *cli.Context) error { return wrapAction(c, true) },
	}
}

func wrapAction(c *cli.Context, unwrap bool) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	changes, err := clientconfig.Plan(clientconfig.PlanOptions{
		Clients: c.StringSlice("client"), Servers: c.StringSlice("server"), Config: c.String("config"),
		All: c.Bool("all"), Unwrap: unwrap, Mcpbox: exe, Env: clientconfig.HostEnv(), Catalog: launcher.Catalog(launcher.DefaultDirs()),
	})
	// A file that does not parse, an unknown client, no file at all: the
	// user's to fix, and nothing was changed.
	var input *clientconfig.InputError
	if errors.As(err, &input) {
		return &launcher.UsageError{Flag: input.Option, Err: input.Err}
	}
	if err != nil {
		return err
	}
	verb := "wrap"
	if unwrap {
		verb = "unwrap"
	}
	pending := 0
	for _, ch := range changes {
		fmt.Fprintf(os.Stderr, "%s (%s):\n", ch.File.Path, ch.File.Display)
		for _, e := range ch.Changed {
			if unwrap {
				fmt.Fprintf(os.Stderr, "  %s %s\n", verb, e.Name)
			} else {
				fmt.Fprintf(os.Stderr, "  %s %s (profile %s: %s)\n", verb, e.Name, e.Profile, e.Why)
			}
		}
		for _, e := range ch.Skipped {
			fmt.Fprintf(os.Stderr, "  leave %s: %s\n", e.Name, e.Why)
		}
		if ch.Diff != "" {
			pending++
			fmt.Fprint(os.Stdout, ch.Diff)
		}
	}
	if pending == 0 {
		fmt.Fprintf(os.Stderr, "nothing to %s\n", verb)
		return nil
	}
	if c.Bool("dry-run") {
		fmt.Fprintln(os.Stderr, "dry run: nothing written")
		return nil
	}
	if !c.Bool("yes") {
		if !isTerminal(os.Stdin) {
			return &launcher.UsageError{Err: fmt.Errorf("not writing without confirmation: run with --yes (or --dry-run to only see the changes)")}
		}
		fmt.Fprintf(os.Stderr, "write these changes to %d file(s)? [y/N] ", pending)
		answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(os.Stderr, "nothing written")
			return nil
		}
	}
	for _, ch := range changes {
		backup, err := ch.Apply()
		if err != nil {
			return err
		}
		if backup != "" {
			fmt.Fprintf(os.Stderr, "wrote %s (backup %s)\n", ch.File.Path, backup)
		}
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
