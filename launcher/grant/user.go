package grant

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/userns"
	"github.com/mcpbox/mcpbox/sandbox"
)

// User is the places mcpbox treats as the user's own when it grants host
// paths to a server: the homes, which are never granted whole (nor
// anything above them), and the credentials in them. The zero User has no
// home: every path is outside it.
type User struct {
	// home is what "~" means: $HOME, else the passwd entry's.
	home string
	// homes are every home of the user: $HOME, the passwd entry of the
	// user mcpbox runs as and, under sudo, the invoking user's, each also
	// with its symlinks resolved. A home of / (some service accounts have
	// one) is left out: it would make every path the user's.
	homes []string
	// credentials are the credential files and directories in each home.
	credentials []string
	// own are mcpbox's config, state and cache directories.
	own []string
}

// CurrentUser finds the homes of the user running mcpbox. The passwd
// entries matter when $HOME is not the user's (a service started with
// another HOME, sudo keeping the caller's, a home outside /home). own are
// mcpbox's config, state and cache directories ("" for none): never
// granted without the user naming them.
func CurrentUser(own ...string) User {
	u := User{home: os.Getenv("HOME")}
	var homes []string
	if u.home != "" {
		homes = append(homes, u.home)
	}
	if pw, err := user.LookupId(strconv.Itoa(userns.HostUID())); err == nil {
		homes = append(homes, pw.HomeDir)
	}
	// Under sudo the invoking user's home is as much the user's as
	// root's: its credentials are protected, and path arguments may
	// point into it.
	if name := os.Getenv("SUDO_USER"); name != "" {
		if pw, err := user.Lookup(name); err == nil {
			homes = append(homes, pw.HomeDir)
		}
	}
	for _, h := range homes {
		u.addHome(h)
	}
	if u.home == "" && len(u.homes) > 0 {
		u.home = u.homes[0]
	}
	for _, d := range own {
		if d != "" {
			u.own = append(u.own, filepath.Clean(d))
		}
	}
	return u
}

// NewUser returns the user whose only home is home, for a caller that
// knows it (CurrentUser looks the homes up).
func NewUser(home string) User {
	var u User
	u.addHome(home)
	u.home = home
	return u
}

// Home is what "~" means for the user: $HOME, else the passwd entry's.
func (u User) Home() string { return u.home }

// addHome adds h, and h with its symlinks resolved, to the homes, with
// the credentials in it.
func (u *User) addHome(h string) {
	if !filepath.IsAbs(h) {
		return
	}
	forms := []string{filepath.Clean(h)}
	if real, err := filepath.EvalSymlinks(h); err == nil {
		forms = append(forms, real)
	}
	for _, f := range forms {
		if f == "/" || slices.Contains(u.homes, f) {
			continue
		}
		u.homes = append(u.homes, f)
		u.credentials = append(u.credentials, credentialPaths(f)...)
	}
}

// credentialPaths are the files and directories under home that hold
// credentials and keys.
func credentialPaths(home string) []string {
	var out []string
	for _, rel := range []string{
		".ssh", ".aws", ".gnupg", ".config/gcloud", ".azure", ".kube", ".docker",
		".netrc", ".npmrc", ".pypirc", ".git-credentials", ".password-store",
		".config/gh", ".config/hub", ".vault-token", ".pgpass", ".my.cnf",
		".cargo/credentials", ".cargo/credentials.toml", ".gem/credentials",
		".terraform.d", ".config/rclone", ".local/share/keyrings",
	} {
		out = append(out, filepath.Join(home, rel))
	}
	return out
}

// SandboxPaths is what sandbox.HostRuntime must keep out of a program's
// own binds. mcpbox's own directories are not in it: the package cache
// holds the runtimes of npx and uvx packages.
func (u User) SandboxPaths() sandbox.UserPaths {
	return sandbox.UserPaths{Homes: u.homes, Secrets: u.credentials}
}

// sensitive are the paths never granted without the user naming them:
// the credentials and mcpbox's own directories.
func (u User) sensitive() []string {
	return append(append([]string(nil), u.credentials...), u.own...)
}

// refusal says why the host path p (symlink-free) may not be granted
// unless the user names it explicitly, or "" if it may.
func (u User) refusal(p string) string {
	inside := false
	for _, h := range u.homes {
		if p == h {
			return "it is your whole home directory"
		}
		if within(p, h) {
			inside = true
		}
	}
	if !inside {
		return "it is outside your home directory"
	}
	return u.SecretFile(p)
}

// SecretFile says why p (symlink-free) is never granted as a server's own
// file (a script, a module it preloads, its package tree), or "".
func (u User) SecretFile(p string) string {
	if why := overlaps(p, u.sensitive()); why != "" {
		return why
	}
	if isDotEnv(p) {
		return "it is a .env file"
	}
	return ""
}

// overlaps says why p may not be shown when it is inside one of the
// credential paths, or holds one that exists; "" when neither.
func overlaps(p string, credentials []string) string {
	for _, s := range credentials {
		if within(p, s) {
			return s + " holds credentials"
		}
		if within(s, p) {
			if _, err := os.Lstat(s); err == nil {
				return "it contains " + s + ", which holds credentials"
			}
		}
	}
	return ""
}

func isDotEnv(p string) bool {
	base := filepath.Base(p)
	return base == ".env" || strings.HasPrefix(base, ".env.") || strings.HasSuffix(base, ".env")
}

