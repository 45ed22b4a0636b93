package userconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		runtime    string
		line       int // of runtime
	}{
		{"rootless", "runtime: rootless\n", "rootless", 1},
		{"quoted, after a comment", "# where sessions run\nruntime: \"containerd\"\n", "containerd", 2},
		{"auto", "runtime: auto", "auto", 1},
		{"empty file", "", "", 0},
		{"comments only", "# nothing yet\n\n", "", 0},
		{"no value", "runtime:\n", "", 1},
		{"flow mapping", "{runtime: rootless}\n", "rootless", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("config.yaml", []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Runtime != tc.runtime || cfg.Lines["runtime"] != tc.line || cfg.File != "config.yaml" {
				t.Errorf("%+v, want runtime %q on line %d", cfg, tc.runtime, tc.line)
			}
		})
	}
}

// TestParseErrors: each mistake names the file, the line and the field,
// and says what to write instead.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       string
	}{
		{"bad value", "# mine\nruntime: rootles\n", `/c/config.yaml:2: runtime: "rootles" is not a runtime: use auto, containerd or rootless`},
		{"case matters", "runtime: Rootless\n", `/c/config.yaml:1: runtime: "Rootless" is not a runtime`},
		{"number", "runtime: 12\n", `/c/config.yaml:1: runtime: expected auto, containerd or rootless, got 12`},
		{"bool", "runtime: true\n", `/c/config.yaml:1: runtime: expected auto, containerd or rootless, got true`},
		{"list", "runtime: [rootless]\n", `/c/config.yaml:1: runtime: expected auto, containerd or rootless, got a list`},
		{"mapping", "runtime:\n  kind: rootless\n", `/c/config.yaml:1: runtime: expected auto, containerd or rootless, got a mapping`},
		{"unknown key", "runtime: auto\nruntme: rootless\n", `/c/config.yaml:2: runtme: unknown key: the config file knows runtime`},
		{"duplicate", "runtime: auto\n\nruntime: rootless\n", `/c/config.yaml:3: runtime: duplicate key: runtime is already set on line 1`},
		{"anchor", "runtime: &r rootless\n", `/c/config.yaml:1: runtime: YAML anchors, aliases and tags are not supported`},
		{"tag", "runtime: !!str rootless\n", `/c/config.yaml:1: runtime: YAML anchors, aliases and tags are not supported`},
		{"not a mapping", "rootless\n", `/c/config.yaml:1: the config file is a mapping of settings (e.g. ` + "`runtime: rootless`" + `), not "rootless"`},
		{"a list", "- runtime: rootless\n", `/c/config.yaml:1: the config file is a mapping of settings`},
		{"TOML", "runtime = \"rootless\"\n", `/c/config.yaml:1: the config file is a mapping of settings (e.g. ` + "`runtime: rootless`" + `), not "runtime = \"rootless\"" (it reads like TOML; the config file is YAML)`},
		{"broken YAML", "runtime: auto\nx: [\n", `/c/config.yaml:2: invalid YAML: `},
		{"two documents", "runtime: auto\n---\nruntime: rootless\n", `/c/config.yaml:3: a second YAML document`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("/c/config.yaml", []byte(tc.data))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %+v, %v; want an *Error", cfg, err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to start with %q", err, tc.want)
			}
		})
	}
}

// TestLoad: a missing file is no setting; a file that cannot be read, or
// a config written under a name mcpbox does not read, is an error naming
// it; a broken file is left as it was.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if cfg, err := Load(dir); err != nil || cfg.File != "" || cfg.Runtime != "" {
		t.Errorf("no file: %+v, %v", cfg, err)
	}
	if cfg, err := Load(filepath.Join(dir, "missing")); err != nil || cfg.File != "" {
		t.Errorf("no directory: %+v, %v", cfg, err)
	}

	toml := filepath.Join(dir, "config.toml")
	os.WriteFile(toml, []byte("runtime = \"rootless\"\n"), 0o600)
	_, err := Load(dir)
	if err == nil || !strings.HasPrefix(err.Error(), toml+": mcpbox reads config.yaml") {
		t.Errorf("config.toml only: %v", err)
	}

	file := filepath.Join(dir, FileName)
	broken := []byte("runtime: rootles\n")
	os.WriteFile(file, broken, 0o600)
	_, err = Load(dir)
	if err == nil || !strings.HasPrefix(err.Error(), file+":1: runtime: ") {
		t.Errorf("broken file: %v", err)
	}
	if got, _ := os.ReadFile(file); string(got) != string(broken) {
		t.Errorf("the broken file was changed: %q", got)
	}

	os.WriteFile(file, []byte("runtime: rootless\n"), 0o600)
	if cfg, err := Load(dir); err != nil || cfg.Runtime != "rootless" || cfg.File != file {
		t.Errorf("good file: %+v, %v", cfg, err)
	}

	os.Remove(file)
	os.Mkdir(file, 0o700)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), file+": not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}
