package grant

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/mcpbox/mcpbox/sandbox"
)

// PathArgMounts turns the path arguments of a command into bind mounts at
// the same path, read-only or read-write as the profile's pathArgs says.
// A path argument is an argument (or the value of a --flag=VALUE) that is
// an absolute path, or starts with ~/, ./ or ../, and exists on the host.
// It is checked, and bound, with its symlinks resolved: it is refused, with
// an error that says how to grant it anyway, when what it leads to is
// outside the user's homes, is a whole home, is or holds credentials or
// mcpbox's own files, or is a .env file; unless an explicit mount
// (--mount or the profile's) already shows it at that path. Its errors
// are *Error.
func (u User) PathArgMounts(args []string, mode string, explicit []sandbox.Mount) ([]sandbox.Mount, error) {
	if mode == "" || mode == "none" {
		return nil, nil
	}
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
		lexical, real, err := ResolvePath(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not on the host: nothing to grant; the server will say so
		}
		if err != nil {
			return nil, &Error{Err: fmt.Errorf("path argument %s is not granted: %w", arg, err)}
		}
		if covered(lexical, real, explicit) || seen[lexical] {
			continue
		}
		if why := u.refusal(real); why != "" {
			if real != lexical {
				return nil, &Error{Err: fmt.Errorf("path argument %s is not granted: it leads through a symlink to %s, and %s; if the server really needs it, grant the target explicitly with --mount %s:%s:%s", arg, real, why, real, lexical, mode)}
			}
			return nil, &Error{Err: fmt.Errorf("path argument %s is not granted: %s; grant it explicitly with --mount %s:%s if the server really needs it", arg, why, real, mode)}
		}
		seen[lexical] = true
		out = append(out, sandbox.Mount{Source: real, Destination: lexical, ReadOnly: mode != "rw"})
	}
	return out, nil
}

func looksLikePath(p string) bool {
	return strings.HasPrefix(p, "/") || p == "~" || strings.HasPrefix(p, "~/") ||
		strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../")
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// covered reports whether a mount already shows the host path real at
// the sandbox path lexical: lexical lies in the mount's destination, and
// the same relative path from the mount's source is real, with no symlink
// on the way that could lead elsewhere inside.
func covered(lexical, real string, mounts []sandbox.Mount) bool {
	for _, m := range mounts {
		rel, err := filepath.Rel(m.Destination, lexical)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if filepath.Join(m.Source, rel) == real {
			return true
		}
	}
	return false
}
