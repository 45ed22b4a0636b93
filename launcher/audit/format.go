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
			b.WriteString(Escape(s))
		}
	}

	layout := "15:04:05.000"
	if f.Date {
		layout = "2006-01-02 15:04:05.000"
	}
	paint(ansiDim, r.Time.Local().Format(layout))
	b.WriteByte(' ')
	paint(ansiCyan, Escape(r.Server))
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
		line.WriteString("! " + Escape(policy))
		for _, s := range []string{tool, finding} {
			if s != "" {
				line.WriteString(" " + Escape(s))
			}
		}
		if severity != "" {
			line.WriteString(" [" + Escape(severity) + "]")
		}
		if detail != "" {
			line.WriteString(": " + Escape(detail))
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
			paint(ansiRed, fmt.Sprintf("%-8s", Escape(kind)))
		} else {
			b.WriteString(fmt.Sprintf("%-8s", Escape(kind)))
		}
		if id, ok := raw("id"); ok {
			b.WriteString(" #" + Escape(id))
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
			b.WriteString(" sha256:" + Escape(sum))
		}
		if ms, ok := num("duration_ms"); ok {
			b.WriteString(" " + formatMillis(ms))
		}
		if code, ok := raw("error_code"); ok {
			b.WriteString(" ")
			paint(ansiRed, "code="+Escape(code))
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
				parts = append(parts, Escape(k)+"×"+Escape(counts[k].String()))
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
		if k == "body" && len(v) > maxBodyShown {
			cut := maxBodyShown
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			v = fmt.Sprintf("%s…(%dB)", v[:cut], len(r.Fields[k]))
		}
		b.WriteString(" " + Escape(k) + "=")
		paint(ansiDim, Escape(v))
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
