package launcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Audit logs are JSON lines in <State>/audit/<server>.jsonl, rotated to
// <server>.jsonl.1 (newest) … <server>.jsonl.N. Several mcpbox processes
// may append to one file (two sessions of one server): each line is one
// O_APPEND write, and rotation is serialized across processes with flock
// on <server>.jsonl.lock. Writers hold the lock for each write (a few
// syscalls), so a line never lands in a file that has just been rotated
// away and no file grows past the limit; readers hold it shared only while
// they open the set of files, then read from their descriptors.

const (
	DefaultAuditMaxSize int64 = 16 << 20 // rotate when the file would grow past this
	DefaultAuditKeep          = 5        // rotated files kept besides the current one
)

// AuditFile is an append-only, size-rotated audit log. It is safe for
// concurrent use, in one process and across processes. Each Write must be
// one whole line.
type AuditFile struct {
	path    string
	maxSize int64
	keep    int

	mu   sync.Mutex
	f    *os.File // the open log; nil once closed
	lock *os.File // path + ".lock", for flock
}

// OpenAuditFile opens (creating it and its directories if needed) the audit
// log at path. A maxSize <= 0 means DefaultAuditMaxSize, a keep < 0 means
// DefaultAuditKeep; keep 0 keeps no rotated file.
func OpenAuditFile(path string, maxSize int64, keep int) (*AuditFile, error) {
	if maxSize <= 0 {
		maxSize = DefaultAuditMaxSize
	}
	if keep < 0 {
		keep = DefaultAuditKeep
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory for %s: %w (check that its parent is writable)", path, err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open lock file: %w (check that %s is writable)", err, filepath.Dir(path))
	}
	a := &AuditFile{path: path, maxSize: maxSize, keep: keep, lock: lock}
	if err := a.reopen(); err != nil {
		lock.Close()
		return nil, err
	}
	return a, nil
}

func (a *AuditFile) reopen() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w (check that %s is writable)", a.path, err, filepath.Dir(a.path))
	}
	if a.f != nil {
		a.f.Close()
	}
	a.f = f
	return nil
}

func (a *AuditFile) flock(how int) error {
	for {
		err := unix.Flock(int(a.lock.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("audit: lock %s.lock: %w", a.path, err)
			}
			return nil
		}
	}
}

// Write appends p, one whole line, rotating first if p would take the file
// past its size limit.
func (a *AuditFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return 0, fmt.Errorf("audit: write %s: %w", a.path, os.ErrClosed)
	}
	if err := a.flock(unix.LOCK_EX); err != nil {
		return 0, err
	}
	defer a.flock(unix.LOCK_UN)
	full, err := a.follow(len(p))
	if err != nil {
		return 0, err
	}
	if full {
		if err := a.rotate(); err != nil {
			return 0, err
		}
	}
	return a.f.Write(p)
}

// follow reopens the path if another process rotated it away from under
// our descriptor, and reports whether n more bytes call for a rotation.
func (a *AuditFile) follow(n int) (full bool, err error) {
	cur, err := a.f.Stat()
	if err != nil {
		return false, fmt.Errorf("audit: stat %s: %w", a.path, err)
	}
	onDisk, err := os.Stat(a.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("audit: stat %s: %w", a.path, err)
	}
	if err != nil || !os.SameFile(cur, onDisk) {
		if err := a.reopen(); err != nil {
			return false, err
		}
		if cur, err = a.f.Stat(); err != nil {
			return false, fmt.Errorf("audit: stat %s: %w", a.path, err)
		}
	}
	return cur.Size() > 0 && cur.Size()+int64(n) > a.maxSize, nil
}

// rotate shifts path.(keep-1) → path.keep … path → path.1 (dropping the
// old path.keep) and opens a fresh path. The caller holds the lock.
func (a *AuditFile) rotate() error {
	if a.keep == 0 {
		if err := os.Remove(a.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate %s: %w", a.path, err)
		}
		return a.reopen()
	}
	for i := a.keep - 1; i >= 1; i-- {
		from, to := a.path+"."+strconv.Itoa(i), a.path+"."+strconv.Itoa(i+1)
		if err := os.Rename(from, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate %s: %w", a.path, err)
		}
	}
	if err := os.Rename(a.path, a.path+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: rotate %s: %w", a.path, err)
	}
	return a.reopen()
}

// Close closes the log. Later writes fail.
func (a *AuditFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.lock.Close()
	a.f = nil
	return err
}

