package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// userCatalog returns a catalog whose user directory holds files.
func userCatalog(t *testing.T, files map[string]string) (*Catalog, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "profiles")
	writeFiles(t, dir, files)
	return NewCatalog(dir), dir
}

func TestResolveOrder(t *testing.T) {
	const fsPkg = "@modelcontextprotocol/server-filesystem"
	tests := []struct {
		name     string
		user     map[string]string
		flag     string // "FILE" is replaced by the path of a file outside the user dir
		eco, pkg string
		want     string // profile name
		why      string
	}{
		{name: "unmatched package gets untrusted", eco: NPM, pkg: "some-unknown-server",
			want: "untrusted", why: WhyDefault},
		{name: "host command gets untrusted", eco: "", pkg: "",
			want: "untrusted", why: WhyDefault},
		{name: "built-in match", eco: NPM, pkg: fsPkg,
			want: "filesystem", why: WhyBuiltin},
		{name: "built-in match on a normalized PyPI name", eco: PyPI, pkg: "MCP_Server.Fetch",
			want: "fetch", why: WhyBuiltin},
		{name: "a version is not part of the name", eco: NPM, pkg: fsPkg + "@1.0.0",
			want: "untrusted", why: WhyDefault},
		{name: "--profile NAME beats a match", flag: "time", eco: NPM, pkg: fsPkg,
			want: "time", why: WhyFlag},
		{name: "--profile FILE beats everything", flag: "FILE", eco: NPM, pkg: fsPkg,
			user: map[string]string{"mine.yaml": "name: mine\nmatch: {npm: \"" + fsPkg + "\"}\n"},
			want: "fromfile", why: WhyFlag},
		{name: "--profile NAME finds a user profile", flag: "mine",
			user: map[string]string{"mine.yaml": "name: mine\n"},
			want: "mine", why: WhyFlag},
		{name: "user match beats built-in match", eco: NPM, pkg: fsPkg,
			user: map[string]string{"myfs.yaml": "name: myfs\nextends: filesystem\nmatch: {npm: \"" + fsPkg + "\"}\n"},
			want: "myfs", why: "user profile myfs.yaml"},
		{name: "user match of a PyPI package", eco: PyPI, pkg: "mcp-server-time",
			user: map[string]string{"t.yml": "name: t\nmatch:\n  - pypi: mcp_server_time\n"},
			want: "t", why: "user profile t.yml"},
		{name: "user override of a built-in by name is used for its match", eco: NPM, pkg: fsPkg,
			user: map[string]string{"filesystem.yaml": "name: filesystem\nextends: filesystem\npathArgs: ro\n"},
			want: "filesystem", why: "user profile filesystem.yaml"},
		{name: "user override of untrusted is the default", eco: NPM, pkg: "nothing-matches",
			user: map[string]string{"untrusted.yaml": "name: untrusted\nextends: untrusted\ndescription: mine\n"},
			want: "untrusted", why: WhyDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, dir := userCatalog(t, tt.user)
			flag := tt.flag
			if flag == "FILE" {
				other := t.TempDir()
				writeFiles(t, other, map[string]string{"x.yaml": "name: fromfile\nextends: mine\n"})
				flag = filepath.Join(other, "x.yaml")
			}
			p, why, err := c.Resolve(flag, tt.eco, tt.pkg)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tt.want || why != tt.why {
				t.Errorf("Resolve = %s (%q), want %s (%q)", p.Name, why, tt.want, tt.why)
			}
			if strings.HasPrefix(tt.why, "user profile") && !strings.HasPrefix(p.Source, dir) {
				t.Errorf("Source = %q, want a path in %s", p.Source, dir)
			}
		})
	}
}

