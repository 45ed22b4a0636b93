package profiles

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// builtinFS holds the built-in catalog, one file per known server.
//
//go:embed builtin/*.yaml
var builtinFS embed.FS

// Catalog finds profiles among the user's profile directory and the built-in
// catalog. A user profile overrides the built-in of the same name, for Get,
// Match and extends alike. A user profile that does not load is an error
// wherever it could have been chosen, never a silent fallback to a built-in
// or to untrusted.
//
// In the user directory a profile lives in NAME.yaml (or NAME.yml) and its
// `name:` must equal NAME. A profile's `extends: NAME` is looked up there
// first (skipping the file itself, so a user's filesystem.yaml can extend
// the built-in filesystem), then among the built-ins; built-ins extend only
// built-ins. Extending merges like this: name, description and match are
// never inherited; scalars the child sets replace the parent's and mappings
// (limits, tools, install, setenv) merge key by key; lists (network.allow,
// mounts, env, seccomp.allow, tools.allow, tools.deny) are the parent's
// entries followed by the child's, so a child can only add to them.
//
// A Catalog reads files on every call and keeps no state beyond its
// directory, so it is safe for concurrent use and always sees the files as
// they are now.
type Catalog struct {
	userDir string
}

// NewCatalog returns a catalog of the built-in profiles and those in
// userDir (usually DefaultUserDir()); "" means no user profiles. A missing
// userDir is the same as an empty one.
func NewCatalog(userDir string) *Catalog {
	return &Catalog{userDir: userDir}
}

// DefaultUserDir returns $XDG_CONFIG_HOME/mcpbox/profiles, with
// XDG_CONFIG_HOME defaulting to ~/.config (a relative XDG_CONFIG_HOME is
// ignored, as the XDG spec says). It returns "" if neither is known.
func DefaultUserDir() string {
	base := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return ""
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "mcpbox", "profiles")
}

type refKind int

const (
	builtinRef refKind = iota
	userRef
	fileRef
)

// ref says where a profile file is.
type ref struct {
	kind refKind
	name string // the name the file must declare (builtin, user); "" for fileRef
	path string // to read: a path in builtinFS, or on disk
	file string // for messages
	id   string // identity, for cycles and for skipping oneself in extends
}

func builtinRefOf(name string) (ref, bool) {
	p := "builtin/" + name + ".yaml"
	if _, err := fs.Stat(builtinFS, p); err != nil {
		return ref{}, false
	}
	return ref{kind: builtinRef, name: name, path: p, file: p, id: "builtin:" + name}, true
}

func builtinRefs() []ref {
	entries, _ := fs.ReadDir(builtinFS, "builtin") // embedded: cannot fail
	var out []ref
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			r, _ := builtinRefOf(name)
			out = append(out, r)
		}
	}
	return out
}

func diskRef(kind refKind, name, path string) ref {
	id := path
	if abs, err := filepath.Abs(path); err == nil {
		id = abs
	}
	return ref{kind: kind, name: name, path: path, file: path, id: id}
}

// userRefOf finds NAME.yaml or NAME.yml in the user directory.
func (c *Catalog) userRefOf(name string) (ref, bool, error) {
	if c.userDir == "" {
		return ref{}, false, nil
	}
	var found []string
	for _, ext := range []string{".yaml", ".yml"} {
		p := filepath.Join(c.userDir, name+ext)
		_, err := os.Stat(p)
		switch {
		case err == nil:
			found = append(found, p)
		case !errors.Is(err, fs.ErrNotExist):
			return ref{}, false, fmt.Errorf("profiles: %w", err)
		}
	}
	switch len(found) {
	case 0:
		return ref{}, false, nil
	case 1:
		return diskRef(userRef, name, found[0]), true, nil
	}
	return ref{}, false, fmt.Errorf("profiles: both %s and %s define profile %q: remove one", found[0], found[1], name)
}

// userRefs lists the profile files in the user directory, sorted by name.
func (c *Catalog) userRefs() ([]ref, error) {
	if c.userDir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(c.userDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("profiles: read user profiles: %w", err)
	}
	var out []ref
	seen := map[string]string{}
	for _, e := range entries {
		fname := e.Name()
		ext := filepath.Ext(fname)
		if strings.HasPrefix(fname, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		p := filepath.Join(c.userDir, fname)
		if st, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("profiles: %w", err)
		} else if st.IsDir() {
			continue
		}
		name := strings.TrimSuffix(fname, ext)
		if !nameRE.MatchString(name) {
			return nil, &ValidationError{File: p, Reason: fmt.Sprintf("the file name %q is not a profile name: %s, then .yaml", fname, nameRule)}
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("profiles: both %s and %s define profile %q: remove one", prev, p, name)
		}
		seen[name] = p
		out = append(out, diskRef(userRef, name, p))
	}
	return out, nil
}

