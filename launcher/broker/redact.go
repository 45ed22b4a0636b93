package broker

// Secret redaction: masks credentials in the JSON-RPC lines a server sends
// back, so that a token passed into the sandbox, or one the server found on
// disk, does not reach the model. It looks at every string, keys included,
// and at numbers (a PIN or an account number passed in a variable), never
// at structure; it re-encodes a string it changes and writes a masked
// number as a string, so valid JSON stays valid. It is a net for known
// shapes and known values, not a guarantee: a server that wants to leak a
// secret can encode it first.

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// redactMinExact is the shortest exact value worth redacting; shorter ones
// ("true", "1", "prod") would mask ordinary text.
const redactMinExact = 8

// Redactor masks secrets in JSON lines. It is safe for concurrent use.
type Redactor struct {
	exact   []exactSecret
	anchors []anchor // any trigger in a line means it needs a closer look
}

// anchor groups the triggers that share their rarest byte, so the fast
// path is one bytes.IndexByte pass per distinct byte: a vectorised scan that
// rarely stops, where bytes.Index per trigger would stop at every common
// first letter.
type anchor struct {
	c        byte
	triggers []trigger
}

// trigger is a literal whose presence sends a line down the slow path.
// A word trigger only counts where the pattern's boundary allows a match:
// not after a letter, digit or "_", nor, for dash triggers, after "-". That
// keeps "risk-assessment" from looking like the start of an "sk-" key.
type trigger struct {
	lit        []byte
	at         int // offset of the anchor byte in lit
	word, dash bool
}

// byteCommonness lists bytes from most to least common in MCP traffic
// (English prose inside JSON), roughly; bytes not listed count as rarest.
const byteCommonness = " \"etaoinsrhldcu:,mfpgwyb.vk-_/x0123456789TSACIEMPNRBDHLOFGWjUVYqKzJXQZ{}[]"

// addTrigger files t under its rarest byte, dropping duplicates.
func (r *Redactor) addTrigger(t trigger) {
	for _, a := range r.anchors {
		for _, o := range a.triggers {
			if bytes.Equal(o.lit, t.lit) {
				return
			}
		}
	}
	best := -1
	for i, c := range t.lit {
		rank := strings.IndexByte(byteCommonness, c)
		if rank < 0 {
			rank = len(byteCommonness)
		}
		if rank > best {
			best, t.at = rank, i
		}
	}
	c := t.lit[t.at]
	for i := range r.anchors {
		if r.anchors[i].c == c {
			r.anchors[i].triggers = append(r.anchors[i].triggers, t)
			return
		}
	}
	r.anchors = append(r.anchors, anchor{c, []trigger{t}})
}

type exactSecret struct {
	kind  string
	forms [][]byte // the value, then its JSON-escaped form if different
	// numeric is set for a value that reads as a decimal number with at
	// least redactMinDigits significant digits; num is that number. A JSON
	// number equal to it is masked however it is spelled (1.2345678e7 for
	// 12345678): clients parse numbers and print them their own way.
	numeric bool
	num     float64
}

// redactMinDigits is the fewest significant digits for which a numeric
// secret is also looked for by value: fewer would make every line take
// the slow path, and mask ordinary numbers.
const redactMinDigits = 6

// secretPattern is a secret with a recognisable shape. Every match contains
// one of triggers, which are checked before the regexp runs.
type secretPattern struct {
	kind     string
	triggers []string
	re       *regexp.Regexp
	sub      int                 // submatch that is the secret; 0 for the whole match
	ok       func(m []byte) bool // extra check on a match, nil for none
}

