package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/trial"
)

func trialCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "trial",
		Usage:        "run an untrusted server under watch: report what it did and tried, and write its least-privilege profile",
		ArgsUsage:    "-- CMD [ARGS...]",
		Description: "Runs the server in the BASE profile's sandbox (default untrusted), drives an MCP session itself\n" +
			"(initialize, the tools/prompts/resources lists, each --call), watches for --duration, then stops it.\n" +
			"Syscalls outside the profile are recorded and, to see what the server needs, allowed to run\n" +
			"(observation only: use --enforce to deny them); every DNS question and connection is recorded and\n" +
			"refused unless BASE allows it; file changes, processes, tools (with the poisoning scan) and peak\n" +
			"resource use are recorded. Writes report.json, report.md and profile.yaml to --out.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Usage: "BASE profile NAME or FILE", Value: "untrusted"},
			&cli.StringSliceFlag{Name: "call", Usage: "call a tool: TOOL=JSON (repeatable)"},
			&cli.DurationFlag{Name: "duration", Value: 20e9, Usage: "how long to watch in all"},
			&cli.BoolFlag{Name: "client", Usage: "let a real MCP client drive the session over mcpbox's stdin/stdout while the trial records (use it in place of `mcpbox run` in a client config)"},
			&cli.BoolFlag{Name: "enforce", Usage: "deny syscalls outside the profile (EPERM) instead of letting them run"},
			&cli.StringFlag{Name: "out", Usage: "directory for report.json, report.md and profile.yaml", DefaultText: "$XDG_STATE_HOME/mcpbox/trials/SERVER-TIME"},
			&cli.StringFlag{Name: "write-profile", Usage: "also write the generated profile to FILE"},
			&cli.StringFlag{Name: "compare", Usage: "show what changed since an earlier trial's report.json"},
			&cli.StringSliceFlag{Name: "env", Usage: "pass a variable: NAME or NAME=VALUE"},
			&cli.StringSliceFlag{Name: "mount", Usage: "grant a host path: SRC[:DST][:ro|rw]"},
		},
		Action: trialAction,
	}
}

func trialAction(c *cli.Context) error {
	if done, err := enterRootless(c); done {
		return err
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() == 0 {
		return &launcher.UsageError{Err: fmt.Errorf("no server command: mcpbox trial [flags] -- CMD [ARGS...]")}
	}
	memfd, err := memfdSetting(c)
	if err != nil {
		return err
	}
	session := launcher.Options{
		Address: c.String("containerd-address"), Namespace: c.String("namespace"), RunDir: c.String("run-dir"),
		Env: c.StringSlice("env"), Stderr: os.Stderr, Logger: log, Dirs: launcher.DefaultDirs(), Memfd: memfd,
	}
	opts := trial.Options{
		Command:  c.Args().Slice(),
		Profile:  c.String("profile"),
		Stderr:   os.Stderr,
		Duration: c.Duration("duration"),
		Enforce:  c.Bool("enforce"),
	}
	if c.Bool("client") {
		opts.Client = &trial.ClientIO{In: os.Stdin, Out: os.Stdout}
	}
	for _, m := range c.StringSlice("mount") {
		mount, err := launcher.ParseMount(m)
		if err != nil {
			return &launcher.UsageError{Flag: "mount", Err: err}
		}
		session.Mounts = append(session.Mounts, mount)
	}
	for _, s := range c.StringSlice("call") {
		call, err := trial.ParseCall(s)
		if err != nil {
			return &launcher.UsageError{Flag: "call", Err: err}
		}
		opts.Calls = append(opts.Calls, call)
	}
	var old *trial.Report
	if p := c.String("compare"); p != "" {
		if old, err = trial.ReadJSON(p); err != nil {
			return &launcher.UsageError{Flag: "compare", Err: err}
		}
	}
	base, _, err := launcher.Catalog(session.Dirs).Resolve(opts.Profile, "", "")
	if err != nil {
		return &launcher.UsageError{Flag: "profile", Err: err}
	}

	if err := chooseRuntime(c, &session); err != nil {
		return err
	}
	opts.Run = trialRunner(session)

	ctx, _, stop := signalContext(c.Context)
	defer stop()
	rep, err := trial.Run(ctx, opts)
	if err != nil {
		return err
	}
	out := c.String("out")
	if out == "" {
		out = filepath.Join(session.Dirs.State, "trials", rep.DirName())
	}
	if err := trial.Write(out, rep, base, c.String("write-profile")); err != nil {
		return err
	}
	trial.Summary(os.Stderr, rep)
	if old != nil {
		out := os.Stdout
		if opts.Client != nil {
			out = os.Stderr // stdout was the client's
		}
		fmt.Fprint(out, trial.Compare(old, rep))
	}
	fmt.Fprintf(os.Stderr, "trial: report in %s (report.json, report.md, profile.yaml)\n", out)
	return nil
}

// trialRunner runs the sessions a trial asks for with launcher.Run, on
// top of the session options from the flags.
func trialRunner(base launcher.Options) trial.Runner {
	return func(ctx context.Context, s trial.Session) (int, error) {
		so := base
		so.Command, so.Profile, so.Stdin, so.Stdout, so.Observe = s.Command, s.Profile, s.Stdin, s.Stdout, s.Hooks
		if !s.Audit {
			so.Audit = launcher.AuditNone
		}
		err := launcher.Run(ctx, so)
		var exit *launcher.ExitError
		if errors.As(err, &exit) {
			return exit.Code, nil
		}
		return 0, err
	}
}
