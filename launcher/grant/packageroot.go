package grant

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// PackageRoot returns what to grant for a script: the directory holding
// the outermost node_modules the script is in (so that its dependencies
// resolve), or that node_modules directory itself when the directory
// holding it may not be granted; else the nearest directory above the
// script with a package.json or pyproject.toml; else the script alone.
// A directory that holds unrelated files is never the root: a home, a
// directory above one or a catch-all one in it (~/Downloads, ~/Desktop,
// ~/.local/bin, ...; a package.json there marks nothing), a top-level
// directory such as / or /tmp, a shared scratch directory (/var/tmp,
// /dev/shm) or one that holds credentials. The script alone is granted
// instead.
func (u User) PackageRoot(script string) string {
	if i := strings.Index(script, "/node_modules/"); i > 0 {
		if root := script[:i]; u.grantableRoot(root) {
			return root
		}
		if nm := script[:i] + "/node_modules"; u.grantableRoot(nm) {
			return nm
		}
		return script
	}
	for d := filepath.Dir(script); d != "/" && !u.homeLevel(d) && !u.aboveHome(d); d = filepath.Dir(d) {
		if hasPackageMarker(d) {
			if u.grantableRoot(d) && !holdsOtherProjects(d, script) {
				return d
			}
			break
		}
	}
	return script
}

// holdsOtherProjects reports whether dir, the nearest directory above
// script with a package marker, is a folder of projects rather than the
// script's own: another of its subdirectories is a package of its own
// (~/code/package.json left by a one-off npm install, beside
// ~/code/other-project/package.json), and dir declares no workspaces that
// would make those its members.
func holdsOtherProjects(dir, script string) bool {
	if declaresWorkspaces(dir) {
		return false
	}
	rel, err := filepath.Rel(dir, script)
	if err != nil {
		return true
	}
	own, _, _ := strings.Cut(rel, string(filepath.Separator))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != own && e.Name() != "node_modules" && hasPackageMarker(filepath.Join(dir, e.Name())) {
			return true
		}
	}
	return false
}

// declaresWorkspaces reports whether dir is the root of an npm, yarn, pnpm
// or uv workspace, whose members are packages in its subdirectories.
func declaresWorkspaces(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "pnpm-workspace.yaml")); err == nil {
		return true
	}
	if data, err := os.ReadFile(filepath.Join(dir, "package.json")); err == nil {
		var pkg struct {
			Workspaces json.RawMessage `json:"workspaces"`
		}
		if json.Unmarshal(data, &pkg) == nil && len(pkg.Workspaces) > 0 && string(pkg.Workspaces) != "null" {
			return true
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "pyproject.toml")); err == nil {
		return strings.Contains(string(data), "[tool.uv.workspace]")
	}
	return false
}

func hasPackageMarker(dir string) bool {
	for _, marker := range []string{"package.json", "pyproject.toml"} {
		if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
			return true
		}
	}
	return false
}

// aboveHome reports whether d is an ancestor of one of the homes.
func (u User) aboveHome(d string) bool {
	for _, h := range u.homes {
		if d != h && within(h, d) {
			return true
		}
	}
	return false
}

// grantableRoot reports whether the directory d may be granted whole as
// the tree of a server's package.
func (u User) grantableRoot(d string) bool {
	switch {
	case strings.Count(d, "/") < 2, // /, /tmp, /opt, /home, ...
		d == "/var/tmp", d == "/dev/shm", filepath.Dir(d) == "/run/user",
		u.homeLevel(d), u.aboveHome(d), u.SecretFile(d) != "":
		return false
	}
	return true
}
