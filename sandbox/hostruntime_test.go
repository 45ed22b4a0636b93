package sandbox

import (
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func destinations(ms []Mount) []string {
	var d []string
	for _, m := range ms {
		d = append(d, m.Destination)
	}
	return d
}

// checkRuntime asserts what every HostRuntime result must satisfy: all
// read-only same-path binds that may carry programs, none of the
// forbidden directories, and acceptable to Spec together with the
// synthetic /etc files.
func checkRuntime(t *testing.T, ms []Mount) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range ms {
		if !m.ReadOnly || m.NoExec || m.Source != m.Destination {
			t.Errorf("mount %+v: want a read-only, exec-allowed bind at the same path", m)
		}
		switch m.Destination {
		case "/", "/home", "/root", "/etc", "/var", "/run", "/tmp":
			t.Errorf("HostRuntime binds %s as a whole", m.Destination)
		}
		for _, d := range []string{"/proc", "/sys", "/dev"} {
			if under(m.Destination, d) {
				t.Errorf("HostRuntime binds %s inside %s", m.Destination, d)
			}
		}
		if seen[m.Destination] {
			t.Errorf("duplicate mount at %s", m.Destination)
		}
		seen[m.Destination] = true
	}
	p := minimalPolicy()
	p.Mounts = append(p.Mounts, ms...)
	for dst := range SyntheticEtc(0, 0, "", "") {
		p.Mounts = append(p.Mounts, Mount{Source: "/session" + dst, Destination: dst, ReadOnly: true, NoExec: true})
	}
	if _, err := Spec(p); err != nil {
		t.Errorf("Spec rejects HostRuntime's mounts: %v", err)
	}
}

func TestHostRuntimeNode(t *testing.T) {
	const node = "/usr/bin/node"
	if _, err := os.Stat(node); err != nil {
		t.Skipf("needs %s: %v", node, err)
	}
	ms, err := HostRuntime(node)
	if err != nil {
		t.Fatal(err)
	}
	checkRuntime(t, ms)
	d := destinations(ms)
	for _, want := range []string{"/usr", "/etc/ld.so.cache"} {
		if !slices.Contains(d, want) {
			t.Errorf("HostRuntime(%s) = %v, want %s among them", node, d, want)
		}
	}
	for _, p := range []string{"/lib64", "/lib", "/bin", "/etc/ssl/certs"} {
		if _, err := os.Stat(p); err == nil && !slices.Contains(d, p) {
			t.Errorf("HostRuntime(%s) = %v, want %s (it exists here)", node, d, p)
		}
	}
}

// copyFile copies a host program to dst with mode 0755.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestHostRuntimeProgramOutsideUsr(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	copyFile(t, "/bin/true", filepath.Join(bin, "true"))
	// A symlink in another directory: both its directory and the target's
	// must be there for the kernel to follow it inside.
	links := filepath.Join(dir, "links")
	if err := os.Mkdir(links, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../bin/true", filepath.Join(links, "t")); err != nil {
		t.Fatal(err)
	}
	ms, err := HostRuntime(filepath.Join(links, "t"))
	if err != nil {
		t.Fatal(err)
	}
	checkRuntime(t, ms)
	d := destinations(ms)
	for _, want := range []string{"/usr", bin, links} {
		if !slices.Contains(d, want) {
			t.Errorf("HostRuntime = %v, want %s among them", d, want)
		}
	}
}

