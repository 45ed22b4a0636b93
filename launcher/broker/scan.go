package broker

// Tool-poisoning scan: static checks on the text an MCP server hands the
// model (tool names, descriptions, schema descriptions, instructions) for the
// published ways of hiding instructions in it. The scan is pure: it does no
// I/O and decides nothing; callers choose what a finding means (warn, pin,
// refuse). It looks for known tricks, so a clean result is not a proof of
// innocence.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Finding is one suspicious thing in a server's tool metadata.
type Finding struct {
	Rule     string `json:"rule"`     // e.g. "hidden-tag-chars"
	Severity string `json:"severity"` // "high", "medium" or "low"
	Field    string `json:"field"`    // e.g. "tools[3].inputSchema.properties.path.description"
	Excerpt  string `json:"excerpt"`  // the offending text, hidden characters escaped by EscapeHidden
}

// Severities, highest first.
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
	SeverityLow    = "low"
)

// scanLongDescription is the length past which a description is reported:
// poisoned ones bury their payload in pages of prose. Honest ones run long
// too: usage guides, examples and query-language primers of up to 6,400
// characters in the popular servers of testdata/toolcorpus, half of which
// have one past 2,000. Length alone is no sign of poisoning there, so it is
// only reported where it is out of that range.
const scanLongDescription = 8000

const scanMaxExcerpt = 120

// scanMaxRules is how much of one string the pattern rules read.
const scanMaxRules = 64 << 10

