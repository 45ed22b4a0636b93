package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// grantHome makes a home directory for a test's mcpbox: readable by the
// sandbox's user like a real one, with an ~/.ssh holding a key file that
// anyone could read if it were there.
func grantHome(t *testing.T) string {
	t.Helper()
	home := testutil.TempDir(t)
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("PRIVATE KEY"), 0o644); err != nil {
		t.Fatal(err)
	}
	return home
}

// runIn runs `mcpbox run ARGS` with HOME=home and returns its combined
// output and exit code. The programs these tests run print one plain line,
// which mcpbox diverts to stderr.
func (e *env) runIn(home string, args ...string) (string, int) {
	e.t.Helper()
	cmd := e.command(args...)
	cmd.Env = append(cmd.Env, "HOME="+home)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	e.t.Fatalf("mcpbox run %v: %v\n%s", args, err, out)
	return "", 0
}

// readProbe is a node program that prints, for each path argument, its
// content or the error code reading it gives inside the sandbox.
const readProbe = `const fs = require("fs");
console.log("READ " + process.argv.slice(1).map(p => { try { return p + "=" + fs.readFileSync(p, "utf8") } catch (e) { return p + "=" + e.code } }).join(" "))`

// TestNativeServerSearchPath: a native server whose RUNPATH reaches
// $ORIGIN/../../.ssh starts (its own library is bound, file by file) and
// sees neither ~/.ssh nor the other files of its directories.
func TestNativeServerSearchPath(t *testing.T) {
	e := newEnv(t)
	gcc := testutil.RequiresCommand(t, "gcc")
	home := grantHome(t)
	app := filepath.Join(home, "app")
	src := t.TempDir()
	for _, d := range []string{filepath.Join(app, "bin"), filepath.Join(app, "lib")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(src, "lib.c"), "int answer(void) { return 42; }\n")
	writeFile(t, filepath.Join(src, "main.c"), `#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int answer(void);
int main(int argc, char **argv) {
	printf("NATIVE answer=%d", answer());
	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY);
		printf(" %s=%s", argv[i], fd >= 0 ? "OPEN" : errno == ENOENT ? "ENOENT" : "DENIED");
		if (fd >= 0) close(fd);
	}
	printf("\n");
	return 0;
}
`)
	for _, args := range [][]string{
		{"-shared", "-fPIC", "-o", filepath.Join(app, "lib", "libanswer.so"), "lib.c"},
		{"-o", filepath.Join(app, "bin", "server"), "main.c", "-L" + filepath.Join(app, "lib"), "-lanswer",
			"-Wl,--enable-new-dtags,-rpath,$ORIGIN/../../.ssh:$ORIGIN/../lib"},
	} {
		cmd := exec.Command(gcc, args...)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
	}
	writeFile(t, filepath.Join(app, "bin", "sibling.txt"), "not the server's")
	writeFile(t, filepath.Join(app, "lib", "unrelated.txt"), "not the server's")

	key, sibling, unrelated := filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(app, "bin", "sibling.txt"), filepath.Join(app, "lib", "unrelated.txt")
	out, code := e.runIn(home, "--", filepath.Join(app, "bin", "server"), key, sibling, unrelated)
	want := "NATIVE answer=42 " + key + "=ENOENT " + sibling + "=ENOENT " + unrelated + "=ENOENT"
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("native server: exit %d, want 0 and %q in:\n%s", code, want, out)
	}
}

