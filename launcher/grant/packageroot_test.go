package grant

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPackageRoot(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home", "me")
	u := NewUser(home)
	mk := func(p string) string {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
		return p
	}
	mk(filepath.Join(home, "proj", "package.json"))
	mk(filepath.Join(home, "Downloads", "tool", "pyproject.toml"))
	mk(filepath.Join(root, "opt", "svc", "package.json"))
	// A folder of projects with a stray package.json: not the root of the
	// one without a marker of its own; a declared workspace is.
	mk(filepath.Join(home, "code", "package.json"))
	mk(filepath.Join(home, "code", "other-client", "package.json"))
	mk(filepath.Join(home, "code", "other-client", ".env"))
	os.MkdirAll(filepath.Join(root, "mono", "b"), 0o755)
	os.WriteFile(filepath.Join(root, "mono", "package.json"), []byte(`{"workspaces":["a","b"]}`), 0o644)
	mk(filepath.Join(root, "mono", "b", "package.json"))
	for script, want := range map[string]string{
		mk(filepath.Join(home, "code", "mcp", "tool", "s.js")):                                  filepath.Join(home, "code", "mcp", "tool", "s.js"),
		mk(filepath.Join(root, "mono", "a", "s.js")):                                            filepath.Join(root, "mono"),
		mk(filepath.Join(home, "proj", "src", "server.js")):                                     filepath.Join(home, "proj"),
		mk(filepath.Join(home, "Downloads", "tool", "server.py")):                               filepath.Join(home, "Downloads", "tool"),
		mk(filepath.Join(root, "opt", "svc", "dist", "index.js")):                               filepath.Join(root, "opt", "svc"),
		mk(filepath.Join(root, "opt", "app", "node_modules", "a", "node_modules", "b", "i.js")): filepath.Join(root, "opt", "app"),
		// The directory holding node_modules is home: the node_modules
		// directory, never home itself.
		mk(filepath.Join(home, "node_modules", "x", "index.js")): filepath.Join(home, "node_modules"),
		// No package marker: the script alone, not the directory
		// around it, which may hold anything.
		mk(filepath.Join(home, "loose", "server.py")): filepath.Join(home, "loose", "server.py"),
		mk(filepath.Join(root, "opt", "loose.js")):    filepath.Join(root, "opt", "loose.js"),
	} {
		if got := u.PackageRoot(script); got != want {
			t.Errorf("PackageRoot(%s) = %s, want %s", script, got, want)
		}
	}
	// A package.json in home itself, or in a catch-all directory of it,
	// must not grant all of it; nor does one in a directory above home.
	mk(filepath.Join(home, "package.json"))
	mk(filepath.Join(home, "Downloads", "package.json"))
	mk(filepath.Join(home, "Desktop", "package.json"))
	mk(filepath.Join(filepath.Dir(home), "package.json"))
	for _, script := range []string{
		mk(filepath.Join(home, "s.js")),
		mk(filepath.Join(home, "sub", "s.js")),
		mk(filepath.Join(home, "Downloads", "s.js")),
		mk(filepath.Join(home, "Downloads", "unpacked", "s.js")),
		mk(filepath.Join(home, "Desktop", "s.js")),
		mk(filepath.Join(home, ".local", "bin", "s.py")),
		mk(filepath.Join(filepath.Dir(home), "s.js")),
		"/tmp/loose-script.js", // nor /tmp, the sandbox's own and everyone's
	} {
		if got := u.PackageRoot(script); got != script {
			t.Errorf("PackageRoot(%s) = %s, want the script alone", script, got)
		}
	}
	// A localized downloads directory, named in user-dirs.dirs.
	mk(filepath.Join(home, "Téléchargements", "package.json"))
	os.MkdirAll(filepath.Join(home, ".config"), 0o755)
	os.WriteFile(filepath.Join(home, ".config", "user-dirs.dirs"), []byte("# written by xdg-user-dirs-update\nXDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n"), 0o644)
	if s := mk(filepath.Join(home, "Téléchargements", "s.js")); u.PackageRoot(s) != s {
		t.Errorf("PackageRoot(%s) = %s, want the script alone", s, u.PackageRoot(s))
	}
	// A home outside /home, and the directory holding it.
	svc := NewUser(filepath.Join(root, "srv", "svc"))
	mk(filepath.Join(root, "srv", "package.json"))
	if s := mk(filepath.Join(root, "srv", "x", "s.js")); svc.PackageRoot(s) != s {
		t.Errorf("PackageRoot(%s) with home %s = %s, want the script alone", s, svc.home, svc.PackageRoot(s))
	}
}