// AuditRecord is one line of an audit log.
type AuditRecord struct {
	Time   time.Time
	Server string                     // from the file name
	Fields map[string]json.RawMessage // every field of the line, known or not
	Raw    []byte                     // the line as written, without its newline
	File   string                     // the file it was read from
	Line   int                        // its 1-based line number there
}

// AuditQuery selects audit records. Zero fields match everything.
type AuditQuery struct {
	Server string    // one server's logs; "" for all
	Since  time.Time // records at or after this time
	Tool   string    // records about this tool
	Method string    // records of this JSON-RPC method
}

func (q AuditQuery) match(r AuditRecord) bool {
	if !q.Since.IsZero() && r.Time.Before(q.Since) {
		return false
	}
	if q.Tool != "" && r.str("tool") != q.Tool {
		return false
	}
	if q.Method != "" && r.str("method") != q.Method {
		return false
	}
	return true
}

// str returns a string field, "" if it is missing or not a string.
func (r AuditRecord) str(key string) string {
	var s string
	if raw, ok := r.Fields[key]; ok {
		json.Unmarshal(raw, &s)
	}
	return s
}

// AuditServers lists the servers with an audit log in dir, sorted. A
// missing dir has none.
func AuditServers(dir string) ([]string, error) {
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

// rotatedAudit returns the rotated files of server, oldest first.
func rotatedAudit(dir, server string) ([]string, error) {
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
		return &UsageError{Flag: "server", Err: fmt.Errorf("%q is not a server name: use a name from `mcpbox audit show` or the file names in the audit directory", name)}
	}
	return nil
}

// ReadAudit reads the audit logs in dir, rotated files first, merges them
// by time (stably: lines with one time keep their file order) and returns
// the records q selects. Lines that are not JSON objects with a time (a
// line torn by a crash) go to warn, naming file and line, and are skipped.
// A missing dir or server has no records.
func ReadAudit(dir string, q AuditQuery, warn func(error)) ([]AuditRecord, error) {
	t, err := newAuditTail(dir, q, warn)
	if err != nil {
		return nil, err
	}
	recs, err := t.start(true)
	if err != nil {
		return nil, err
	}
	return filterAudit(recs, q), nil
}

func filterAudit(recs []AuditRecord, q AuditQuery) []AuditRecord {
	out := recs[:0]
	for _, r := range recs {
		if q.match(r) {
			out = append(out, r)
		}
	}
	return out
}

// auditTail reads audit logs and then follows them across rotation.
type auditTail struct {
	dir  string
	one  string // the one server to read; "" for all
	warn func(error)
	pos  map[string]*auditPos
}

// auditPos is how far a server's current file has been read.
type auditPos struct {
	fi   os.FileInfo // the file read so far; nil if none yet
	off  int64
	line int
}

func newAuditTail(dir string, q AuditQuery, warn func(error)) (*auditTail, error) {
	if q.Server != "" {
		if err := checkServerName(q.Server); err != nil {
			return nil, err
		}
	}
	if warn == nil {
		warn = func(error) {}
	}
	return &auditTail{dir: dir, one: q.Server, warn: warn, pos: map[string]*auditPos{}}, nil
}

func (t *auditTail) servers() ([]string, error) {
	if t.one != "" {
		return []string{t.one}, nil
	}
	return AuditServers(t.dir)
}

// start reads everything there is, merged by time. Unless final, a last
// line without its newline is left for poll: it may still be being written.
func (t *auditTail) start(final bool) ([]AuditRecord, error) {
	servers, err := t.servers()
	if err != nil {
		return nil, err
	}
	var recs []AuditRecord
	add := func(r AuditRecord) { recs = append(recs, r) }
	for _, s := range servers {
		if err := t.readServer(s, final, add); err != nil {
			return nil, err
		}
	}
	sortAudit(recs)
	return recs, nil
}

func sortAudit(recs []AuditRecord) {
	slices.SortStableFunc(recs, func(a, b AuditRecord) int { return a.Time.Compare(b.Time) })
}

// rlock takes server's rotation lock shared, so that no writer rotates
// while we open its files. Logs without a lock file are read without.
func (t *auditTail) rlock(server string) func() {
	f, err := os.Open(filepath.Join(t.dir, server+".jsonl.lock"))
	if err != nil {
		return func() {}
	}
	for unix.Flock(int(f.Fd()), unix.LOCK_SH) == unix.EINTR {
	}
	return func() { f.Close() } // closing drops the lock
}

// openAudit opens file for reading; a missing file is nil and no error.
func openAudit(file string) (*os.File, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", file, err)
	}
	return f, nil
}

