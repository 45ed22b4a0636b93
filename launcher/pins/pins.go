// Package pins is the pin store: one JSON file per server in a directory
// (mcpbox uses $XDG_STATE_HOME/mcpbox/pins), holding the broker's PinSet.
// It loads, saves, lists, finds and removes those files; what a pin means
// and how a listing is compared with it is the broker's (launcher/broker).
//
// It takes the directory as a path and must not import launcher (the
// session package) or cmd: both sit above it.
package pins

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mcpbox/mcpbox/internal/atomicfile"
	"github.com/mcpbox/mcpbox/launcher/broker"
)

// Store is a server's pin record on disk, one JSON file in the pins
// directory. It implements broker.PinStore.
type Store struct {
	Path string
}

// For returns the store of a server identity in dir.
func For(dir string, id broker.Identity) Store {
	return Store{Path: filepath.Join(dir, url.PathEscape(id.Key)+".json")}
}

// ErrCorrupt marks a pin file that exists but cannot be trusted.
var ErrCorrupt = errors.New("pin file is corrupt")

// Load reads the record; a missing file is no record. A file that does not
// parse, has another format version, or whose hashes do not match their
// definitions is an error wrapping ErrCorrupt.
func (s Store) Load() (*broker.PinSet, error) {
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Path, err)
	}
	var set broker.PinSet
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&set); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", s.Path, ErrCorrupt, err)
	}
	if set.Format != broker.PinFormat {
		return nil, fmt.Errorf("%s: %w: format %d, this mcpbox reads %d", s.Path, ErrCorrupt, set.Format, broker.PinFormat)
	}
	for list, l := range set.Lists {
		if l == nil {
			return nil, fmt.Errorf("%s: %w: list %s is null", s.Path, ErrCorrupt, list)
		}
		for _, m := range []map[string]broker.Pin{l.Pinned, l.Pending} {
			for name, p := range m {
				sum := sha256.Sum256([]byte(p.Definition))
				if hex.EncodeToString(sum[:]) != p.SHA256 {
					return nil, fmt.Errorf("%s: %w: the hash of %s/%s does not match its definition", s.Path, ErrCorrupt, list, name)
				}
			}
		}
	}
	return &set, nil
}

// Save writes the record atomically (temporary file and rename), readable
// by its owner only.
func (s Store) Save(set *broker.PinSet) error {
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(s.Path, append(data, '\n'), 0o600)
}

// Where is the file's path.
func (s Store) Where() string { return s.Path }

// Record is one pin file as `mcpbox pins` shows it: its set, or the
// error that makes it unreadable.
type Record struct {
	File Store
	Set  *broker.PinSet // nil when Err is set
	Err  error
	// Name is the server name the file is for: from the set, or from the
	// file name when the set cannot be read.
	Name string
}

// List lists the pin files in dir, sorted by server name.
func List(dir string) ([]Record, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f := Store{Path: filepath.Join(dir, e.Name())}
		r := Record{File: f}
		r.Set, r.Err = f.Load()
		if r.Set != nil {
			r.Name = r.Set.Server
		} else {
			key, _ := url.PathUnescape(strings.TrimSuffix(e.Name(), ".json"))
			r.Name = serverFromKey(key)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// serverFromKey guesses a server name from an identity key, for files that
// cannot be read.
func serverFromKey(key string) string {
	eco, rest, _ := strings.Cut(key, ":")
	if i := strings.LastIndexByte(rest, '-'); eco == "cmd" && i > 0 && len(rest)-i-1 == 16 {
		return rest[:i] // CommandIdentity's name-HASH
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest = rest[i+1:]
	}
	if rest == "" {
		return key
	}
	return rest
}

// FindError is a name that picks no pin record, or more than one. Its
// message says which names would.
type FindError struct {
	Name string
	Dir  string
	// Known are the servers with pins, when none matched; Matches the
	// identities (or files) of the records that did, when several did.
	Known   []string
	Matches []string
}

func (e *FindError) Error() string {
	switch {
	case len(e.Matches) > 0:
		return fmt.Sprintf("%q names more than one pinned server; use one of: %s", e.Name, strings.Join(e.Matches, ", "))
	case len(e.Known) == 0:
		return fmt.Sprintf("no pins recorded in %s yet: they are made on a server's first tools/list", e.Dir)
	}
	return fmt.Sprintf("no pins for %q; pinned servers: %s", e.Name, strings.Join(e.Known, ", "))
}

// Find finds the pin record a user named: by server name, package name,
// identity key or file name. No match, or more than one, is a *FindError
// that lists the names to pick from.
func Find(dir, name string) (Record, error) {
	all, err := List(dir)
	if err != nil {
		return Record{}, err
	}
	var hits []Record
	for _, r := range all {
		base := strings.TrimSuffix(filepath.Base(r.File.Path), ".json")
		key, _ := url.PathUnescape(base)
		if r.Name == name || key == name || base == name || r.File.Path == name ||
			(r.Set != nil && (r.Set.Package == name || r.Set.Identity == name)) {
			hits = append(hits, r)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		var names []string
		for _, r := range all {
			names = append(names, r.Name)
		}
		return Record{}, &FindError{Name: name, Dir: dir, Known: names}
	}
	var keys []string
	for _, r := range hits {
		k := r.File.Path
		if r.Set != nil {
			k = r.Set.Identity
		}
		keys = append(keys, k)
	}
	return Record{}, &FindError{Name: name, Dir: dir, Matches: keys}
}

// Reset removes a server's pin file, corrupt or not: its next session
// pins what it lists anew.
func Reset(r Record) error {
	if err := os.Remove(r.File.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// OtherTools returns the pinned tool names of every server in dir but self,
// for the look-alike name check. Unreadable files are skipped.
func OtherTools(dir string, self broker.Identity) []string {
	all, err := List(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range all {
		if r.Set == nil || r.Set.Identity == self.Key || r.Set.Lists["tools"] == nil {
			continue
		}
		for name := range r.Set.Lists["tools"].Pinned {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// CommandIdentity keys a host command's pins by a hash of its command line.
// serverFromKey reads the name back out of this form.
func CommandIdentity(name string, argv []string) broker.Identity {
	sum := sha256.Sum256([]byte(strings.Join(argv, "\x00")))
	return broker.Identity{Server: name, Key: "cmd:" + name + "-" + hex.EncodeToString(sum[:8])}
}
