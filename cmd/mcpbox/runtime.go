package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/backend"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/userns"
	"github.com/mcpbox/mcpbox/launcher/userconfig"
)

// runtimeEnv is --runtime's environment twin. It is read here rather than
// through the flag's EnvVars so that messages and the log can say which of
// the two set the value.
const runtimeEnv = "MCPBOX_RUNTIME"

func runtimeFlag() cli.Flag {
	return &cli.StringFlag{
		Name:        "runtime",
		DefaultText: "auto",
		Usage: "what runs the sandboxes: containerd (its daemon; for root, or a user who may open its socket), " +
			"rootless (runc in a user namespace of mcpbox's, no daemon, no root) or auto (containerd when its socket is usable, else rootless); " +
			"else $" + runtimeEnv + ", else the runtime key of $XDG_CONFIG_HOME/mcpbox/" + userconfig.FileName,
	}
}

// loadConfig reads the user's config file. A broken one is an error that
// names its file, line and field; it is never rewritten.
func loadConfig() (userconfig.Config, error) {
	return userconfig.Load(launcher.DefaultDirs().Config)
}

// runtimeSetting is the runtime setting and where it came from: --runtime,
// else $MCPBOX_RUNTIME, else the config file's runtime key, else auto
// (from "auto").
func runtimeSetting(c *cli.Context, cfg userconfig.Config) (setting, from string, err error) {
	switch {
	case c.IsSet("runtime"):
		setting = c.String("runtime")
		if err := backend.CheckSetting(setting); err != nil {
			return "", "", &launcher.UsageError{Flag: "runtime", Err: err}
		}
		return setting, "--runtime", nil
	case os.Getenv(runtimeEnv) != "":
		setting = os.Getenv(runtimeEnv)
		if err := backend.CheckSetting(setting); err != nil {
			return "", "", &launcher.UsageError{Err: fmt.Errorf("%s: %w", runtimeEnv, err)}
		}
		return setting, runtimeEnv, nil
	case cfg.Runtime != "":
		return cfg.Runtime, fmt.Sprintf("%s:%d", cfg.File, cfg.Lines["runtime"]), nil
	}
	return backend.Auto, backend.Auto, nil
}

// chooseRuntime sets opts.Runtime to the runtime this command's sessions
// run in, resolving auto once, here, and says which and why at info level.
// The config file is read even when --runtime or the variable overrides
// it, so that a broken file never goes unnoticed.
func chooseRuntime(c *cli.Context, opts *launcher.Options) error {
	if _, in := userns.Inside(); in {
		// mcpbox again, in the user namespace the rootless runtime needs:
		// the choice was made before (enterRootless).
		opts.Runtime = launcher.RuntimeRootless
		return nil
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	setting, from, err := runtimeSetting(c, cfg)
	if err != nil {
		return err
	}
	opts.Runtime = setting
	// auto: containerd when the caller can use its socket (it exists,
	// connect(2) succeeds and containerd answers), else rootless; the
	// host's root always gets containerd.
	address := opts.Address
	if address == "" {
		address = launcher.DefaultAddress
	}
	choice, err := backend.Choose(c.Context, opts.Runtime, address)
	if err != nil {
		return &launcher.UsageError{Err: fmt.Errorf("runtime %s (from %s): %w", setting, from, err)}
	}
	opts.Runtime = choice.Kind
	if opts.Logger != nil {
		opts.Logger.Info("runtime", "runtime", choice.Kind, "why", choice.Why, "from", from)
	}
	return nil
}
