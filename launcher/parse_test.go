package launcher

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher/grant"
	"github.com/mcpbox/mcpbox/sandbox"
)

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	home, _ := os.UserHomeDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.Symlink(filepath.Join(dir, "a", "b"), filepath.Join(dir, "link"))
	for _, tc := range []struct {
		in   string
		want sandbox.Mount
		err  string
	}{
		{in: dir, want: sandbox.Mount{Source: dir, Destination: dir, ReadOnly: true}},
		{in: dir + ":rw", want: sandbox.Mount{Source: dir, Destination: dir}},
		{in: dir + ":ro", want: sandbox.Mount{Source: dir, Destination: dir, ReadOnly: true}},
		{in: dir + ":/data", want: sandbox.Mount{Source: dir, Destination: "/data", ReadOnly: true}},
		{in: dir + ":/data/:rw", want: sandbox.Mount{Source: dir, Destination: "/data"}},
		{in: "~", want: sandbox.Mount{Source: home, Destination: home, ReadOnly: true}},
		{in: dir + "/../" + filepath.Base(dir), want: sandbox.Mount{Source: dir, Destination: dir, ReadOnly: true}},
		{in: "/no/such/path", err: "does not exist"},
		{in: dir + "/link/..", err: `".." follows a symlink`},
		{in: dir + ":relative", err: "must be an absolute path"},
		{in: dir + ":/a:/b", err: "want SRC[:DST][:ro|rw]"},
		{in: "", err: "want SRC"},
		{in: ":rw", err: "want SRC"},
	} {
		got, err := ParseMount(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMount(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMount(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestResolveEnv(t *testing.T) {
	environ := []string{"TOKEN=secret", "EMPTY=", "OTHER=x"}
	got, err := resolveEnv([]string{"TOKEN", "EMPTY", "UNSET", "LIT=a=b"}, environ)
	want := []string{"TOKEN=secret", "EMPTY=", "LIT=a=b"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("resolveEnv = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "1ABC", "A-B", "=x", "A B"} {
		var usage *UsageError
		if _, err := resolveEnv([]string{bad}, environ); !errors.As(err, &usage) || usage.Flag != "env" {
			t.Errorf("resolveEnv(%q) error = %v, want a usage error for --env", bad, err)
		}
	}
}

func TestResolveCommand(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		testutil.Server(t, "server-memory") // skips, or fails under CI
	}
	root := t.TempDir()
	pkg := filepath.Join(root, "proj", "node_modules", "@scope", "srv")
	os.MkdirAll(filepath.Join(pkg, "dist"), 0o755)
	script := filepath.Join(pkg, "dist", "index.js")
	os.WriteFile(script, []byte("#!/usr/bin/env node\n"), 0o755)
	os.WriteFile(filepath.Join(pkg, "package.json"), []byte("{}"), 0o644)

	c, err := resolveCommand([]string{"node", "--enable-source-maps", script, "arg"}, grant.NewUser("/home/nobody"))
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(c.args[0]) || c.args[2] != script || c.args[3] != "arg" {
		t.Errorf("args = %v", c.args)
	}
	want := sandbox.Mount{Source: filepath.Join(root, "proj"), Destination: filepath.Join(root, "proj"), ReadOnly: true}
	if len(c.mounts) != 1 || c.mounts[0] != want {
		t.Errorf("mounts = %+v, want the tree holding node_modules: %+v", c.mounts, want)
	}
	if c.name != "srv" {
		t.Errorf("name = %q, want srv", c.name)
	}

	// A relative script path is made absolute, since the sandbox's cwd
	// is not the client's.
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(filepath.Join(pkg, "dist"))
	if c, err = resolveCommand([]string{"node", "index.js"}, grant.User{}); err != nil || c.args[1] != script {
		t.Errorf("relative script: args %v, %v", c.args, err)
	}

	var usage *UsageError
	if _, err := resolveCommand([]string{"no-such-command-mcpbox"}, grant.User{}); !errors.As(err, &usage) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing command: %v", err)
	}
	if _, err := resolveCommand(nil, grant.User{}); !errors.As(err, &usage) {
		t.Errorf("empty command: %v", err)
	}
}

func TestServerName(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		script string
		want   string
	}{
		{[]string{"/usr/bin/node"}, "/x/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", "server-filesystem"},
		{[]string{"/usr/bin/node"}, "/x/node_modules/plain-pkg/index.js", "plain-pkg"},
		{[]string{"/usr/bin/python3"}, "/srv/My Server.py", "my-server"},
		{[]string{"/opt/bin/Weird_Binary"}, "", "weird-binary"},
		{[]string{"/usr/bin/" + strings.Repeat("a", 50)}, "", strings.Repeat("a", 32)},
		{[]string{"/usr/bin/___"}, "", "server"},
	} {
		if got := serverName(tc.args, tc.script); got != tc.want {
			t.Errorf("serverName(%v, %q) = %q, want %q", tc.args, tc.script, got, tc.want)
		}
	}
}

func TestDedupeMounts(t *testing.T) {
	in := []sandbox.Mount{
		{Source: "/opt/app", Destination: "/opt/app", ReadOnly: true},
		{Source: "/opt/app/bin", Destination: "/opt/app/bin", ReadOnly: true}, // inside the first: dropped
		{Source: "/opt/app/data", Destination: "/opt/app/data"},               // rw inside ro: kept
		{Source: "/data", Destination: "/srv", ReadOnly: true},
		{Source: "/data2", Destination: "/srv"}, // same destination: replaces
	}
	want := []sandbox.Mount{in[0], in[2], in[4]}
	if got := dedupeMounts(in); !reflect.DeepEqual(got, want) {
		t.Errorf("dedupeMounts = %+v\nwant %+v", got, want)
	}
}

func TestRemoveSessionDirRefusesMounts(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	sub := filepath.Join(dir, "rootfs", "usr")
	os.MkdirAll(sub, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", sub).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(sub, "keep"), []byte("x"), 0o644)
	err := removeSessionDir(dir)
	if err == nil || !strings.Contains(err.Error(), "still mounted") {
		t.Errorf("removeSessionDir with a mount below = %v, want a refusal", err)
	}
	if _, serr := os.Stat(filepath.Join(sub, "keep")); serr != nil {
		t.Errorf("a file behind the mount was removed: %v", serr)
	}
	exec.Command("umount", sub).Run()
	if err := removeSessionDir(dir); err != nil {
		t.Errorf("after unmount: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir still there: %v", err)
	}
}
