package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes name → content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestValidationErrors loads one bad profile per case (bad.yaml, with user
// profiles next to it in user/) and checks the exact file, line and field.
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		user   map[string]string // files in the user profile directory
		file   string            // file the error is in; "" = bad.yaml
		line   int
		field  string
		reason string // a substring of Reason
	}{
		{name: "unknown top-level key", src: "name: x\nfoo: 1\n",
			line: 2, field: "foo", reason: `unknown field "foo": a profile has name, description`},
		{name: "unknown key suggests spelling", src: "name: x\npath_args: rw\n",
			line: 2, field: "path_args", reason: "did you mean pathArgs?"},
		{name: "unknown nested key", src: "name: x\nlimits:\n  memory: 1Gi\n  swap: 1Gi\n",
			line: 4, field: "limits.swap", reason: "limits has memory, pids, cpus, tmp"},
		{name: "unknown key in flow mapping", src: "name: x\ntools: { pin: warn, audit: on }\n",
			line: 2, field: "tools.audit"},
		{name: "unknown key in a list entry", src: "name: x\nmounts:\n  - host: /a\n    path: /a\n  - host: /b\n    path: /b\n    readonly: true\n",
			line: 7, field: "mounts[1].readonly", reason: "a mount has host, path, mode"},
		{name: "list where a mapping belongs", src: "name: x\nlimits: [1, 2]\n",
			line: 2, field: "limits", reason: "expected a mapping, got a list"},
		{name: "string where a list belongs", src: "name: x\nenv: FOO\n",
			line: 2, field: "env", reason: `expected a list, got "FOO"`},
		{name: "wrong type nested in a list", src: "name: x\nnetwork:\n  allow:\n    - api.github.com\n    - [b]\n",
			line: 5, field: "network.allow[1]", reason: "expected a string, got a list"},
		{name: "number for a string", src: "name: x\ndescription: 12\n",
			line: 2, field: "description", reason: "expected a string, got 12"},
		{name: "pids as a string", src: "name: x\nlimits:\n  pids: \"12\"\n",
			line: 3, field: "limits.pids", reason: `expected a whole number, got "12"`},
		{name: "pids as a float", src: "name: x\nlimits:\n  pids: 1.5\n",
			line: 3, field: "limits.pids", reason: "expected a whole number, got 1.5"},
		{name: "scripts not a bool", src: "name: x\ninstall:\n  scripts: sure\n",
			line: 3, field: "install.scripts", reason: `expected true or false, got "sure"`},
		{name: "bad pathArgs", src: "name: x\npathArgs: rx\n",
			line: 2, field: "pathArgs", reason: `"rx" is not valid: use none, ro or rw`},
		{name: "bad mount mode in second entry", src: "name: x\nmounts:\n  - { host: /a, path: /a }\n  - host: /b\n    path: /b\n    mode: write\n",
			line: 6, field: "mounts[1].mode", reason: `"write" is not valid: use ro or rw`},
		{name: "mount mode none", src: "name: x\nmounts:\n  - { host: /a, path: /a, mode: none }\n",
			line: 3, field: "mounts[0].mode"},
		{name: "bad tools.pin", src: "name: x\ntools:\n  pin: strict\n",
			line: 3, field: "tools.pin", reason: "use block, warn or off"},
		{name: "bad tools.scan", src: "name: x\ntools:\n  scan: loud\n",
			line: 3, field: "tools.scan"},
		{name: "bad size", src: "name: x\nlimits:\n  pids: 10\n  memory: 12X\n",
			line: 4, field: "limits.memory", reason: `"12X" is not a size: use a positive number with an optional unit, like 512Mi or 2G`},
		{name: "required not a bool", src: "name: x\nlimits: { required: yes please }\n",
			line: 2, field: "limits.required", reason: "true or false"},
		{name: "zero tmp", src: "name: x\nlimits: { tmp: 0 }\n",
			line: 2, field: "limits.tmp", reason: "is not a size"},
		{name: "size as a list", src: "name: x\nlimits:\n  memory: [1]\n",
			line: 3, field: "limits.memory", reason: "expected a size like 512Mi"},
		{name: "cpus 0", src: "name: x\nlimits:\n  cpus: 0\n",
			line: 3, field: "limits.cpus", reason: "above 0"},
		{name: "cpus negative", src: "name: x\nlimits:\n  cpus: -0.5\n",
			line: 3, field: "limits.cpus"},
		{name: "cpus .nan", src: "name: x\nlimits:\n  cpus: .nan\n",
			line: 3, field: "limits.cpus"},
		{name: "pids 0", src: "name: x\nlimits:\n  pids: 0\n",
			line: 3, field: "limits.pids", reason: "at least 1"},
		{name: "bad name", src: "# a comment\nname: Foo_Bar\n",
			line: 2, field: "name", reason: `"Foo_Bar" is not a valid name`},
		{name: "name too long", src: "name: " + strings.Repeat("a", 64) + "\n",
			line: 1, field: "name"},
		{name: "name missing", src: "description: d\npathArgs: ro\n",
			line: 1, field: "name", reason: "a profile needs a name"},
		{name: "name empty", src: "description: d\nname:\n",
			line: 2, field: "name", reason: "a profile needs a name"},
		{name: "relative mount path", src: "name: x\nmounts:\n  - host: /srv/data\n    path: data\n",
			line: 4, field: "mounts[0].path", reason: "is not absolute"},
		{name: "unclean mount path", src: "name: x\nmounts:\n  - host: /srv/data\n    path: /data/../etc\n",
			line: 4, field: "mounts[0].path", reason: "not clean"},
		{name: "mount over root", src: "name: x\nmounts:\n  - host: /srv\n    path: /\n",
			line: 4, field: "mounts[0].path"},
		{name: "relative mount host", src: "name: x\nmounts:\n  - host: notes\n    path: /notes\n",
			line: 3, field: "mounts[0].host", reason: "is relative"},
		{name: "unknown variable in mount host", src: "name: x\nmounts:\n  - host: ${HOME}/x\n    path: /x\n",
			line: 3, field: "mounts[0].host", reason: "only ${STATE}"},
		{name: "other user's home", src: "name: x\nmounts:\n  - host: ~root/x\n    path: /x\n",
			line: 3, field: "mounts[0].host"},
		{name: "mount without host", src: "name: x\nmounts:\n  - path: /x\n    mode: rw\n",
			line: 3, field: "mounts[0]", reason: "needs host"},
		{name: "empty list entry", src: "name: x\nmounts:\n  -\n",
			line: 3, field: "mounts[0]", reason: "empty list entry"},
		{name: "duplicate top-level key", src: "name: x\npathArgs: ro\nname: y\n",
			line: 3, field: "name", reason: "already set on line 1"},
		{name: "duplicate nested key", src: "name: x\nlimits:\n  memory: 1Gi\n  pids: 3\n  memory: 2Gi\n",
			line: 5, field: "limits.memory", reason: "already set on line 3"},
		{name: "duplicate key in flow mapping", src: "name: x\nlimits: { pids: 1, pids: 2 }\n",
			line: 2, field: "limits.pids"},
		{name: "bad env name", src: "name: x\nenv:\n  - GOOD_NAME\n  - 1BAD\n",
			line: 4, field: "env[1]", reason: `"1BAD" is not a variable name`},
		{name: "env listed twice", src: "name: x\nenv: [A, B, A]\n",
			line: 2, field: "env[2]", reason: "listed twice"},
		{name: "bad setenv name", src: "name: x\nsetenv:\n  OK: 1\n  NOT-OK: 2\n",
			line: 4, field: "setenv.NOT-OK", reason: "not a variable name"},
		{name: "setenv without value", src: "name: x\nsetenv:\n  EMPTY:\n",
			line: 3, field: "setenv.EMPTY", reason: `write ""`},
		{name: "setenv list value", src: "name: x\nsetenv:\n  A: [1]\n",
			line: 3, field: "setenv.A", reason: "expected a string"},
		{name: "setenv and env name the same variable", src: "name: x\nenv: [TOKEN]\nsetenv:\n  TOKEN: x\n",
			line: 4, field: "setenv.TOKEN", reason: "also listed in env"},
		{name: "bad seccomp name", src: "name: x\nseccomp:\n  allow:\n    - memfd_create\n    - Open\n",
			line: 5, field: "seccomp.allow[1]", reason: `"Open" is not a syscall name`},
		{name: "empty network entry", src: "name: x\nnetwork:\n  allow: [\"\"]\n",
			line: 3, field: "network.allow[0]", reason: "empty host pattern"},
		{name: "empty tool name", src: "name: x\ntools:\n  deny:\n    - \"  \"\n",
			line: 4, field: "tools.deny[0]"},
		{name: "unknown ecosystem in match", src: "name: x\nmatch: { cargo: foo }\n",
			line: 2, field: "match.cargo", reason: "match has npm, pypi"},
		{name: "bad package in match list", src: "name: x\nmatch:\n  - npm: ok-pkg\n  - npm: \"Bad Name\"\n",
			line: 4, field: "match[1].npm", reason: "not an npm package name"},
		{name: "package with version in match", src: "name: x\nmatch:\n  pypi: mcp-server-fetch==1.0\n",
			line: 3, field: "match.pypi", reason: "without a version"},
		{name: "empty match", src: "name: x\nmatch: {}\n",
			line: 2, field: "match", reason: "empty match"},
		{name: "empty file", src: "",
			line: 1, field: "", reason: "empty"},
		{name: "comments only", src: "# nothing here\n\n",
			line: 1, field: "", reason: "empty"},
		{name: "list instead of mapping", src: "- name: x\n- name: y\n",
			line: 1, field: "", reason: "not a list"},
		{name: "scalar document", src: "just text\n",
			line: 1, field: "", reason: "not a string"},
		{name: "two documents", src: "name: x\n---\nname: y\n",
			line: 3, field: "", reason: "second YAML document"},
		{name: "syntax error", src: "name: x\nenv: [A, B\n",
			line: 2, field: "", reason: "invalid YAML"},
		{name: "anchor", src: "name: x\nenv: &e [A]\n",
			line: 2, field: "env", reason: "anchors and aliases"},
		{name: "merge key", src: "name: x\nlimits:\n  <<: {pids: 2}\n",
			line: 3, field: "limits", reason: "merge keys"},
		{name: "unsupported tag", src: "name: x\ndescription: !!binary aGk=\n",
			line: 2, field: "description", reason: "tag !!binary"},
		{name: "rootfs image without image", src: "name: x\nrootfs: image\n",
			line: 2, field: "rootfs", reason: "rootfs image needs an image"},
		{name: "rootfs image mapping", src: "name: x\nrootfs:\n  image: docker.io/library/node:22\n",
			line: 2, field: "rootfs", reason: "`rootfs: image` and `image: REF`"},
		{name: "rootfs unknown", src: "name: x\nrootfs: vm\n",
			line: 2, field: "rootfs", reason: `"vm" is not valid: use host or image`},
		{name: "image with host rootfs", src: "name: x\ndescription: d\nimage: node:22\n",
			line: 3, field: "image", reason: "only used with `rootfs: image`"},
		{name: "image short digest", src: "name: x\nrootfs: image\nimage: node@sha256:abc\n",
			line: 3, field: "image", reason: "sha256:<64 lowercase hex digits>"},
		{name: "image other digest", src: "name: x\nrootfs: image\nimage: node@md5:" + strings.Repeat("a", 32) + "\n",
			line: 3, field: "image", reason: "sha256:<64 lowercase hex digits>"},
		{name: "image bad name", src: "name: x\nrootfs: image\nimage: \"Node:22\"\n",
			line: 3, field: "image", reason: "not a valid image reference"},
		{name: "image empty", src: "name: x\nrootfs: image\nimage: \"\"\n",
			line: 3, field: "image", reason: "an empty image reference"},
		{name: "bad extends name", src: "name: x\nextends: Untrusted\n",
			line: 2, field: "extends", reason: "not a profile name"},
		{name: "unknown extends", src: "name: x\ndescription: d\nextends: nosuch\n",
			line: 3, field: "extends", reason: `unknown profile "nosuch": built-in profiles are`},
		{name: "extends cycle", src: "name: x\nextends: b\n",
			user: map[string]string{"b.yaml": "name: b\nextends: c\n", "c.yaml": "# c\nname: c\nextends: b\n"},
			file: "user/c.yaml", line: 3, field: "extends", reason: "extends cycle"},
		{name: "user profile extending itself", src: "name: x\nextends: a\n",
			user: map[string]string{"a.yaml": "name: a\nextends: a\n"},
			file: "user/a.yaml", line: 2, field: "extends", reason: `unknown profile "a"`},
		{name: "broken parent", src: "name: x\nextends: base\n",
			user: map[string]string{"base.yaml": "name: base\nlimits:\n  pids: -1\n"},
			file: "user/base.yaml", line: 3, field: "limits.pids"},
		{name: "mount path taken by the parent", src: "name: x\nextends: base\nmounts:\n  - host: /other\n    path: /data\n",
			user: map[string]string{"base.yaml": "name: base\nmounts:\n  - { host: /srv, path: /data }\n"},
			line: 5, field: "mounts[1].path", reason: "already mounted by the mount at"},
		{name: "env of the parent set by the child", src: "name: x\nextends: github\nsetenv:\n  GITHUB_PERSONAL_ACCESS_TOKEN: x\n",
			line: 4, field: "setenv.GITHUB_PERSONAL_ACCESS_TOKEN", reason: "also listed in env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			userDir := filepath.Join(dir, "user")
			writeFiles(t, userDir, tt.user)
			writeFiles(t, dir, map[string]string{"bad.yaml": tt.src})
			_, err := NewCatalog(userDir).LoadFile(filepath.Join(dir, "bad.yaml"))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("LoadFile error = %v (%T), want a *ValidationError", err, err)
			}
			wantFile := filepath.Join(dir, "bad.yaml")
			if tt.file != "" {
				wantFile = filepath.Join(dir, tt.file)
			}
			if ve.File != wantFile || ve.Line != tt.line || ve.Field != tt.field {
				t.Errorf("got %s:%d field %q, want %s:%d field %q\n(error: %v)", ve.File, ve.Line, ve.Field, wantFile, tt.line, tt.field, err)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			if !strings.Contains(ve.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", ve.Reason, tt.reason)
			}
		})
	}
}

