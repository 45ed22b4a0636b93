package packages

import (
	"fmt"
	"regexp"
	"strings"
)

// Ecosystems a Spec can name.
const (
	NPM  = "npm"
	PyPI = "pypi"
)

// Spec is a package a command line asks for.
type Spec struct {
	Ecosystem string // NPM or PyPI
	Name      string // as written; PyPI names are compared normalised
	// Version as requested: "" means the latest, otherwise an exact version,
	// a tag ("latest", "next") or a range ("^1.2" for npm, ">=1.2" for PyPI).
	// A PyPI "==1.2" is stored as "1.2".
	Version string
	Bin     string   // executable to run; "" = the package's default
	Args    []string // arguments for the server
}

// String returns the spec the way a user would write it.
func (s *Spec) String() string {
	switch {
	case s.Version == "":
		return s.Name
	case s.Ecosystem == PyPI && strings.ContainsAny(s.Version[:1], "=<>!~"):
		return s.Name + s.Version
	case s.Ecosystem == PyPI:
		return s.Name + "==" + s.Version
	}
	return s.Name + "@" + s.Version
}

// Parse recognises a command that runs a registry package: `npx`, `npm exec`
// (and `npm x`), `uvx`, `uv tool run` and `pipx run`. It returns false for any
// other command, which the caller runs as a host command. An option it does
// not know is an error that names it, so that a command is never half
// understood.
func Parse(argv []string) (*Spec, bool, error) {
	if len(argv) == 0 {
		return nil, false, nil
	}
	// Client configs written on Windows name C:\...\npx.cmd.
	prog := argv[0][strings.LastIndexAny(argv[0], `/\`)+1:]
	for _, ext := range []string{".cmd", ".exe"} {
		prog = strings.TrimSuffix(prog, ext)
	}
	var (
		s   *Spec
		err error
	)
	switch {
	case prog == "npx":
		s, err = parseNPX("npx", argv[1:], false)
	case prog == "npm" && len(argv) > 1 && (argv[1] == "exec" || argv[1] == "x"):
		s, err = parseNPX("npm "+argv[1], argv[2:], true)
	case prog == "uvx":
		s, err = parsePython("uvx", argv[1:])
	case prog == "uv" && len(argv) > 2 && argv[1] == "tool" && argv[2] == "run":
		s, err = parsePython("uv tool run", argv[3:])
	case prog == "pipx" && len(argv) > 1 && argv[1] == "run":
		s, err = parsePython("pipx run", argv[2:])
	default:
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	return s, true, nil
}

// optValue returns the value of an option that takes one, given as
// "--opt=value" or "--opt value", and how many arguments it used.
func optValue(cmd string, args []string, i int) (string, int, error) {
	if _, v, ok := strings.Cut(args[i], "="); ok {
		return v, 1, nil
	}
	if i+1 >= len(args) || args[i+1] == "" {
		return "", 0, fmt.Errorf("%s: option %s needs a value", cmd, args[i])
	}
	return args[i+1], 2, nil
}

func optName(a string) string {
	name, _, _ := strings.Cut(a, "=")
	return name
}

// parseNPX reads `npx [opts] PKG|BIN ARGS...`. npx stops reading options at
// the first positional argument; `npm exec` keeps reading them unless `--`
// came first, so there an option after the package would go to npm, not to
// the server, and is refused.
func parseNPX(cmd string, args []string, npmExec bool) (*Spec, error) {
	var pkgs []string
	dashdash := false
	i := 0
options:
	for i < len(args) {
		a := args[i]
		switch optName(a) {
		case "--":
			dashdash = true
			i++
			break options
		case "-y", "--yes", "--no", "--no-install", "-q", "--quiet", "--silent":
			// Prompting and npx's own output do not apply: mcpbox installs
			// into its own cache, in a sandbox, before anything runs.
			if strings.Contains(a, "=") {
				return nil, fmt.Errorf("%s: option %s takes no value", cmd, a)
			}
			i++
		case "-p", "--package":
			v, n, err := optValue(cmd, args, i)
			if err != nil {
				return nil, err
			}
			pkgs = append(pkgs, v)
			i += n
		case "-c", "--call", "--shell", "--shell-auto-fallback":
			return nil, fmt.Errorf("%s: option %s runs a shell command line, which mcpbox does not run; give the package and its arguments directly", cmd, optName(a))
		default:
			if strings.HasPrefix(a, "-") && a != "-" {
				return nil, fmt.Errorf("%s: unknown option %s: mcpbox understands -y/--yes, --no-install, -q and -p/--package before the package name", cmd, optName(a))
			}
			break options
		}
	}
	if i >= len(args) {
		return nil, fmt.Errorf("%s: no package to run", cmd)
	}
	if len(pkgs) > 1 {
		return nil, fmt.Errorf("%s: %d --package options: mcpbox runs one package per server", cmd, len(pkgs))
	}
	first, rest := args[i], args[i+1:]
	if npmExec && !dashdash {
		for j, a := range rest {
			if a == "--" { // the rest is the server's
				rest = append(rest[:j:j], rest[j+1:]...)
				break
			}
			if strings.HasPrefix(a, "-") {
				return nil, fmt.Errorf("%s: option %s after the package goes to npm, not to the server; write `%s -- PKG ARGS...` to pass it to the server", cmd, optName(a), cmd)
			}
		}
	}
	s := &Spec{Ecosystem: NPM, Args: append([]string(nil), rest...)}
	pkg := first
	if len(pkgs) == 1 {
		pkg = pkgs[0]
		if !validBin(first) {
			return nil, fmt.Errorf("%s: %q is not a command name: with --package, the first argument names an executable of the package", cmd, first)
		}
		s.Bin = first
	}
	name, version, err := splitNPM(pkg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	s.Name, s.Version = name, version
	return s, nil
}

// npmName is the set of names npm's registry accepts: URL-safe, lower case
// for new packages (old ones may have capitals), optionally scoped.
var npmName = regexp.MustCompile(`^(@[a-zA-Z0-9~-][a-zA-Z0-9._~-]*/)?[a-zA-Z0-9~-][a-zA-Z0-9._~-]*$`)

// splitNPM splits "name@version" and "@scope/name@version".
func splitNPM(pkg string) (name, version string, err error) {
	name = pkg
	if at := strings.LastIndex(pkg, "@"); at > 0 {
		name, version = pkg[:at], pkg[at+1:]
		if version == "" {
			return "", "", fmt.Errorf("%q: empty version after @", pkg)
		}
	}
	if strings.Contains(name, ":") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "/") ||
		(strings.Contains(name, "/") && !strings.HasPrefix(name, "@")) {
		return "", "", fmt.Errorf("%q is not a registry package: mcpbox installs packages by name (NAME[@VERSION]), not from paths, URLs, git or aliases", pkg)
	}
	if len(name) > 214 || !npmName.MatchString(name) {
		return "", "", fmt.Errorf("%q is not a valid npm package name", name)
	}
	if strings.ContainsAny(version, ":/\\") {
		return "", "", fmt.Errorf("%q is not a registry package: mcpbox installs packages by name and version (NAME@VERSION), not from paths, URLs, git or aliases", pkg)
	}
	return name, version, nil
}

var binName = regexp.MustCompile(`^[A-Za-z0-9_@][A-Za-z0-9._@+-]*$`)

func validBin(s string) bool { return len(s) <= 255 && binName.MatchString(s) }

// parsePython reads `uvx [--from REQ] PKG ARGS...` and
// `pipx run [--spec REQ] APP ARGS...`: both stop reading options at the
// first positional argument.
func parsePython(cmd string, args []string) (*Spec, error) {
	fromOpt := "--from"
	if cmd == "pipx run" {
		fromOpt = "--spec"
	}
	from := ""
	i := 0
options:
	for i < len(args) {
		a := args[i]
		switch optName(a) {
		case "--":
			i++
			break options
		case fromOpt:
			v, n, err := optValue(cmd, args, i)
			if err != nil {
				return nil, err
			}
			from = v
			i += n
		case "-q", "--quiet", "--no-cache", "--isolated", "--no-progress":
			if strings.Contains(a, "=") {
				return nil, fmt.Errorf("%s: option %s takes no value", cmd, a)
			}
			i++
		case "--with", "-w", "--with-editable", "--with-requirements", "--pip-args":
			return nil, fmt.Errorf("%s: option %s adds packages beside the server's, which mcpbox does not install; publish them as dependencies of one package", cmd, optName(a))
		case "--python", "-p":
			return nil, fmt.Errorf("%s: option %s picks an interpreter, which mcpbox does not do: it uses the python3 on PATH", cmd, optName(a))
		case "--index", "--index-url", "--default-index", "--extra-index-url", "--find-links", "-f":
			return nil, fmt.Errorf("%s: option %s sets the package index; mcpbox takes the index from PIP_INDEX_URL / UV_INDEX_URL / pip's configuration, or from its own --find-links", cmd, optName(a))
		default:
			if strings.HasPrefix(a, "-") && a != "-" {
				return nil, fmt.Errorf("%s: unknown option %s: mcpbox understands %s and -q before the package name", cmd, optName(a), fromOpt)
			}
			break options
		}
	}
	if i >= len(args) {
		return nil, fmt.Errorf("%s: no package to run", cmd)
	}
	first := args[i]
	s := &Spec{Ecosystem: PyPI, Args: append([]string(nil), args[i+1:]...)}
	req := first
	if from != "" {
		req = from
	}
	name, version, err := splitPython(req, cmd == "uvx" || cmd == "uv tool run")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	s.Name, s.Version = name, version
	if from != "" {
		if !validBin(first) {
			return nil, fmt.Errorf("%s: %q is not a command name: with %s, the first argument names an entry point of the package", cmd, first, fromOpt)
		}
		if normalizePyPI(first) != normalizePyPI(name) {
			s.Bin = first
		}
	}
	return s, nil
}

var pypiName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// splitPython splits a requirement "name", "name==1.2", "name>=1.2,<2" or,
// for uv, "name@1.2" / "name@latest".
func splitPython(req string, atVersion bool) (name, version string, err error) {
	r := strings.Join(strings.Fields(req), "")
	if strings.ContainsAny(r, "[]") {
		return "", "", fmt.Errorf("%q: extras are not supported; mcpbox installs the package alone", req)
	}
	if strings.ContainsAny(r, ";:/") {
		return "", "", fmt.Errorf("%q is not a registry package: mcpbox installs packages by name (NAME[==VERSION]), not from paths, URLs or git", req)
	}
	name = r
	if at := strings.Index(r, "@"); at >= 0 {
		if !atVersion {
			return "", "", fmt.Errorf("%q: write NAME==VERSION", req)
		}
		name, version = r[:at], r[at+1:]
		if version == "" {
			return "", "", fmt.Errorf("%q: empty version after @", req)
		}
	} else if op := strings.IndexAny(r, "=<>!~"); op >= 0 {
		name, version = r[:op], r[op:]
		if v, ok := strings.CutPrefix(version, "=="); ok && !strings.ContainsAny(v, "=<>!~,*") {
			version = v
		}
		if version == "" || version == "==" {
			return "", "", fmt.Errorf("%q: empty version", req)
		}
	}
	if !pypiName.MatchString(name) {
		return "", "", fmt.Errorf("%q is not a valid Python package name", name)
	}
	if !strings.ContainsAny(version[:min(1, len(version))], "=<>!~") && strings.ContainsAny(version, "=<>!~,") {
		return "", "", fmt.Errorf("%q is not a version", version)
	}
	return name, version, nil
}

var pypiSep = regexp.MustCompile(`[-_.]+`)

// normalizePyPI is the PEP 503 normal form of a Python package name.
func normalizePyPI(name string) string {
	return pypiSep.ReplaceAllString(strings.ToLower(name), "-")
}
