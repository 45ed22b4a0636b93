package broker

// The word index that keeps the scan cheap: each rule's regexp is read once
// (regexp/syntax) for the words every match must contain and start and end
// with; one Aho-Corasick pass finds which of those words a text holds, and a
// rule's regexp runs only on text that holds them, only over the window where
// a match could be. Findings are exactly the regexps' own
// (TestScanRulePlans, FuzzScanRules).

import (
	"cmp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
)

// Go's regexp package has no DFA: a rule's regexp, an alternation of
// words tried at every position of the text, costs tens to hundreds of
// nanoseconds a byte, and the rules made the scan of an honest 50-tool
// server take some 30 ms. So each rule runs to a plan worked out from its
// regexp's syntax (scanAnalyse): words that each match contains, and words
// that a match starts and ends with. One pass of an Aho-Corasick automaton
// of all the rules' words (scanIndex) tells which of them a text holds. A
// rule's regexp runs only on text that holds a word of each clause of its
// need, and only from the first word a match can start with to the end of
// the last it can end with. Honest text seldom holds all of a rule's words,
// so most rules never run their regexp. The words are read from the
// regexps, not listed beside them, so a rule cannot be edited into one that
// its words miss; TestScanRulePlans checks that plans change no result.
//
// The plans are worked out when the scan is first used: it takes some
// milliseconds that a process which never scans need not pay.
var scanPrepared = sync.OnceValues(func() (*scanIndex, []scanPlan) { return scanIndexRules(scanRules) })

// scanPlan is how scanText runs a rule, in sets of words of index.
type scanPlan struct {
	index *scanIndex
	need  []scanSet // clauses: a match holds a word of each
	// A match starts with a word of prefix and ends with one of suffix;
	// nil if that is not known.
	prefix, suffix scanSet
}

// scanIndexRules works out the plan of each rule.
func scanIndexRules(rules []scanRule) (*scanIndex, []scanPlan) {
	type plan struct {
		need           [][]string
		prefix, suffix []string
	}
	plans := make([]plan, len(rules))
	for i, r := range rules {
		tree, err := syntax.Parse(r.re.String(), syntax.Perl)
		if err != nil {
			panic(err) // unreachable: r.re was compiled from it with the same flags
		}
		x := scanAnalyse(tree)
		plans[i].need = scanNeed(x)
		// Where the regexp reads ^, the text it reads must start where the
		// whole does; where it reads $, end there.
		if !scanHas(tree, syntax.OpBeginLine, syntax.OpBeginText) {
			plans[i].prefix = scanEnds(x.prefix)
		}
		if !scanHas(tree, syntax.OpEndLine, syntax.OpEndText) {
			plans[i].suffix = scanEnds(x.suffix)
		}
	}
	ids := map[string]int32{}
	var words []string
	for _, p := range plans {
		for _, w := range slices.Concat(slices.Concat(p.need...), p.prefix, p.suffix) {
			if _, ok := ids[w]; !ok {
				ids[w] = int32(len(words))
				words = append(words, w)
			}
		}
	}
	set := func(c []string) scanSet {
		if len(c) == 0 {
			return nil
		}
		f := make(scanSet, (len(words)+63)/64)
		for _, w := range c {
			f[ids[w]/64] |= 1 << (ids[w] % 64)
		}
		return f
	}
	x := newScanIndex(words)
	out := make([]scanPlan, len(plans))
	for i, p := range plans {
		out[i] = scanPlan{index: x, prefix: set(p.prefix), suffix: set(p.suffix)}
		for _, c := range p.need {
			out[i].need = append(out[i].need, set(c))
		}
	}
	return x, out
}

// window returns the part of norm where a match of the rule can be: from
// the first word of p.prefix to the end of the last of p.suffix, widened
// to the nearest non-word characters so that \b reads the same in the
// part as in the whole.
func (p scanPlan) window(norm string) (lo, hi int) {
	lo, hi = p.index.span(norm, p.prefix, p.suffix)
	for lo > 0 && syntax.IsWordChar(rune(norm[lo-1])) {
		lo--
	}
	for hi < len(norm) && syntax.IsWordChar(rune(norm[hi])) {
		hi++
	}
	return lo, max(lo, hi)
}