func TestValidationErrorText(t *testing.T) {
	for _, tt := range []struct {
		err  ValidationError
		want string
	}{
		{ValidationError{File: "profiles/x.yaml", Line: 12, Field: "limits.memory", Reason: `"12X" is not a size`},
			`profiles/x.yaml:12: limits.memory: "12X" is not a size`},
		{ValidationError{File: "x.yaml", Line: 1, Reason: "the file is empty"}, "x.yaml:1: the file is empty"},
		{ValidationError{File: "x.yaml", Field: "name", Reason: "r"}, "x.yaml: name: r"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// TestGoodValues loads a profile that uses every field, in block and flow
// style, and checks the values and the lines recorded for them.
func TestGoodValues(t *testing.T) {
	src := `# top comment
name: full
description: |
  Two lines
  of text.
match:
  - npm: "@scope/pkg"
  - pypi: Some_Project.Name
rootfs: host
network: { allow: [api.example.com, "*.example.com:443", "cidr:10.0.0.0/8:5432"] }
pathArgs: ro
mounts:
  - host: ~/notes
    path: /notes
  - { host: "${STATE}/db", path: /db, mode: rw }
env: [TOKEN]
setenv:
  PORT: 8080
  DEBUG: true
  NAME: !!str 12
  EMPTY: ""
limits: { memory: 1048576, pids: 10, cpus: 2, tmp: 1.5Gi, required: true }
seccomp:
  allow: []
tools:
  allow: [read]
  deny:
    - write
  pin: warn
  scan: "off"
install:
  scripts: true
`
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"full.yaml": src})
	p, err := NewCatalog("").LoadFile(filepath.Join(dir, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Description != "Two lines\nof text.\n" {
		t.Errorf("Description = %q", p.Description)
	}
	if len(p.Match) != 2 || p.Match[0] != (Match{NPM, "@scope/pkg"}) || p.Match[1] != (Match{PyPI, "Some_Project.Name"}) {
		t.Errorf("Match = %v", p.Match)
	}
	if !p.Matches(PyPI, "some-project-name") || p.Matches(NPM, "@scope/PKG") || !p.Matches(NPM, "@scope/pkg") {
		t.Error("Matches does not normalize PyPI names or compares npm names loosely")
	}
	if got := strings.Join(p.Network.Allow, " "); got != "api.example.com *.example.com:443 cidr:10.0.0.0/8:5432" {
		t.Errorf("Network.Allow = %q", got)
	}
	if p.PathArgs != AccessRO {
		t.Errorf("PathArgs = %q", p.PathArgs)
	}
	wantMounts := []Mount{{"~/notes", "/notes", AccessRO}, {"${STATE}/db", "/db", AccessRW}}
	if len(p.Mounts) != 2 || p.Mounts[0] != wantMounts[0] || p.Mounts[1] != wantMounts[1] {
		t.Errorf("Mounts = %v, want %v", p.Mounts, wantMounts)
	}
	wantEnv := map[string]string{"PORT": "8080", "DEBUG": "true", "NAME": "12", "EMPTY": ""}
	if len(p.Setenv) != len(wantEnv) {
		t.Errorf("Setenv = %v, want %v", p.Setenv, wantEnv)
	}
	for k, v := range wantEnv {
		if got, ok := p.Setenv[k]; !ok || got != v {
			t.Errorf("Setenv[%s] = %q, want %q", k, got, v)
		}
	}
	if want := (Limits{Memory: 1 << 20, PIDs: 10, CPUs: 2, Tmp: 3 << 29, Required: true}); p.Limits != want {
		t.Errorf("Limits = %+v, want %+v", p.Limits, want)
	}
	if p.Tools.Pin != ActionWarn || p.Tools.Scan != ActionOff || p.Tools.Allow[0] != "read" || p.Tools.Deny[0] != "write" {
		t.Errorf("Tools = %+v", p.Tools)
	}
	if !p.Install.Scripts {
		t.Error("Install.Scripts = false")
	}
	for field, line := range map[string]int{
		"name": 2, "description": 3, "match[1].pypi": 8, "network.allow[2]": 10,
		"mounts[0]": 13, "mounts[0].path": 14, "mounts[1].mode": 15, "mounts[0].mode": 13,
		"setenv.DEBUG": 19, "limits.tmp": 22, "tools.deny[0]": 28, "install.scripts": 32,
		"seccomp.allow": 24, "seccomp.allow[0]": 24, "nosuch": 0,
	} {
		if got := p.Line(field); got != line {
			t.Errorf("Line(%q) = %d, want %d", field, got, line)
		}
	}
	e := p.Errorf("network.allow[2]", "bad %s", "entry")
	if want := filepath.Join(dir, "full.yaml") + ":10: network.allow[2]: bad entry"; e.Error() != want {
		t.Errorf("Errorf = %q, want %q", e.Error(), want)
	}
}

// TestNullMeansUnset checks that a key with no value leaves the field as
// the parent (here the defaults) has it.
func TestNullMeansUnset(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"n.yaml": "name: n\nlimits:\nnetwork:\n  allow:\npathArgs: ~\n"})
	p, err := NewCatalog("").LoadFile(filepath.Join(dir, "n.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if d := defaults(); p.Limits != d.Limits || p.PathArgs != d.PathArgs || len(p.Network.Allow) != 0 {
		t.Errorf("got %+v", p)
	}
}

// TestImage loads image-mode profiles: a digest-pinned reference, its
// inheritance through extends, a child that goes back to host, and the
// rendered form.
func TestImage(t *testing.T) {
	pin := "mcpbox.local/runtime/node:20@sha256:" + strings.Repeat("0a", 32)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"img.yaml":   "name: img\nextends: filesystem\nrootfs: image\nimage: " + pin + "\n",
		"child.yaml": "name: child\nextends: img\nlimits: { pids: 9 }\n",
		"host.yaml":  "name: host\nextends: img\nrootfs: host\n",
	})
	c := NewCatalog(dir)
	p, err := c.LoadFile(filepath.Join(dir, "img.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p.RootFS != RootFSImage || p.Image != pin || p.PathArgs != AccessRW {
		t.Errorf("RootFS, Image, PathArgs = %q, %q, %q", p.RootFS, p.Image, p.PathArgs)
	}
	if p.Line("image") != 4 {
		t.Errorf("image line %d, want 4", p.Line("image"))
	}
	out, err := p.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "rootfs: image\nimage: \""+pin+"\"\n") {
		t.Errorf("rendered profile lacks the image:\n%s", out)
	}
	child, err := c.LoadFile(filepath.Join(dir, "child.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if child.RootFS != RootFSImage || child.Image != pin {
		t.Errorf("child: RootFS, Image = %q, %q", child.RootFS, child.Image)
	}
	host, err := c.LoadFile(filepath.Join(dir, "host.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if host.RootFS != RootFSHost || host.Image != "" {
		t.Errorf("host: RootFS, Image = %q, %q", host.RootFS, host.Image)
	}
}