var secretPatterns = []secretPattern{
	{"private-key", []string{"-----BEGIN"}, regexp.MustCompile(`-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY-----(?s:.*?)(-----END[A-Z0-9 ]{0,40} PRIVATE KEY-----|$)`), 0, nil},
	{"aws-access-key", []string{"AKIA", "ASIA"}, regexp.MustCompile(`\b(AKIA|ASIA)[A-Z0-9]{16}\b`), 0, nil},
	{"github-token", []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})\b`), 0, nil},
	{"gitlab-token", []string{"glpat-"}, regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`), 0, nil},
	{"slack-token", []string{"xox"}, regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`), 0, nil},
	{"jwt", []string{"eyJ"}, regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`), 0, nil},
	{"anthropic-key", []string{"sk-ant-"}, regexp.MustCompile(`(^|[^A-Za-z0-9_-])(sk-ant-[A-Za-z0-9_-]{20,})`), 2, nil},
	{"openai-key", []string{"sk-"}, regexp.MustCompile(`(^|[^A-Za-z0-9_-])(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})`), 2, looksLikeKey},
}

// NewRedactor returns a Redactor for the known secret shapes and for the
// given exact values, keyed by the environment variable that carried them
// into the sandbox. Values shorter than 8 bytes are ignored.
func NewRedactor(exact map[string]string) *Redactor {
	r := &Redactor{}
	names := make([]string, 0, len(exact))
	for name := range exact {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := exact[name]
		if len(v) < redactMinExact {
			continue
		}
		s := exactSecret{kind: name, forms: [][]byte{[]byte(v)}}
		esc := redactEscape(v)
		if esc != v {
			s.forms = append(s.forms, []byte(esc))
		}
		r.exact = append(r.exact, s)
		// The fast path must see the value however the line encodes it:
		// raw, escaped once, escaped twice (JSON text inside a string), or
		// by an encoder that escapes more than JSON needs ("\/",
		// "\u003c"). The prefix before the first byte any encoder might
		// escape is common to all of them; \u escapes have their own
		// trigger below.
		forms := []string{redactPlainPrefix(v)}
		if len(forms[0]) < 4 {
			forms = []string{v, esc, redactEscape(esc), strings.ReplaceAll(v, "/", `\/`)}
		}
		for _, t := range forms {
			r.addTrigger(trigger{lit: []byte(t[:min(len(t), 16)])})
		}
		if d, ok := significantDigits(v); ok && len(d) >= redactMinDigits {
			s.numeric = true
			s.num, _ = strconv.ParseFloat(v, 64)
			r.exact[len(r.exact)-1] = s
			// Every JSON spelling of the value holds its significant
			// digits, whole or cut once by the decimal point.
			for i := range len(d) {
				t := d
				if i > 0 {
					t = d[:i] + "." + d[i:]
				}
				r.addTrigger(trigger{lit: []byte(t[:min(len(t), 16)])})
			}
		}
	}
	// Longest first, so a value that contains another is masked whole.
	sort.SliceStable(r.exact, func(i, j int) bool { return len(r.exact[i].forms[0]) > len(r.exact[j].forms[0]) })
	for _, p := range secretPatterns {
		for _, t := range p.triggers {
			r.addTrigger(trigger{lit: []byte(t), word: t != "-----BEGIN", dash: strings.HasPrefix(t, "sk-")})
		}
	}
	// A \u escape can spell any of the above; such lines take the slow path.
	r.addTrigger(trigger{lit: []byte(`\u`)})
	return r
}

