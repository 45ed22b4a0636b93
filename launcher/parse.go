package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/grant"
	"github.com/mcpbox/mcpbox/sandbox"
)

// ParseMount parses a --mount value, SRC[:DST][:ro|rw]. DST defaults to
// SRC, the mode to ro. A leading "~/" in SRC is the user's home directory.
// SRC must exist; it is made absolute and clean, and a ".." right after a
// symlink in it is refused (see grant.ResolvePath). Its symlinks are resolved,
// and checked, when the session starts.
func ParseMount(s string) (sandbox.Mount, error) {
	parts := strings.Split(s, ":")
	ro := true
	if n := len(parts); n > 1 {
		switch parts[n-1] {
		case "ro":
			parts = parts[:n-1]
		case "rw":
			ro = false
			parts = parts[:n-1]
		}
	}
	if len(parts) > 2 || parts[0] == "" {
		return sandbox.Mount{}, fmt.Errorf("%q: want SRC[:DST][:ro|rw]", s)
	}
	src, _, err := grant.ResolvePath(parts[0])
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && src != "" {
			return sandbox.Mount{}, fmt.Errorf("%q: %s does not exist", s, src)
		}
		return sandbox.Mount{}, fmt.Errorf("%q: %w", s, err)
	}
	dst := src
	if len(parts) == 2 {
		if !filepath.IsAbs(parts[1]) {
			return sandbox.Mount{}, fmt.Errorf("%q: destination %q must be an absolute path", s, parts[1])
		}
		dst = filepath.Clean(parts[1])
	}
	return sandbox.Mount{Source: src, Destination: dst, ReadOnly: ro}, nil
}

// resolveEnv turns Env entries into the server's variables. "NAME" takes
// its value from environ and is left out when it is not set there.
func resolveEnv(entries, environ []string) ([]string, error) {
	values := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			values[k] = v
		}
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		name, value, literal := strings.Cut(e, "=")
		if !validEnvName(name) {
			return nil, &UsageError{Flag: "env", Err: fmt.Errorf("%q: want NAME or NAME=VALUE with NAME made of letters, digits and _", e)}
		}
		if !literal {
			v, ok := values[name]
			if !ok {
				continue
			}
			value = v
		}
		out = append(out, name+"="+value)
	}
	return out, nil
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