// scanCut returns where the pattern rules stop reading s: at most
// scanMaxRules bytes, on a rune boundary.
func scanCut(s string) int {
	if len(s) <= scanMaxRules {
		return len(s)
	}
	i := scanMaxRules
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// ScanTool scans one entry of a tools/list result: its name, title,
// description, annotations.title, and every "description" and "title" string
// anywhere in inputSchema and outputSchema. index is the tool's position in
// the list and appears in each Finding.Field. A tool that is not a JSON
// object yields no findings.
func ScanTool(tool json.RawMessage, index int) []Finding {
	var t map[string]any
	if err := json.Unmarshal(tool, &t); err != nil {
		return nil
	}
	prefix := "tools[" + strconv.Itoa(index) + "]"
	var out []Finding
	for _, k := range []string{"name", "title", "description"} {
		if s, ok := t[k].(string); ok {
			out = append(out, scanText(prefix+"."+k, s, k == "description")...)
		}
	}
	if a, ok := t["annotations"].(map[string]any); ok {
		if s, ok := a["title"].(string); ok {
			out = append(out, scanText(prefix+".annotations.title", s, false)...)
		}
	}
	for _, k := range []string{"inputSchema", "outputSchema"} {
		if v, ok := t[k]; ok {
			out = scanSchema(out, prefix+"."+k, v)
		}
	}
	return out
}

// scanSchema walks a JSON Schema in document order (map keys sorted, so the
// result is stable) and scans every description and title string.
func scanSchema(out []Finding, path string, v any) []Finding {
	switch v := v.(type) {
	case map[string]any:
		var buf [16]string // most schema objects have few keys
		keys := buf[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			switch e := v[k].(type) {
			case string:
				if k == "description" || k == "title" {
					out = append(out, scanText(path+"."+k, e, k == "description")...)
				}
			case map[string]any, []any:
				out = scanSchema(out, path+"."+k, e)
			}
		}
	case []any:
		for i, e := range v {
			switch e.(type) {
			case map[string]any, []any:
				out = scanSchema(out, path+"["+strconv.Itoa(i)+"]", e)
			}
		}
	}
	return out
}

// ScanInstructions scans the instructions string of an initialize result.
func ScanInstructions(s string) []Finding {
	return scanText("instructions", s, true)
}

// scanRule is a pattern matched against normalised text: lowercased, hidden
// characters dropped (so zero-width-split keywords join up), tag characters
// decoded to the ASCII they spell, whitespace runs collapsed to one space,
// or to a newline where they break the text into paragraphs or list items.
//
// Gaps between words are unbounded within a sentence (scanGap) rather than
// counted ("{0,120}"): a counted gap multiplies the regexp's state, and
// descriptions can be megabytes long. They must stop at the sentence's end:
// honest descriptions pair "when you need X" in one sentence with "instead"
// or "regardless" in the next, and a rule that reads across the boundary
// calls them poisoned.
type scanRule struct {
	rule     string
	severity string
	re       *regexp.Regexp
	// refusable: a match in a sentence that only says the thing is refused
	// ("paths such as ~/.ssh are rejected") does not count, unless that
	// sentence also reaches for it (scanReach).
	refusable bool
}

// scanGap is any run of text within one sentence. A sentence ends at '.',
// '!' or '?' followed by anything but a word character (so domains, file
// names, versions and URLs stay inside it; "e.g. " and "i.e. " too) and at
// a hard line break (see scanNormalise).
const scanGap = `(?:[^.!?\n]|[.!?]\w|\b(?:e\.g|i\.e|etc|vs|cf)\.\s)*`

// scanRefusal says that a sentence keeps something out rather than asks
// for it; scanReach says that it asks for it after all.
var (
	scanRefusal = regexp.MustCompile(`\b(rejected|refused|blocked|denied|forbidden|disallowed|prohibited|excluded|protected|not\s+(allowed|permitted|accessible|accessed|read)|never\s+(read|accessed|opened|returned|exposed|shown|sent|staged|included|uploaded|logged))\b`)
	scanReach   = regexp.MustCompile(`\b(reads?|open|cat|load|send|upload|include|pass|copy|attach|paste|put|place|embed|append|add|insert|forward|post|transmit|share|provide|supply|give|fetch|grab|retrieve|extract|dump|print|show|display|output|echo|collect|gather|exfiltrate|leak|fill|enter|hold|contains?|contents?|text|body|value|do\s+the\s+same)\b`)
)

var scanRules = []scanRule{
	// Pseudo-tags that frame text as a higher-priority instruction.
	{"instruction-marker", SeverityHigh, regexp.MustCompile(`<\s*/?\s*(important|system|instructions?|secret|critical|hidden|admin|assistant|override)\b[^>]{0,40}>`), false},
	{"instruction-marker", SeverityHigh, regexp.MustCompile(`\b(ignore|disregard|forget|override)\s+(all\s+|any\s+)?(of\s+)?(the\s+|your\s+)?(previous|prior|above|earlier|other|preceding|existing|all)\s+(instructions|rules|directions|guidelines|prompts?)`), false},
	{"instruction-marker", SeverityHigh, regexp.MustCompile(`\b(do\s+not|don't|never|must\s+not)\s+(tell|mention|inform|notify|reveal|alert|show|disclose)\b` + scanGap + `\buser\b`), false},
	{"instruction-marker", SeverityHigh, regexp.MustCompile(`\bwithout\s+(telling|informing|notifying|alerting|asking)\s+(the\s+)?user\b`), false},
	{"instruction-marker", SeverityMedium, regexp.MustCompile(`\bbefore\s+(using|calling|invoking|running)\s+(this|the|any)\s+tool\b` + scanGap + `\b(read|send|upload|pass|forward|include|access|cat|open|fetch|call)\b`), false},
	{"instruction-marker", SeverityMedium, regexp.MustCompile(`\b(this\s+is\s+(very\s+|extremely\s+|really\s+)+important|very\s+very\s+important|(extremely|critically)\s+important)\b`), false},
	{"instruction-marker", SeverityMedium, regexp.MustCompile(`\b(otherwise|or\s+else|if\s+not)\b` + scanGap + `\b(tool|it|this)\s+(will|would)\s+(not\s+work|fail|break|crash|stop\s+working)`), false},
	{"instruction-marker", SeverityMedium, regexp.MustCompile(`\byou\s+(must|should|have\s+to|need\s+to)\s+(always\s+|also\s+|first\s+|now\s+|secretly\s+|silently\s+)*(read|send|forward|upload|exfiltrate|leak|bcc|ignore|disregard|not\s+(tell|mention|inform|reveal))\b`), false},
	{"instruction-marker", SeverityMedium, regexp.MustCompile(`\b(the\s+)?(assistant|model|ai|llm|agent)\s+(must|should)\s+(always\s+|also\s+|first\s+|secretly\s+|silently\s+)*(read|send|forward|upload|call|ignore|not\s+(tell|mention|inform|reveal))\b`), false},
	{"instruction-marker", SeverityMedium, regexp.MustCompile(`\b(system\s+prompt|previous\s+conversation|conversation\s+history|chat\s+history)\b` + scanGap + `\b(send|include|pass|upload|forward|put|add|append)\b`), false},
	// Sensitive files. The paths are rare in honest descriptions and a
	// staple of published poisoning examples; an honest one names them to
	// say they are refused ("hidden config directories (e.g. "/etc",
	// "~/.ssh") are rejected"), which is what refusable lets through.
	{rule: "sensitive-path", severity: SeverityHigh, refusable: true, re: regexp.MustCompile(`(~|\$home|%userprofile%)?/?\.ssh\b|\bid_(rsa|dsa|ecdsa|ed25519)\b|\bmcp\.json\b|\bclaude_desktop_config|\.aws/(credentials|config)\b|/etc/(shadow|passwd|sudoers)\b|\.netrc\b|\.git-credentials\b|\.docker/config\.json|\.kube/config\b|\.cursor/|\.npmrc\b|\.pgpass\b|\bwallet\.dat\b`)},
	// ".env" is named in honest descriptions too ("files such as .env are
	// never staged"), so it needs a verb that reaches for its contents.
	{"sensitive-path", SeverityHigh, regexp.MustCompile(`\b(reads?|open|cat|load|send|upload|include|pass|copy|attach|paste|put|embed|append|insert|forward|post|share|provide|supply|fetch|grab|retrieve|extract|dump|print|show|output|contents?\s+of)\b` + scanGap + `(^|[\s'"` + "`" + `(/~])\.env\b`), false},
	// Secrets in the same sentence as a way out of the conversation.
	{"secret-exfiltration", SeverityHigh, regexp.MustCompile(`\b(private\s+keys?|api[\s_-]?keys?|secret\s+keys?|access\s+tokens?|auth(entication)?\s+tokens?|passwords?|credentials|ssh\s+keys?|seed\s+phrase|mnemonic|session\s+cookies?|environment\s+variables)\b` + scanGap + `\b(send|upload|transmit|forward|exfiltrate|leak|post|pass\s+(it|them|its|their)|paste|embed|append|attach|include\s+(it|them|its|their))\b|\b(send|upload|transmit|forward|exfiltrate|leak|paste|embed|append|attach)\b` + scanGap + `\b(private\s+keys?|api[\s_-]?keys?|secret\s+keys?|access\s+tokens?|passwords?|credentials|ssh\s+keys?|seed\s+phrase|session\s+cookies?|environment\s+variables)\b`), false},
	// Descriptions that reach into other tools' behaviour or the user's
	// requests. "When you need X, ..." is everyday tool-selection advice,
	// so the redirect must be in the same sentence.
	{"tool-shadowing", SeverityMedium, regexp.MustCompile(`\bwhen(ever)?\s+(the\s+user|you|the\s+assistant|the\s+agent|the\s+model)\b` + scanGap + `\b(instead|rather\s+than|regardless|redirect|bcc)\b`), false},
	{"tool-shadowing", SeverityMedium, regexp.MustCompile(`\b(other|another|also\s+present|existing|any\s+other|all\s+other)\s+(mcp\s+)?(tools?|servers?|functions?)\b` + scanGap + `\b(must|instead|always|side\s+effect|redirect|override|replace)\b`), false},
	{"tool-shadowing", SeverityMedium, regexp.MustCompile(`\b(send|sent|forward|redirect|bcc|cc|copy|route)\b` + scanGap + `\b[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}\b`), false},
	// A recipient, payee or account swapped for another: what a rug pull
	// does to a messaging or payment tool, whatever the sentence starts
	// with ("if the user ...", "for every transfer ...").
	{"tool-shadowing", SeverityMedium, regexp.MustCompile(`\b(recipients?|payees?|beneficiar(y|ies)|destination\s+(address|account|number)|(e-?mail|wallet|bank|iban|btc|eth)\s+address(es)?|account\s+numbers?|phone\s+numbers?|iban)\b` + scanGap + `\binstead\b`), false},
	{"tool-shadowing", SeverityMedium, regexp.MustCompile(`\binstead\b` + scanGap + `\b(recipients?|payees?|beneficiar(y|ies))\b`), false},
	{"tool-shadowing", SeverityMedium, regexp.MustCompile(`\b(silently|secretly|quietly|covertly|always)\s+(change|replace|swap|substitute|switch|alter|redirect|reroute|override)\b` + scanGap + `\b(recipients?|payees?|beneficiar(y|ies)|destination|address|account|number)\b`), false},
	// Comments vanish when a description is rendered as Markdown or HTML,
	// but the model still reads them.
	{"html-comment", SeverityMedium, regexp.MustCompile(`<!--[\s\S]*?\S[\s\S]*?-->`), false},
}

// scanText runs every rule on one string. Each rule reports at most once
// per field, with the highest severity it reached.
func scanText(field, s string, isDescription bool) []Finding {
	out := scanHidden(nil, field, s)

	// The rules run on a bounded prefix: a megabyte description is
	// reported as long anyway, and the regexps' linear time is still time.
	cut := scanCut(s)
	norm, _ := scanNormalise(s[:cut], false)
	index, plans := scanPrepared()
	words := index.find(norm)
	var offs []int // built with the first match: most text has none
	var seen map[string]int
	for i, r := range scanRules {
		p := plans[i]
		if !words.holds(p.need) {
			continue
		}
		loc := r.find(norm, p)
		if loc == nil || loc[0] >= len(norm) {
			continue
		}
		if offs == nil {
			_, offs = scanNormalise(s[:cut], true)
			seen = map[string]int{}
		}
		start, end := offs[loc[0]], cut
		if loc[1] < len(offs) {
			end = offs[loc[1]]
		}
		f := Finding{r.rule, r.severity, field, scanExcerpt(s, start, end)}
		if j, ok := seen[r.rule]; ok {
			if scanSeverityRank(r.severity) > scanSeverityRank(out[j].Severity) {
				out[j] = f
			}
			continue
		}
		seen[r.rule] = len(out)
		out = append(out, f)
	}

	if isDescription {
		if n := utf8.RuneCountInString(s); n > scanLongDescription {
			out = append(out, Finding{"long-description", SeverityMedium, field, fmt.Sprintf("%d characters", n)})
		}
	}
	return out
}

// find returns the first match of r in norm that counts. It reads the
// part of norm that p says a match can be in.
func (r scanRule) find(norm string, p scanPlan) []int {
	lo, hi := p.window(norm)
	if !r.refusable {
		loc := r.re.FindStringIndex(norm[lo:hi])
		if loc == nil {
			return nil
		}
		return []int{lo + loc[0], lo + loc[1]}
	}
	// Each sentence is judged once, however many matches it holds, so the
	// cost stays linear in the text.
	refused := -1 // the end of the last sentence found refusing
	for _, loc := range r.re.FindAllStringIndex(norm[lo:hi], -1) {
		loc[0], loc[1] = lo+loc[0], lo+loc[1]
		if loc[0] < refused {
			continue
		}
		from, to := scanSentence(norm, loc[0], loc[1])
		if sen := norm[from:to]; !scanRefusal.MatchString(sen) || scanReach.MatchString(sen) {
			return loc
		}
		refused = to
	}
	return nil
}

// scanSentence returns the bounds of the sentence of norm around
// [start, end), with the boundaries scanGap stops at.
func scanSentence(norm string, start, end int) (from, to int) {
	from = start
	for from > 0 && !scanSentenceEnd(norm, from-1) {
		from--
	}
	to = end
	for to < len(norm) && !scanSentenceEnd(norm, to) {
		to++
	}
	return from, to
}

// scanSentenceEnd reports whether norm[i] ends a sentence: a newline, or
// '.', '!' or '?' before a space or the end of the text.
func scanSentenceEnd(norm string, i int) bool {
	switch norm[i] {
	case '\n':
		return true
	case '.', '!', '?':
		return i+1 == len(norm) || norm[i+1] == ' ' || norm[i+1] == '\n'
	}
	return false
}

func scanSeverityRank(s string) int {
	switch s {
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// scanHidden appends to out what s hides: tag characters, which render as
// nothing but spell ASCII that a model reads (the excerpt shows the decoded
// text), zero-width characters, bidi controls and other control characters.
// Each kind is reported once, at its first occurrence.
func scanHidden(out []Finding, field, s string) []Finding {
	tag, zero, bidi, ctl := -1, -1, -1, -1
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if ctl < 0 && isControlRune(rune(c)) {
				ctl = i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case tag < 0 && isTagRune(r):
			tag = i
		case zero < 0 && isZeroWidth(r):
			zero = i
		case bidi < 0 && isBidi(r):
			bidi = i
		case ctl < 0 && isControlRune(r):
			ctl = i
		}
		i += size
	}
	if tag >= 0 {
		var hidden strings.Builder
		for _, r := range s[tag:] {
			if isTagRune(r) && r >= 0xE0020 && r <= 0xE007E {
				hidden.WriteRune(r - 0xE0000)
			}
		}
		h := hidden.String()
		if len(h) > scanMaxExcerpt {
			h = h[:scanMaxExcerpt] + "…"
		}
		out = append(out, Finding{"hidden-tag-chars", SeverityHigh, field, "hidden text " + strconv.Quote(h) + " in " + scanExcerpt(s, tag, tag+4)})
	}
	if zero >= 0 {
		out = append(out, Finding{"zero-width-chars", SeverityHigh, field, scanExcerpt(s, zero, zero+1)})
	}
	if bidi >= 0 {
		out = append(out, Finding{"bidi-controls", SeverityHigh, field, scanExcerpt(s, bidi, bidi+1)})
	}
	if ctl >= 0 {
		out = append(out, Finding{"control-chars", SeverityMedium, field, scanExcerpt(s, ctl, ctl+1)})
	}
	return out
}

// scanNormalise lowercases s, drops invisible characters, decodes tag
// characters and collapses whitespace: a run becomes one newline where it
// breaks the text (a blank line, or a line break before a list item or a
// heading) and one space elsewhere, since prose is often wrapped mid-sentence.
// With withOffs, offs maps each byte of the result to the offset of the rune
// of s it came from; scanText asks for it only once a rule matched.
func scanNormalise(s string, withOffs bool) (norm string, offs []int) {
	n := scanNormaliser{run: -1}
	n.b.Grow(len(s))
	if withOffs {
		n.offs = make([]int, 0, len(s))
	}
	for i := 0; i < len(s); {
		// Most text is lowercase ASCII, copied as it is.
		j := i
		for j < len(s) && scanPlain(s[j]) {
			j++
		}
		if j > i {
			n.flush(s, i)
			n.b.WriteString(s[i:j])
			for k := i; withOffs && k < j; k++ {
				n.offs = append(n.offs, k)
			}
			i = j
			continue
		}
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		at := i
		i += size
		switch {
		case r < utf8.RuneSelf:
			// Of ASCII, only controls are invisible (no format or tag
			// characters there).
			if isControlRune(r) {
				continue
			}
		case isTagRune(r):
			if r < 0xE0020 || r > 0xE007E {
				continue
			}
			r -= 0xE0000
		case isInvisible(r):
			continue
		}
		if r == ' ' || r == '\n' || r == '\t' || r == '\r' || r >= utf8.RuneSelf && unicode.IsSpace(r) {
			if n.run < 0 {
				n.run, n.newlines = at, 0
			}
			if r == '\n' {
				n.newlines++
			}
			continue
		}
		n.flush(s, at)
		k := n.b.Len()
		n.b.WriteRune(unicode.ToLower(r))
		for ; withOffs && k < n.b.Len(); k++ {
			n.offs = append(n.offs, at)
		}
	}
	if n.run >= 0 {
		n.write(' ', n.run)
	}
	return n.b.String(), n.offs
}

// scanNormaliser is the state of scanNormalise. A whitespace run is
// written when the next visible rune, at s[at:], shows whether it was a
// break.
type scanNormaliser struct {
	b             strings.Builder
	offs          []int
	run, newlines int // where the whitespace run started (-1: none), and its line breaks
}

func (n *scanNormaliser) flush(s string, at int) {
	if n.run < 0 {
		return
	}
	if n.newlines > 1 || n.newlines == 1 && scanListItem(s[at:]) {
		n.write('\n', n.run)
	} else {
		n.write(' ', n.run)
	}
	n.run = -1
}

func (n *scanNormaliser) write(c byte, at int) {
	n.b.WriteByte(c)
	if n.offs != nil {
		n.offs = append(n.offs, at)
	}
}

// scanPlain reports whether scanNormalise keeps c as it is: printable
// ASCII other than space and capitals.
func scanPlain(c byte) bool {
	return '!' <= c && c <= '~' && !('A' <= c && c <= 'Z')
}

// scanListItem reports whether a line starting with s is a list item, a
// heading, a quote or a table row rather than the rest of a wrapped sentence.
func scanListItem(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '-', '*', '+', '#', '>', '|':
		return true
	}
	if strings.HasPrefix(s, "•") {
		return true
	}
	i := 0
	for i < len(s) && i < 4 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i > 0 && i < len(s) && (s[i] == '.' || s[i] == ')')
}

func scanExcerpt(s string, start, end int) string {
	const context = 30
	if end-start > scanMaxExcerpt {
		end = start + scanMaxExcerpt
		for end > start && !utf8.RuneStart(s[end]) {
			end--
		}
	}
	from, to := start, end
	for n := 0; from > 0 && n < context; n++ {
		_, size := utf8.DecodeLastRuneInString(s[:from])
		from -= size
	}
	for to < len(s) && to-from < scanMaxExcerpt {
		_, size := utf8.DecodeRuneInString(s[to:])
		to += size
	}
	e := EscapeHidden(s[from:to])
	cut := to < len(s)
	// Escapes are long (\u{E0041} for one tag character), so cap the
	// shown text too, not just the span of s.
	if n := 0; len(e) > scanMaxExcerpt {
		for i := range e {
			if n == scanMaxExcerpt+40 {
				e, cut = e[:i], true
				break
			}
			n++
		}
	}
	if from > 0 {
		e = "…" + e
	}
	if cut {
		e += "…"
	}
	return e
}

func isTagRune(r rune) bool { return r >= 0xE0000 && r <= 0xE007F }

func isZeroWidth(r rune) bool {
	return r >= 0x200B && r <= 0x200F || r >= 0x2060 && r <= 0x2064 || r == 0xFEFF
}

func isBidi(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x061C
}

// isControlRune reports C0 and C1 controls other than tab, newline and carriage
// return; ESC among them drives terminal escape sequences.
func isControlRune(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0x7F && r <= 0x9F
}

// isInvisible reports runes that render as nothing or move other text
// around: format characters, variation selectors and fillers.
func isInvisible(r rune) bool {
	switch {
	case isTagRune(r), isZeroWidth(r), isBidi(r), isControlRune(r):
		return true
	case r == 0x00AD, r == 0x034F, r == 0x115F, r == 0x1160, r == 0x17B4, r == 0x17B5,
		r == 0x180E, r == 0x3164, r == 0xFFA0, r == 0x2028, r == 0x2029:
		return true
	case r >= 0xFE00 && r <= 0xFE0F, r >= 0xE0100 && r <= 0xE01EF, r >= 0xFFF9 && r <= 0xFFFB:
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// EscapeHidden returns s with every invisible, control, tag or bidi rune
// written as an escape: \u200B for the Basic Multilingual Plane,
// \u{E0041} above it. Tab, newline and carriage return become \t, \n, \r;
// invalid UTF-8 bytes become \xFF.
func EscapeHidden(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02X`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case isInvisible(r) && r > 0xFFFF:
			fmt.Fprintf(&b, `\u{%X}`, r)
		case isInvisible(r):
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// ScanShadowing reports names in toolNames that look like a tool name of
// another server without being equal to it: after case folding, dropping
// separators (-, _, ., space) and invisible characters, and mapping Cyrillic,
// Greek, full-width and digit look-alikes to Latin letters, the two are the
// same. A model or a user picking tools by name can be steered to the
// look-alike. A name equal to another server's is not reported: it is no
// disguise, clients tell the two apart by server, and popular servers share
// the obvious names (read_file, create_issue, search_nodes) by the dozen.
// Each look-alike pair is reported once, however many servers have the name.
func ScanShadowing(toolNames []string, otherServersTools []string) []Finding {
	others := make(map[string][]string, len(otherServersTools))
	for _, o := range otherServersTools {
		k := nameSkeleton(o)
		if !slices.Contains(others[k], o) {
			others[k] = append(others[k], o)
		}
	}
	var out []Finding
	for i, name := range toolNames {
		field := "tools[" + strconv.Itoa(i) + "].name"
		for _, o := range others[nameSkeleton(name)] {
			switch {
			case o == name:
			case strings.EqualFold(stripSeparators(o), stripSeparators(name)):
				out = append(out, Finding{"tool-name-confusable", SeverityMedium, field, EscapeHidden(name) + " resembles " + EscapeHidden(o)})
			default:
				out = append(out, Finding{"tool-name-confusable", SeverityHigh, field, escapeNonASCII(name) + " resembles " + escapeNonASCII(o)})
			}
		}
	}
	return out
}

func stripSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		if isNameSeparator(r) {
			return -1
		}
		return r
	}, s)
}

func isNameSeparator(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ' ' }

// escapeNonASCII shows which letters of a confusable name are not what they
// seem.
func escapeNonASCII(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r > 0xFFFF:
			fmt.Fprintf(&b, `\u{%X}`, r)
		case r >= utf8.RuneSelf:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// confusables maps look-alikes to the Latin letter they imitate, after
// lowercasing. A small hand-picked subset of Unicode's confusables.txt:
// the letters that pass for Latin in tool names.
var confusables = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p',
	'с': 'c', 'т': 't', 'у': 'y', 'х': 'x', 'і': 'i', 'ї': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd',
	'ԛ': 'q', 'ԝ': 'w', 'һ': 'h', 'ӏ': 'l', 'ɡ': 'g', 'ո': 'n', 'ս': 'u', 'ь': 'b', 'ү': 'y',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'ζ': 'z', 'η': 'n', 'ι': 'i', 'κ': 'k', 'μ': 'u', 'ν': 'v',
	'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'ω': 'w', 'γ': 'y',
	// Latin extensions and symbols
	'ı': 'i', 'ℓ': 'l', 'ꞁ': 'l', 'ǀ': 'l', 'ɑ': 'a', 'ɩ': 'i', 'ʏ': 'y',
	// Digits that pass for letters
	'0': 'o', '1': 'l',
}

// nameSkeleton reduces a tool name to the form used to compare look-alikes.
func nameSkeleton(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
			r -= 0xFF01 - 0x21
		}
		if isNameSeparator(r) || isInvisible(r) {
			continue
		}
		if r == 'I' || r == 'Ι' || r == 'І' || r == 'Ӏ' {
			r = 'l' // capital I and small l are one glyph in many fonts
		}
		r = unicode.ToLower(r)
		if c, ok := confusables[r]; ok {
			r = c
		}
		b.WriteRune(r)
	}
	return b.String()
}
