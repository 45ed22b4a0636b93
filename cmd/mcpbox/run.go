package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox"
)

func runCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "run",
		Usage:        "run an MCP server in a sandbox, brokering its stdio",
		ArgsUsage:    "-- CMD [ARGS...]",
		Description: "Runs CMD in a sandbox and connects its stdin/stdout to mcpbox's. Use it in place of the\n" +
			"server's command in a client config:\n\n" +
			`   "command": "mcpbox", "args": ["run", "--", "node", "/abs/path/server.js"]` + "\n\n" +
			"The server sees a read-only root with only the host runtime, a private /tmp and $HOME,\n" +
			"no network, no capabilities, and only the host paths granted with --mount.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Usage: "profile NAME or FILE (default: the user's or built-in profile matching the package, else untrusted)"},
			&cli.StringFlag{Name: "find-links", Usage: "install Python packages from this directory of wheels instead of an index"},
			&cli.StringSliceFlag{Name: "mount", Usage: "grant a host path: SRC[:DST][:ro|rw] (default ro, DST defaults to SRC)"},
			&cli.StringSliceFlag{Name: "allow-host", Usage: "let the server reach HOST[:PORT] (port 443 by default; *.example.com for subdomains; cidr:NET[:PORT] for addresses; localhost:PORT for that port of this machine's loopback)"},
			&cli.StringFlag{Name: "network", Usage: "none (loopback only) or allowlist (only --allow-host hosts, through mcpbox's proxy)", DefaultText: "allowlist with --allow-host, else none"},
			&cli.StringFlag{Name: "egress-log", Usage: "append every egress decision to FILE as JSON lines"},
			&cli.StringSliceFlag{Name: "env", Usage: "pass a variable: NAME (from mcpbox's environment) or NAME=VALUE; no other variable reaches the server"},
			&cli.StringFlag{Name: "memory", Usage: "memory limit, e.g. 512Mi (no swap)", DefaultText: "512Mi"},
			&cli.Int64Flag{Name: "pids", Usage: "max processes and threads", DefaultText: "128"},
			&cli.Float64Flag{Name: "cpus", Usage: "CPU quota in cores", DefaultText: "1"},
			&cli.StringFlag{Name: "tmp-size", Usage: "size of each tmpfs (/tmp, /dev/shm, $HOME)", DefaultText: "64Mi"},
			&cli.StringFlag{Name: "workdir", Usage: "working directory inside the sandbox", DefaultText: "$HOME"},
			&cli.DurationFlag{Name: "stop-timeout", Value: launcher.DefaultStopTimeout, Usage: "after the client hangs up: time to exit before SIGTERM, then before SIGKILL"},
			&cli.StringFlag{Name: "max-message", Value: "64Mi", Usage: "largest message accepted from the server"},
			&cli.StringFlag{Name: "audit", Usage: "audit log FILE (JSON lines, rotated by size), or none", DefaultText: "$XDG_STATE_HOME/mcpbox/audit/SERVER.jsonl"},
			&cli.BoolFlag{Name: "audit-bodies", Usage: "also log each whole message, with secrets redacted"},
			&cli.BoolFlag{Name: "report-violations", Usage: "report each syscall the profile denies (still denied) on stderr and in the audit log"},
			&cli.BoolFlag{Name: "require-limits", EnvVars: []string{"MCPBOX_REQUIRE_LIMITS"}, Usage: "refuse to start the server when the runtime cannot enforce its memory, pids or CPU limit (rootless without a delegated cgroup) instead of saying so on stderr"},
			&cli.BoolFlag{Name: "no-redact", Usage: "do not mask secrets (passed-in variable values, token shapes) in the server's messages"},
		},
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
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
		Address:          c.String("containerd-address"),
		Namespace:        c.String("namespace"),
		RunDir:           c.String("run-dir"),
		Profile:          c.String("profile"),
		FindLinks:        c.String("find-links"),
		Command:          c.Args().Slice(),
		Env:              c.StringSlice("env"),
		Network:          c.String("network"),
		AllowHosts:       c.StringSlice("allow-host"),
		Workdir:          c.String("workdir"),
		StopTimeout:      c.Duration("stop-timeout"),
		MaxMessage:       broker.DefaultMaxMessage,
		Audit:            c.String("audit"),
		AuditBodies:      c.Bool("audit-bodies"),
		NoRedact:         c.Bool("no-redact"),
		ReportViolations: c.Bool("report-violations"),
		RequireLimits:    c.Bool("require-limits"),
		Memfd:            memfd,
		Stdin:            os.Stdin,
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Logger:           log,
	}
	for _, m := range c.StringSlice("mount") {
		mount, err := launcher.ParseMount(m)
		if err != nil {
			return &launcher.UsageError{Flag: "mount", Err: err}
		}
		opts.Mounts = append(opts.Mounts, mount)
	}
	if path := c.String("egress-log"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return &launcher.UsageError{Flag: "egress-log", Err: err}
		}
		defer f.Close()
		opts.EgressLog = f
	}
	if opts.Limits, err = limits(c); err != nil {
		return err
	}
	if c.IsSet("max-message") {
		if opts.MaxMessage, err = profiles.ParseSize(c.String("max-message")); err != nil {
			return &launcher.UsageError{Flag: "max-message", Err: err}
		}
	}
	if opts.StopTimeout <= 0 {
		return &launcher.UsageError{Flag: "stop-timeout", Err: fmt.Errorf("must be positive")}
	}

	if err := chooseRuntime(c, &opts); err != nil {
		return err
	}

	ctx, signaled, stop := signalContext(context.Background())
	defer stop()
	err = launcher.Run(ctx, opts)
	if errors.Is(err, context.Canceled) {
		if sig := signaled(); sig != 0 {
			return signalError{sig}
		}
	}
	return err
}

func limits(c *cli.Context) (sandbox.Limits, error) {
	var l sandbox.Limits
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"memory", &l.Memory}, {"tmp-size", &l.Tmp}} {
		if !c.IsSet(f.name) {
			continue
		}
		n, err := profiles.ParseSize(c.String(f.name))
		if err != nil {
			return l, &launcher.UsageError{Flag: f.name, Err: err}
		}
		*f.dst = n
	}
	if c.IsSet("pids") {
		if l.Pids = c.Int64("pids"); l.Pids < 1 {
			return l, &launcher.UsageError{Flag: "pids", Err: fmt.Errorf("must be at least 1")}
		}
	}
	if c.IsSet("cpus") {
		if l.CPUs = c.Float64("cpus"); l.CPUs <= 0 {
			return l, &launcher.UsageError{Flag: "cpus", Err: fmt.Errorf("must be positive, e.g. 0.5 or 2")}
		}
	}
	return l, nil
}
