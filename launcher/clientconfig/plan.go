package clientconfig

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

	"github.com/mcpbox/mcpbox/launcher/packages"
	"github.com/mcpbox/mcpbox/profiles"
)

// Detected is a client config file found on this machine.
type Detected struct {
	Client  string `json:"client"`
	Display string `json:"display"`
	Path    string `json:"path"`
	Scope   string `json:"scope"`
	Stdio   int    `json:"stdio"`   // stdio servers
	Wrapped int    `json:"wrapped"` // of which run through mcpbox
	Error   string `json:"error,omitempty"`

	spec    *FileSpec
	data    []byte
	entries []Entry
}

// HostEnv is the path environment of this machine and working directory.
func HostEnv() Env {
	home, _ := os.UserHomeDir()
	wd, _ := os.Getwd()
	return Env{OS: runtime.GOOS, Home: home, AppData: os.Getenv("APPDATA"), XDGConfig: os.Getenv("XDG_CONFIG_HOME"), Project: wd}
}

// Detect lists the client config files that exist for env. A file that
// cannot be read or parsed is listed with its error.
func Detect(env Env) []Detected {
	var out []Detected
	for _, c := range Candidates(env) {
		data, err := os.ReadFile(c.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		d := Detected{Client: c.Client.Name, Display: c.Client.Display, Path: c.Path, Scope: c.Spec.Scope, spec: c.Spec, data: data}
		if err == nil {
			err = d.load()
		}
		if err != nil {
			d.Error = err.Error()
		}
		out = append(out, d)
	}
	return out
}

func (d *Detected) load() error {
	f, err := Parse(d.Path, d.data, d.spec)
	if err != nil {
		return err
	}
	d.entries = f.Entries()
	d.Stdio, d.Wrapped = 0, 0
	for _, e := range d.entries {
		if !e.Remote() && e.Command != "" {
			d.Stdio++
			if e.Wrapped() {
				d.Wrapped++
			}
		}
	}
	return nil
}

// PlanOptions select what `mcpbox wrap` and `unwrap` change.
type PlanOptions struct {
	Clients []string // client names; none means all
	Servers []string // server names; none means all
	Config  string   // one file instead of the detected ones
	All     bool     // wrap any command, not just package runners
	Unwrap  bool
	Mcpbox  string // the mcpbox executable the entries will run
	Env     Env
	// Catalog is the profile catalog `mcpbox run` will pick from, to say
	// which profile each wrapped entry gets.
	Catalog *profiles.Catalog
}

// InputError is input that stops a plan before anything was changed: a
// file that does not parse, an unknown client, no file at all. Option
// names the PlanOptions field at fault as its flag is spelled ("config",
// "client"), "" when none is.
type InputError struct {
	Option string
	Err    error
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Change is the change planned for one file.
type Change struct {
	File    Detected
	New     []byte
	Diff    string
	Changed []Item
	Skipped []Item
}

// Item is one server a plan changes or leaves alone, and why.
type Item struct {
	Name, Section string
	Profile, Why  string
}

// Plan works out the changes without writing anything. A file that does
// not parse is an *InputError: nothing is changed anywhere.
func Plan(opts PlanOptions) ([]Change, error) {
	files, err := targets(opts)
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, d := range files {
		if d.Error != "" {
			return nil, &InputError{Err: fmt.Errorf("%s (fix the file, nothing was changed)", d.Error)}
		}
		f, err := Parse(d.Path, d.data, d.spec)
		if err != nil {
			return nil, &InputError{Err: err}
		}
		ch := Change{File: d}
		for _, e := range f.Entries() {
			if len(opts.Servers) > 0 && !slices.Contains(opts.Servers, e.Name) {
				continue
			}
			it := Item{Name: e.Name, Section: e.Section}
			if opts.Unwrap {
				if !e.Wrapped() {
					continue
				}
				if err := f.Unwrap(e); err != nil {
					it.Why = err.Error()
					ch.Skipped = append(ch.Skipped, it)
					continue
				}
				ch.Changed = append(ch.Changed, it)
				continue
			}
			if ok, why := e.Wrappable(opts.All); !ok {
				it.Why = why
				ch.Skipped = append(ch.Skipped, it)
				continue
			}
			it.Profile, it.Why = profileFor(opts.Catalog, e)
			if err := f.Wrap(e, opts.Mcpbox); err != nil {
				return nil, err
			}
			ch.Changed = append(ch.Changed, it)
		}
		ch.New = f.Bytes()
		ch.Diff = Diff(d.Path, d.data, ch.New)
		out = append(out, ch)
	}
	return out, nil
}

// profileFor says which profile `mcpbox run` will pick for the entry.
func profileFor(catalog *profiles.Catalog, e Entry) (string, string) {
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
func (c Change) Apply() (string, error) {
	if c.Diff == "" {
		return "", nil
	}
	return Write(c.File.Path, c.File.data, c.New, time.Now())
}

func targets(opts PlanOptions) ([]Detected, error) {
	if opts.Config != "" {
		data, err := os.ReadFile(opts.Config)
		if err != nil {
			return nil, &InputError{Option: "config", Err: err}
		}
		spec := guessSpec(opts.Config, data)
		d := Detected{Client: "file", Display: opts.Config, Path: opts.Config, spec: spec, data: data}
		if err := d.load(); err != nil {
			return nil, &InputError{Option: "config", Err: fmt.Errorf("%v (fix the file, nothing was changed)", err)}
		}
		return []Detected{d}, nil
	}
	for _, name := range opts.Clients {
		if Find(name) == nil {
			var names []string
			for _, c := range Clients {
				names = append(names, c.Name)
			}
			return nil, &InputError{Option: "client", Err: fmt.Errorf("unknown client %q; clients: %s", name, strings.Join(names, ", "))}
		}
	}
	var out []Detected
	for _, d := range Detect(opts.Env) {
		if len(opts.Clients) == 0 || slices.Contains(opts.Clients, d.Client) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, &InputError{Err: errors.New("no client config file found; name one with --config FILE (see `mcpbox clients`)")}
	}
	return out, nil
}

// guessSpec picks the format of a file given by --config: TOML by its
// extension, otherwise the JSON key that holds its servers.
func guessSpec(path string, data []byte) *FileSpec {
	key := "mcpServers"
	format := JSONC
	switch {
	case strings.HasSuffix(path, ".toml"):
		key, format = "mcp_servers", TOML
	case strings.Contains(string(data), `"context_servers"`):
		key = "context_servers"
	case !strings.Contains(string(data), `"mcpServers"`) && strings.Contains(string(data), `"servers"`):
		key = "servers"
	}
	sections := [][]string{{key}}
	if filepath.Base(path) == ".claude.json" {
		sections = append(sections, []string{"projects", "*", "mcpServers"})
	}
	return &FileSpec{Format: format, Sections: sections, Scope: "file"}
}
