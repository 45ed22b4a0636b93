package packages

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// pythonInfo is what the python3 on PATH says about itself.
type pythonInfo struct {
	Executable string `json:"executable"`  // sys.executable: the real interpreter, not a pyenv shim
	Prefix     string `json:"prefix"`      // sys.prefix (a venv's directory in a venv)
	BasePrefix string `json:"base_prefix"` // sys.base_prefix: the installation
	Pip        bool   `json:"pip"`
}

const pythonQuery = `import sys, json, importlib.util; print(json.dumps({"executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix, "pip": importlib.util.find_spec("pip") is not None}))`

// findPython asks the python3 on PATH for its real path: PATH often holds a
// shim (pyenv, asdf) that would not work inside a sandbox.
func findPython() (*pythonInfo, error) {
	py, err := lookAbs("python3")
	if err != nil {
		return nil, fmt.Errorf("python3 is not installed: mcpbox installs and runs Python packages with the host's python3 (%w)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	out, err := query(ctx, py, "-I", "-c", pythonQuery)
	if err != nil {
		return nil, fmt.Errorf("ask %s for its path: %w", py, err)
	}
	var info pythonInfo
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &info); err != nil || !filepath.IsAbs(info.Executable) {
		return nil, fmt.Errorf("ask %s for its path: unexpected answer %q", py, out)
	}
	if !info.Pip {
		return nil, fmt.Errorf("%s has no pip, which mcpbox installs Python packages with: install pip for it (Debian: apt-get install python3-pip)", info.Executable)
	}
	return &info, nil
}

// systemDir reports whether dir is one of the system directories a host
// root filesystem already binds.
func systemDir(dir string) bool {
	for _, sys := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib64"} {
		if dir == sys || strings.HasPrefix(dir, sys+"/") {
			return true
		}
	}
	return false
}

// requirement is the pip requirement for name at version as Spec holds it.
func requirement(name, version string) string {
	switch {
	case version == "" || version == "latest":
		return name
	case strings.ContainsAny(version[:1], "=<>!~"):
		return name + version
	}
	return name + "==" + version
}

// pythonPlan fills in the pip install command: wheels only (pip cannot
// skip a source build's scripts), into WorkDir/site, with an install report
// that records every wheel's hash.
func pythonPlan(p *Plan) {
	py := p.python
	p.Argv = []string{
		py.Executable, "-I", "-m", "pip", "install",
		"--isolated", "--no-input", "--disable-pip-version-check", "--no-cache-dir",
		"--progress-bar", "off", "--root-user-action=ignore",
		"--no-compile", "--only-binary=:all:",
		"--target", filepath.Join(p.WorkDir, "site"),
		"--report", filepath.Join(p.WorkDir, "pip-report.json"),
	}
	if p.opts.FindLinks != "" {
		p.Argv = append(p.Argv, "--no-index", "--find-links", p.opts.FindLinks)
		p.ReadOnly = append(p.ReadOnly, p.opts.FindLinks)
	} else {
		p.Argv = append(p.Argv, "--index-url", p.opts.Registry.String())
		p.Allow = []string{AllowEntry(p.opts.Registry)}
		if ca := p.opts.CA.File; ca != "" {
			p.Argv = append(p.Argv, "--cert", ca)
			p.ReadOnly = appendUnique(p.ReadOnly, ca)
		}
	}
	p.Argv = append(p.Argv, requirement(p.spec.Name, p.install))
	// python runs with -I, which ignores PYTHON* variables: PATH is all.
	p.Env = []string{pathEnv(filepath.Dir(py.Executable))}
	for _, d := range []string{py.Prefix, py.BasePrefix} {
		if !systemDir(d) {
			p.ReadOnly = appendUnique(p.ReadOnly, d)
		}
	}
}