// auditSet is a server's files opened together, oldest first; the last is
// the current file, or nil if there is none.
type auditSet struct {
	names []string
	files []*os.File
}

func (s *auditSet) open(name string) error {
	f, err := openAudit(name)
	if err != nil {
		return err
	}
	s.names = append(s.names, name)
	s.files = append(s.files, f)
	return nil
}

func (s *auditSet) close() {
	for _, f := range s.files {
		if f != nil {
			f.Close()
		}
	}
}

func (t *auditTail) readServer(server string, final bool, add func(AuditRecord)) error {
	var set auditSet
	defer set.close()
	unlock := t.rlock(server)
	rotated, err := rotatedAudit(t.dir, server)
	for _, name := range append(rotated, filepath.Join(t.dir, server+".jsonl")) {
		if err == nil {
			err = set.open(name)
		}
	}
	unlock()
	if err != nil {
		return err
	}
	p := &auditPos{}
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
			p = &auditPos{fi: fi, off: off, line: line}
		}
	}
	t.pos[server] = p
	return nil
}

// poll returns the records written since the last start or poll, merged by
// time. Servers whose logs appear meanwhile are read from their start.
func (t *auditTail) poll() ([]AuditRecord, error) {
	servers, err := t.servers()
	if err != nil {
		return nil, err
	}
	var recs []AuditRecord
	add := func(r AuditRecord) { recs = append(recs, r) }
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
	sortAudit(recs)
	return recs, nil
}