func (c *Catalog) read(r ref) ([]byte, error) {
	if r.kind == builtinRef {
		return builtinFS.ReadFile(r.path)
	}
	f, err := os.Open(r.path)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	defer f.Close()
	// One byte more than the limit, so that decode can tell the file is too big.
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("profiles: read %s: %w", r.path, err)
	}
	return data, nil
}

// load reads r and returns its effective profile. chain holds the files
// that extend r, to detect cycles.
func (c *Catalog) load(r ref, chain []ref) (*Profile, error) {
	data, err := c.read(r)
	if err != nil {
		return nil, err
	}
	l, err := decode(r.file, data)
	if err != nil {
		return nil, err
	}
	if r.name != "" && l.p.Name != r.name {
		return nil, &ValidationError{File: r.file, Line: l.pos["name"], Field: "name",
			Reason: fmt.Sprintf("%q does not match the file name: the profile in %s must be called %q (rename the file or the profile)", l.p.Name, filepath.Base(r.file), r.name)}
	}
	base := defaults()
	if l.p.Extends != "" {
		parent, err := c.parentRef(l.p.Extends, r)
		if err != nil {
			return nil, err
		}
		if parent.id == "" {
			return nil, &ValidationError{File: r.file, Line: l.pos["extends"], Field: "extends",
				Reason: fmt.Sprintf("unknown profile %q: %s", l.p.Extends, c.known(r.kind == builtinRef))}
		}
		chain = append(chain, r)
		if i := slices.IndexFunc(chain, func(x ref) bool { return x.id == parent.id }); i >= 0 {
			var names []string
			for _, x := range chain[i:] {
				names = append(names, x.file)
			}
			return nil, &ValidationError{File: r.file, Line: l.pos["extends"], Field: "extends",
				Reason: fmt.Sprintf("extends cycle: %s → %s", strings.Join(names, " → "), parent.file)}
		}
		if base, err = c.load(parent, chain); err != nil {
			return nil, err
		}
	}
	p := apply(base, l)
	p.File = r.file
	p.Source = r.path
	if r.kind == builtinRef {
		p.Source = SourceBuiltin
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// parentRef finds the profile that `extends: name` in child means; a zero
// ref if there is none.
func (c *Catalog) parentRef(name string, child ref) (ref, error) {
	if child.kind != builtinRef {
		r, ok, err := c.userRefOf(name)
		if err != nil {
			return ref{}, err
		}
		if ok && r.id != child.id {
			return r, nil
		}
	}
	if r, ok := builtinRefOf(name); ok && r.id != child.id {
		return r, nil
	}
	return ref{}, nil
}

// known describes the profiles there are, for "unknown profile" messages.
func (c *Catalog) known(builtinOnly bool) string {
	var names []string
	for _, r := range builtinRefs() {
		names = append(names, r.name)
	}
	s := "built-in profiles are " + strings.Join(names, ", ")
	if !builtinOnly && c.userDir != "" {
		s += "; user profiles are NAME.yaml files in " + c.userDir
	}
	return s
}

// Get returns the effective profile called name: the user's if the user
// directory has one, else the built-in. The error wraps ErrNotFound if
// neither exists; a user profile that fails to load is returned as its
// error (a *ValidationError for a mistake in a file).
func (c *Catalog) Get(name string) (*Profile, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("profiles: %q is not a profile name: %s", name, nameRule)
	}
	r, ok, err := c.userRefOf(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		if r, ok = builtinRefOf(name); !ok {
			return nil, fmt.Errorf("profiles: %w: no profile named %q (%s)", ErrNotFound, name, c.known(false))
		}
	}
	return c.load(r, nil)
}

// LoadFile loads the profile in the file at path (as for `--profile
// ./x.yaml`); its `extends` is looked up in the catalog. The file's name
// need not match the profile's.
func (c *Catalog) LoadFile(path string) (*Profile, error) {
	return c.load(diskRef(fileRef, "", path), nil)
}

// Match returns the profile whose `match:` names the package: a user
// profile if one matches, else a built-in; when the user overrides that
// built-in by name, the user's profile (so a user's filesystem.yaml is used
// for the filesystem server even if it has no match of its own). ecosystem
// is NPM or PyPI; pkg is the
// package name without a version. It returns nil, nil if nothing matches,
// and an error if any user profile fails to load (it might have matched) or
// two profiles of the same kind match.
func (c *Catalog) Match(ecosystem, pkg string) (*Profile, error) {
	if ecosystem != NPM && ecosystem != PyPI {
		return nil, fmt.Errorf("profiles: match: unknown ecosystem %q: use %s or %s", ecosystem, NPM, PyPI)
	}
	if pkg == "" {
		return nil, errors.New("profiles: match: empty package name")
	}
	users, err := c.userRefs()
	if err != nil {
		return nil, err
	}
	p, err := c.matchAmong(users, ecosystem, pkg)
	if p != nil || err != nil {
		return p, err
	}
	p, err = c.matchAmong(builtinRefs(), ecosystem, pkg)
	if p == nil || err != nil {
		return p, err
	}
	// The user's profile of the same name replaces the built-in, here too.
	if i := slices.IndexFunc(users, func(u ref) bool { return u.name == p.Name }); i >= 0 {
		return c.load(users[i], nil)
	}
	return p, nil
}

func (c *Catalog) matchAmong(refs []ref, ecosystem, pkg string) (*Profile, error) {
	var found []*Profile
	for _, r := range refs {
		p, err := c.load(r, nil)
		if err != nil {
			return nil, err
		}
		if p.Matches(ecosystem, pkg) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	var files []string
	for _, p := range found {
		files = append(files, p.File)
	}
	return nil, fmt.Errorf("profiles: %s package %s is matched by more than one profile (%s): keep the match in one of them", ecosystem, pkg, strings.Join(files, ", "))
}

// Why a profile was chosen, as Resolve reports it.
const (
	WhyFlag    = "--profile"
	WhyBuiltin = "built-in match"
	WhyDefault = "default: untrusted"
	// A user profile that matched is reported as "user profile NAME.yaml".
)

// Resolve picks the profile for a session, in this order: flag (the
// --profile value: a file if it contains '/' or ends in .yaml or .yml,
// else a profile name), then a user profile matching the package, then a
// built-in matching it, then untrusted. An empty ecosystem means a host
// command that is no package, which only a flag or the default applies to.
// The string says why the profile was chosen (WhyFlag, "user profile
// NAME.yaml", WhyBuiltin or WhyDefault), for logs and `mcpbox run -v`.
func (c *Catalog) Resolve(flag string, ecosystem, pkg string) (*Profile, string, error) {
	if flag != "" {
		var p *Profile
		var err error
		if IsFileFlag(flag) {
			p, err = c.LoadFile(flag)
		} else {
			p, err = c.Get(flag)
		}
		if err != nil {
			return nil, "", err
		}
		return p, WhyFlag, nil
	}
	if ecosystem != "" {
		p, err := c.Match(ecosystem, pkg)
		if err != nil {
			return nil, "", err
		}
		if p != nil {
			if p.Source == SourceBuiltin {
				return p, WhyBuiltin, nil
			}
			return p, "user profile " + filepath.Base(p.File), nil
		}
	}
	p, err := c.Get("untrusted")
	if err != nil {
		return nil, "", err
	}
	return p, WhyDefault, nil
}

// IsFileFlag reports whether a --profile value names a file rather than a
// profile.
func IsFileFlag(flag string) bool {
	return strings.ContainsRune(flag, '/') || strings.HasSuffix(flag, ".yaml") || strings.HasSuffix(flag, ".yml")
}

// List returns every profile: the user's, sorted by name, then the
// built-ins, sorted by name. A built-in that a user profile overrides is
// listed too (Source tells them apart), though Get and Match return the
// user's. Profiles that fail to load are left out and their errors joined
// into err; the others are returned even then, so that `mcpbox profiles
// list` can show both.
func (c *Catalog) List() ([]*Profile, error) {
	users, err := c.userRefs()
	if err != nil {
		return nil, err
	}
	var out []*Profile
	var errs []error
	for _, r := range append(users, builtinRefs()...) {
		p, err := c.load(r, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}
