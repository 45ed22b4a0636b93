package packages

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mcpbox/mcpbox/internal/atomicfile"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ErrNotCached means the cache holds no usable entry for a spec: it was
// never installed, or the pinned version was removed.
var ErrNotCached = errors.New("package is not in the cache")

// Cache is mcpbox's package cache under Root (the launcher uses
// $XDG_CACHE_HOME/mcpbox/packages). Entries are written once, by Commit, and
// never modified; the zero-configuration way to repair one is Remove and a
// new install.
type Cache struct {
	Root string
}

// Meta is what mcpbox records about an entry, in its mcpbox.json.
type Meta struct {
	Ecosystem   string    `json:"ecosystem"`
	Name        string    `json:"name"`
	Requested   string    `json:"requested"` // the version spec that was asked for ("" = latest)
	Version     string    `json:"version"`   // the resolved version
	InstalledAt time.Time `json:"installed_at"`
	Scripts     bool      `json:"scripts"` // whether install scripts ran
	// Registry is the registry or index the install used, without
	// credentials; FindLinks the local wheel directory instead.
	Registry  string `json:"registry,omitempty"`
	FindLinks string `json:"find_links,omitempty"`
	// Python is the interpreter that installed a PyPI package and runs it;
	// PythonPrefix its installation prefix (sys.base_prefix).
	Python       string `json:"python,omitempty"`
	PythonPrefix string `json:"python_prefix,omitempty"`
	// Integrity maps "name@version" of every installed package to the
	// lockfile's integrity string (npm: "sha512-…"; PyPI: "sha256=…" of the
	// wheel, from pip's install report).
	Integrity map[string]string `json:"integrity"`
	// Stamp digests every file's path, type, size, mode, mtime and link
	// target: what Lookup compares the directory against.
	Stamp string `json:"stamp"`
	// Files is the manifest: every installed file with its SHA-256. It is
	// the last field, so that Lookup can stop reading before it; entries
	// from Lookup and List leave it nil (Verify reads it).
	Files []File `json:"files"`
}

// Entry is one installed package version.
type Entry struct {
	Dir  string
	Meta Meta
	// Exec is the argv that runs the package inside the sandbox, without
	// the server's arguments: node and the bin script for npm, python3
	// with a small launcher for PyPI. It is nil in List results whose
	// default executable cannot be chosen.
	Exec []string
	// ReadOnly lists the host paths the run needs bound read-only at the
	// same path: Dir, and the runtime's installation when it lives outside
	// the system directories (/usr, /bin, /lib, ...).
	ReadOnly []string
}

// Verify checks the entry's files against the manifest in its mcpbox.json:
// presence, type, size, mode and modification time of every file, no file
// added, and with full also every file's SHA-256. It returns a
// *CorruptError naming the first file that differs.
func (e *Entry) Verify(full bool) error {
	meta, err := readMeta(e.Dir)
	if err != nil {
		return err
	}
	return check(e.Dir, meta.Files, full)
}

// Lookup returns the entry pinned for spec, checked against its manifest
// without hashing (see the package doc and Entry.Verify). It returns
// ErrNotCached when there is none and a *CorruptError when the entry does
// not match what was installed. It reaches no registry.
func (c *Cache) Lookup(spec *Spec) (*Entry, error) {
	pkg, err := c.pkgDir(spec)
	if err != nil {
		return nil, err
	}
	pins, err := readPins(pkg)
	if err != nil {
		return nil, err
	}
	version, ok := pins[spec.Version]
	if !ok {
		if !exactVersion(spec) {
			return nil, ErrNotCached
		}
		version = spec.Version
	}
	dir, err := versionDir(pkg, version)
	if err != nil {
		return nil, &CorruptError{Path: filepath.Join(pkg, "pins.json"), Reason: err.Error()}
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotCached
	}
	meta, err := quickCheck(dir)
	if err != nil {
		return nil, err
	}
	if meta.Ecosystem != spec.Ecosystem || c.escape(meta.Ecosystem, meta.Name) != c.escape(spec.Ecosystem, spec.Name) || meta.Version != version {
		return nil, &CorruptError{Path: filepath.Join(dir, metaFile), Reason: fmt.Sprintf("describes %s %s@%s, not %s@%s", meta.Ecosystem, meta.Name, meta.Version, spec.Name, version)}
	}
	return newEntry(dir, meta, spec.Bin)
}