func TestUserOverride(t *testing.T) {
	c, dir := userCatalog(t, map[string]string{
		"filesystem.yaml": "name: filesystem\ndescription: read-only\nextends: filesystem\npathArgs: ro\nnetwork: { allow: [example.com] }\n",
	})
	p, err := c.Get("filesystem")
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != filepath.Join(dir, "filesystem.yaml") || p.PathArgs != AccessRO || p.Description != "read-only" {
		t.Errorf("Get(filesystem) = source %q, pathArgs %q, description %q; want the user's", p.Source, p.PathArgs, p.Description)
	}
	// Inherited from the built-in filesystem, which it extends.
	if p.Limits.Memory != 512<<20 || !reflect.DeepEqual(p.Network.Allow, []string{"example.com"}) {
		t.Errorf("limits %+v, network %v", p.Limits, p.Network.Allow)
	}
	// match is not inherited: the user file has none.
	if len(p.Match) != 0 {
		t.Errorf("Match = %v, want none (match is never inherited)", p.Match)
	}
	// Built-ins still extend built-ins, not the user's override.
	if b, err := NewCatalog(dir).Get("git"); err != nil || b.Limits.Memory != 256<<20 {
		t.Errorf("Get(git) = %+v, %v", b, err)
	}
}

func TestBrokenUserProfileIsAnError(t *testing.T) {
	broken := map[string]string{
		"filesystem.yaml": "name: filesystem\nlimits:\n  memory: lots\n",
	}
	c, dir := userCatalog(t, broken)
	file := filepath.Join(dir, "filesystem.yaml")
	check := func(what string, err error) {
		t.Helper()
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.File != file || ve.Line != 3 || ve.Field != "limits.memory" {
			t.Errorf("%s: error = %v, want the user file's line 3", what, err)
		}
	}
	p, err := c.Get("filesystem")
	check("Get", err)
	if p != nil {
		t.Error("Get returned a profile with the error")
	}
	_, err = c.Match(NPM, "@modelcontextprotocol/server-filesystem")
	check("Match", err)
	// Even for a package the broken profile is not about: it might have matched.
	_, _, err = c.Resolve("", NPM, "@modelcontextprotocol/server-github")
	check("Resolve", err)
	_, _, err = c.Resolve("filesystem", "", "")
	check("Resolve --profile", err)

	list, err := c.List()
	check("List", err)
	if len(list) != len(builtinRefs()) {
		t.Errorf("List returned %d profiles with the error, want the %d built-ins", len(list), len(builtinRefs()))
	}
	// A broken profile the lookup does not need does not stop Get.
	if _, err := c.Get("github"); err != nil {
		t.Errorf("Get(github): %v", err)
	}
}

func TestUserDirProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{name: "file name and profile name differ", files: map[string]string{"a.yaml": "name: b\n"},
			want: `a.yaml:1: name: "b" does not match the file name`},
		{name: "two files for one name", files: map[string]string{"a.yaml": "name: a\n", "a.yml": "name: a\n"},
			want: `define profile "a"`},
		{name: "bad file name", files: map[string]string{"My Profile.yaml": "name: x\n"},
			want: "is not a profile name"},
		{name: "two profiles match one package", files: map[string]string{
			"a.yaml": "name: a\nmatch: {npm: pkg}\n", "b.yaml": "name: b\nmatch: [{npm: pkg}]\n"},
			want: "matched by more than one profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := userCatalog(t, tt.files)
			_, err := c.Match(NPM, "pkg")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Match error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Files that are not profiles are ignored.
	c, _ := userCatalog(t, map[string]string{"README.md": "hi", ".x.yaml": "junk", "x.yaml.bak": "junk"})
	if p, err := c.Match(NPM, "pkg"); p != nil || err != nil {
		t.Errorf("Match = %v, %v; want nil, nil", p, err)
	}
	// A missing directory is an empty one.
	if p, why, err := NewCatalog(filepath.Join(t.TempDir(), "none")).Resolve("", NPM, "pkg"); err != nil || p.Name != "untrusted" || why != WhyDefault {
		t.Errorf("Resolve with a missing user dir = %v, %q, %v", p, why, err)
	}
}

func TestGetErrors(t *testing.T) {
	c := NewCatalog("")
	if _, err := c.Get("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nosuch) = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "../etc/passwd", "Untrusted", "a/b"} {
		if _, err := c.Get(bad); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an invalid-name error", bad, err)
		}
	}
	if _, _, err := c.Resolve("nosuch", NPM, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(--profile nosuch) = %v, want ErrNotFound", err)
	}
	if _, _, err := c.Resolve("./missing.yaml", NPM, "x"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Resolve(--profile ./missing.yaml) = %v, want a not-exist error", err)
	}
	if _, err := c.Match("cargo", "x"); err == nil {
		t.Error("Match(cargo) succeeded")
	}
	if p, err := c.Match(NPM, "not-a-known-server"); p != nil || err != nil {
		t.Errorf("Match(unknown) = %v, %v; want nil, nil", p, err)
	}
}

