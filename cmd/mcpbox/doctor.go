package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/clientconfig"
	"github.com/mcpbox/mcpbox/launcher/doctor"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/cgroups"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "doctor",
		Usage:        "check that this host can run mcpbox's sandboxes, and say how to fix what is missing",
		Description: "Run it as the user your MCP client runs as. It says which runtime your sessions get and why, then\n" +
			"checks what that runtime needs: for the rootless runtime, newuidmap/newgidmap, a subordinate id range,\n" +
			"user namespaces that really work (it creates one, a network namespace in it and mcpbox's nftables\n" +
			"rules there), the state directory, and whether memory, pids and cpu limits can be enforced; for\n" +
			"containerd, its socket and version. Each check is ✓, a warning (!) or a failure (✗); those that are\n" +
			"not ✓ come with the one command that fixes them. Exit status 1 when a check failed.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the checks as JSON"},
		},
		Action: func(c *cli.Context) error {
			memfd, err := memfdSetting(c)
			if err != nil {
				return err
			}
			address := c.String("containerd-address")
			if address == "" {
				address = launcher.DefaultAddress
			}
			// A broken config file is one of doctor's findings, not a
			// reason to stop before the others.
			cfg, cfgErr := loadConfig()
			setting, from, err := runtimeSetting(c, cfg)
			if err != nil {
				return err
			}
			dirs := launcher.DefaultDirs()
			checks := doctor.Run(c.Context, doctor.Options{
				Memfd:         memfd,
				Address:       address,
				StateDir:      dirs.State,
				CacheDir:      dirs.Cache,
				Clients:       doctorClients(clientconfig.HostEnv()),
				Runtime:       setting,
				RuntimeFrom:   from,
				ConfigFile:    cfg.File,
				ConfigRuntime: cfg.Runtime,
				ConfigErr:     cfgErr,
				Self:          "/proc/self/exe",
				XDGRuntimeDir: os.Getenv("XDG_RUNTIME_DIR"),
				Limits:        rootlessLimits,
			})
			failed := 0
			for _, ch := range checks {
				if ch.Status == doctor.Fail {
					failed++
				}
			}
			if err := printDoctor(checks, failed == 0, c.Bool("json")); err != nil {
				return err
			}
			if failed > 0 {
				noun := "checks"
				if failed == 1 {
					noun = "check"
				}
				return &launcher.ExitError{Code: 1, Reason: fmt.Sprintf("doctor: %d %s failed", failed, noun)}
			}
			return nil
		},
	}
}

// doctorUsernsCommand is the hidden command the user namespaces check of
// doctor starts mcpbox with, in a new user namespace (see
// doctor.ProbeChild).
func doctorUsernsCommand() *cli.Command {
	return &cli.Command{
		Name:   doctor.ProbeCommand,
		Hidden: true,
		Action: func(*cli.Context) error {
			if err := doctor.ProbeChild(); err != nil {
				return &launcher.ExitError{Code: 1, Reason: err.Error()}
			}
			return nil
		},
	}
}

// doctorClients finds the client config files in env for doctor's clients
// check.
func doctorClients(env clientconfig.Env) func() []doctor.ClientConfig {
	return func() []doctor.ClientConfig {
		var out []doctor.ClientConfig
		for _, f := range clientconfig.Detect(env) {
			out = append(out, doctor.ClientConfig{Display: f.Display, Stdio: f.Stdio, Wrapped: f.Wrapped, Broken: f.Error != ""})
		}
		return out
	}
}

// printDoctor prints the checks on stdout, as JSON or one line each with
// the fix of what failed or warned.
func printDoctor(checks []doctor.Result, ok, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			OK     bool            `json:"ok"`
			Checks []doctor.Result `json:"checks"`
		}{ok, checks})
	}
	for _, ch := range checks {
		fmt.Fprintf(os.Stdout, "%s %s: %s\n", doctorMark(ch.Status), ch.Name, ch.Detail)
		if ch.Fix != "" && (ch.Status == doctor.Fail || ch.Status == doctor.Warn) {
			fmt.Fprintf(os.Stdout, "    fix: %s\n", ch.Fix)
		}
	}
	return nil
}

func doctorMark(status doctor.Status) string {
	switch status {
	case doctor.OK:
		return "✓"
	case doctor.Warn:
		return "!"
	case doctor.Fail:
		return "✗"
	default:
		return "-"
	}
}

// rootlessLimits says whether the caller's rootless sessions can enforce
// their memory, pids and cpu limits: a delegated cgroup subtree.
func rootlessLimits() (ok bool, detail, fix string) {
	d, err := cgroups.Find(os.Getuid())
	if err != nil {
		return false, "cannot tell: " + err.Error(), ""
	}
	missing := d.Missing([]string{cgroups.Memory, cgroups.Pids, cgroups.CPU})
	if len(missing) == 0 {
		return true, fmt.Sprintf("memory, pids and cpu enforced under %s (%s)", d.Parent, d.How), ""
	}
	return false, fmt.Sprintf("not enforced: %s (%s)", strings.Join(missing, ", "), d.How), d.Fix
}