// scanHas reports whether re holds one of ops.
func scanHas(re *syntax.Regexp, ops ...syntax.Op) bool {
	return slices.Contains(ops, re.Op) || slices.ContainsFunc(re.Sub, func(sub *syntax.Regexp) bool { return scanHas(sub, ops...) })
}

// scanMark stands for \b in the strings of scanLits and in words: a NUL,
// which the rules do not look for (scanNormalise drops it).
const scanMark = "\x00"

// scanSpace maps ASCII white space to a space: the words of the rules have
// spaces for all of it, and scanIndex reads any of it as a space. (The text
// the rules read holds only spaces and newlines, and \s matches either.)
func scanSpace(r rune) rune {
	switch r {
	case '\t', '\n', '\v', '\f', '\r':
		return ' '
	}
	return r
}

// scanMaxLits bounds the sets of strings of scanLits: where joining two
// would make more, the analysis settles for less precise clauses.
const scanMaxLits = 64

// scanLits is what the syntax of a regexp says about the strings it
// matches, after the trigram index of Russ Cox's "Regular Expression
// Matching with a Trigram Index", with whole strings for trigrams.
type scanLits struct {
	exact          []string   // every string it matches, if known
	known          bool       // exact is known: finitely many and few
	prefix, suffix []string   // a match starts with one of prefix and ends with one of suffix
	need           [][]string // a match contains a string of each clause
}

func scanExact(s ...string) scanLits {
	return scanLits{exact: s, known: true, prefix: s, suffix: s}
}

// scanAny is what is known of a regexp that may match anything: nothing.
func scanAny() scanLits {
	return scanLits{prefix: []string{""}, suffix: []string{""}}
}

// scanNeed returns the clauses of x, with \b written as scanMark, less
// those that others imply. Whatever the analysis cannot tell is left out:
// a missing clause costs time, a wrong one would cost a detection.
func scanNeed(x scanLits) [][]string {
	var need [][]string
	for _, c := range append(x.need, x.prefix, x.suffix) {
		// Text of more than a word holds a space: a clause with a word of
		// spaces only would keep no regexp from running, and would make the
		// index stop at every space.
		if c = scanClause(c); c != nil && !slices.ContainsFunc(c, func(w string) bool { return strings.Trim(w, " "+scanMark) == "" }) {
			need = append(need, c)
		}
	}
	// A clause that another implies is left out: "important" makes
	// "important, extremely or critically" redundant.
	var out [][]string
	for i, c := range need {
		implied := slices.ContainsFunc(need[:i], func(o []string) bool { return scanClauseImplies(o, c) }) ||
			slices.ContainsFunc(need[i+1:], func(o []string) bool { return scanClauseImplies(o, c) && !scanClauseImplies(c, o) })
		if !implied {
			out = append(out, c)
		}
	}
	return out
}

// scanAnalyse works out what the syntax of re says about its matches.
// (A NUL in it would read as a scanMark: it is taken for anything.)
func scanAnalyse(re *syntax.Regexp) scanLits {
	switch re.Op {
	case syntax.OpLiteral:
		if s := string(re.Rune); re.Flags&syntax.FoldCase == 0 && !strings.Contains(s, scanMark) {
			return scanExact(strings.Map(scanSpace, s))
		}
	case syntax.OpCharClass:
		var s []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1] && len(s) <= 8; r++ {
				if c := string(scanSpace(r)); !slices.Contains(s, c) {
					s = append(s, c)
				}
			}
		}
		if len(s) <= 8 && !slices.Contains(s, scanMark) {
			return scanExact(s...)
		}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText, syntax.OpNoWordBoundary:
		return scanExact("")
	case syntax.OpWordBoundary:
		return scanExact(scanMark)
	case syntax.OpCapture:
		return scanAnalyse(re.Sub[0])
	case syntax.OpQuest:
		return scanOptional(scanAnalyse(re.Sub[0]))
	case syntax.OpPlus:
		return scanSome(scanAnalyse(re.Sub[0]))
	case syntax.OpRepeat:
		switch {
		case re.Min >= 1:
			return scanSome(scanAnalyse(re.Sub[0]))
		case re.Max == 1:
			return scanOptional(scanAnalyse(re.Sub[0]))
		}
	case syntax.OpConcat:
		x := scanExact("")
		for _, sub := range re.Sub {
			x = scanConcat(x, scanAnalyse(sub))
		}
		return x
	case syntax.OpAlternate:
		return scanAlternate(re.Sub)
	}
	return scanAny()
}