func TestIsFileFlag(t *testing.T) {
	for flag, want := range map[string]bool{
		"filesystem": false, "my-profile": false, "x.yaml": true, "x.yml": true,
		"./x": true, "/etc/mcpbox/x": true, "dir/x": true,
	} {
		if got := IsFileFlag(flag); got != want {
			t.Errorf("IsFileFlag(%q) = %t", flag, got)
		}
	}
}

func TestList(t *testing.T) {
	c, dir := userCatalog(t, map[string]string{"mine.yaml": "name: mine\n", "github.yaml": "name: github\nextends: github\n"})
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range list {
		src := p.Source
		if src != SourceBuiltin {
			src = strings.TrimPrefix(src, dir+"/")
		}
		got = append(got, p.Name+"@"+src)
	}
	if len(got) != 2+len(builtinRefs()) || got[0] != "github@github.yaml" || got[1] != "mine@mine.yaml" || got[2] != "brave-search@builtin" {
		t.Errorf("List = %v", got)
	}
}

// TestExtendsPositions checks that an effective profile knows in which file
// and on which line each field, inherited or not, was written.
func TestExtendsPositions(t *testing.T) {
	c, dir := userCatalog(t, map[string]string{
		"base.yaml": "name: base\nnetwork:\n  allow:\n    - a.example.com\n    - b.example.com\nenv: [SHARED]\nlimits:\n  memory: 1Gi\n",
		"child.yaml": "name: child\nextends: base\nnetwork:\n  allow:\n    - b.example.com\n    - c.example.com\n" +
			"env: [SHARED, OWN]\nlimits:\n  pids: 5\n",
	})
	p, err := c.Get("child")
	if err != nil {
		t.Fatal(err)
	}
	base, child := filepath.Join(dir, "base.yaml"), filepath.Join(dir, "child.yaml")
	if want := []string{"a.example.com", "b.example.com", "c.example.com"}; !reflect.DeepEqual(p.Network.Allow, want) {
		t.Errorf("Network.Allow = %v, want %v (parent's, then the child's new entries)", p.Network.Allow, want)
	}
	if want := []string{"SHARED", "OWN"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("Env = %v, want %v", p.Env, want)
	}
	if p.Limits.Memory != 1<<30 || p.Limits.PIDs != 5 || p.Limits.CPUs != 1 {
		t.Errorf("Limits = %+v: want memory from base, pids from child, cpus from the defaults", p.Limits)
	}
	for field, want := range map[string]position{
		"network.allow[0]": {base, 4},
		"network.allow[1]": {child, 5}, // restated by the child
		"network.allow[2]": {child, 6},
		"env[1]":           {child, 7},
		"limits.memory":    {base, 8},
		"limits.pids":      {child, 9},
		"limits.cpus":      {child, 8}, // not written anywhere: falls back to the child's limits:
		"extends":          {child, 2},
		"tools.pin":        {child, 0}, // nothing written: the profile's own file
	} {
		file, line := p.Pos(field)
		if file != want.file || line != want.line {
			t.Errorf("Pos(%q) = %s:%d, want %s:%d", field, file, line, want.file, want.line)
		}
	}
	if e := p.Errorf("network.allow[0]", "nope"); e.File != base || e.Line != 4 || e.Field != "network.allow[0]" {
		t.Errorf("Errorf = %+v", e)
	}
	// The parent's name and match do not leak into the child.
	if _, line := p.Pos("name"); line != 1 {
		t.Errorf("Pos(name) line = %d", line)
	}
}

func TestDefaultUserDir(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	if got := DefaultUserDir(); got != "/cfg/mcpbox/profiles" {
		t.Errorf("DefaultUserDir = %q", got)
	}
	t.Setenv("HOME", "/home/u")
	for _, v := range []string{"", "relative/dir"} {
		t.Setenv("XDG_CONFIG_HOME", v)
		if got := DefaultUserDir(); got != "/home/u/.config/mcpbox/profiles" {
			t.Errorf("with XDG_CONFIG_HOME=%q: DefaultUserDir = %q", v, got)
		}
	}
}
