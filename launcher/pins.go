package launcher

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mcpbox/mcpbox/internal/atomicfile"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/broker"
)

// PinFile is a server's pin record on disk, one JSON file under
// $XDG_STATE_HOME/mcpbox/pins/. It implements broker.PinStore.
type PinFile struct {
	Path string
}

// PinsDir is where pin files live.
func (d Dirs) PinsDir() string { return filepath.Join(d.State, "pins") }

// AuditDir is where audit logs live.
func (d Dirs) AuditDir() string { return filepath.Join(d.State, "audit") }

// pinFileFor returns the pin file of a server identity.
func pinFileFor(dir string, id broker.Identity) PinFile {
	return PinFile{Path: filepath.Join(dir, url.PathEscape(id.Key)+".json")}
}

// ErrPinsCorrupt marks a pin file that exists but cannot be trusted.
var ErrPinsCorrupt = errors.New("pin file is corrupt")

// Load reads the record; a missing file is no record. A file that does not
// parse, has another format version, or whose hashes do not match their
// definitions is an error wrapping ErrPinsCorrupt.
func (f PinFile) Load() (*broker.PinSet, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	var set broker.PinSet
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&set); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", f.Path, ErrPinsCorrupt, err)
	}
	if set.Format != broker.PinFormat {
		return nil, fmt.Errorf("%s: %w: format %d, this mcpbox reads %d", f.Path, ErrPinsCorrupt, set.Format, broker.PinFormat)
	}
	for list, l := range set.Lists {
		if l == nil {
			return nil, fmt.Errorf("%s: %w: list %s is null", f.Path, ErrPinsCorrupt, list)
		}
		for _, m := range []map[string]broker.Pin{l.Pinned, l.Pending} {
			for name, p := range m {
				sum := sha256.Sum256([]byte(p.Definition))
				if hex.EncodeToString(sum[:]) != p.SHA256 {
					return nil, fmt.Errorf("%s: %w: the hash of %s/%s does not match its definition", f.Path, ErrPinsCorrupt, list, name)
				}
			}
		}
	}
	return &set, nil
}

// Save writes the record atomically (temporary file and rename), readable
// by its owner only.
func (f PinFile) Save(set *broker.PinSet) error {
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(f.Path, append(data, '\n'), 0o600)
}

// Where is the file's path.
func (f PinFile) Where() string { return f.Path }

// PinRecord is one pin file as `mcpbox pins` shows it: its set, or the
// error that makes it unreadable.
type PinRecord struct {
	File PinFile
	Set  *broker.PinSet // nil when Err is set
	Err  error
	// Name is the server name the file is for: from the set, or from the
	// file name when the set cannot be read.
	Name string
}

// Pins lists the pin files in dir, sorted by server name.
func Pins(dir string) ([]PinRecord, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []PinRecord
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f := PinFile{Path: filepath.Join(dir, e.Name())}
		r := PinRecord{File: f}
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
		return rest[:i] // commandIdentity's name-HASH
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest = rest[i+1:]
	}
	if rest == "" {
		return key
	}
	return rest
}

// FindPins finds the pin record a user named: by server name, package name,
// identity key or file name. More than one match is an error that lists
// them, so the user can pick by key.
func FindPins(dir, name string) (PinRecord, error) {
	all, err := Pins(dir)
	if err != nil {
		return PinRecord{}, err
	}
	var hits []PinRecord
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
		if len(names) == 0 {
			return PinRecord{}, &UsageError{Err: fmt.Errorf("no pins recorded in %s yet: they are made on a server's first tools/list", dir)}
		}
		return PinRecord{}, &UsageError{Err: fmt.Errorf("no pins for %q; pinned servers: %s", name, strings.Join(names, ", "))}
	}
	var keys []string
	for _, r := range hits {
		k := r.File.Path
		if r.Set != nil {
			k = r.Set.Identity
		}
		keys = append(keys, k)
	}
	return PinRecord{}, &UsageError{Err: fmt.Errorf("%q names more than one pinned server; use one of: %s", name, strings.Join(keys, ", "))}
}

// ResetPins removes a server's pin file, corrupt or not: its next session
// pins what it lists anew.
func ResetPins(r PinRecord) error {
	if err := os.Remove(r.File.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// otherTools returns the pinned tool names of every server but self, for the
// look-alike name check. Unreadable files are skipped.
func otherTools(dir string, self broker.Identity) []string {
	all, err := Pins(dir)
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

// commandIdentity keys a host command's pins by a hash of its command line.
func commandIdentity(name string, argv []string) broker.Identity {
	sum := sha256.Sum256([]byte(strings.Join(argv, "\x00")))
	return broker.Identity{Server: name, Key: "cmd:" + name + "-" + hex.EncodeToString(sum[:8])}
}
