package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Format formats records as readable lines.
type Format struct {
	Color bool // ANSI colors
	Date  bool // full date, not only the time of day
}

const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// maxBodyShown is how much of a logged message body a readable line
// shows; --json shows it whole.
const maxBodyShown = 512

// Fprint writes r to w as one readable line. Everything taken from the log
// is escaped: servers write it.
func (f Format) Fprint(w io.Writer, r Record) error {
	l := &line{color: f.Color, r: &r}
	layout := "15:04:05.000"
	if f.Date {
		layout = "2006-01-02 15:04:05.000"
	}
	l.paint(ansiDim, r.Time.Local().Format(layout))
	l.b.WriteByte(' ')
	l.paint(ansiCyan, Escape(r.Server))
	l.b.WriteByte(' ')
	l.take(fieldDir | fieldKind | fieldTool)
	if r.Kind == KindPolicy {
		l.policy()
	} else {
		l.message()
	}
	l.marks()
	l.rest()
	l.b.WriteByte('\n')
	_, err := io.WriteString(w, l.b.String())
	return err
}

// line is a readable line being built from a record.
type line struct {
	b     strings.Builder
	color bool
	r     *Record
	shown field // fields shown; the rest are appended as key=value
}

func (l *line) paint(color, s string) {
	if l.color && color != "" {
		l.b.WriteString(color + s + ansiReset)
	} else {
		l.b.WriteString(s)
	}
}

// take marks the fields f as shown, those the record has with a value of
// their type (decoded into its Entry), and reports whether it has any.
func (l *line) take(f field) bool {
	l.shown |= f & l.r.known
	return l.r.known&f != 0
}

func (l *line) word(s string) {
	if s != "" {
		l.b.WriteByte(' ')
		l.b.WriteString(Escape(s))
	}
}

// policy writes what a policy line says: which policy, about what, how bad.
func (l *line) policy() {
	r := l.r
	l.take(fieldPolicy | fieldFinding | fieldSeverity | fieldDetail)
	var s strings.Builder
	s.WriteString("! " + Escape(r.Policy))
	for _, v := range []string{r.Tool, r.Finding} {
		if v != "" {
			s.WriteString(" " + Escape(v))
		}
	}
	if r.Severity != "" {
		s.WriteString(" [" + Escape(r.Severity) + "]")
	}
	if r.Detail != "" {
		s.WriteString(": " + Escape(r.Detail))
	}
	color := ansiYellow
	if r.Severity == "high" || r.Severity == "critical" {
		color = ansiRed + ansiBold
	}
	l.paint(color, s.String())
}

// message writes what a message's line says: its direction, kind, id,
// method and tool, the size of its arguments, how long it took and its
// error code.
func (l *line) message() {
	r := l.r
	switch r.Dir {
	case ClientToServer:
		l.b.WriteString("→")
	case ServerToClient:
		l.b.WriteString("←")
	default:
		l.b.WriteString("?")
		l.shown &^= fieldDir // shown with the other fields
	}
	kind := r.Kind
	if kind == "" {
		kind = "?"
	}
	l.b.WriteByte(' ')
	if kind == "error" {
		l.paint(ansiRed, fmt.Sprintf("%-8s", Escape(kind)))
	} else {
		l.b.WriteString(fmt.Sprintf("%-8s", Escape(kind)))
	}
	if l.take(fieldID) {
		l.b.WriteString(" #" + Escape(compactJSON(r.ID)))
	}
	l.take(fieldMethod)
	l.word(r.Method)
	l.word(r.Tool)
	if l.take(fieldArgsBytes) {
		l.b.WriteString(" args=" + formatBytes(float64(r.ArgsBytes)))
	}
	if l.take(fieldArgsSHA256) {
		sum := r.ArgsSHA256
		if len(sum) > 8 {
			sum = sum[:8]
		}
		l.b.WriteString(" sha256:" + Escape(sum))
	}
	if l.take(fieldDuration) {
		l.b.WriteString(" " + formatMillis(r.DurationMS))
	}
	if l.take(fieldErrorCode) {
		l.b.WriteString(" ")
		l.paint(ansiRed, "code="+Escape(compactJSON(r.ErrorCode)))
	}
}

// marks writes what any line may carry: that mcpbox blocked the message,
// and the secrets it redacted from it.
func (l *line) marks() {
	r := l.r
	if l.take(fieldBlocked) && r.Blocked {
		l.b.WriteString(" ")
		l.paint(ansiRed+ansiBold, "BLOCKED")
	}
	if len(r.Redacted) > 0 && l.take(fieldRedacted) {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Redacted)) {
			parts = append(parts, Escape(k)+"×"+strconv.Itoa(r.Redacted[k]))
		}
		l.b.WriteString(" ")
		l.paint(ansiYellow, "redacted "+strings.Join(parts, " "))
	}
}

// rest writes the fields not shown yet as key=value, as written, sorted,
// the body last (it is the longest) and cut short.
func (l *line) rest() {
	if !l.r.others && l.r.known&^l.shown == 0 {
		return // all shown: no need to decode the line again
	}
	fields := l.r.Fields()
	var keys []string
	for k := range fields {
		if k != "time" && l.shown&fieldOf(k) == 0 && k != "body" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if _, ok := fields["body"]; ok {
		keys = append(keys, "body")
	}
	for _, k := range keys {
		v := compactJSON(fields[k])
		if k == "body" && len(v) > maxBodyShown {
			cut := maxBodyShown
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			v = fmt.Sprintf("%s…(%dB)", v[:cut], len(fields[k]))
		}
		l.b.WriteString(" " + Escape(k) + "=")
		l.paint(ansiDim, Escape(v))
	}
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

// Escape makes s safe to print on a terminal: control characters,
// invisible and bidirectional formatting characters, Unicode tags and
// variation selectors become \u{XXXX}, bytes that are not UTF-8 and ASCII
// controls become \xNN, and a backslash becomes \\ so that escapes are
// unambiguous.
func Escape(s string) string {
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