// homeLevel reports whether d is a home or one of the catch-all
// directories in it (~/Downloads, ~/Desktop, ~/.local/bin, ...): such a
// directory holds unrelated files, and a package.json or pyproject.toml
// in it does not make it a package.
func (u User) homeLevel(d string) bool {
	for _, h := range u.homes {
		if d == h {
			return true
		}
		rel, err := filepath.Rel(h, d)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		for _, l := range catchAllDirs(h) {
			if d == l {
				return true
			}
		}
	}
	return false
}

// catchAllDirs are the directories of home that hold whatever lands
// there: the XDG user directories (from ~/.config/user-dirs.dirs when it
// names them, so a localized ~/Téléchargements counts too) and the usual
// places for tools and scratch files.
func catchAllDirs(home string) []string {
	var out []string
	for _, rel := range []string{
		"Desktop", "Documents", "Downloads", "Music", "Pictures", "Public", "Templates", "Videos",
		"bin", "tmp", ".local", ".local/bin", ".local/lib", ".local/share", ".config", ".cache",
		"go", "go/bin", ".cargo", ".cargo/bin", ".npm-global", ".npm-global/bin",
	} {
		out = append(out, filepath.Join(home, rel))
	}
	f, err := os.Open(filepath.Join(home, ".config", "user-dirs.dirs"))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		_, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v = strings.Trim(v, `"`)
		switch {
		case strings.HasPrefix(v, "$HOME/"):
			v = filepath.Join(home, v[len("$HOME/"):])
		case !filepath.IsAbs(v):
			continue
		}
		out = append(out, filepath.Clean(v))
	}
	return out
}

// ResolvePath makes p (absolute, "~/…" or relative to the working
// directory) absolute and returns it clean (lexical: the path the sandbox
// shows it at) and with every symlink resolved as the kernel resolves it
// (real: what is there on the host, the path to check and to bind). A
// ".." right after a symlink is refused: on the host it leads to the link
// target's parent, in the clean path to the link's own parent, and
// granting either would surprise someone. A missing path gives an error
// that is fs.ErrNotExist; lexical is set whenever p could be made
// absolute.
func ResolvePath(p string) (lexical, real string, err error) {
	raw := p
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "", fmt.Errorf("expand ~: %w", err)
		}
		raw = home + "/" + p[1:]
	}
	if !filepath.IsAbs(raw) {
		wd, err := os.Getwd()
		if err != nil {
			return "", "", err
		}
		raw = wd + "/" + raw
	}
	lexical = filepath.Clean(raw)
	// EvalSymlinks applies ".." to what the path resolved to so far, as
	// the kernel does; Clean applies it to the text.
	if real, err = filepath.EvalSymlinks(raw); err != nil {
		return lexical, "", err
	}
	if lexReal, err := filepath.EvalSymlinks(lexical); err != nil || lexReal != real {
		return lexical, "", fmt.Errorf(`%s: ".." follows a symlink: on the host it is %s; write the path without ".."`, p, real)
	}
	return lexical, real, nil
}

// ExplicitGrant resolves a path the user (or a profile) named to grant:
// the bind's source is the path with its symlinks resolved. A path named
// directly is granted as it is, whatever it is; but when a symlink takes
// it somewhere a path argument could not go (outside the home, to
// credentials, to a whole home), it is refused: whoever could write that
// symlink (a server given the directory before, say) must not choose what
// is granted. The message says how to name the target itself.
func (u User) ExplicitGrant(path, dest string, readOnly bool) (sandbox.Mount, error) {
	lexical, real, err := ResolvePath(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return sandbox.Mount{}, fmt.Errorf("%s does not exist", path)
		}
		return sandbox.Mount{}, err
	}
	if real != lexical {
		if why := u.refusal(real); why != "" {
			mode := "rw"
			if readOnly {
				mode = "ro"
			}
			return sandbox.Mount{}, fmt.Errorf("%s leads through a symlink to %s, and %s; if the server really needs it, name it directly: --mount %s:%s:%s", path, real, why, real, dest, mode)
		}
	}
	return sandbox.Mount{Source: real, Destination: dest, ReadOnly: readOnly}, nil
}

// runtimeDirRefusal says why the installation directory of a package's
// runtime (node's or python's prefix outside the system directories) may
// not be bound whole, or "": it is or holds a home, it is a home-level
// directory that gathers unrelated files (~/bin, ~/.local), or it holds
// credentials. A node installed as ~/bin/node has the prefix ~.
func (u User) runtimeDirRefusal(d string) string {
	if d == "/" {
		return "it is the root directory"
	}
	for _, h := range u.homes {
		if within(h, d) {
			return "it holds your home directory " + h
		}
	}
	if u.homeLevel(d) {
		return "it is a directory of your home that gathers unrelated files"
	}
	// mcpbox's own cache is not refused here: the packages' trees live in it.
	return overlaps(d, u.credentials)
}

// RuntimeMounts binds the runtime directories dirs read-only, each from
// where its symlinks lead, except those runtimeDirRefusal refuses: those
// are left out with a warning (the runtime's own program is still bound
// file by file, as any command's is), since binding them would show the
// server files that have nothing to do with it.
func (u User) RuntimeMounts(dirs []string, log *slog.Logger) ([]sandbox.Mount, error) {
	var out []sandbox.Mount
	for _, p := range dirs {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("launcher: runtime directory %s: %w (is it installed?)", p, err)
		}
		if why := u.runtimeDirRefusal(real); why != "" {
			if log != nil {
				log.Warn("runtime directory not bound into the sandbox: "+why+"; only the runtime's program is; if the server fails to start, install the runtime in a directory of its own (nvm, a system package) or grant it with --mount",
					"dir", real)
			}
			continue
		}
		out = append(out, sandbox.Mount{Source: real, Destination: p, ReadOnly: true})
	}
	return out, nil
}
