package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Record is one line of an audit log, as Read returns it.
type Record struct {
	// Entry holds the line's fields that it knows, each one whose value is
	// of the Go field's type (a string for Tool, a number for ArgsBytes).
	Entry
	Server string // from the file name
	Raw    []byte // the line as written, without its newline
	File   string // the file it was read from
	Line   int    // its 1-based line number there

	known  field // the fields decoded into Entry
	others bool  // the line has fields Entry does not hold (or not with that type)
}

// Fields decodes every field of the line as written, known or not: what a
// readable line shows of the fields Entry does not hold, and of those its
// layout leaves out.
func (r Record) Fields() map[string]json.RawMessage {
	var fields map[string]json.RawMessage
	json.Unmarshal(r.Raw, &fields) // Read checked it is an object
	return fields
}

// MarshalJSON encodes r as its line as written, unknown fields included.
func (r Record) MarshalJSON() ([]byte, error) {
	return slices.Clone(r.Raw), nil
}

// Query selects audit records. Zero fields match everything.
type Query struct {
	Server string    // one server's logs; "" for all
	Since  time.Time // records at or after this time
	Tool   string    // records about this tool
	Method string    // records of this JSON-RPC method
}

func (q Query) match(r Record) bool {
	if !q.Since.IsZero() && r.Time.Before(q.Since) {
		return false
	}
	if q.Tool != "" && r.Tool != q.Tool {
		return false
	}
	if q.Method != "" && r.Method != q.Method {
		return false
	}
	return true
}

// Servers lists the servers with an audit log in dir, sorted. A
// missing dir has none.
func Servers(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", dir, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if i := strings.LastIndex(name, ".jsonl."); i > 0 && isDigits(name[i+len(".jsonl."):]) {
			name = name[:i+len(".jsonl")]
		}
		server, ok := strings.CutSuffix(name, ".jsonl")
		if !ok || server == "" || e.IsDir() || seen[server] {
			continue
		}
		seen[server] = true
		out = append(out, server)
	}
	sort.Strings(out)
	return out, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// rotatedFiles returns the rotated files of server, oldest first.
func rotatedFiles(dir, server string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", dir, err)
	}
	type rot struct {
		n    int
		name string
	}
	var rs []rot
	prefix := server + ".jsonl."
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !isDigits(rest) {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n > 0 {
			rs = append(rs, rot{n, e.Name()})
		}
	}
	slices.SortFunc(rs, func(a, b rot) int { return b.n - a.n })
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = filepath.Join(dir, r.name)
	}
	return out, nil
}

func checkServerName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) {
		return &ServerError{Server: name, Invalid: true}
	}
	return nil
}

// ServerError is a Query.Server that has no audit log: a name no server
// can have (Invalid), or one without a log in Dir.
type ServerError struct {
	Server  string
	Invalid bool     // not a server name at all
	Dir     string   // the audit directory looked in
	Servers []string // the servers that have logs in Dir
}

func (e *ServerError) Error() string {
	switch {
	case e.Invalid:
		return fmt.Sprintf("%q is not a server name: use a name from `mcpbox audit show` or the file names in the audit directory", e.Server)
	case len(e.Servers) == 0:
		return fmt.Sprintf("no audit log for %q: no server has an audit log in %s yet", e.Server, e.Dir)
	}
	return fmt.Sprintf("no audit log for %q in %s; servers with logs: %s", e.Server, e.Dir, strings.Join(e.Servers, ", "))
}

// Read reads the audit logs in dir, rotated files first, merges them
// by time (stably: lines with one time keep their file order) and returns
// the records q selects. Lines that are not JSON objects with a time (a
// line torn by a crash) go to warn, naming file and line, and are skipped.
// A missing dir or server has no records.
func Read(dir string, q Query, warn func(error)) ([]Record, error) {
	t, err := newTail(dir, q, warn)
	if err != nil {
		return nil, err
	}
	recs, err := t.start(true)
	if err != nil {
		return nil, err
	}
	return filter(recs, q), nil
}

func filter(recs []Record, q Query) []Record {
	out := recs[:0]
	for _, r := range recs {
		if q.match(r) {
			out = append(out, r)
		}
	}
	return out
}

