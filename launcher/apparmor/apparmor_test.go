package apparmor

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/usr.bin.mcpbox from Profile")

// The profile a Debian package installs, kept as a file so that a change to
// its text shows in review.
func TestProfileGolden(t *testing.T) {
	got, err := Profile("/usr/bin/mcpbox")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "usr.bin.mcpbox")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Profile(/usr/bin/mcpbox) differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

// The profile parses with an AppArmor 4 parser for the paths mcpbox is
// installed at, and the check is not vacuous: the same parser refuses the
// profile with its one rule misspelt.
func TestProfileParses(t *testing.T) {
	parser := testutil.AppArmorParser4(t)
	ctx := testutil.Context(t, time.Minute)
	dir := testutil.TempDir(t)
	for _, binary := range []string{"/usr/bin/mcpbox", "/usr/local/bin/mcpbox", filepath.Join(dir, "bin", "mcpbox")} {
		p, err := Profile(binary)
		if err != nil {
			t.Fatalf("Profile(%s): %v", binary, err)
		}
		if err := Check(ctx, parser, p); err != nil {
			t.Errorf("Profile(%s) does not parse:\n%s\n%v", binary, p, err)
		}
		broken := bytes.Replace(p, []byte("userns,"), []byte("usernz,"), 1)
		if err := Check(ctx, parser, broken); err == nil {
			t.Errorf("%s accepted a profile with a misspelt rule: the check proves nothing", parser)
		}
	}
}

func TestFileName(t *testing.T) {
	for binary, want := range map[string]string{
		"/usr/bin/mcpbox":             "usr.bin.mcpbox",
		"/usr/local/bin/mcpbox":       "usr.local.bin.mcpbox",
		"/opt/mcp_box-2.0+1/mcpbox":   "opt.mcp_box-2.0+1.mcpbox",
		"/home/ann/.local/bin/mcpbox": "home.ann..local.bin.mcpbox",
	} {
		got, err := FileName(binary)
		if err != nil || got != want {
			t.Errorf("FileName(%q) = %q, %v; want %q", binary, got, err, want)
		}
	}
}

// Paths that would not be one literal path in the profile's header, or
// that are not a path to a file at all, are refused, by both functions.
func TestProfileRefusesOddPaths(t *testing.T) {
	for _, binary := range []string{
		"",
		"mcpbox",
		"bin/mcpbox",
		"./bin/mcpbox",
		"/",
		"/usr/bin/",
		"/usr//bin/mcpbox",
		"/usr/bin/../bin/mcpbox",
		"/usr/./bin/mcpbox",
		"/opt/my tools/mcpbox",
		"/opt/mcpbox\n}\nprofile x /** {",
		"/opt/*/mcpbox",
		"/opt/**",
		"/opt/mcp?ox",
		"/opt/[a]/mcpbox",
		"/opt/{a,b}/mcpbox",
		"/opt/@{HOME}/mcpbox",
		"/opt/mcpbox,",
		"/opt/mcpbox#",
		`/opt/"mcpbox"`,
		"/opt/mcpbox^",
		"/opt/m\u00e9box",
		"/opt/mcpbox\x00",
	} {
		if p, err := Profile(binary); !errors.Is(err, ErrPath) {
			t.Errorf("Profile(%q) = %q, %v; want ErrPath", binary, p, err)
		}
		if n, err := FileName(binary); !errors.Is(err, ErrPath) {
			t.Errorf("FileName(%q) = %q, %v; want ErrPath", binary, n, err)
		}
	}
}

// A parser that is not there is an error, not a pass.
func TestCheckMissingParser(t *testing.T) {
	p, err := Profile("/usr/bin/mcpbox")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(context.Background(), filepath.Join(testutil.TempDir(t), "apparmor_parser"), p); err == nil {
		t.Error("Check with a missing parser returned nil")
	}
}