// scanOptional is x or nothing.
func scanOptional(x scanLits) scanLits {
	if !x.known || len(x.exact) >= scanMaxLits {
		return scanAny()
	}
	return scanExact(append(slices.Clip(x.exact), "")...)
}

// scanSome is one or more of x: a match of it starts with a match of x and
// ends with one.
func scanSome(x scanLits) scanLits {
	return scanLits{prefix: x.prefix, suffix: x.suffix, need: x.need}
}

// scanConcat is x then y. Where x ends y starts: that joint is a clause.
func scanConcat(x, y scanLits) scanLits {
	need := append(slices.Clip(x.need), y.need...)
	if x.known && y.known {
		if s, ok := scanCross(x.exact, y.exact); ok {
			out := scanExact(s...)
			out.need = need
			return out
		}
	}
	out := scanLits{prefix: x.prefix, suffix: y.suffix, need: need}
	if x.known {
		if s, ok := scanCross(x.exact, y.prefix); ok {
			out.prefix = s
		}
	}
	if y.known {
		if s, ok := scanCross(x.suffix, y.exact); ok {
			out.suffix = s
		}
	}
	if s, ok := scanCross(x.suffix, y.prefix); ok {
		out.need = append(out.need, s)
	} else {
		out.need = append(out.need, x.suffix, y.prefix)
	}
	return out
}

// scanCross returns every string of a followed by one of b, if there are
// few.
func scanCross(a, b []string) ([]string, bool) {
	if len(a)*len(b) > scanMaxLits {
		return nil, false
	}
	out := make([]string, 0, len(a)*len(b))
	for _, s := range a {
		for _, t := range b {
			out = append(out, s+t)
		}
	}
	return out, true
}

// scanAlternate is one of subs. A match is a match of one branch and
// contains a string of each of that branch's clauses, so the union of a
// clause of every branch is a clause of the whole; it is taken for a few
// of each branch's best.
func scanAlternate(subs []*syntax.Regexp) scanLits {
	xs := make([]scanLits, len(subs))
	var exact, prefix, suffix []string
	known := true
	for i, sub := range subs {
		x := scanAnalyse(sub)
		xs[i] = x
		known = known && x.known
		exact = append(exact, x.exact...)
		prefix = append(prefix, x.prefix...)
		suffix = append(suffix, x.suffix...)
	}
	if known && len(exact) <= scanMaxLits {
		return scanExact(exact...)
	}
	out := scanAny()
	if len(prefix) <= scanMaxLits {
		out.prefix = prefix
	}
	if len(suffix) <= scanMaxLits {
		out.suffix = suffix
	}
	const perBranch, most = 3, 9
	acc := [][]string{nil}
	for _, x := range xs {
		var best [][]string
		for _, c := range append(slices.Clip(x.need), x.prefix, x.suffix) {
			if c = scanClause(c); c != nil {
				best = append(best, c)
			}
		}
		if len(best) == 0 {
			return out // this branch may match text that holds no word
		}
		slices.SortStableFunc(best, scanBetter)
		var next [][]string
		for _, a := range acc {
			for _, c := range best[:min(perBranch, len(best))] {
				next = append(next, append(slices.Clip(a), c...))
			}
		}
		slices.SortStableFunc(next, scanBetter)
		acc = next[:min(most, len(next))]
	}
	out.need = acc
	return out
}

