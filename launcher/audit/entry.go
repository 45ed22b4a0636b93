package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// The ways a message travels, for Entry.Dir.
const (
	ClientToServer = "c2s"
	ServerToClient = "s2c"
)

// KindPolicy is the Entry.Kind of a line that is not a message but says
// what a policy found or did.
const KindPolicy = "policy"

// maxID is the longest raw id copied into a line; a longer one is left out
// rather than let a peer blow up the log.
const maxID = 256

// Entry is one line of an audit log: the schema the broker's lines, the
// seccomp agent's policy lines and Read share. It holds metadata only; a
// message's body only with --audit-bodies.
//
// Writers fill an Entry and encode it with AppendEntry (encoding/json calls
// it too). Read decodes a line's fields into one by their json names; a
// field it does not know, or whose value is not of the Go field's type, is
// only in the line as written (Record.Raw, Record.Fields).
type Entry struct {
	Time   time.Time       `json:"time"`
	Dir    string          `json:"dir"`  // ClientToServer or ServerToClient: the way the message travelled
	Kind   string          `json:"kind"` // request, notification, response, error, batch, unknown, or KindPolicy
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Tool   string          `json:"tool,omitempty"`

	// Args are a tools/call's raw arguments, nil when it has none.
	// AppendEntry writes only their size and SHA-256, never the arguments:
	// the line holds ArgsBytes and ArgsSHA256, which is what Read fills.
	Args       []byte `json:"-"`
	ArgsBytes  int64  `json:"args_bytes,omitempty"`
	ArgsSHA256 string `json:"args_sha256,omitempty"`

	// DurationMS is how long the request this response answers waited for
	// it, when HasDuration (0 is a duration).
	DurationMS  float64 `json:"duration_ms,omitempty"`
	HasDuration bool    `json:"-"`

	ErrorCode json.RawMessage `json:"error_code,omitempty"` // the raw error.code of an error response
	Blocked   bool            `json:"blocked,omitempty"`    // mcpbox answered or withheld it instead of the peer
	Redacted  map[string]int  `json:"redacted,omitempty"`   // secrets masked in it, by kind

	// A policy line (KindPolicy) says what a policy found or did; a
	// refused message's line says which policy refused it and why.
	Policy   string `json:"policy,omitempty"`
	Finding  string `json:"finding,omitempty"`
	Severity string `json:"severity,omitempty"`
	Detail   string `json:"detail,omitempty"`

	Body json.RawMessage `json:"body,omitempty"` // the whole message, secrets redacted, with --audit-bodies
}

// AppendEntry appends e to b as one JSON line, newline included, and
// returns the extended buffer. Fields go in the order of Entry, empty ones
// are left out, the time is written in UTC. What a peer sent is checked, not
// trusted: an ID over 256 bytes or not valid JSON, and an ErrorCode over 32
// bytes, not valid JSON or a string, are left out; strings that are not
// UTF-8 get U+FFFD; so the line is always one valid JSON object.
//
// It is written by hand, not with encoding/json, because the broker
// writes a line per message: it allocates nothing beyond b's growth.
func AppendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","dir":`...)
	b = AppendQuoted(b, e.Dir)
	b = append(b, `,"kind":`...)
	b = AppendQuoted(b, e.Kind)
	if len(e.ID) > 0 && len(e.ID) <= maxID && utf8.Valid(e.ID) && json.Valid(e.ID) {
		b = append(b, `,"id":`...)
		b = append(b, e.ID...)
	}
	if e.Method != "" {
		b = append(b, `,"method":`...)
		b = AppendQuoted(b, e.Method)
	}
	if e.Tool != "" {
		b = append(b, `,"tool":`...)
		b = AppendQuoted(b, e.Tool)
	}
	b = appendArgs(b, e)
	if e.HasDuration {
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, e.DurationMS, 'f', -1, 64)
	}
	if len(e.ErrorCode) > 0 && len(e.ErrorCode) <= 32 && json.Valid(e.ErrorCode) && e.ErrorCode[0] != '"' {
		b = append(b, `,"error_code":`...)
		b = append(b, e.ErrorCode...)
	}
	if e.Blocked {
		b = append(b, `,"blocked":true`...)
	}
	if len(e.Redacted) > 0 {
		b = append(b, `,"redacted":`...)
		b = appendCounts(b, e.Redacted)
	}
	for _, f := range []struct{ name, v string }{{"policy", e.Policy}, {"finding", e.Finding}, {"severity", e.Severity}, {"detail", e.Detail}} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = AppendQuoted(b, f.v)
		}
	}
	if len(e.Body) > 0 {
		b = append(b, `,"body":`...)
		b = append(b, e.Body...)
	}
	return append(b, "}\n"...)
}

// SetDuration sets the entry's duration to d, to the microsecond.
func (e *Entry) SetDuration(d time.Duration) {
	e.DurationMS, e.HasDuration = float64(d.Microseconds())/1000, true
}

// MarshalJSON encodes e as AppendEntry does, without the newline, so that
// encoding/json writes the same line.
func (e Entry) MarshalJSON() ([]byte, error) {
	b := AppendEntry(nil, &e)
	return b[:len(b)-1], nil
}