// pipReport is the part of pip's installation report mcpbox reads.
type pipReport struct {
	Install []struct {
		Requested    bool `json:"requested"`
		DownloadInfo struct {
			URL         string `json:"url"`
			ArchiveInfo struct {
				Hash   string            `json:"hash"`
				Hashes map[string]string `json:"hashes"`
			} `json:"archive_info"`
		} `json:"download_info"`
		Metadata struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"metadata"`
	} `json:"install"`
}

// resolvePython reads the finished install in dir: the resolved version
// from pip's report, every wheel's hash, and the interpreter used.
func resolvePython(dir string, py *pythonInfo, meta *Meta) error {
	if py == nil {
		return fmt.Errorf("the plan names no python3")
	}
	b, err := os.ReadFile(filepath.Join(dir, "pip-report.json"))
	if err != nil {
		return fmt.Errorf("pip wrote no install report: %w", err)
	}
	var rep pipReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("pip-report.json: %w", err)
	}
	meta.Integrity = map[string]string{}
	found := false
	for _, it := range rep.Install {
		name, version := it.Metadata.Name, it.Metadata.Version
		if it.Requested && normalizePyPI(name) == normalizePyPI(meta.Name) {
			meta.Name, meta.Version, found = name, version, true
		}
		h := it.DownloadInfo.ArchiveInfo.Hash
		if s := it.DownloadInfo.ArchiveInfo.Hashes["sha256"]; s != "" {
			h = "sha256=" + s
		}
		if h == "" {
			return fmt.Errorf("pip-report.json has no hash for %s@%s", name, version)
		}
		meta.Integrity[normalizePyPI(name)+"@"+version] = h
	}
	if !found {
		return fmt.Errorf("pip-report.json does not list %s as installed", meta.Name)
	}
	if _, err := findDistInfo(filepath.Join(dir, "site"), meta.Name, meta.Version); err != nil {
		return err
	}
	meta.Python, meta.PythonPrefix = py.Executable, py.BasePrefix
	return nil
}

// findDistInfo returns the .dist-info directory of name@version in site.
// Its name is NAME-VERSION.dist-info with NAME's "-" written "_".
func findDistInfo(site, name, version string) (string, error) {
	ents, err := os.ReadDir(site)
	if err != nil {
		return "", fmt.Errorf("%s is not installed: %w", name, err)
	}
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".dist-info")
		if !ok || !e.IsDir() {
			continue
		}
		n, v, _ := strings.Cut(base, "-")
		if normalizePyPI(n) == normalizePyPI(name) && v == version {
			return filepath.Join(site, e.Name()), nil
		}
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".dist-info") || !e.IsDir() {
			continue
		}
		dir := filepath.Join(site, e.Name())
		f, err := os.Open(filepath.Join(dir, "METADATA"))
		if err != nil {
			continue
		}
		h, _ := textproto.NewReader(bufio.NewReader(f)).ReadMIMEHeader()
		f.Close()
		if normalizePyPI(h.Get("Name")) == normalizePyPI(name) && h.Get("Version") == version {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%s %s has no .dist-info in %s", name, version, site)
}

// consoleScripts reads the [console_scripts] section of entry_points.txt.
func consoleScripts(distInfo string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(distInfo, "entry_points.txt"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return map[string]string{}, nil
		}
		return nil, err
	}
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
		case section == "console_scripts":
			if k, v, ok := strings.Cut(line, "="); ok {
				out[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return out, sc.Err()
}

var entryPoint = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*:\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*(?:\[[^\]]*\])?$`)

// pythonExec sets e.Exec to run the console script named bin ("" = the
// package's default) with the interpreter that installed the package. The
// interpreter runs isolated (-I: no PYTHON* variables, no user site; -S: not
// even the interpreter's own site-packages), with only the entry's site
// directory added, and writes no bytecode (-B) into the read-only cache.
func pythonExec(e *Entry, bin string) error {
	py := e.Meta.Python
	if _, err := os.Stat(py); err != nil {
		return fmt.Errorf("the python3 that installed %s@%s (%s) is gone: remove the entry to reinstall it with the current python3 (%w)", e.Meta.Name, e.Meta.Version, py, err)
	}
	site := filepath.Join(e.Dir, "site")
	distInfo, err := findDistInfo(site, e.Meta.Name, e.Meta.Version)
	if err != nil {
		return &CorruptError{Path: site, Reason: err.Error()}
	}
	scripts, err := consoleScripts(distInfo)
	if err != nil {
		return &CorruptError{Path: distInfo, Reason: err.Error()}
	}
	name, target, err := pickBin(e.Meta.Name, scripts, bin, "uvx --from "+e.Meta.Name+" COMMAND")
	if err != nil {
		return err
	}
	m := entryPoint.FindStringSubmatch(target)
	if m == nil {
		return fmt.Errorf("package %s: entry point %s = %q is not MODULE:FUNCTION", e.Meta.Name, name, target)
	}
	code := fmt.Sprintf("import sys, site, functools, importlib; site.addsitedir(%s); sys.argv[0] = %s; sys.exit(functools.reduce(getattr, %s, importlib.import_module(%s))())",
		pyString(site), pyString(name), pyStrings(strings.Split(m[2], ".")), pyString(m[1]))
	e.Exec = []string{py, "-I", "-S", "-B", "-c", code}
	if p := e.Meta.PythonPrefix; p != "" && !systemDir(p) {
		e.ReadOnly = appendUnique(e.ReadOnly, p)
	}
	return nil
}

// pyString quotes s as a Python string literal (a JSON string is one).
func pyString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func pyStrings(list []string) string {
	b, _ := json.Marshal(list)
	return string(b)
}