// TestHostRuntimeRunpath builds a program whose library lives in
// $ORIGIN/../lib, outside every standard directory.
func TestHostRuntimeRunpath(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("needs a C compiler (cc)")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(cc, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cc %v: %v\n%s", args, err, out)
		}
	}
	for _, d := range []string{"lib", "bin", "other"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "lib.c"), "int answer(void) { return 42; }\n")
	writeFile(t, filepath.Join(dir, "main.c"), "int answer(void);\nint main(void) { return answer() != 42; }\n")
	run("-shared", "-fPIC", "-o", "lib/libanswer.so", "lib.c")
	run("-o", "bin/prog", "main.c", "-Llib", "-lanswer", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib")

	ms, err := HostRuntime(filepath.Join(dir, "bin", "prog"))
	if err != nil {
		t.Fatal(err)
	}
	checkRuntime(t, ms)
	d := destinations(ms)
	for _, want := range []string{filepath.Join(dir, "bin"), filepath.Join(dir, "lib")} {
		if !slices.Contains(d, want) {
			t.Errorf("HostRuntime = %v, want %s among them", d, want)
		}
	}
	if slices.Contains(d, filepath.Join(dir, "other")) || slices.Contains(d, dir) {
		t.Errorf("HostRuntime = %v binds more than the program needs", d)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestHostRuntimeScript(t *testing.T) {
	if _, err := os.Stat("/usr/bin/env"); err != nil {
		t.Skip("needs /usr/bin/env")
	}
	for _, line := range []string{
		"#!/usr/bin/env node",
		"#! /usr/bin/env -S node --no-warnings",
		"#!/usr/bin/env -S NODE_OPTIONS=x -u FOO node",
		"#!/bin/sh -e",
	} {
		t.Run(line, func(t *testing.T) {
			dir := t.TempDir()
			script := filepath.Join(dir, "server")
			writeFile(t, script, line+"\nconsole.log('hi')\n")
			ms, err := HostRuntime(script)
			if err != nil {
				t.Fatal(err)
			}
			checkRuntime(t, ms)
			d := destinations(ms)
			if !slices.Contains(d, "/usr") || !slices.Contains(d, dir) {
				t.Errorf("HostRuntime = %v, want /usr and %s", d, dir)
			}
		})
	}
}

// TestHostRuntimeEnvProgramOutsideUsr checks that the program named by
// "#!/usr/bin/env prog" gets its runtime too, when it is an absolute path.
func TestHostRuntimeEnvProgramOutsideUsr(t *testing.T) {
	dir := t.TempDir()
	interp := filepath.Join(dir, "interp", "true")
	copyFile(t, "/bin/true", interp)
	script := filepath.Join(dir, "scripts", "s")
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, script, "#!/usr/bin/env -S "+interp+" --flag\n")
	ms, err := HostRuntime(script)
	if err != nil {
		t.Fatal(err)
	}
	if d := destinations(ms); !slices.Contains(d, filepath.Dir(interp)) {
		t.Errorf("HostRuntime = %v, want %s", d, filepath.Dir(interp))
	}
}

func TestHostRuntimeErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	writeFile(t, text, "hello\n")
	relInterp := filepath.Join(dir, "rel")
	writeFile(t, relInterp, "#!node\n")
	for _, tc := range []struct {
		exe  string
		want string
	}{
		{"node", "not an absolute path"},
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "not a regular file"},
		{text, "not an ELF executable or a #! script"},
		{relInterp, "interpreter \"node\" is not an absolute path"},
	} {
		_, err := HostRuntime(tc.exe)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sandbox: host runtime for ") {
			t.Errorf("HostRuntime(%s) error = %v, want one containing %q", tc.exe, err, tc.want)
		}
	}
	if _, err := HostRuntime(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing program: error %v is not fs.ErrNotExist", err)
	}
}

func TestEnvProgram(t *testing.T) {
	for arg, want := range map[string]string{
		"":                         "",
		"node":                     "node",
		"node --flag":              "node --flag", // env would look for that very name
		"FOO=1":                    "",
		"-S node --flag":           "node",
		"-Snode":                   "node",
		"-S -i FOO=1 node":         "node",
		"-S -u FOO -C /tmp python": "python",
		"--split-string=deno run":  "deno",
		"-S":                       "",
	} {
		if got := envProgram(arg); got != want {
			t.Errorf("envProgram(%q) = %q, want %q", arg, got, want)
		}
	}
}