// tail reads audit logs and then follows them across rotation.
type tail struct {
	dir  string
	one  string // the one server to read; "" for all
	warn func(error)
	pos  map[string]*tailPos
}

// tailPos is how far a server's current file has been read.
type tailPos struct {
	fi   os.FileInfo // the file read so far; nil if none yet
	off  int64
	line int
}

func newTail(dir string, q Query, warn func(error)) (*tail, error) {
	if q.Server != "" {
		if err := checkServerName(q.Server); err != nil {
			return nil, err
		}
	}
	if warn == nil {
		warn = func(error) {}
	}
	return &tail{dir: dir, one: q.Server, warn: warn, pos: map[string]*tailPos{}}, nil
}

func (t *tail) servers() ([]string, error) {
	if t.one != "" {
		return []string{t.one}, nil
	}
	return Servers(t.dir)
}

// start reads everything there is, merged by time. Unless final, a last
// line without its newline is left for poll: it may still be being written.
func (t *tail) start(final bool) ([]Record, error) {
	servers, err := t.servers()
	if err != nil {
		return nil, err
	}
	var recs []Record
	add := func(r Record) { recs = append(recs, r) }
	for _, s := range servers {
		if err := t.readServer(s, final, add); err != nil {
			return nil, err
		}
	}
	sortByTime(recs)
	return recs, nil
}

func sortByTime(recs []Record) {
	slices.SortStableFunc(recs, func(a, b Record) int { return a.Time.Compare(b.Time) })
}

// rlock takes server's rotation lock shared, so that no writer rotates
// while we open its files. Logs without a lock file are read without.
func (t *tail) rlock(server string) func() {
	f, err := os.Open(filepath.Join(t.dir, server+".jsonl.lock"))
	if err != nil {
		return func() {}
	}
	for unix.Flock(int(f.Fd()), unix.LOCK_SH) == unix.EINTR {
	}
	return func() { f.Close() } // closing drops the lock
}

// openLog opens file for reading; a missing file is nil and no error.
func openLog(file string) (*os.File, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", file, err)
	}
	return f, nil
}

// fileSet is a server's files opened together, oldest first; the last is
// the current file, or nil if there is none.
type fileSet struct {
	names []string
	files []*os.File
}

func (s *fileSet) open(name string) error {
	f, err := openLog(name)
	if err != nil {
		return err
	}
	s.names = append(s.names, name)
	s.files = append(s.files, f)
	return nil
}

func (s *fileSet) close() {
	for _, f := range s.files {
		if f != nil {
			f.Close()
		}
	}
}

func (t *tail) readServer(server string, final bool, add func(Record)) error {
	var set fileSet
	defer set.close()
	unlock := t.rlock(server)
	rotated, err := rotatedFiles(t.dir, server)
	for _, name := range append(rotated, filepath.Join(t.dir, server+".jsonl")) {
		if err == nil {
			err = set.open(name)
		}
	}
	unlock()
	if err != nil {
		return err
	}
	p := &tailPos{}
	for i, f := range set.files {
		if f == nil {
			continue
		}
		last := i == len(set.files)-1
		fi, off, line, err := t.readFile(f, set.names[i], server, 0, 0, final || !last, add)
		if err != nil {
			return err
		}
		if last {
			p = &tailPos{fi: fi, off: off, line: line}
		}
	}
	t.pos[server] = p
	return nil
}

// poll returns the records written since the last start or poll, merged by
// time. Servers whose logs appear meanwhile are read from their start.
func (t *tail) poll() ([]Record, error) {
	servers, err := t.servers()
	if err != nil {
		return nil, err
	}
	var recs []Record
	add := func(r Record) { recs = append(recs, r) }
	for _, s := range servers {
		if t.pos[s] == nil {
			if err := t.readServer(s, false, add); err != nil {
				return nil, err
			}
			continue
		}
		if err := t.pollServer(s, add); err != nil {
			return nil, err
		}
	}
	sortByTime(recs)
	return recs, nil
}