// TestGrantSymlinks: a path argument or --mount that leads through a
// symlink to ~/.ssh is refused before anything starts; one that leads to
// a grantable directory is bound from there, at the path given.
func TestGrantSymlinks(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-filesystem")
	home := grantHome(t)
	notes, docs := filepath.Join(home, "notes"), filepath.Join(home, "docs")
	for _, d := range []string{notes, docs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(docs, "doc.txt"), "granted through a symlink")
	keys, toDocs, hop := filepath.Join(notes, "keys"), filepath.Join(notes, "docs"), filepath.Join(notes, "hop")
	for link, target := range map[string]string{keys: "../.ssh", toDocs: docs, hop: home} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	xdg, _ := xdgEnv(t)
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := e.command(args...)
		cmd.Env = append(cmd.Env, append(xdg, "HOME="+home)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("mcpbox run %v: %v\n%s", args, err, out)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"path argument, symlink as the last component", []string{"--profile", "filesystem", "--", node, server, keys}},
		{"path argument, symlink in the middle", []string{"--profile", "filesystem", "--", node, server, filepath.Join(hop, ".ssh")}},
		{"--mount", []string{"--mount", keys + ":rw", "--", node, "-e", readProbe}},
		{"--mount, symlink in the middle", []string{"--mount", filepath.Join(hop, ".ssh"), "--", node, "-e", readProbe}},
	} {
		out, code := run(tc.args...)
		if code != 2 || !strings.Contains(out, "symlink") || !strings.Contains(out, filepath.Join(home, ".ssh")+" holds credentials") {
			t.Errorf("%s: exit %d, want 2 and a refusal naming %s/.ssh:\n%s", tc.name, code, home, out)
		}
	}

	// Granted through a symlink to a directory that may be granted: the
	// server sees it at the path it was given, and nothing else.
	docFile, keyFile := filepath.Join(toDocs, "doc.txt"), filepath.Join(keys, "id_ed25519")
	out, code := run("--mount", toDocs, "--", node, "-e", readProbe, docFile, keyFile, filepath.Join(home, ".ssh", "id_ed25519"))
	want := "READ " + docFile + "=granted through a symlink " + keyFile + "=ENOENT " + filepath.Join(home, ".ssh", "id_ed25519") + "=ENOENT"
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("--mount through a symlink to %s: exit %d, want %q in:\n%s", docs, code, want, out)
	}
}

// TestGrantCheckedInSandbox: what runc mounted is compared with what
// mcpbox checked before the server runs. mcpbox here runs in a mount
// namespace of its own in which the granted directory is another one (a
// tmpfs over it), so runc, in containerd's namespace, binds a directory
// mcpbox never checked: the server must not start.
func TestGrantCheckedInSandbox(t *testing.T) {
	e := newEnv(t)
	node, _ := testutil.Server(t, "server-filesystem")
	unshare := testutil.RequiresCommand(t, "unshare")
	home := grantHome(t)
	grant := filepath.Join(home, "notes")
	if err := os.MkdirAll(grant, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(grant, "host.txt"), "what containerd sees")
	mcpbox := e.command("--mount", grant, "--", node, "-e", readProbe, filepath.Join(grant, "host.txt"))
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs "$0" && echo "what mcpbox checked" > "$0/host.txt" && exec "$@"`, grant)
	cmd.Args = append(cmd.Args, mcpbox.Args...)
	cmd.Env = append(mcpbox.Env, "HOME="+home)
	out, err := cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), "READ ") || !strings.Contains(string(out), "something other than "+grant) {
		t.Errorf("mcpbox with %s shadowed in its own mount namespace: %v, want a refusal before the server runs:\n%s", grant, err, out)
	}
}

// TestGrantReadability: a 0700 directory granted read-only works (the
// server runs as its owner); one that no user mcpbox may run as can read
// is refused before start, saying why and what to do.
func TestGrantReadability(t *testing.T) {
	e := newEnv(t)
	node, _ := testutil.Server(t, "server-filesystem")
	home := grantHome(t)
	private, rootOnly := filepath.Join(home, "private"), filepath.Join(home, "root-only")
	for _, d := range []string{private, rootOnly} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(private, "a.txt"), "owner's file")
	for _, p := range []string{private, filepath.Join(private, "a.txt")} {
		if err := os.Chown(p, 4321, 4321); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(private, "a.txt"), 0o600)
	writeFile(t, filepath.Join(rootOnly, "b.txt"), "root's file")

	out, code := e.runIn(home, "--mount", private+":ro", "--", node, "-e", readProbe, filepath.Join(private, "a.txt"))
	if want := "READ " + filepath.Join(private, "a.txt") + "=owner's file"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("--mount of a 0700 directory of uid 4321: exit %d, want 0 and %q in:\n%s", code, want, out)
	}
	out, code = e.runIn(home, "--mount", rootOnly+":ro", "--", node, "-e", readProbe, filepath.Join(rootOnly, "b.txt"))
	if code != 2 || strings.Contains(out, "READ ") || !strings.Contains(out, "mode 0700") || !strings.Contains(out, "never runs a server as root") || !strings.Contains(out, "chmod o+rX "+rootOnly) {
		t.Errorf("--mount of a 0700 directory of root: exit %d, want 2 and a refusal that says why and what to do:\n%s", code, out)
	}
}
