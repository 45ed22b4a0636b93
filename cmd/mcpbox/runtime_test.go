package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/doctor"
	"github.com/mcpbox/mcpbox/launcher/userconfig"
)

// configHome points XDG_CONFIG_HOME at a new directory and writes
// mcpbox/config.yaml there unless content is "-"; it returns the file.
func configHome(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	file := filepath.Join(dir, "mcpbox", userconfig.FileName)
	if content != "-" {
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return file
}

// settingOf runs an app with the global --runtime flag and one command,
// as mcpbox's is, and returns what runtimeSetting said in that command.
func settingOf(t *testing.T, args ...string) (setting, from string, err error) {
	t.Helper()
	app := &cli.App{
		Flags: []cli.Flag{runtimeFlag()},
		Commands: []*cli.Command{{Name: "cmd", Action: func(c *cli.Context) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			setting, from, err = runtimeSetting(c, cfg)
			return err
		}}},
		Writer: os.Stderr, ErrWriter: os.Stderr,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.Run(append(append([]string{"mcpbox"}, args...), "cmd"))
	return setting, from, err
}

// TestRuntimePrecedence: --runtime, then MCPBOX_RUNTIME, then the config
// file, then auto.
func TestRuntimePrecedence(t *testing.T) {
	for _, tc := range []struct {
		name        string
		config, env string
		args        []string
		setting     string
		from        string // FILE stands for the config file
	}{
		{"nothing set", "-", "", nil, "auto", "auto"},
		{"empty config file", "# nothing\n", "", nil, "auto", "auto"},
		{"config file", "runtime: rootless\n", "", nil, "rootless", "FILE:1"},
		{"config file, second line", "# mine\nruntime: containerd\n", "", nil, "containerd", "FILE:2"},
		{"env over config file", "runtime: rootless\n", "containerd", nil, "containerd", runtimeEnv},
		{"flag over env and config file", "runtime: rootless\n", "containerd", []string{"--runtime", "auto"}, "auto", "--runtime"},
		{"flag over config file", "runtime: rootless\n", "", []string{"--runtime=containerd"}, "containerd", "--runtime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := configHome(t, tc.config)
			t.Setenv(runtimeEnv, tc.env)
			setting, from, err := settingOf(t, tc.args...)
			want := strings.ReplaceAll(tc.from, "FILE", file)
			if err != nil || setting != tc.setting || from != want {
				t.Errorf("got %q from %q (%v), want %q from %q", setting, from, err, tc.setting, want)
			}
		})
	}
}

// TestRuntimeSettingErrors: a bad value names where it came from; a
// broken config file is an error even when the flag overrides it, and is
// left as it was.
func TestRuntimeSettingErrors(t *testing.T) {
	configHome(t, "-")
	t.Setenv(runtimeEnv, "")
	_, _, err := settingOf(t, "--runtime", "docker")
	var usage *launcher.UsageError
	if !errors.As(err, &usage) || usage.Flag != "runtime" || !strings.Contains(err.Error(), `"docker" is not a runtime: use auto, containerd or rootless`) {
		t.Errorf("--runtime docker: %v", err)
	}
	t.Setenv(runtimeEnv, "Rootless")
	_, _, err = settingOf(t)
	if !errors.As(err, &usage) || !strings.HasPrefix(err.Error(), runtimeEnv+`: "Rootless" is not a runtime`) {
		t.Errorf("%s=Rootless: %v", runtimeEnv, err)
	}

	t.Setenv(runtimeEnv, "")
	broken := "# mine\nruntime: rootles\n"
	file := configHome(t, broken)
	for _, args := range [][]string{nil, {"--runtime", "containerd"}} {
		_, _, err = settingOf(t, args...)
		var ce *userconfig.Error
		if !errors.As(err, &ce) || err.Error() != file+`:2: runtime: "rootles" is not a runtime: use auto, containerd or rootless` {
			t.Errorf("broken config file, args %q: %v", args, err)
		}
	}
	if got, _ := os.ReadFile(file); string(got) != broken {
		t.Errorf("the config file was rewritten: %q", got)
	}
	// mcpbox exits 2 for it, and says where.
	if code := run([]string{"mcpbox", "run", "--", "true"}); code != exitUsage {
		t.Errorf("run with a broken config file exits %d, want %d", code, exitUsage)
	}
}

// TestRunLogsRuntime: a session's command says at info level which runtime
// it runs in, why, and what chose it.
func TestRunLogsRuntime(t *testing.T) {
	configHome(t, "-")
	t.Setenv(runtimeEnv, "containerd")
	missing := filepath.Join(t.TempDir(), "no-such-server")
	_, stderr, err := runApp(t, context.Background(), "--log-level", "info", "run", "--", missing)
	if err == nil {
		t.Fatal("run of a missing command succeeded")
	}
	if want := `msg=runtime runtime=containerd why="asked for" from=MCPBOX_RUNTIME`; !strings.Contains(stderr, want) {
		t.Errorf("no %q in the log:\n%s", want, stderr)
	}
}

// TestRootlessAsRoot: root asking for the rootless runtime is told to use
// containerd, before anything starts.
func TestRootlessAsRoot(t *testing.T) {
	testutil.RequiresRoot(t)
	configHome(t, "runtime: rootless\n")
	t.Setenv(runtimeEnv, "")
	_, _, err := runApp(t, context.Background(), "run", "--", "true")
	var usage *launcher.UsageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "runtime rootless (from ") || !strings.Contains(err.Error(), "the rootless runtime is for ordinary users: as root, sessions run through containerd") {
		t.Errorf("rootless from the config file, as root: %v", err)
	}
}

// TestDoctorBrokenConfig: doctor reports a broken config file as a failed
// check, with file, line and field, and goes on with the other checks.
func TestDoctorBrokenConfig(t *testing.T) {
	file := configHome(t, "runtime: [rootless]\n")
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	t.Setenv(runtimeEnv, "containerd")
	stdout, _, err := runApp(t, context.Background(), "doctor", "--json")
	var exit *launcher.ExitError
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Fatalf("err = %v, want ExitError code 1", err)
	}
	var report struct{ Checks []doctor.Result }
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	c := checkNamed(report.Checks, "config")
	if c.Status != doctor.Fail || c.Detail != file+":1: runtime: expected auto, containerd or rootless, got a list" {
		t.Errorf("config check: %+v", c)
	}
	if c := checkNamed(report.Checks, "runtime"); c.Detail != "containerd (MCPBOX_RUNTIME): asked for" {
		t.Errorf("runtime check: %+v", c)
	}
	if c := checkNamed(report.Checks, "user namespaces"); c.Status != doctor.OK {
		t.Errorf("user namespaces through the hidden command: %+v", c)
	}
}
