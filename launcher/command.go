package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/grant"
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

// interpreters take a script path as their first non-option argument;
// that script's package tree is granted read-only, since the server cannot
// run without it (see codeArgs).
var interpreterRE = regexp.MustCompile(`^(node|nodejs|bun|python[0-9.]*)$`)

// resolveCommand finds argv[0] on the host and works out what else the
// command needs to see. It fails before anything is created when the
// command does not exist.
func resolveCommand(argv []string, u grant.User) (*command, error) {
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

	// The files the command loads as code: an npm bin script run
	// directly, or an interpreter's script and the modules it preloads.
	var code []string
	script := ""
	if strings.Contains(exe, "/node_modules/") {
		script = exe
		code = append(code, exe)
	} else if interpreterRE.MatchString(filepath.Base(exe)) {
		for _, a := range codeArgs(filepath.Base(exe), c.args) {
			v := strings.TrimPrefix(c.args[a.index], a.prefix)
			_, real, err := grant.ResolvePath(v)
			if errors.Is(err, fs.ErrNotExist) {
				continue // a module name, or a script the interpreter will report missing
			}
			if err != nil {
				return nil, &UsageError{Err: fmt.Errorf("server script %q: %w", v, err)}
			}
			if st, err := os.Stat(real); err != nil || !st.Mode().IsRegular() {
				continue
			}
			// The sandbox's working directory is not the client's, and
			// only the file's package tree is there: name it by its
			// real path.
			c.args[a.index] = a.prefix + real
			code = append(code, real)
			if a.script {
				script = real
			}
		}
	}
	c.name = serverName(c.args, script)
	for _, f := range code {
		root := u.PackageRoot(f)
		for _, p := range []string{f, root} {
			if why := u.SecretFile(p); why != "" {
				return nil, &UsageError{Err: fmt.Errorf("server file %s is not granted: %s", f, why)}
			}
		}
		m := sandbox.Mount{Source: root, Destination: root, ReadOnly: true}
		if !slices.Contains(c.mounts, m) {
			c.mounts = append(c.mounts, m)
		}
	}
	return c, nil
}

// codeArg is an argument that names a file an interpreter loads as code:
// args[index], after prefix ("--require=" for a value given in the same
// argument).
type codeArg struct {
	index  int
	prefix string
	script bool // the script itself, rather than a module it preloads
}

// Node's options whose value is a module it loads before the script, and
// those that take some other value as the next argument.
var (
	nodeModuleOpts = []string{"-r", "--require", "--import", "--loader", "--experimental-loader"}
	nodeValueOpts  = []string{"-C", "--conditions", "--input-type", "--title", "--env-file", "--env-file-if-exists",
		"--inspect-port", "--debug-port", "--watch-path", "--disable-warning", "--redirect-warnings", "--report-dir",
		"--report-directory", "--report-filename", "--report-signal", "--diagnostic-dir", "--heapsnapshot-signal",
		"--icu-data-dir", "--openssl-config", "--tls-cipher-list", "--unhandled-rejections", "--dns-result-order",
		"--experimental-default-type", "--secure-heap", "--secure-heap-min", "--max-http-header-size",
		"--cpu-prof-dir", "--cpu-prof-name", "--heap-prof-dir", "--heap-prof-name", "--test-reporter",
		"--test-reporter-destination", "--test-name-pattern", "--stack-trace-limit"}
)

// codeArgs finds the arguments in args (args[0] is the interpreter named
// interp) that name files the interpreter loads as code: the script (its
// first argument that is no option or option value) and, for node and bun,
// the modules named by --require, --import and --loader. Inline code
// (node -e/-p, python -c) and python -m run no script file; the arguments
// after the script are the script's own.
func codeArgs(interp string, args []string) []codeArg {
	python := strings.HasPrefix(interp, "python")
	var out []codeArg
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				out = append(out, codeArg{index: i + 1, script: true})
			}
			return out
		case a == "-": // the script on stdin
			return out
		case !strings.HasPrefix(a, "-"):
			if interp == "bun" && a == "run" {
				continue
			}
			return append(out, codeArg{index: i, script: true})
		case python:
			if strings.HasPrefix(a, "--") {
				if a == "--check-hash-based-pycs" {
					i++
				}
				continue
			}
			// Short options group (-uB); -c and -m end the options, -W
			// and -X take a value, attached or next.
			for j := 1; j < len(a); j++ {
				switch a[j] {
				case 'c', 'm':
					return out
				case 'W', 'X':
					if j == len(a)-1 {
						i++
					}
					j = len(a)
				}
			}
		default:
			name, _, inline := strings.Cut(a, "=")
			switch {
			case slices.Contains(nodeModuleOpts, name) && inline:
				out = append(out, codeArg{index: i, prefix: name + "="})
			case slices.Contains(nodeModuleOpts, name) && i+1 < len(args):
				i++
				out = append(out, codeArg{index: i})
			case name == "-e" || name == "--eval" || name == "-p" || name == "--print":
				return out
			case slices.Contains(nodeValueOpts, name) && !inline:
				i++
			}
		}
	}
	return out
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