// Redact returns msg with secrets in its JSON string values replaced by
// [REDACTED:<kind>], and how many of each kind it replaced. A line with
// nothing to redact is returned as is, without allocating. Redact never
// fails: a line it cannot make sense of is returned unchanged.
func (r *Redactor) Redact(msg []byte) (out []byte, counts map[string]int) {
	if !r.mayContain(msg) {
		return msg, nil
	}
	// A bug here must cost a redaction, not the session.
	defer func() {
		if recover() != nil {
			out, counts = msg, nil
		}
	}()
	var b []byte // nil until the first change
	copied := 0  // msg[:copied] is already in b
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c == '-' || c-'0' <= 9 {
			// A number (outside strings, only numbers hold digits).
			end := i + 1
			for end < len(msg) && isNumberByte(msg[end]) {
				end++
			}
			kind, ok := r.secretNumber(msg[i:end])
			if ok {
				if b == nil {
					b = make([]byte, 0, len(msg)+64)
				}
				b = append(b, msg[copied:i]...)
				b = redactAppendString(b, "[REDACTED:"+kind+"]")
				copied = end
				if counts == nil {
					counts = map[string]int{}
				}
				counts[kind]++
			}
			i = end - 1
			continue
		}
		if msg[i] != '"' {
			continue
		}
		end, escaped := redactStringEnd(msg, i+1)
		if end < 0 {
			return msg, nil
		}
		lit := msg[i : end+1]
		i = end
		// Keys too: a secret as a member name reaches the model as well.
		if !r.mayContain(lit) {
			continue
		}
		var s string
		if escaped {
			if json.Unmarshal(lit, &s) != nil {
				return msg, nil
			}
		} else {
			s = string(lit[1 : len(lit)-1])
		}
		red, ok := r.redactString(s, &counts)
		if !ok {
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(msg)+64)
		}
		b = append(b, msg[copied:i+1-len(lit)]...)
		b = redactAppendString(b, red)
		copied = end + 1
	}
	if b == nil {
		return msg, nil
	}
	b = append(b, msg[copied:]...)
	if !json.Valid(b) && json.Valid(msg) {
		return msg, nil
	}
	return b, counts
}

// mayContain is the fast path: a few bytes.IndexByte scans, which run near
// memory speed, rule out almost every line. Long lines are scanned in
// blocks that stay in cache across the passes.
func (r *Redactor) mayContain(p []byte) bool {
	const block = 32 << 10
	for lo := 0; lo < len(p); lo += block {
		hi := min(lo+block, len(p))
		for _, a := range r.anchors {
			if r.anchorHit(p, lo, hi, &a) {
				return true
			}
		}
	}
	return false
}

// anchorHit reports whether one of a's triggers has its anchor byte in
// p[lo:hi]. The trigger itself may reach outside the block.
func (r *Redactor) anchorHit(p []byte, lo, hi int, a *anchor) bool {
	for off := lo; off < hi; {
		i := bytes.IndexByte(p[off:hi], a.c)
		if i < 0 {
			return false
		}
		i += off
		for _, t := range a.triggers {
			start := i - t.at
			if start >= 0 && bytes.HasPrefix(p[start:], t.lit) && (!t.word || wordStart(p, start, t.dash)) {
				return true
			}
		}
		off = i + 1
	}
	return false
}

// wordStart reports whether p[i] may start a word once the JSON string is
// decoded. After a letter that ends an escape ("\nAKIA…") it may; an
// escaped backslash before the letter makes that a false alarm, which only
// costs time.
func wordStart(p []byte, i int, dash bool) bool {
	if i == 0 || !isWordByte(p[i-1]) && (!dash || p[i-1] != '-') {
		return true
	}
	return i >= 2 && p[i-2] == '\\'
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

type secretSpan struct {
	start, end int
	kind       string
}

// redactString masks every secret in s; ok is false if there was none.
func (r *Redactor) redactString(s string, counts *map[string]int) (string, bool) {
	var spans []secretSpan
	taken := func(start, end int) bool {
		for _, sp := range spans {
			if start < sp.end && sp.start < end {
				return true
			}
		}
		return false
	}
	for _, e := range r.exact {
		for _, f := range e.forms {
			fs := string(f)
			for off := 0; ; {
				j := strings.Index(s[off:], fs)
				if j < 0 {
					break
				}
				start, end := off+j, off+j+len(fs)
				if !taken(start, end) {
					spans = append(spans, secretSpan{start, end, e.kind})
				}
				off = end
			}
		}
	}
	for _, p := range secretPatterns {
		if !secretContainsAny(s, p.triggers) {
			continue
		}
		for _, m := range p.re.FindAllStringSubmatchIndex(s, -1) {
			start, end := m[2*p.sub], m[2*p.sub+1]
			if p.ok != nil && !p.ok([]byte(s[start:end])) {
				continue
			}
			if !taken(start, end) {
				spans = append(spans, secretSpan{start, end, p.kind})
			}
		}
	}
	if len(spans) == 0 {
		return s, false
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	if *counts == nil {
		*counts = map[string]int{}
	}
	var b strings.Builder
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.start])
		b.WriteString("[REDACTED:" + sp.kind + "]")
		prev = sp.end
		(*counts)[sp.kind]++
	}
	b.WriteString(s[prev:])
	return b.String(), true
}

