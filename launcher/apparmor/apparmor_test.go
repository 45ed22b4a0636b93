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
		// The profile is for mcpbox alone: not another program's path,
		// whose profile it would replace, nor a sibling executable.
		"/usr/bin/man",
		"/usr/bin/mcpbox-init",
		"/usr/bin/mcpbox2",
		"/usr/bin/xmcpbox",
		"/opt/mcpbox/bin",
		"/opt/mcpbox/MCPBOX",
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

// Binary knows a file of mcpbox's, and for which binary, by the first line
// Profile writes, and nothing else: another program's profile, an edited
// header or the header somewhere else in the file is not mcpbox's.
func TestBinary(t *testing.T) {
	for _, binary := range []string{"/usr/bin/mcpbox", "/a/b.c/mcpbox", "/a.b/c/mcpbox", "/opt/mcp_box-2.0+1/mcpbox"} {
		p, err := Profile(binary)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := Binary(p); !ok || got != binary {
			t.Errorf("Binary(Profile(%s)) = %q, %v", binary, got, ok)
		}
	}
	mine, err := Profile("/usr/bin/mcpbox")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"empty":                 "",
		"another program's":     "# vim:syntax=apparmor\nabi <abi/4.0>,\ninclude <tunables/global>\nprofile man /usr/bin/man {\n}\n",
		"header not first":      "# local edits\n" + string(mine),
		"header for man":        "# AppArmor profile for mcpbox installed at /usr/bin/man.\n",
		"header with a glob":    "# AppArmor profile for mcpbox installed at /usr/**/mcpbox.\n",
		"header without a dot":  "# AppArmor profile for mcpbox installed at /usr/bin/mcpbox\n",
		"header, trailing text": "# AppArmor profile for mcpbox installed at /usr/bin/mcpbox. x\n",
		"indented header":       " " + string(mine),
	} {
		if got, ok := Binary([]byte(text)); ok {
			t.Errorf("%s: Binary = %q, true; want not mcpbox's", name, got)
		}
	}
}
