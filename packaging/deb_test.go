package packaging

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher/apparmor"
)

// `make deb` builds dist/mcpbox_VERSION_ARCH.deb holding the three binaries
// in /usr/bin, the profile and apparmor.sh under /usr/share/mcpbox, the
// maintainer scripts that install and remove the profile, and the
// dependencies mcpbox has at run time.
func TestMakeDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds mcpbox and the package (tier 3)")
	}
	testutil.RequiresCommand(t, "dpkg-deb")
	tmp := testutil.TempDir(t)
	bin, dist := filepath.Join(tmp, "bin"), filepath.Join(tmp, "dist")
	runMake(t, nil, "deb", "BIN="+bin, "DIST="+dist)

	version := command(t, filepath.Join(testutil.RepoRoot(t), "scripts", "debversion.sh"))
	arch := command(t, "dpkg", "--print-architecture")
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	want := filepath.Join(dist, "mcpbox_"+version+"_"+arch+".deb")
	if len(debs) != 1 || debs[0] != want {
		t.Fatalf("make deb wrote %v; want %s", debs, want)
	}
	deb := debs[0]

	// dpkg-deb -c: every file with its mode and owner, and nothing else.
	files := map[string]string{}
	for _, line := range strings.Split(command(t, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && !strings.HasPrefix(f[0], "d") {
			files[f[5]] = f[0] + " " + f[1]
		}
	}
	wantFiles := map[string]string{
		"./usr/bin/mcpbox":                           "-rwxr-xr-x root/root",
		"./usr/bin/mcpbox-init":                      "-rwxr-xr-x root/root",
		"./usr/bin/mcpbox-probe":                     "-rwxr-xr-x root/root",
		"./usr/share/mcpbox/apparmor/usr.bin.mcpbox": "-rw-r--r-- root/root",
		"./usr/share/mcpbox/apparmor.sh":             "-rwxr-xr-x root/root",
		"./usr/share/man/man1/mcpbox.1.gz":           "-rw-r--r-- root/root",
	}
	if len(files) != len(wantFiles) {
		t.Errorf("package holds %v; want %v", files, wantFiles)
	}
	for p, w := range wantFiles {
		if files[p] != w {
			t.Errorf("package: %s is %q, want %q", p, files[p], w)
		}
	}

	// The files are the ones built, and the profile names /usr/bin/mcpbox.
	x := filepath.Join(tmp, "x")
	command(t, "dpkg-deb", "-x", deb, x)
	for _, name := range binaries {
		requireSameFile(t, filepath.Join(x, "usr", "bin", name), filepath.Join(bin, name))
	}
	profile, err := apparmor.Profile("/usr/bin/mcpbox")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(x, "usr", "share", "mcpbox", "apparmor", "usr.bin.mcpbox")); !bytes.Equal(got, profile) {
		t.Errorf("packaged profile = %q; want Profile(/usr/bin/mcpbox)", got)
	}
	requireSameFile(t, filepath.Join(x, "usr", "share", "mcpbox", "apparmor.sh"), filepath.Join(testutil.RepoRoot(t), "packaging", "apparmor.sh"))

	// dpkg-deb -I: the control fields and the maintainer scripts.
	fields := command(t, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends", "Suggests")
	for _, w := range []string{"Package: mcpbox", "Version: " + version, "Architecture: " + arch, "runc | crun", "uidmap", "libseccomp2", "Suggests: containerd"} {
		if !strings.Contains(fields, w) {
			t.Errorf("control fields lack %q:\n%s", w, fields)
		}
	}
	if strings.Contains(fields, "Depends: containerd") || strings.Contains(fields, ", containerd") {
		t.Errorf("the package depends on containerd, which only the root backend uses:\n%s", fields)
	}
	requireGlibcDepends(t, fields, filepath.Join(bin, "mcpbox"))
	info := command(t, "dpkg-deb", "-I", deb)
	for _, script := range []string{"postinst", "prerm"} {
		if !strings.Contains(info, script) {
			t.Errorf("dpkg-deb -I shows no %s:\n%s", script, info)
		}
	}
	ctl := filepath.Join(tmp, "control")
	command(t, "dpkg-deb", "-e", deb, ctl)
	for script, call := range map[string]string{
		"postinst": "apparmor.sh install /usr/share/mcpbox/apparmor/usr.bin.mcpbox /etc/apparmor.d/usr.bin.mcpbox",
		"prerm":    "apparmor.sh remove /etc/apparmor.d/usr.bin.mcpbox",
	} {
		p := filepath.Join(ctl, script)
		requireMode(t, p, 0o755)
		b, _ := os.ReadFile(p)
		if !strings.Contains(string(b), call) || !strings.Contains(string(b), "|| true") {
			t.Errorf("%s does not run %q without failing the package:\n%s", script, call, b)
		}
		command(t, "sh", "-n", p)
	}
}

// requireGlibcDepends checks that the package's libc6 dependency is at
// least the newest glibc symbol version the built mcpbox binds to, so that
// a build on a newer host cannot ship a package that installs where it
// cannot run.
func requireGlibcDepends(t *testing.T, fields, binary string) {
	t.Helper()
	f, err := elf.Open(binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var newest [2]int
	for _, s := range syms {
		if v, ok := strings.CutPrefix(s.Version, "GLIBC_"); ok {
			if n := majorMinor(v); n[0] > newest[0] || n[0] == newest[0] && n[1] > newest[1] {
				newest = n
			}
		}
	}
	_, rest, ok := strings.Cut(fields, "libc6 (>= ")
	dep, _, _ := strings.Cut(rest, ")")
	d := majorMinor(dep)
	if !ok || d[0] < newest[0] || d[0] == newest[0] && d[1] < newest[1] {
		t.Errorf("the package depends on libc6 (>= %s) but mcpbox needs GLIBC_%d.%d: raise it in packaging/nfpm.yaml", dep, newest[0], newest[1])
	}
}

func majorMinor(v string) [2]int {
	a, b, _ := strings.Cut(v, ".")
	b, _, _ = strings.Cut(b, ".")
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return [2]int{x, y}
}