func (t *tail) pollServer(server string, add func(Record)) error {
	p := t.pos[server]
	file := filepath.Join(t.dir, server+".jsonl")
	var set fileSet // the rest of the file read so far if it was rotated, newer ones, the current file
	defer set.close()
	lost, err := func() (bool, error) {
		defer t.rlock(server)()
		cur, err := openLog(file)
		if err != nil || cur == nil {
			return false, err
		}
		fi, err := cur.Stat()
		if err != nil {
			cur.Close()
			return false, fmt.Errorf("audit: read %s: %w", file, err)
		}
		if p.fi != nil && !os.SameFile(p.fi, fi) {
			rotated, err := rotatedFiles(t.dir, server)
			if err != nil {
				cur.Close()
				return false, err
			}
			found := -1
			for i, r := range rotated {
				if rfi, err := os.Stat(r); err == nil && os.SameFile(rfi, p.fi) {
					found = i
					break
				}
			}
			if found >= 0 {
				for _, r := range rotated[found:] {
					if err := set.open(r); err != nil {
						cur.Close()
						return false, err
					}
				}
			}
			set.names = append(set.names, file)
			set.files = append(set.files, cur)
			return found < 0, nil
		}
		set.names = append(set.names, file)
		set.files = append(set.files, cur)
		return false, nil
	}()
	if err != nil {
		return err
	}
	if len(set.files) == 0 {
		return nil // between a rotation's rename and reopen, or removed
	}
	if lost {
		t.warn(fmt.Errorf("%s: rotated past the kept files since it was last read; some records were skipped", file))
	}
	if len(set.files) > 1 || lost {
		// The file read so far was rotated: finish it, then read the
		// newer ones from their start.
		off, line := p.off, p.line
		if lost {
			off, line = 0, 0
		}
		for i, f := range set.files[:len(set.files)-1] {
			if f != nil {
				if _, _, _, err := t.readFile(f, set.names[i], server, off, line, true, add); err != nil {
					return err
				}
			}
			off, line = 0, 0
		}
		p.off, p.line = 0, 0
	}
	if cur := set.files[len(set.files)-1]; cur != nil {
		fi, off, line, err := t.readFile(cur, file, server, p.off, p.line, false, add)
		if err != nil {
			return err
		}
		p.fi, p.off, p.line = fi, off, line
	}
	return nil
}

// readFile reads f, named file, from off, where line lines precede off.
// Unless final, a last line without a newline is not consumed. It returns
// the file's identity and the new off and line.
func (t *tail) readFile(f *os.File, file, server string, off int64, line int, final bool, add func(Record)) (os.FileInfo, int64, int, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, off, line, fmt.Errorf("audit: read %s: %w", file, err)
	}
	if fi.Size() < off { // truncated: start over
		t.warn(fmt.Errorf("%s: truncated since it was last read; reading it again from the start", file))
		off, line = 0, 0
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, off, line, fmt.Errorf("audit: read %s: %w", file, err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		complete := len(b) > 0 && b[len(b)-1] == '\n'
		if complete || (err == io.EOF && len(b) > 0 && final) {
			line++
			off += int64(len(b))
			t.parse(bytes.TrimSuffix(b, []byte("\n")), file, server, line, add)
			continue
		}
		if err == io.EOF {
			return fi, off, line, nil
		}
		if err != nil {
			return nil, off, line, fmt.Errorf("audit: read %s: %w", file, err)
		}
	}
}

func (t *tail) parse(b []byte, file, server string, line int, add func(Record)) {
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	r := Record{Server: server, File: file, Line: line}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		t.warn(fmt.Errorf("%s:%d: skipped a line that is not a JSON object (torn by a crash?): %w", file, line, err))
		return
	}
	var ts string
	if err := json.Unmarshal(fields["time"], &ts); err != nil {
		t.warn(fmt.Errorf("%s:%d: skipped a line without a \"time\" string", file, line))
		return
	}
	tm, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.warn(fmt.Errorf("%s:%d: skipped a line with a bad time: %w", file, line, err))
		return
	}
	r.Time = tm
	r.known, r.others = r.Entry.decode(fields)
	r.Raw = slices.Clone(b)
	add(r)
}