// appendArgs appends the size and SHA-256 of e.Args, or, for an entry
// that was read back, the ArgsBytes and ArgsSHA256 it holds.
func appendArgs(b []byte, e *Entry) []byte {
	switch {
	case e.Args != nil:
		sum := sha256.Sum256(e.Args)
		b = append(b, `,"args_bytes":`...)
		b = strconv.AppendInt(b, int64(len(e.Args)), 10)
		b = append(b, `,"args_sha256":"`...)
		b = hex.AppendEncode(b, sum[:])
		return append(b, '"')
	case e.ArgsSHA256 != "":
		b = append(b, `,"args_bytes":`...)
		b = strconv.AppendInt(b, e.ArgsBytes, 10)
		b = append(b, `,"args_sha256":`...)
		return AppendQuoted(b, e.ArgsSHA256)
	}
	return b
}

// appendCounts appends counts as a JSON object, sorted by key.
func appendCounts(b []byte, counts map[string]int) []byte {
	b = append(b, '{')
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendQuoted(b, k)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(counts[k]), 10)
	}
	return append(b, '}')
}

// AppendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// so the result is always valid JSON; U+2028, U+2029 and U+0085 are
// escaped. The broker quotes its own answers to
// the client with it too.
func AppendQuoted(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029' || r == '\u0085':
			// Line breaks to JavaScript or to Python's splitlines: escaped
			// (the first two as encoding/json does), so that no reader
			// splits the line.
			b = append(b, '\\', 'u', hexDigits[r>>12], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// field is one of Entry's fields, as a bit of a set of them.
type field uint32

const (
	fieldDir field = 1 << iota
	fieldKind
	fieldID
	fieldMethod
	fieldTool
	fieldArgsBytes
	fieldArgsSHA256
	fieldDuration
	fieldErrorCode
	fieldBlocked
	fieldRedacted
	fieldPolicy
	fieldFinding
	fieldSeverity
	fieldDetail
	fieldBody
)

// fieldOf returns the field of Entry a line's key names (its json tag), or
// 0 for a key Entry does not hold.
func fieldOf(key string) field {
	switch key {
	case "dir":
		return fieldDir
	case "kind":
		return fieldKind
	case "id":
		return fieldID
	case "method":
		return fieldMethod
	case "tool":
		return fieldTool
	case "args_bytes":
		return fieldArgsBytes
	case "args_sha256":
		return fieldArgsSHA256
	case "duration_ms":
		return fieldDuration
	case "error_code":
		return fieldErrorCode
	case "blocked":
		return fieldBlocked
	case "redacted":
		return fieldRedacted
	case "policy":
		return fieldPolicy
	case "finding":
		return fieldFinding
	case "severity":
		return fieldSeverity
	case "detail":
		return fieldDetail
	case "body":
		return fieldBody
	}
	return 0
}

// decode fills e from a line's fields, each one into its Entry field when
// its value is of the Go field's type (anything, for the raw ones; null
// too, as encoding/json reads it). It returns the set of those it took, and
// whether the line has others besides its time. The time is the caller's
// to read: a line without one is no record.
func (e *Entry) decode(fields map[string]json.RawMessage) (known field, others bool) {
	for key, raw := range fields {
		if f := fieldOf(key); f != 0 && e.decodeField(f, raw) {
			known |= f
		} else if key != "time" {
			others = true
		}
	}
	e.HasDuration = known&fieldDuration != 0
	return known, others
}

// decodeField decodes raw, a valid JSON value, into the field f of e, and
// reports whether raw was of its type. Plain strings and numbers, most of
// a log, are read without encoding/json's reflection.
func (e *Entry) decodeField(f field, raw json.RawMessage) bool {
	switch f {
	case fieldID:
		e.ID = raw
	case fieldErrorCode:
		e.ErrorCode = raw
	case fieldBody:
		e.Body = raw
	case fieldArgsBytes:
		return decodeNumber(raw, &e.ArgsBytes, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
	case fieldDuration:
		return decodeNumber(raw, &e.DurationMS, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
	case fieldBlocked:
		switch string(raw) {
		case "true":
			e.Blocked = true
		case "false", "null":
		default:
			return false
		}
	case fieldRedacted:
		if err := json.Unmarshal(raw, &e.Redacted); err != nil {
			e.Redacted = nil // it may have been filled halfway
			return false
		}
	default:
		return decodeString(raw, e.stringField(f))
	}
	return true
}

// stringField returns the string field f of e.
func (e *Entry) stringField(f field) *string {
	switch f {
	case fieldDir:
		return &e.Dir
	case fieldKind:
		return &e.Kind
	case fieldMethod:
		return &e.Method
	case fieldTool:
		return &e.Tool
	case fieldArgsSHA256:
		return &e.ArgsSHA256
	case fieldPolicy:
		return &e.Policy
	case fieldFinding:
		return &e.Finding
	case fieldSeverity:
		return &e.Severity
	case fieldDetail:
		return &e.Detail
	}
	panic("audit: not a string field")
}

// decodeString decodes the JSON value raw into *s if it is a string (or
// null, which leaves "", as encoding/json does).
func decodeString(raw []byte, s *string) bool {
	if string(raw) == "null" {
		return true
	}
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	if body := raw[1 : len(raw)-1]; !bytes.ContainsRune(body, '\\') && utf8.Valid(body) {
		*s = string(body)
		return true
	}
	return json.Unmarshal(raw, s) == nil
}

// decodeNumber decodes the JSON value raw into *n with parse if it is a
// number parse takes (or null, which leaves 0, as encoding/json does).
func decodeNumber[T int64 | float64](raw []byte, n *T, parse func(string) (T, error)) bool {
	if string(raw) == "null" {
		return true
	}
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return false
	}
	v, err := parse(string(raw))
	if err != nil {
		return false
	}
	*n = v
	return true
}
