package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/mcpbox/mcpbox/sandbox"
)

// command is a server command line resolved on the host.
type command struct {
	// args is the argv the sandbox runs: args[0] is absolute, a script
	// argument of an interpreter is made absolute too.
	args []string
	// exe is args[0] with symlinks resolved.
	exe string
	// mounts are the read-only binds the command's own files need beyond
	// the host runtime: the package tree a script lives in.
	mounts []sandbox.Mount
	// name is a short, id-safe name for the server.
	name string
}

// interpreters take a script path as their first non-flag argument; that
// script's package tree is granted read-only, since the server cannot run
// without it.
var interpreterRE = regexp.MustCompile(`^(node|nodejs|bun|python[0-9.]*)$`)

// resolveCommand finds argv[0] on the host and works out what else the
// command needs to see. It fails before anything is created when the
// command does not exist.
func resolveCommand(argv []string, home string) (*command, error) {
	if len(argv) == 0 {
		return nil, &UsageError{Err: errors.New("no server command given: use `mcpbox run [flags] -- CMD [ARGS...]`")}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("server command %q not found: %w", argv[0], err)}
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, err
	}
	exe, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("server command %q: %w", argv[0], err)}
	}
	c := &command{args: append([]string{path}, argv[1:]...), exe: exe}

	script := ""
	if strings.Contains(exe, "/node_modules/") {
		script = exe // an npm bin script run directly
	} else if interpreterRE.MatchString(filepath.Base(exe)) {
		for i := 1; i < len(c.args); i++ {
			a := c.args[i]
			if strings.HasPrefix(a, "-") {
				continue
			}
			abs, err := filepath.Abs(a)
			if err != nil {
				break
			}
			if st, err := os.Stat(abs); err == nil && st.Mode().IsRegular() {
				c.args[i] = abs
				if script, err = filepath.EvalSymlinks(abs); err != nil {
					return nil, &UsageError{Err: fmt.Errorf("server script %q: %w", a, err)}
				}
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, &UsageError{Err: fmt.Errorf("server script %q: %w", a, err)}
			}
			break
		}
	}
	c.name = serverName(c.args, script)
	if script != "" {
		root := packageRoot(script, home)
		c.mounts = append(c.mounts, sandbox.Mount{Source: root, Destination: root, ReadOnly: true})
	}
	return c, nil
}

// packageRoot returns what to grant for a script: the directory holding
// the outermost node_modules the script is in (so that its dependencies
// resolve), else the nearest ancestor with a package.json or
// pyproject.toml, else the script's own directory. It never grants home,
// /, /tmp or an ancestor of home: those would grant far more than the
// package (and /tmp is the sandbox's own); the script file alone is granted
// instead.
func packageRoot(script, home string) string {
	dir := filepath.Dir(script)
	if i := strings.Index(script, "/node_modules/"); i > 0 {
		return grantable(script[:i], script, home)
	}
	for d := dir; d != "/" && d != home; d = filepath.Dir(d) {
		for _, marker := range []string{"package.json", "pyproject.toml"} {
			if _, err := os.Stat(filepath.Join(d, marker)); err == nil {
				return grantable(d, script, home)
			}
		}
	}
	return grantable(dir, script, home)
}

func grantable(root, script, home string) string {
	if root == "/" || root == "/tmp" || root == home || (home != "" && strings.HasPrefix(home+"/", root+"/")) {
		if dir := filepath.Dir(script); root != dir && dir != "/" && dir != "/tmp" && dir != home {
			return dir
		}
		return script
	}
	return root
}

var unsafeNameRE = regexp.MustCompile(`[^a-z0-9]+`)

// serverName picks a short name for container ids and logs: the npm
// package's name when the script is in node_modules, else the script's or
// executable's base name.
func serverName(args []string, script string) string {
	name := filepath.Base(args[0])
	if script != "" {
		name = strings.TrimSuffix(filepath.Base(script), filepath.Ext(script))
		if i := strings.LastIndex(script, "/node_modules/"); i >= 0 {
			rest := strings.Split(script[i+len("/node_modules/"):], "/")
			name = rest[0]
			if strings.HasPrefix(name, "@") && len(rest) > 1 {
				name = rest[1]
			}
		}
	}
	name = strings.Trim(unsafeNameRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(name) > 32 {
		name = strings.TrimRight(name[:32], "-")
	}
	if name == "" {
		name = "server"
	}
	return name
}