func TestTooBroad(t *testing.T) {
	for d, want := range map[string]bool{
		"/":                    true,
		"/home":                true,
		"/opt":                 true,
		"/home/alice":          true,
		"/root":                true,
		"/etc/ssh":             true,
		"/var/lib":             true,
		"/run/secrets":         true,
		"/run/user/1000":       true,
		"/home/alice/.nvm/bin": false,
		"/opt/tool/bin":        false,
		"/tmp/build":           false,
		"/root/.local/bin":     false,
	} {
		if got := tooBroad(d); got != want {
			t.Errorf("tooBroad(%s) = %v, want %v", d, got, want)
		}
	}
}

func TestLandings(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// dir/a/f is a file; dir/l -> a (relative); dir/abs -> dir/l/f (absolute).
	if err := os.Mkdir(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a", "f"), "")
	if err := os.Symlink("a", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "l", "f"), filepath.Join(dir, "abs")); err != nil {
		t.Fatal(err)
	}
	got := landings(filepath.Join(dir, "abs"))
	want := []string{filepath.Join(dir, "abs"), filepath.Join(dir, "l", "f"), filepath.Join(dir, "a", "f")}
	if !slices.Equal(got, want) {
		t.Errorf("landings = %v, want %v", got, want)
	}
	if got := landings(filepath.Join(dir, "missing", "x")); len(got) != 1 {
		t.Errorf("landings of a missing path = %v, want just the path", got)
	}
}

func TestDynStringsMatchesDebugElf(t *testing.T) {
	for _, p := range []string{"/usr/bin/node", "/bin/sh", "/usr/lib/x86_64-linux-gnu/libc.so.6"} {
		f, err := elf.Open(p)
		if err != nil {
			t.Logf("skip %s: %v", p, err)
			continue
		}
		needed, runpath, rpath, err := dynStrings(f)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		}
		for tag, got := range map[elf.DynTag][]string{elf.DT_NEEDED: needed, elf.DT_RUNPATH: runpath, elf.DT_RPATH: rpath} {
			want, _ := f.DynString(tag)
			if !slices.Equal(got, want) {
				t.Errorf("%s %v = %q, debug/elf says %q", p, tag, got, want)
			}
		}
		f.Close()
	}
}

// TestVisibleStopsAtHostMounts: binds are not recursive, so a host mount
// point below a bind hides what is under it.
func TestVisibleStopsAtHostMounts(t *testing.T) {
	if _, err := os.Stat("/usr/local/bin"); err != nil {
		t.Skip("needs /usr/local/bin")
	}
	r := &hostRuntime{mountPoints: []string{"/", "/usr/local"}}
	r.add("/usr")
	if !r.visible("/usr/bin/env") {
		t.Error("/usr/bin/env not visible through the /usr bind")
	}
	if r.visible("/usr/local/bin/x") {
		t.Error("/usr/local/bin/x visible through /usr although /usr/local is a mount point")
	}
	r.need("/usr/local/bin/x")
	if d := destinations(r.mounts); !slices.Contains(d, "/usr/local/bin") {
		t.Errorf("need(/usr/local/bin/x) binds %v, want /usr/local/bin", d)
	}
}

func TestRuntimeFiles(t *testing.T) {
	exe, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh here")
	}
	files, err := RuntimeFiles(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(files) || !slices.Contains(files, exe) {
		t.Errorf("files %v: not sorted or without %s", files, exe)
	}
	var libc bool
	for _, f := range files {
		if strings.Contains(filepath.Base(f), "libc.so") || strings.Contains(filepath.Base(f), "ld-") {
			libc = true
		}
		if strings.HasPrefix(f, "/etc") {
			t.Errorf("%s: no /etc file is a program's runtime", f)
		}
	}
	if !libc {
		t.Errorf("files %v: no libc or loader", files)
	}
	if _, err := RuntimeFiles("sh"); err == nil {
		t.Error("a relative path was accepted")
	}
}
