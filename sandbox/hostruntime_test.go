package sandbox

import (
	"bytes"
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

func destinations(ms []Mount) []string {
	var d []string
	for _, m := range ms {
		d = append(d, m.Destination)
	}
	return d
}

// checkRuntime asserts what every HostRuntime result must satisfy: all
// read-only binds that may carry programs, each from where its
// destination's symlinks lead on the host, none of the forbidden
// directories, and acceptable to Spec together with the synthetic /etc
// files.
func checkRuntime(t *testing.T, ms []Mount) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range ms {
		real, err := filepath.EvalSymlinks(m.Destination)
		if !m.ReadOnly || m.NoExec || err != nil || m.Source != real {
			t.Errorf("mount %+v: want a read-only, exec-allowed bind from %s (%v)", m, real, err)
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
	ms, err := HostRuntime(node, UserPaths{})
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
	ms, err := HostRuntime(filepath.Join(links, "t"), UserPaths{})
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

// cc compiles with the host's C compiler in dir.
func cc(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(testutil.RequiresCommand(t, "cc"), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cc %v: %v\n%s", args, err, out)
	}
}

// answerSources writes lib.c (libanswer's) and main.c (a program that
// needs it) into dir.
func answerSources(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "lib.c"), "int answer(void) { return 42; }\n")
	writeFile(t, filepath.Join(dir, "main.c"), "int answer(void);\nint main(void) { return answer() != 42; }\n")
}

// TestHostRuntimeRunpath builds a program whose library lives in
// $ORIGIN/../lib, outside every standard directory: the library is bound,
// its directory is not.
func TestHostRuntimeRunpath(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"lib", "bin", "other"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	answerSources(t, dir)
	cc(t, dir, "-shared", "-fPIC", "-o", "lib/libanswer.so", "lib.c")
	writeFile(t, filepath.Join(dir, "lib", "unrelated"), "not the program's")
	cc(t, dir, "-o", "bin/prog", "main.c", "-Llib", "-lanswer", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib")

	ms, err := HostRuntime(filepath.Join(dir, "bin", "prog"), UserPaths{})
	if err != nil {
		t.Fatal(err)
	}
	checkRuntime(t, ms)
	d := destinations(ms)
	for _, want := range []string{filepath.Join(dir, "bin"), filepath.Join(dir, "lib", "libanswer.so")} {
		if !slices.Contains(d, want) {
			t.Errorf("HostRuntime = %v, want %s among them", d, want)
		}
	}
	for _, not := range []string{filepath.Join(dir, "other"), dir, filepath.Join(dir, "lib")} {
		if slices.Contains(d, not) {
			t.Errorf("HostRuntime = %v binds %s, more than the program needs", d, not)
		}
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
			ms, err := HostRuntime(script, UserPaths{})
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
	ms, err := HostRuntime(script, UserPaths{})
	if err != nil {
		t.Fatal(err)
	}
	// An interpreter is bound alone: a script could name any program on
	// the host to have its directory shown.
	if d := destinations(ms); !slices.Contains(d, interp) || slices.Contains(d, filepath.Dir(interp)) {
		t.Errorf("HostRuntime = %v, want %s alone", d, interp)
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
		_, err := HostRuntime(tc.exe, UserPaths{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sandbox: host runtime for ") {
			t.Errorf("HostRuntime(%s) error = %v, want one containing %q", tc.exe, err, tc.want)
		}
	}
	if _, err := HostRuntime(filepath.Join(dir, "missing"), UserPaths{}); !errors.Is(err, fs.ErrNotExist) {
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
	dir := testutil.TempDir(t)
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
	r.need("/usr/local/bin/x", true)
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

// checkUserPaths asserts what HostRuntime must never do with the user's
// paths: bind anything in a secret, or bind a directory that is a home,
// lies in one or holds one (/home and /root included).
func checkUserPaths(t *testing.T, ms []Mount, user UserPaths) {
	t.Helper()
	homes := withResolved(append([]string{"/home", "/root"}, user.Homes...))
	secrets := withResolved(user.Secrets)
	for _, m := range ms {
		for _, p := range []string{m.Source, m.Destination} {
			for _, s := range secrets {
				if under(p, s) {
					t.Errorf("mount %+v: binds from %s, which holds credentials", m, s)
				}
			}
			fi, err := os.Stat(m.Source)
			if err != nil || !fi.IsDir() {
				continue
			}
			for _, h := range homes {
				if under(p, h) || under(h, p) {
					t.Errorf("mount %+v: binds the directory %s whole, and it is, holds or lies in the home %s", m, p, h)
				}
			}
		}
	}
}

// TestHostRuntimeUserPaths: a program's own search paths never bind the
// user's files. Each case builds a tiny program (or script) whose RPATH,
// RUNPATH, DT_NEEDED, interpreter or location points into the user's home
// or credentials, in a home outside /home.
func TestHostRuntimeUserPaths(t *testing.T) {
	type fixture struct {
		root, home, ssh string
		user            UserPaths
	}
	setup := func(t *testing.T) fixture {
		root := testutil.TempDir(t)
		f := fixture{root: root, home: filepath.Join(root, "srv", "u")}
		f.ssh = filepath.Join(f.home, ".ssh")
		for _, d := range []string{f.ssh, filepath.Join(root, "src")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		writeFile(t, filepath.Join(f.ssh, "id_ed25519"), "PRIVATE KEY")
		answerSources(t, filepath.Join(root, "src"))
		f.user = UserPaths{Homes: []string{f.home}, Secrets: []string{f.ssh, filepath.Join(f.home, ".aws")}}
		return f
	}
	// lib builds libanswer.so (without a soname, so that a program linked
	// with its absolute path records that path) at path.
	lib := func(t *testing.T, f fixture, path string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		cc(t, filepath.Join(f.root, "src"), "-shared", "-fPIC", "-o", path, "lib.c")
	}
	prog := func(t *testing.T, f fixture, path string, ldflags ...string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		cc(t, filepath.Join(f.root, "src"), append([]string{"-o", path, "main.c"}, ldflags...)...)
	}
	// want checks that each path is a destination, bound as a file.
	want := func(t *testing.T, ms []Mount, paths ...string) {
		t.Helper()
		for _, p := range paths {
			i := slices.IndexFunc(ms, func(m Mount) bool { return m.Destination == p })
			if i < 0 {
				t.Errorf("HostRuntime = %v, want %s among them", destinations(ms), p)
				continue
			}
			if fi, err := os.Stat(ms[i].Source); err != nil || fi.IsDir() {
				t.Errorf("mount %+v: want a file bind (%v)", ms[i], err)
			}
		}
	}

	for _, tc := range []struct {
		name string
		// build makes the program and returns its path and the files that
		// must be bound alone.
		build func(t *testing.T, f fixture) (exe string, files []string)
		err   string
	}{
		{"RUNPATH $ORIGIN/../../.ssh", func(t *testing.T, f fixture) (string, []string) {
			lib(t, f, filepath.Join(f.ssh, "libanswer.so"))
			exe := filepath.Join(f.home, "app", "bin", "server")
			prog(t, f, exe, "-L"+f.ssh, "-lanswer", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../../.ssh")
			return exe, []string{exe}
		}, ""},
		{"RPATH ${ORIGIN}/../../.ssh", func(t *testing.T, f fixture) (string, []string) {
			lib(t, f, filepath.Join(f.ssh, "libanswer.so"))
			exe := filepath.Join(f.home, "app", "bin", "server")
			prog(t, f, exe, "-L"+f.ssh, "-lanswer", "-Wl,--disable-new-dtags,-rpath,${ORIGIN}/../../.ssh")
			return exe, []string{exe}
		}, ""},
		{"DT_NEEDED with a slash into .ssh", func(t *testing.T, f fixture) (string, []string) {
			l := filepath.Join(f.ssh, "libanswer.so")
			lib(t, f, l)
			exe := filepath.Join(f.root, "opt", "app", "server")
			prog(t, f, exe, l)
			return exe, nil
		}, ""},
		{"DT_NEEDED naming a file that is no library", func(t *testing.T, f fixture) (string, []string) {
			l := filepath.Join(f.root, "x", "libanswer.so")
			lib(t, f, l)
			exe := filepath.Join(f.root, "opt", "app", "server")
			prog(t, f, exe, l)
			// Point the DT_NEEDED at a text file of the same name length.
			notes := filepath.Join(f.home, "notes", "todo-list.md")
			if len(notes) != len(l) {
				notes = filepath.Join(f.home, "notes", strings.Repeat("n", len(l)-len(filepath.Join(f.home, "notes"))-1))
			}
			if err := os.MkdirAll(filepath.Dir(notes), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, notes, "private notes")
			b, err := os.ReadFile(exe)
			if err != nil || !bytes.Contains(b, []byte(l+"\x00")) {
				t.Fatalf("%s does not name %s: %v", exe, l, err)
			}
			writeFile(t, exe, string(bytes.ReplaceAll(b, []byte(l+"\x00"), []byte(notes+"\x00"))))
			return exe, nil
		}, ""},
		{"RUNPATH is an ancestor of the home", func(t *testing.T, f fixture) (string, []string) {
			srv := filepath.Dir(f.home)
			lib(t, f, filepath.Join(srv, "libanswer.so"))
			exe := filepath.Join(f.root, "opt", "app", "bin", "server")
			prog(t, f, exe, "-L"+srv, "-lanswer", "-Wl,--enable-new-dtags,-rpath,"+srv)
			return exe, []string{filepath.Join(srv, "libanswer.so")}
		}, ""},
		{"RUNPATH /", func(t *testing.T, f fixture) (string, []string) {
			l := filepath.Join(f.root, "x", "libanswer.so")
			lib(t, f, l)
			exe := filepath.Join(f.root, "opt", "app", "bin", "server")
			prog(t, f, exe, "-L"+filepath.Dir(l), "-lanswer", "-Wl,--enable-new-dtags,-rpath,/")
			return exe, nil
		}, ""},
		{"relative RUNPATH", func(t *testing.T, f fixture) (string, []string) {
			// ld.so takes it from the working directory: the host's is
			// not the sandbox's.
			lib(t, f, filepath.Join(f.home, "lib", "libanswer.so"))
			t.Chdir(f.home)
			exe := filepath.Join(f.root, "opt", "app", "bin", "server")
			prog(t, f, exe, "-L"+filepath.Join(f.home, "lib"), "-lanswer", "-Wl,--enable-new-dtags,-rpath,lib")
			return exe, nil
		}, ""},
		{"LD_LIBRARY_PATH", func(t *testing.T, f fixture) (string, []string) {
			lib(t, f, filepath.Join(f.ssh, "libanswer.so"))
			t.Setenv("LD_LIBRARY_PATH", f.ssh)
			exe := filepath.Join(f.root, "opt", "app", "bin", "server")
			prog(t, f, exe, "-L"+f.ssh, "-lanswer")
			return exe, nil
		}, ""},
		{"library symlink into the home", func(t *testing.T, f fixture) (string, []string) {
			real := filepath.Join(f.home, "build", "libanswer.so")
			lib(t, f, real)
			link := filepath.Join(f.root, "opt", "app", "lib", "libanswer.so")
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			exe := filepath.Join(f.root, "opt", "app", "bin", "server")
			prog(t, f, exe, "-L"+filepath.Dir(link), "-lanswer", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib")
			return exe, []string{link}
		}, ""},
		{"program in the home", func(t *testing.T, f fixture) (string, []string) {
			exe := filepath.Join(f.home, "go", "bin", "server")
			copyFile(t, "/bin/true", exe)
			writeFile(t, filepath.Join(f.home, "go", "bin", "other-tool"), "")
			return exe, []string{exe}
		}, ""},
		{"program in an ancestor of the home", func(t *testing.T, f fixture) (string, []string) {
			exe := filepath.Join(filepath.Dir(f.home), "server")
			copyFile(t, "/bin/true", exe)
			return exe, []string{exe}
		}, ""},
		{"#! interpreter in the home", func(t *testing.T, f fixture) (string, []string) {
			py := filepath.Join(f.root, "opt", "python", "bin", "python3")
			copyFile(t, "/bin/true", py)
			venv := filepath.Join(f.home, ".venv", "bin", "python")
			if err := os.MkdirAll(filepath.Dir(venv), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(py, venv); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(f.home, ".venv", "bin", "activate"), "")
			script := filepath.Join(f.root, "opt", "s", "server")
			if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, script, "#!"+venv+"\n")
			return script, []string{venv}
		}, ""},
		{"#!/usr/bin/env -S a program in the home", func(t *testing.T, f fixture) (string, []string) {
			tool := filepath.Join(f.home, ".local", "bin", "tool")
			copyFile(t, "/bin/true", tool)
			script := filepath.Join(f.root, "opt", "s", "server")
			if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, script, "#!/usr/bin/env -S "+tool+" --flag\n")
			return script, []string{tool}
		}, ""},
		{"program in a credentials directory", func(t *testing.T, f fixture) (string, []string) {
			exe := filepath.Join(f.ssh, "server")
			copyFile(t, "/bin/true", exe)
			return exe, nil
		}, "holds credentials"},
		{"home named through a symlink", func(t *testing.T, f fixture) (string, []string) {
			link := filepath.Join(f.root, "home-link")
			if err := os.Symlink(f.home, link); err != nil {
				t.Fatal(err)
			}
			f.user.Homes = []string{link}
			exe := filepath.Join(link, "bin", "server")
			copyFile(t, "/bin/true", exe)
			return exe, []string{exe}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			exe, files := tc.build(t, f)
			ms, err := HostRuntime(exe, f.user)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("HostRuntime(%s) = %v, %v; want an error saying %q", exe, destinations(ms), err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkRuntime(t, ms)
			checkUserPaths(t, ms, f.user)
			want(t, ms, files...)
		})
	}
}

func TestHostRuntimePrivate(t *testing.T) {
	r := &hostRuntime{homes: withResolved([]string{"/home", "/root", "/var/lib/svc", "/"})}
	for d, want := range map[string]bool{
		"/":                    true, // holds every home
		"/home":                true,
		"/home/alice/.nvm/bin": true, // any user's home, not only this one's
		"/root/.local/bin":     true,
		"/var/lib":             true,
		"/var/lib/svc/bin":     true,
		"/var/lib/other":       false,
		"/opt/tool/bin":        false,
		"/tmp/build":           false,
	} {
		if got := r.private(d); got != want {
			t.Errorf("private(%s) = %v, want %v", d, got, want)
		}
	}
}
