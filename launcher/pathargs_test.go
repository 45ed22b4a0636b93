package launcher

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/sandbox"
)

func TestPathArgMounts(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home", "me")
	for _, d := range []string{"notes", "proj/sub", ".ssh", ".aws", "work", ".config/gcloud"} {
		os.MkdirAll(filepath.Join(home, d), 0o755)
	}
	os.WriteFile(filepath.Join(home, "proj", ".env"), []byte("SECRET=1"), 0o600)
	os.WriteFile(filepath.Join(home, "proj", "prod.env"), []byte("SECRET=1"), 0o600)
	outside := filepath.Join(root, "srv")
	os.MkdirAll(outside, 0o755)
	t.Setenv("HOME", home)

	ok := func(args []string, mode string, explicit []sandbox.Mount, want ...sandbox.Mount) {
		t.Helper()
		got, err := pathArgMounts(args, mode, home, nil, explicit)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("pathArgMounts(%q, %s) = %+v, %v; want %+v", args, mode, got, err, want)
		}
	}
	refused := func(args []string, why string) {
		t.Helper()
		_, err := pathArgMounts(args, "rw", home, nil, nil)
		var usage *UsageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "--mount") {
			t.Errorf("pathArgMounts(%q) error = %v, want a refusal mentioning %q and --mount", args, err, why)
		}
	}
	notes, sub := filepath.Join(home, "notes"), filepath.Join(home, "proj", "sub")

	ok([]string{notes, "--depth=2", "plain", sub}, "rw", nil,
		sandbox.Mount{Source: notes, Destination: notes}, sandbox.Mount{Source: sub, Destination: sub})
	ok([]string{"~/notes"}, "ro", nil, sandbox.Mount{Source: notes, Destination: notes, ReadOnly: true})
	ok([]string{"--root=" + notes}, "ro", nil, sandbox.Mount{Source: notes, Destination: notes, ReadOnly: true})
	ok([]string{notes, notes}, "ro", nil, sandbox.Mount{Source: notes, Destination: notes, ReadOnly: true})
	ok([]string{filepath.Join(home, "missing")}, "rw", nil)                               // nothing to grant
	ok([]string{notes}, "none", nil)                                                      // profile says no
	ok([]string{outside}, "rw", []sandbox.Mount{{Source: outside, Destination: outside}}) // --mount covers it

	refused([]string{outside}, "outside your home")
	refused([]string{"/"}, "outside your home")
	refused([]string{home}, "whole home")
	refused([]string{"~"}, "whole home")
	refused([]string{filepath.Join(home, ".ssh")}, "holds credentials")
	refused([]string{filepath.Join(home, ".config", "gcloud")}, "holds credentials")
	refused([]string{filepath.Join(home, "proj", ".env")}, ".env file")
	refused([]string{filepath.Join(home, "proj", "prod.env")}, ".env file")
	// A directory that contains a credential directory.
	if _, err := pathArgMounts([]string{filepath.Join(home, ".config")}, "ro", home, nil, nil); err == nil {
		t.Errorf("~/.config (holding ~/.config/gcloud) was granted")
	}
}
