package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mcpbox/mcpbox/launcher/clientconfig"
	"github.com/mcpbox/mcpbox/launcher/packages"
	"github.com/mcpbox/mcpbox/profiles"
)

// ClientFile is a client config file found on this machine.
type ClientFile struct {
	Client  string `json:"client"`
	Display string `json:"display"`
	Path    string `json:"path"`
	Scope   string `json:"scope"`
	Stdio   int    `json:"stdio"`   // stdio servers
	Wrapped int    `json:"wrapped"` // of which run through mcpbox
	Error   string `json:"error,omitempty"`

	spec    *clientconfig.FileSpec
	data    []byte
	entries []clientconfig.Entry
}

// ClientEnv is the path environment of this machine and working directory.
func ClientEnv() clientconfig.Env {
	home, _ := os.UserHomeDir()
	wd, _ := os.Getwd()
	return clientconfig.Env{OS: runtime.GOOS, Home: home, AppData: os.Getenv("APPDATA"), XDGConfig: os.Getenv("XDG_CONFIG_HOME"), Project: wd}
}

// DetectClients lists the client config files that exist for env. A file
// that cannot be read or parsed is listed with its error.
func DetectClients(env clientconfig.Env) []ClientFile {
	var out []ClientFile
	for _, c := range clientconfig.Candidates(env) {
		data, err := os.ReadFile(c.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		cf := ClientFile{Client: c.Client.Name, Display: c.Client.Display, Path: c.Path, Scope: c.Spec.Scope, spec: c.Spec, data: data}
		if err == nil {
			err = cf.load()
		}
		if err != nil {
			cf.Error = err.Error()
		}
		out = append(out, cf)
	}
	return out
}

func (cf *ClientFile) load() error {
	f, err := clientconfig.Parse(cf.Path, cf.data, cf.spec)
	if err != nil {
		return err
	}
	cf.entries = f.Entries()
	cf.Stdio, cf.Wrapped = 0, 0
	for _, e := range cf.entries {
		if !e.Remote() && e.Command != "" {
			cf.Stdio++
			if e.Wrapped() {
				cf.Wrapped++
			}
		}
	}
	return nil
}

// WrapOptions select what `mcpbox wrap` and `unwrap` change.
type WrapOptions struct {
	Clients []string // client names; none means all
	Servers []string // server names; none means all
	Config  string   // one file instead of the detected ones
	All     bool     // wrap any command, not just package runners
	Unwrap  bool
	Mcpbox  string // the mcpbox executable the entries will run
	Env     clientconfig.Env
	Dirs    Dirs
}

// WrapChange is the change planned for one file.
type WrapChange struct {
	File    ClientFile
	New     []byte
	Diff    string
	Changed []WrapEntry
	Skipped []WrapEntry
}

// WrapEntry is one server wrap changes or leaves alone, and why.
type WrapEntry struct {
	Name, Section string
	Profile, Why  string
}

// PlanWrap works out the changes without writing anything. A file that
// does not parse is an error: nothing is changed anywhere.
func PlanWrap(opts WrapOptions) ([]WrapChange, error) {
	files, err := wrapTargets(opts)
	if err != nil {
		return nil, err
	}
	catalog := profiles.NewCatalog(filepath.Join(opts.Dirs.Config, "profiles"))
	var out []WrapChange
	for _, cf := range files {
		if cf.Error != "" {
			return nil, &UsageError{Err: fmt.Errorf("%s (fix the file, nothing was changed)", cf.Error)}
		}
		f, err := clientconfig.Parse(cf.Path, cf.data, cf.spec)
		if err != nil {
			return nil, &UsageError{Err: err}
		}
		ch := WrapChange{File: cf}
		for _, e := range f.Entries() {
			if len(opts.Servers) > 0 && !slices.Contains(opts.Servers, e.Name) {
				continue
			}
			we := WrapEntry{Name: e.Name, Section: e.Section}
			if opts.Unwrap {
				if !e.Wrapped() {
					continue
				}
				if err := f.Unwrap(e); err != nil {
					we.Why = err.Error()
					ch.Skipped = append(ch.Skipped, we)
					continue
				}
				ch.Changed = append(ch.Changed, we)
				continue
			}
			if ok, why := e.Wrappable(opts.All); !ok {
				we.Why = why
				ch.Skipped = append(ch.Skipped, we)
				continue
			}
			we.Profile, we.Why = profileFor(catalog, e)
			if err := f.Wrap(e, opts.Mcpbox); err != nil {
				return nil, err
			}
			ch.Changed = append(ch.Changed, we)
		}
		ch.New = f.Bytes()
		ch.Diff = clientconfig.Diff(cf.Path, cf.data, ch.New)
		out = append(out, ch)
	}
	return out, nil
}

// profileFor says which profile `mcpbox run` will pick for the entry.
func profileFor(catalog *profiles.Catalog, e clientconfig.Entry) (string, string) {
	argv := append([]string{e.Command}, e.Args...)
	eco, pkg := "", ""
	if spec, ok, err := packages.Parse(argv); err == nil && ok {
		eco, pkg = spec.Ecosystem, spec.Name
	}
	prof, why, err := catalog.Resolve("", eco, pkg)
	if err != nil {
		return "?", err.Error()
	}
	return prof.Name, why
}

// Apply writes the change: backup, atomic replace, refused if the file
// changed since it was read. It returns the backup's path.
func (c WrapChange) Apply() (string, error) {
	if c.Diff == "" {
		return "", nil
	}
	return clientconfig.Write(c.File.Path, c.File.data, c.New, time.Now())
}

func wrapTargets(opts WrapOptions) ([]ClientFile, error) {
	if opts.Config != "" {
		data, err := os.ReadFile(opts.Config)
		if err != nil {
			return nil, &UsageError{Flag: "config", Err: err}
		}
		spec := guessSpec(opts.Config, data)
		cf := ClientFile{Client: "file", Display: opts.Config, Path: opts.Config, spec: spec, data: data}
		if err := cf.load(); err != nil {
			return nil, &UsageError{Flag: "config", Err: fmt.Errorf("%v (fix the file, nothing was changed)", err)}
		}
		return []ClientFile{cf}, nil
	}
	for _, name := range opts.Clients {
		if clientconfig.Find(name) == nil {
			var names []string
			for _, c := range clientconfig.Clients {
				names = append(names, c.Name)
			}
			return nil, &UsageError{Flag: "client", Err: fmt.Errorf("unknown client %q; clients: %s", name, strings.Join(names, ", "))}
		}
	}
	var out []ClientFile
	for _, cf := range DetectClients(opts.Env) {
		if len(opts.Clients) == 0 || slices.Contains(opts.Clients, cf.Client) {
			out = append(out, cf)
		}
	}
	if len(out) == 0 {
		return nil, &UsageError{Err: errors.New("no client config file found; name one with --config FILE (see `mcpbox clients`)")}
	}
	return out, nil
}

// guessSpec picks the format of a file given by --config: TOML by its
// extension, otherwise the JSON key that holds its servers.
func guessSpec(path string, data []byte) *clientconfig.FileSpec {
	key := "mcpServers"
	format := clientconfig.JSONC
	switch {
	case strings.HasSuffix(path, ".toml"):
		key, format = "mcp_servers", clientconfig.TOML
	case strings.Contains(string(data), `"context_servers"`):
		key = "context_servers"
	case !strings.Contains(string(data), `"mcpServers"`) && strings.Contains(string(data), `"servers"`):
		key = "servers"
	}
	sections := [][]string{{key}}
	if filepath.Base(path) == ".claude.json" {
		sections = append(sections, []string{"projects", "*", "mcpServers"})
	}
	return &clientconfig.FileSpec{Format: format, Sections: sections, Scope: "file"}
}