// scanClause returns c without its redundant strings, those that imply
// another of c; nil if c holds a string that is empty but for boundaries,
// which any text holds.
func scanClause(c []string) []string {
	var out []string
	for i, w := range c {
		if core, _ := scanUnmark(w); core == "" {
			return nil
		}
		if slices.Contains(c[:i], w) || slices.ContainsFunc(c, func(o string) bool { return o != w && scanImplies(w, o) }) {
			continue
		}
		out = append(out, w)
	}
	return out
}

// scanEnds returns c without repeats; nil if c holds a string that is
// empty but for boundaries. Unlike scanClause it keeps the strings that
// imply others: "~/.ssh" starts a match earlier than ".ssh" does.
func scanEnds(c []string) []string {
	var out []string
	for _, w := range c {
		if core, _ := scanUnmark(w); core == "" {
			return nil
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// scanBetter orders clauses by how few texts they are likely to let
// through: by the length of their shortest word.
func scanBetter(a, b []string) int {
	shortest := func(c []string) int {
		n := -1
		for _, w := range c {
			if n < 0 || len(w) < n {
				n = len(w)
			}
		}
		return n
	}
	return cmp.Or(shortest(b)-shortest(a), len(a)-len(b))
}

// scanClauseImplies reports whether text that holds a word of a holds one
// of b.
func scanClauseImplies(a, b []string) bool {
	return !slices.ContainsFunc(a, func(w string) bool {
		return !slices.ContainsFunc(b, func(o string) bool { return scanImplies(w, o) })
	})
}

// scanImplies reports whether text that holds word w holds word o: the
// string of o is in that of w, at a place where the boundaries o asks for
// are boundaries w asks for or holds itself.
func scanImplies(w, o string) bool {
	ws, wb := scanUnmark(w)
	os, ob := scanUnmark(o)
	for k := 0; k+len(os) <= len(ws); k++ {
		if ws[k:k+len(os)] != os {
			continue
		}
		if !slices.ContainsFunc(ob, func(b int) bool {
			b += k
			inside := b > 0 && b < len(ws) && syntax.IsWordChar(rune(ws[b-1])) != syntax.IsWordChar(rune(ws[b]))
			return !inside && !slices.Contains(wb, b)
		}) {
			return true
		}
	}
	return false
}

// scanUnmark returns a word without its scanMarks, and the offsets in it
// where they were.
func scanUnmark(w string) (string, []int) {
	core := strings.Trim(w, scanMark)
	if !strings.Contains(core, scanMark) { // the usual: marks at the ends only
		var bounds []int
		if len(core) < len(w) && w[0] == scanMark[0] {
			bounds = append(bounds, 0)
		}
		if len(core) < len(w) && w[len(w)-1] == scanMark[0] && (len(bounds) == 0 || len(core) > 0) {
			bounds = append(bounds, len(core))
		}
		return core, bounds
	}
	var b strings.Builder
	var bounds []int
	for i := 0; i < len(w); i++ {
		if w[i] == scanMark[0] {
			if n := b.Len(); len(bounds) == 0 || bounds[len(bounds)-1] != n {
				bounds = append(bounds, n)
			}
			continue
		}
		b.WriteByte(w[i])
	}
	return b.String(), bounds
}

// scanIndex is an Aho-Corasick automaton over a set of words: one pass
// over a text finds every word it holds.
type scanIndex struct {
	words  []scanIndexWord // by id
	column [256]uint16     // byte → column of next; 0 for bytes in no word
	stride int             // columns
	next   []int32         // state*stride + column → state; 0 is the start
	ends   [][]int32       // state → ids of the words that end there
}

type scanIndexWord struct {
	s      string // without marks
	bounds []int  // offsets in s that must be word boundaries
}

func newScanIndex(words []string) *scanIndex {
	x := &scanIndex{stride: 1}
	cores := make([]string, len(words))
	for id, w := range words {
		core, bounds := scanUnmark(w)
		cores[id] = core
		x.words = append(x.words, scanIndexWord{core, bounds})
		for i := 0; i < len(core); i++ {
			if x.column[core[i]] == 0 {
				x.column[core[i]] = uint16(x.stride)
				x.stride++
			}
		}
	}
	for _, c := range "\t\n\v\f\r" {
		x.column[c] = x.column[' ']
	}
	// The trie of the words; -1 for no edge.
	state := func() int32 {
		for range x.stride {
			x.next = append(x.next, -1)
		}
		x.ends = append(x.ends, nil)
		return int32(len(x.ends) - 1)
	}
	state()
	for id, core := range cores {
		s := int32(0)
		for i := 0; i < len(core); i++ {
			k := int(s)*x.stride + int(x.column[core[i]])
			if x.next[k] < 0 {
				t := state()
				x.next[k] = t
			}
			s = x.next[k]
		}
		x.ends[s] = append(x.ends[s], int32(id))
	}
	// Breadth first, each state learns its longest proper suffix that is a
	// state (fail), takes the words that end there, and borrows its edges
	// for the bytes it has none for.
	fail := make([]int32, len(x.ends))
	var queue []int32
	for c := range x.stride {
		if t := x.next[c]; t > 0 {
			queue = append(queue, t)
		} else {
			x.next[c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		x.ends[s] = slices.Concat(x.ends[s], x.ends[fail[s]])
		for c := range x.stride {
			k := int(s)*x.stride + c
			via := x.next[int(fail[s])*x.stride+c]
			if t := x.next[k]; t >= 0 {
				fail[t] = via
				queue = append(queue, t)
			} else {
				x.next[k] = via
			}
		}
	}
	// find reads next[s+column]: an edge holds the offset of its state's
	// row rather than the state's number, negated where words end.
	for k, t := range x.next {
		x.next[k] = t * int32(x.stride)
		if len(x.ends[t]) > 0 {
			x.next[k] = -x.next[k]
		}
	}
	return x
}

// find returns the set of ids of the words that text holds.
func (x *scanIndex) find(text string) scanSet {
	found := make(scanSet, (len(x.words)+63)/64)
	s := 0
	for i := 0; i < len(text); i++ {
		s = int(x.next[s+int(x.column[text[i]])])
		if s >= 0 {
			continue
		}
		s = -s
		for _, id := range x.ends[s/x.stride] {
			if w := x.words[id]; !found.has(id) && w.at(text, i+1-len(w.s)) {
				found[id/64] |= 1 << (id % 64)
			}
		}
	}
	return found
}

// span returns where in text the first word of prefix starts and where the
// last word of suffix ends; 0 and len(text) for nil sets (and then x may be
// nil).
func (x *scanIndex) span(text string, prefix, suffix scanSet) (lo, hi int) {
	lo, hi = len(text), 0
	if prefix == nil {
		lo = 0
	}
	if suffix == nil {
		hi = len(text)
	}
	if prefix == nil && suffix == nil {
		return lo, hi
	}
	s := 0
	for i := 0; i < len(text); i++ {
		s = int(x.next[s+int(x.column[text[i]])])
		if s >= 0 {
			continue
		}
		s = -s
		for _, id := range x.ends[s/x.stride] {
			w := x.words[id]
			at := i + 1 - len(w.s)
			if prefix != nil && at < lo && prefix.has(id) && w.at(text, at) {
				lo = at
			}
			if suffix != nil && suffix.has(id) && w.at(text, at) {
				hi = i + 1
			}
		}
	}
	return lo, hi
}

// at reports whether the boundaries of w hold where w is at text[i:].
func (w scanIndexWord) at(text string, i int) bool {
	for _, b := range w.bounds {
		b += i
		if (b > 0 && syntax.IsWordChar(rune(text[b-1]))) == (b < len(text) && syntax.IsWordChar(rune(text[b]))) {
			return false
		}
	}
	return true
}

// scanSet is a set of word ids.
type scanSet []uint64

func (f scanSet) has(id int32) bool { return f[id/64]&(1<<(id%64)) != 0 }

// holds reports whether f has a word of each clause of need.
func (f scanSet) holds(need []scanSet) bool {
	for _, c := range need {
		if !f.meets(c) {
			return false
		}
	}
	return true
}

// meets reports whether f and c have a word in common.
func (f scanSet) meets(c scanSet) bool {
	for i, w := range c {
		if f[i]&w != 0 {
			return true
		}
	}
	return false
}
