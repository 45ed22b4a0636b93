package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/memfd"
	"github.com/mcpbox/mcpbox/launcher/userconfig"
)

// Exit codes beyond the server's own, after docker's conventions.
const (
	exitUsage       = 2   // bad flags or arguments
	exitInternal    = 125 // mcpbox itself failed (containerd, sandbox set-up)
	exitNotRunnable = 127 // the server command does not exist
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newApp() *cli.App {
	return &cli.App{
		Name:    "mcpbox",
		Usage:   "run MCP servers in sandboxes",
		Version: version,
		Description: "mcpbox runs a third-party MCP server in a runc sandbox (strict seccomp, read-only root, no network\n" +
			"unless a profile allows named hosts, only the host paths you grant) while the client still sees an\n" +
			"ordinary stdio server. Put `mcpbox run --` in front of a server's command (or let `mcpbox wrap` do it\n" +
			"in your MCP clients' configs).\n\n" +
			"RUNTIMES. As an ordinary user mcpbox runs rootless: it runs itself again in a user namespace of its own\n" +
			"(newuidmap/newgidmap and a range of /etc/subuid), where it starts runc; no daemon, no sudo. As root, or\n" +
			"for a user who may open containerd's socket, it uses containerd. `--runtime` chooses; `mcpbox doctor`\n" +
			"says which runs and what the host lacks, with the command that fixes it.\n\n" +
			"FILES. Profiles in $XDG_CONFIG_HOME/mcpbox/profiles, the user config file\n" +
			"$XDG_CONFIG_HOME/mcpbox/config.yaml, pins and audit logs in $XDG_STATE_HOME/mcpbox, installed packages in\n" +
			"$XDG_CACHE_HOME/mcpbox; rootless sessions in $XDG_RUNTIME_DIR/mcpbox (else /tmp/mcpbox-UID;\n" +
			"else, when someone else made that first, $XDG_STATE_HOME/mcpbox/run).\n\n" +
			"EXIT STATUS. The server's own status; 2 for bad usage or a profile or grant that cannot work; 125 when\n" +
			"mcpbox itself failed; 127 when the server's program is not found; 128+N after signal N.\n\n" +
			"Logs go to stderr; stdout carries only MCP messages.",
		Flags: []cli.Flag{
			runtimeFlag(),
			&cli.StringFlag{Name: "containerd-address", Value: launcher.DefaultAddress, EnvVars: []string{"MCPBOX_CONTAINERD_ADDRESS"}, Usage: "containerd's socket"},
			&cli.StringFlag{Name: "namespace", Value: launcher.DefaultNamespace, EnvVars: []string{"MCPBOX_NAMESPACE"}, Usage: "containerd namespace for mcpbox's containers"},
			&cli.StringFlag{Name: "run-dir", Value: launcher.DefaultRunDir, EnvVars: []string{"MCPBOX_RUN_DIR"}, Usage: "where sessions keep their empty root, synthetic /etc files and FIFOs (the rootless runtime's default: $XDG_RUNTIME_DIR/mcpbox/sessions)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: []string{"MCPBOX_LOG_LEVEL"}, Usage: "debug, info, warn or error (logs go to stderr)"},
			&cli.StringFlag{Name: "memfd", Value: "auto", EnvVars: []string{"MCPBOX_MEMFD"}, Usage: "how sandboxes keep code written into memory from running: " +
				"hook (a runc hook sets vm.memfd_noexec=2 in each sandbox; Linux 6.6+), deny (memfd_create fails inside), or auto (hook where it works, else deny)"},
		},
		Commands:    []*cli.Command{runCommand(), pullCommand(), packagesCommand(), imageCommand(), profilesCommand(), pinsCommand(), selftestCommand(), trialCommand(), clientsCommand(), wrapCommand(), unwrapCommand(), gcCommand(), auditCommand(), doctorCommand(), doctorUsernsCommand(), setupCommand(), versionCommand(), manCommand()},
		HideVersion: true,
		// A value like --env LIST=a,b must arrive whole.
		DisableSliceFlagSeparator: true,
		Writer:                    os.Stderr, // help and version too: stdout is the MCP channel
		ErrWriter:                 os.Stderr,
		ExitErrHandler:            func(*cli.Context, error) {}, // run maps errors to codes itself
		OnUsageError:              usageError,
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(os.Stderr, "mcpbox: unknown command %q; see `mcpbox --help`\n", name)
		},
	}
}

func usageError(c *cli.Context, err error, _ bool) error {
	help := "mcpbox --help"
	if c.Command != nil && c.Command.Name != "" {
		help = "mcpbox " + c.Command.Name + " --help"
	}
	return &launcher.UsageError{Err: fmt.Errorf("%w (see `%s`)", err, help)}
}

// run runs the app and returns the process exit code.
func run(args []string) int {
	// A client that goes away must not kill mcpbox with SIGPIPE before it
	// has cleaned up: writes return EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	err := newApp().Run(args)
	if err == nil {
		return 0
	}
	var exit *launcher.ExitError
	var usage *launcher.UsageError
	var config *userconfig.Error
	var sig signalError
	switch {
	case errors.As(err, &exit):
		if exit.Reason != "" {
			fmt.Fprintf(os.Stderr, "mcpbox: %s\n", exit.Reason)
		}
		return exit.Code
	case errors.As(err, &sig):
		return 128 + int(sig.sig)
	case errors.As(err, &config):
		// Not a UsageError: a YAML message may say "not found", which
		// there means a command that does not exist.
		fmt.Fprintf(os.Stderr, "mcpbox: %v\n", config)
		return exitUsage
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "mcpbox: %v\n", usage)
		if usage.Flag == "" && strings.Contains(usage.Error(), "not found") {
			return exitNotRunnable
		}
		return exitUsage
	default:
		fmt.Fprintf(os.Stderr, "mcpbox: %v\n", err)
		return exitInternal
	}
}

// signalError is how a session ended by SIGINT/SIGTERM/SIGHUP is reported.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "stopped by " + e.sig.String() }

// signalContext returns a context canceled by SIGINT, SIGTERM or SIGHUP,
// and a function that tells which signal it was (0 if none).
func signalContext(parent context.Context) (context.Context, func() syscall.Signal, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var got syscall.Signal
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-ch:
			got = s.(syscall.Signal)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() syscall.Signal { <-done; return got }, func() { signal.Stop(ch); cancel(); <-done }
}

// memfdSetting reads --memfd.
func memfdSetting(c *cli.Context) (memfd.Setting, error) {
	m, err := memfd.ParseSetting(c.String("memfd"))
	if err != nil {
		return m, &launcher.UsageError{Flag: "memfd", Err: err}
	}
	return m, nil
}

// logger builds the slog logger of --log-level, writing to stderr.
func logger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, &launcher.UsageError{Flag: "log-level", Err: fmt.Errorf("%q: use debug, info, warn or error", c.String("log-level"))}
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}
