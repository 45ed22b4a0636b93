package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcpbox/mcpbox/sandbox"
)

// sensitiveDirs are paths under $HOME that a path argument never grants
// without an explicit --mount: credentials and keys. A path argument that
// is one of them, is inside one, or contains one is refused.
func sensitiveDirs(home string) []string {
	var out []string
	for _, rel := range []string{
		".ssh", ".aws", ".gnupg", ".config/gcloud", ".azure", ".kube", ".docker",
		".netrc", ".npmrc", ".pypirc", ".git-credentials", ".password-store",
		".config/gh", ".config/mcpbox", ".local/state/mcpbox", ".cache/mcpbox",
	} {
		out = append(out, filepath.Join(home, rel))
	}
	return out
}

// pathArgMounts turns the path arguments of a command into bind mounts at
// the same path, read-only or read-write as the profile's pathArgs says.
// A path argument is an argument (or the value of a --flag=VALUE) that is
// an absolute path, or starts with ~/, ./ or ../, and exists on the host.
// It is refused, with an error that says how to grant it anyway, when it is
// outside home, is or holds a credential directory, or is a .env file;
// unless an explicit mount (--mount or the profile's) already covers it.
func pathArgMounts(args []string, mode, home string, extraSensitive []string, explicit []sandbox.Mount) ([]sandbox.Mount, error) {
	if mode == "" || mode == "none" {
		return nil, nil
	}
	sensitive := append(sensitiveDirs(home), extraSensitive...)
	var out []sandbox.Mount
	seen := map[string]bool{}
	for _, arg := range args {
		p := arg
		if strings.HasPrefix(arg, "-") {
			_, v, ok := strings.Cut(arg, "=")
			if !ok {
				continue
			}
			p = v
		}
		if !looksLikePath(p) {
			continue
		}
		abs, err := absPath(p)
		if err != nil {
			continue
		}
		if _, err := os.Stat(abs); err != nil {
			continue // not on the host: nothing to grant; the server will say so
		}
		if covered(abs, explicit) || seen[abs] {
			continue
		}
		if why := refusedPath(abs, home, sensitive); why != "" {
			return nil, &UsageError{Err: fmt.Errorf("path argument %s is not granted: %s; grant it explicitly with --mount %s:%s if the server really needs it", arg, why, abs, mode)}
		}
		seen[abs] = true
		out = append(out, sandbox.Mount{Source: abs, Destination: abs, ReadOnly: mode != "rw"})
	}
	return out, nil
}

func looksLikePath(p string) bool {
	return strings.HasPrefix(p, "/") || p == "~" || strings.HasPrefix(p, "~/") ||
		strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../")
}

// refusedPath says why a path argument may not be granted implicitly, or
// "" if it may.
func refusedPath(p, home string, sensitive []string) string {
	if home == "" || !within(p, home) {
		return "it is outside your home directory"
	}
	if p == home {
		return "it is your whole home directory"
	}
	for _, s := range sensitive {
		if within(p, s) {
			return s + " holds credentials"
		}
		if within(s, p) {
			if _, err := os.Lstat(s); err == nil {
				return "it contains " + s + ", which holds credentials"
			}
		}
	}
	if base := filepath.Base(p); base == ".env" || strings.HasPrefix(base, ".env.") || strings.HasSuffix(base, ".env") {
		return "it is a .env file"
	}
	return ""
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// covered reports whether a mount already makes p visible at its own path.
func covered(p string, mounts []sandbox.Mount) bool {
	for _, m := range mounts {
		if m.Source == m.Destination && within(p, m.Source) {
			return true
		}
	}
	return false
}