// List returns every entry in the cache, unverified, sorted by ecosystem,
// name and version. An entry whose metadata cannot be read is listed with
// the ecosystem, name and version its directory says, so it can be removed.
func (c *Cache) List() ([]Entry, error) {
	var out []Entry
	for _, eco := range []string{NPM, PyPI} {
		pkgs, err := os.ReadDir(filepath.Join(c.Root, eco))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list package cache: %w", err)
		}
		for _, p := range pkgs {
			if !p.IsDir() {
				continue
			}
			versions, err := os.ReadDir(filepath.Join(c.Root, eco, p.Name()))
			if err != nil {
				return nil, fmt.Errorf("list package cache: %w", err)
			}
			for _, v := range versions {
				if !v.IsDir() || strings.HasPrefix(v.Name(), ".") {
					continue
				}
				dir := filepath.Join(c.Root, eco, p.Name(), v.Name())
				meta, err := readHead(dir)
				if err != nil {
					out = append(out, Entry{Dir: dir, Meta: Meta{Ecosystem: eco, Name: unescape(eco, p.Name()), Version: v.Name()}})
					continue
				}
				e, err := newEntry(dir, meta, "")
				if err != nil {
					e = &Entry{Dir: dir, Meta: meta}
				}
				out = append(out, *e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Meta, out[j].Meta
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
	return out, nil
}

// Remove deletes the given version of a package ("" = every version, and
// its pins), and the pins that point at what it removed. name may carry an
// ecosystem prefix ("npm:name", "pypi:name"); without one, Remove looks in
// every ecosystem. It returns ErrNotCached when nothing matched. Hold the
// package's Lock when other mcpbox processes may be installing it.
func (c *Cache) Remove(name, version string) error {
	ecos := []string{NPM, PyPI}
	if eco, n, ok := strings.Cut(name, ":"); ok && (eco == NPM || eco == PyPI) {
		ecos, name = []string{eco}, n
	}
	removed := false
	for _, eco := range ecos {
		pkg, err := c.pkgDir(&Spec{Ecosystem: eco, Name: name})
		if err != nil {
			if len(ecos) == 1 {
				return err
			}
			continue
		}
		var versions []string
		if version != "" {
			if _, err := versionDir(pkg, version); err != nil {
				return err
			}
			versions = []string{version}
		} else {
			ents, err := os.ReadDir(pkg)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("remove %s: %w", name, err)
			}
			for _, e := range ents {
				if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
					versions = append(versions, e.Name())
				}
			}
		}
		gone := map[string]bool{}
		for _, v := range versions {
			dir := filepath.Join(pkg, v)
			if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err := c.trash(dir); err != nil {
				return fmt.Errorf("remove %s@%s: %w", name, v, err)
			}
			gone[v] = true
			removed = true
		}
		pins, err := readPins(pkg)
		if err != nil {
			return err
		}
		changed := false
		for k, v := range pins {
			if gone[v] || version == "" {
				delete(pins, k)
				changed = true
			}
		}
		if changed {
			removed = true
			if err := writePins(pkg, pins); err != nil {
				return err
			}
		}
	}
	if !removed {
		return ErrNotCached
	}
	return nil
}

// trash moves dir out of the way atomically, then deletes it, so a
// concurrent Lookup sees the entry whole or not at all. The .lock file is
// never removed: another process may hold a lock on it.
func (c *Cache) trash(dir string) error {
	work, err := c.workRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(work, "trash-")
	if err != nil {
		return err
	}
	dst := filepath.Join(tmp, "entry")
	if err := os.Rename(dir, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.RemoveAll(tmp)
}

func (c *Cache) workRoot() (string, error) {
	if c.Root == "" || !filepath.IsAbs(c.Root) {
		return "", fmt.Errorf("package cache root %q is not an absolute path", c.Root)
	}
	work := filepath.Join(c.Root, ".work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	return work, nil
}

// pkgDir returns ROOT/ECOSYSTEM/ESCAPED-NAME for a spec.
func (c *Cache) pkgDir(spec *Spec) (string, error) {
	if c.Root == "" || !filepath.IsAbs(c.Root) {
		return "", fmt.Errorf("package cache root %q is not an absolute path", c.Root)
	}
	switch spec.Ecosystem {
	case NPM:
		if !npmName.MatchString(spec.Name) {
			return "", fmt.Errorf("%q is not a valid npm package name", spec.Name)
		}
	case PyPI:
		if !pypiName.MatchString(spec.Name) {
			return "", fmt.Errorf("%q is not a valid Python package name", spec.Name)
		}
	default:
		return "", fmt.Errorf("unknown package ecosystem %q", spec.Ecosystem)
	}
	return filepath.Join(c.Root, spec.Ecosystem, c.escape(spec.Ecosystem, spec.Name)), nil
}

// escape turns a package name into one path element. npm names cannot
// contain "+", so "@scope/name" becomes "@scope+name"; Python names take
// their normal form, under which pip treats them as equal anyway.
func (c *Cache) escape(eco, name string) string {
	if eco == PyPI {
		return normalizePyPI(name)
	}
	return strings.Replace(name, "/", "+", 1)
}

func unescape(eco, s string) string {
	if eco == NPM {
		return strings.Replace(s, "+", "/", 1)
	}
	return s
}

var versionName = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_!~-]*$`)

func versionDir(pkg, version string) (string, error) {
	if len(version) > 128 || !versionName.MatchString(version) || strings.Contains(version, "..") {
		return "", fmt.Errorf("%q is not a resolved version", version)
	}
	return filepath.Join(pkg, version), nil
}

var (
	semverExact = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	pep440Exact = regexp.MustCompile(`^[0-9][0-9A-Za-z.+!_-]*$`)
)

// exactVersion reports whether spec asks for one exact version, which the
// cache can serve without a pin.
func exactVersion(spec *Spec) bool {
	if spec.Ecosystem == NPM {
		return semverExact.MatchString(spec.Version) && !strings.HasPrefix(spec.Version, "v")
	}
	return pep440Exact.MatchString(spec.Version) && !strings.Contains(spec.Version, "*")
}

// quickCheck reads an entry's metadata without its manifest and compares
// the directory with the stamp. On a mismatch it reads the manifest to say
// which file differs.
func quickCheck(dir string) (Meta, error) {
	meta, err := readHead(dir)
	if err != nil {
		return meta, err
	}
	stats, err := scan(dir)
	if err != nil {
		return meta, &CorruptError{Path: dir, Reason: err.Error()}
	}
	if stamp(stats) == meta.Stamp {
		return meta, nil
	}
	full, err := readMeta(dir)
	if err != nil {
		return meta, err
	}
	if err := check(dir, full.Files, false); err != nil {
		return meta, err
	}
	if s, err := manifestStamp(full.Files); err != nil || s != meta.Stamp {
		return meta, &CorruptError{Path: filepath.Join(dir, metaFile), Reason: "its stamp does not match its manifest"}
	}
	return meta, &CorruptError{Path: dir, Reason: "files changed after install"}
}

// readHead reads an entry's mcpbox.json up to the manifest, which is most
// of the file and not needed to run the entry.
func readHead(dir string) (Meta, error) {
	var m Meta
	path := filepath.Join(dir, metaFile)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return m, &CorruptError{Path: path, Reason: "missing"}
		}
		return m, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	bad := func(err error) (Meta, error) {
		return m, &CorruptError{Path: path, Reason: "unreadable: " + err.Error()}
	}
	dec := json.NewDecoder(bufio.NewReaderSize(f, 32<<10))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad(fmt.Errorf("not a JSON object"))
	}
	head := map[string]json.RawMessage{}
	files := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		if tok == "files" {
			files = true
			break
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad(err)
		}
		head[fmt.Sprint(tok)] = raw
	}
	if !files {
		if _, err := dec.Token(); err != nil {
			return bad(err) // cut short
		}
		return m, &CorruptError{Path: path, Reason: "has no file manifest"}
	}
	b, err := json.Marshal(head)
	if err != nil {
		return bad(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return bad(err)
	}
	return m, nil
}

func readMeta(dir string) (Meta, error) {
	var m Meta
	path := filepath.Join(dir, metaFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return m, &CorruptError{Path: path, Reason: "missing"}
		}
		return m, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, &CorruptError{Path: path, Reason: "unreadable: " + err.Error()}
	}
	if m.Files == nil {
		return m, &CorruptError{Path: path, Reason: "has no file manifest"}
	}
	return m, nil
}

// readPins reads PKG/pins.json; a missing file is an empty map.
func readPins(pkg string) (map[string]string, error) {
	path := filepath.Join(pkg, "pins.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	pins := map[string]string{}
	if err := json.Unmarshal(b, &pins); err != nil {
		return nil, &CorruptError{Path: path, Reason: "unreadable: " + err.Error()}
	}
	return pins, nil
}

func writePins(pkg string, pins map[string]string) error {
	b, err := jsonIndent(pins)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(pkg, "pins.json"), b, 0o644)
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// newEntry builds the Entry for an installed version, choosing the
// executable named bin ("" = the package's default).
func newEntry(dir string, meta Meta, bin string) (*Entry, error) {
	e := &Entry{Dir: dir, Meta: meta, ReadOnly: []string{dir}}
	var err error
	switch meta.Ecosystem {
	case NPM:
		err = npmExec(e, bin)
	case PyPI:
		err = pythonExec(e, bin)
	default:
		err = &CorruptError{Path: filepath.Join(dir, metaFile), Reason: fmt.Sprintf("unknown ecosystem %q", meta.Ecosystem)}
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// runtimeRoot returns the installation directory of a runtime binary
// (node, python3) when it lies outside the system directories a sandbox's
// host root already binds, and "" otherwise.
func runtimeRoot(bin string) string {
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return ""
	}
	for _, sys := range []string{"/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/"} {
		if strings.HasPrefix(real, sys) {
			return ""
		}
	}
	// .../PREFIX/bin/node → PREFIX
	return filepath.Dir(filepath.Dir(real))
}

func appendUnique(list []string, items ...string) []string {
	for _, it := range items {
		if it == "" {
			continue
		}
		dup := false
		for _, l := range list {
			if l == it {
				dup = true
				break
			}
		}
		if !dup {
			list = append(list, it)
		}
	}
	return list
}