func (t *auditTail) pollServer(server string, add func(AuditRecord)) error {
	p := t.pos[server]
	file := filepath.Join(t.dir, server+".jsonl")
	var set auditSet // the rest of the file read so far if it was rotated, newer ones, the current file
	defer set.close()
	lost, err := func() (bool, error) {
		defer t.rlock(server)()
		cur, err := openAudit(file)
		if err != nil || cur == nil {
			return false, err
		}
		fi, err := cur.Stat()
		if err != nil {
			cur.Close()
			return false, fmt.Errorf("audit: read %s: %w", file, err)
		}
		if p.fi != nil && !os.SameFile(p.fi, fi) {
			rotated, err := rotatedAudit(t.dir, server)
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
func (t *auditTail) readFile(f *os.File, file, server string, off int64, line int, final bool, add func(AuditRecord)) (os.FileInfo, int64, int, error) {
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

func (t *auditTail) parse(b []byte, file, server string, line int, add func(AuditRecord)) {
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	r := AuditRecord{Server: server, File: file, Line: line}
	if err := json.Unmarshal(b, &r.Fields); err != nil || r.Fields == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		t.warn(fmt.Errorf("%s:%d: skipped a line that is not a JSON object (torn by a crash?): %w", file, line, err))
		return
	}
	var ts string
	if err := json.Unmarshal(r.Fields["time"], &ts); err != nil {
		t.warn(fmt.Errorf("%s:%d: skipped a line without a \"time\" string", file, line))
		return
	}
	tm, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.warn(fmt.Errorf("%s:%d: skipped a line with a bad time: %w", file, line, err))
		return
	}
	r.Time = tm
	r.Raw = slices.Clone(b)
	add(r)
}

// AuditOutput says how PrintAudit prints.
type AuditOutput struct {
	JSON   bool // the raw lines, unchanged
	Color  bool // ANSI colors in readable lines
	Last   int  // only the last Last records; < 0 for all
	Follow bool // then keep printing new records until ctx is done
}

// AuditPollInterval is how often PrintAudit looks for new records when following.
const AuditPollInterval = 250 * time.Millisecond

// PrintAudit prints the records of dir that q selects to w, as o says. An
// unknown q.Server is a UsageError that names the servers with logs.
func PrintAudit(ctx context.Context, w io.Writer, dir string, q AuditQuery, o AuditOutput, warn func(error)) error {
	if q.Server != "" {
		if err := checkServerName(q.Server); err != nil {
			return err
		}
		servers, err := AuditServers(dir)
		if err != nil {
			return err
		}
		if !slices.Contains(servers, q.Server) {
			if len(servers) == 0 {
				return &UsageError{Flag: "server", Err: fmt.Errorf("no audit log for %q: no server has an audit log in %s yet", q.Server, dir)}
			}
			return &UsageError{Flag: "server", Err: fmt.Errorf("no audit log for %q in %s; servers with logs: %s", q.Server, dir, strings.Join(servers, ", "))}
		}
	}
	t, err := newAuditTail(dir, q, warn)
	if err != nil {
		return err
	}
	recs, err := t.start(!o.Follow)
	if err != nil {
		return err
	}
	recs = filterAudit(recs, q)
	if o.Last >= 0 && len(recs) > o.Last {
		recs = recs[len(recs)-o.Last:]
	}
	p := &auditPrinter{w: w, o: o, f: AuditFormat{Color: o.Color, Date: AuditSpansDays(recs)}}
	for _, r := range recs {
		if err := p.print(r); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	tick := time.NewTicker(AuditPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		recs, err := t.poll()
		if err != nil {
			return err
		}
		for _, r := range filterAudit(recs, q) {
			if err := p.print(r); err != nil {
				return err
			}
		}
	}
}

type auditPrinter struct {
	w     io.Writer
	o     AuditOutput
	f     AuditFormat
	first time.Time // date of the first record printed
}

func (p *auditPrinter) print(r AuditRecord) error {
	if p.o.JSON {
		_, err := p.w.Write(append(slices.Clip(r.Raw), '\n'))
		return err
	}
	if p.first.IsZero() {
		p.first = r.Time
	} else if !p.f.Date && !sameDay(p.first, r.Time) {
		p.f.Date = true // a follow that crossed midnight
	}
	return p.f.Format(p.w, r)
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Local().Date()
	by, bm, bd := b.Local().Date()
	return ay == by && am == bm && ad == bd
}

// AuditSpansDays reports whether recs fall on more than one (local) date,
// when readable lines should show the full date.
func AuditSpansDays(recs []AuditRecord) bool {
	for _, r := range recs {
		if !sameDay(recs[0].Time, r.Time) {
			return true
		}
	}
	return false
}

// AuditFormat formats records as readable lines.
type AuditFormat struct {
	Color bool // ANSI colors
	Date  bool // full date, not only the time of day
}

// FormatAudit writes r to w as one readable line, with the time of day only.
// Everything taken from the log is escaped: servers write it.
func FormatAudit(w io.Writer, r AuditRecord, color bool) {
	AuditFormat{Color: color}.Format(w, r)
}

const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// maxAuditBodyShown is how much of a logged message body a readable line
// shows; --json shows it whole.
const maxAuditBodyShown = 512

// Format writes r to w as one readable line.
func (f AuditFormat) Format(w io.Writer, r AuditRecord) error {
	var b strings.Builder
	paint := func(color, s string) {
		if f.Color && color != "" {
			b.WriteString(color + s + ansiReset)
		} else {
			b.WriteString(s)
		}
	}
	used := map[string]bool{"time": true}
	str := func(key string) (string, bool) {
		var s string
		raw, ok := r.Fields[key]
		if !ok || json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		used[key] = true
		return s, true
	}
	num := func(key string) (float64, bool) {
		var n float64
		raw, ok := r.Fields[key]
		if !ok || json.Unmarshal(raw, &n) != nil {
			return 0, false
		}
		used[key] = true
		return n, true
	}
	raw := func(key string) (string, bool) {
		v, ok := r.Fields[key]
		if !ok {
			return "", false
		}
		used[key] = true
		return compactJSON(v), true
	}
	word := func(s string) {
		if s != "" {
			b.WriteByte(' ')
			b.WriteString(EscapeAudit(s))
		}
	}

	layout := "15:04:05.000"
	if f.Date {
		layout = "2006-01-02 15:04:05.000"
	}
	paint(ansiDim, r.Time.Local().Format(layout))
	b.WriteByte(' ')
	paint(ansiCyan, EscapeAudit(r.Server))
	b.WriteByte(' ')

	dir, _ := str("dir")
	kind, _ := str("kind")
	tool, _ := str("tool")
	if kind == "policy" {
		policy, _ := str("policy")
		finding, _ := str("finding")
		severity, _ := str("severity")
		detail, _ := str("detail")
		var line strings.Builder
		line.WriteString("! " + EscapeAudit(policy))
		for _, s := range []string{tool, finding} {
			if s != "" {
				line.WriteString(" " + EscapeAudit(s))
			}
		}
		if severity != "" {
			line.WriteString(" [" + EscapeAudit(severity) + "]")
		}
		if detail != "" {
			line.WriteString(": " + EscapeAudit(detail))
		}
		color := ansiYellow
		if severity == "high" || severity == "critical" {
			color = ansiRed + ansiBold
		}
		paint(color, line.String())
	} else {
		switch dir {
		case "c2s":
			b.WriteString("→")
		case "s2c":
			b.WriteString("←")
		default:
			b.WriteString("?")
			delete(used, "dir") // shown with the extra fields
		}
		if kind == "" {
			kind = "?"
		}
		b.WriteByte(' ')
		if kind == "error" {
			paint(ansiRed, fmt.Sprintf("%-8s", EscapeAudit(kind)))
		} else {
			b.WriteString(fmt.Sprintf("%-8s", EscapeAudit(kind)))
		}
		if id, ok := raw("id"); ok {
			b.WriteString(" #" + EscapeAudit(id))
		}
		method, _ := str("method")
		word(method)
		word(tool)
		if n, ok := num("args_bytes"); ok {
			b.WriteString(" args=" + formatBytes(n))
		}
		if sum, ok := str("args_sha256"); ok {
			if len(sum) > 8 {
				sum = sum[:8]
			}
			b.WriteString(" sha256:" + EscapeAudit(sum))
		}
		if ms, ok := num("duration_ms"); ok {
			b.WriteString(" " + formatMillis(ms))
		}
		if code, ok := raw("error_code"); ok {
			b.WriteString(" ")
			paint(ansiRed, "code="+EscapeAudit(code))
		}
	}
	if v, ok := r.Fields["blocked"]; ok {
		var blocked bool
		if json.Unmarshal(v, &blocked) == nil {
			used["blocked"] = true
			if blocked {
				b.WriteString(" ")
				paint(ansiRed+ansiBold, "BLOCKED")
			}
		}
	}
	if v, ok := r.Fields["redacted"]; ok {
		var counts map[string]json.Number
		if json.Unmarshal(v, &counts) == nil && len(counts) > 0 {
			used["redacted"] = true
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(counts)) {
				parts = append(parts, EscapeAudit(k)+"×"+EscapeAudit(counts[k].String()))
			}
			b.WriteString(" ")
			paint(ansiYellow, "redacted "+strings.Join(parts, " "))
		}
	}
	var extra []string
	for k := range r.Fields {
		if !used[k] && k != "body" {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if _, ok := r.Fields["body"]; ok {
		extra = append(extra, "body") // last: it is the longest
	}
	for _, k := range extra {
		v := compactJSON(r.Fields[k])
		if k == "body" && len(v) > maxAuditBodyShown {
			cut := maxAuditBodyShown
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			v = fmt.Sprintf("%s…(%dB)", v[:cut], len(r.Fields[k]))
		}
		b.WriteString(" " + EscapeAudit(k) + "=")
		paint(ansiDim, EscapeAudit(v))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func compactJSON(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

func formatBytes(n float64) string {
	switch {
	case n < 1024:
		return strconv.FormatFloat(n, 'f', -1, 64) + "B"
	case n < 1<<20:
		return strconv.FormatFloat(n/1024, 'f', 1, 64) + "KiB"
	default:
		return strconv.FormatFloat(n/(1<<20), 'f', 1, 64) + "MiB"
	}
}

func formatMillis(ms float64) string {
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	default:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	}
}

// EscapeAudit makes s safe to print on a terminal: control characters,
// invisible and bidirectional formatting characters, Unicode tags and
// variation selectors become \u{XXXX}, bytes that are not UTF-8 and ASCII
// controls become \xNN, and a backslash becomes \\ so that escapes are
// unambiguous.
func EscapeAudit(s string) string {
	clean := true
	for _, c := range s {
		if c == '\\' || c == utf8.RuneError || invisible(c) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case c == '\\':
			b.WriteString(`\\`)
		case c < 0x80 && invisible(c):
			fmt.Fprintf(&b, `\x%02x`, c)
		case invisible(c):
			fmt.Fprintf(&b, `\u{%04X}`, c)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// invisible reports whether c must not reach a terminal as is.
func invisible(c rune) bool {
	switch {
	case c < 0x20, c == 0x7f, c >= 0x80 && c <= 0x9f: // C0, DEL, C1
		return true
	case c >= 0x200b && c <= 0x200f, // zero-width, LRM, RLM
		c >= 0x2028 && c <= 0x202e,   // line/paragraph separators, bidi embeddings
		c >= 0x2060 && c <= 0x2064,   // word joiner, invisible operators
		c >= 0x2066 && c <= 0x2069,   // bidi isolates
		c == 0xfeff,                  // BOM, zero-width no-break space
		c >= 0xe0000 && c <= 0xe007f, // tags
		c >= 0xfe00 && c <= 0xfe0f,   // variation selectors
		c >= 0xe0100 && c <= 0xe01ef:
		return true
	}
	return unicode.In(c, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}