func secretContainsAny(s string, subs []string) bool {
	for _, t := range subs {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}

// looksLikeKey tells an API key from prose such as "sk-learn-compatible-
// models": a key mixes digits with upper- and lower-case letters and has
// high per-character entropy.
func looksLikeKey(m []byte) bool {
	body := m[bytes.LastIndexByte(m, '-')+1:]
	if len(body) < 20 {
		body = m[3:]
	}
	var lower, upper, digit bool
	var freq [256]int
	for _, c := range body {
		freq[c]++
		switch {
		case 'a' <= c && c <= 'z':
			lower = true
		case 'A' <= c && c <= 'Z':
			upper = true
		case '0' <= c && c <= '9':
			digit = true
		}
	}
	if !digit || !(lower || upper) || !(lower && upper) && len(body) < 32 {
		return false
	}
	var h float64
	for _, n := range freq {
		if n > 0 {
			p := float64(n) / float64(len(body))
			h -= p * math.Log2(p)
		}
	}
	return h >= 3.5
}

// redactStringEnd returns the index of the quote closing the JSON string whose
// contents start at i, or -1, and whether the string has escapes.
func redactStringEnd(p []byte, i int) (int, bool) {
	escaped := false
	for {
		j := bytes.IndexByte(p[i:], '"')
		if j < 0 {
			return -1, escaped
		}
		q := i + j
		n := 0
		for k := q - 1; k >= i && p[k] == '\\'; k-- {
			n++
		}
		if n > 0 || bytes.IndexByte(p[i:q], '\\') >= 0 {
			escaped = true
		}
		if n%2 == 0 {
			return q, escaped
		}
		i = q + 1
	}
}

// isNumberByte reports whether c may continue a JSON number.
func isNumberByte(c byte) bool {
	return c-'0' <= 9 || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// secretNumber reports which secret the number token tok holds: one
// written into it, or a numeric one equal to it.
func (r *Redactor) secretNumber(tok []byte) (kind string, ok bool) {
	var val float64
	parsed := false
	for _, e := range r.exact {
		if bytes.Contains(tok, e.forms[0]) {
			return e.kind, true
		}
		if !e.numeric {
			continue
		}
		if !parsed {
			if !isJSONNumber(tok) {
				return "", false
			}
			val, _ = strconv.ParseFloat(string(tok), 64)
			parsed = true
		}
		if val == e.num {
			return e.kind, true
		}
	}
	return "", false
}

// significantDigits returns the significant digits of s if s is a decimal
// number ("-0012.3400" gives "1234"), without leading or trailing zeros.
func significantDigits(s string) (string, bool) {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	intPart, frac, dot := strings.Cut(s, ".")
	if intPart == "" || dot && frac == "" {
		return "", false
	}
	for _, c := range []byte(intPart + frac) {
		if c-'0' > 9 {
			return "", false
		}
	}
	d := strings.TrimRight(strings.TrimLeft(intPart+frac, "0"), "0")
	return d, d != ""
}

// redactEscape returns the contents of s as a JSON string literal, without
// the quotes.
func redactEscape(s string) string {
	b := redactAppendString(nil, s)
	return string(b[1 : len(b)-1])
}

// redactPlainPrefix returns the part of s before the first byte that some JSON
// encoder escapes.
func redactPlainPrefix(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7F || strings.IndexByte(`"\\/<>&'`, c) >= 0 {
			return s[:i]
		}
	}
	return s
}

// redactAppendString appends s as a JSON string literal, escaping only what
// JSON requires so that untouched text keeps its shape.
func redactAppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
