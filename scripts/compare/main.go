// Command compare prints the results of mcpbox-probe under several sandboxes
// as one Markdown table, one row per probe and one column per sandbox.
// scripts/compare.sh runs the probes and calls it; it only reads files.
//
// Each column is given as -col 'TITLE=FILE'. FILE holds either the probe's
// stderr (one JSON object per probe), the report of `mcpbox selftest --json`,
// or one line "not available: REASON" when that sandbox could not run here.
//
// -keep 'BASE=OTHER' checks that column OTHER keeps what column BASE
// holds: every probe that passes in BASE passes in OTHER. The one
// exception is a limit that OTHER ran without because the host does not
// delegate it, as mcpbox said on its stderr (-stderr 'OTHER=FILE'): its
// probes are named under the table instead. Anything else that BASE
// passes and OTHER does not is printed and makes compare exit 1. This is
// how the rootless runtime is held to the containerd runtime's results.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// result is the part of a probe's JSON line the table shows.
type result struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	Errno   string `json:"errno"`
	Signal  string `json:"signal"`
	Pass    bool   `json:"pass"`
}

// column is one sandbox: its results by probe name, or why it has none.
type column struct {
	title   string
	order   []string
	results map[string]result
	missing string // "not available: ..." when the sandbox did not run
	// unenforced are the limits (cgroup controllers) mcpbox said it ran
	// this column without, from its stderr.
	unenforced []string
}

type colFlags []string

func (c *colFlags) String() string     { return strings.Join(*c, ", ") }
func (c *colFlags) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("compare", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cols, keeps, stderrs colFlags
	fl.Var(&cols, "col", "a column as TITLE=FILE (repeat, in order)")
	fl.Var(&keeps, "keep", "BASE=OTHER: every probe that passes in column BASE must pass in column OTHER (repeat)")
	fl.Var(&stderrs, "stderr", "TITLE=FILE: mcpbox's stderr for that column, which names the limits it did not enforce")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if len(cols) == 0 || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: compare -col 'TITLE=FILE' [-col ...] [-keep 'BASE=OTHER'] [-stderr 'TITLE=FILE']")
		return 2
	}
	var columns []column
	byTitle := map[string]*column{}
	for _, c := range cols {
		title, file, ok := strings.Cut(c, "=")
		if !ok {
			fmt.Fprintf(stderr, "compare: -col %q: want TITLE=FILE\n", c)
			return 2
		}
		col, err := readColumn(title, file)
		if err != nil {
			fmt.Fprintf(stderr, "compare: %s: %v\n", file, err)
			return 1
		}
		columns = append(columns, col)
	}
	for i := range columns {
		byTitle[columns[i].title] = &columns[i]
	}
	for _, s := range stderrs {
		title, file, ok := strings.Cut(s, "=")
		c := byTitle[title]
		if !ok || c == nil {
			fmt.Fprintf(stderr, "compare: -stderr %q: want TITLE=FILE, TITLE one of the columns\n", s)
			return 2
		}
		b, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "compare: %v\n", err)
			return 1
		}
		c.unenforced = unenforcedLimits(string(b))
	}
	writeTable(stdout, columns)
	code := 0
	for _, k := range keeps {
		base, other, ok := strings.Cut(k, "=")
		if !ok || byTitle[base] == nil || byTitle[other] == nil {
			fmt.Fprintf(stderr, "compare: -keep %q: want BASE=OTHER, both column titles\n", k)
			return 2
		}
		kept := keep(*byTitle[base], *byTitle[other])
		fmt.Fprintf(stdout, "\n%s\n", kept.summary())
		if len(kept.lost) > 0 || kept.missing != "" {
			fmt.Fprintf(stderr, "compare: %s\n", kept.summary())
			code = 1
		}
	}
	return code
}

// readColumn reads one sandbox's results from file.
func readColumn(title, file string) (column, error) {
	col := column{title: title, results: map[string]result{}}
	b, err := os.ReadFile(file)
	if err != nil {
		return col, err
	}
	b = bytes.TrimSpace(b)
	if rest, ok := bytes.CutPrefix(b, []byte("not available:")); ok {
		col.missing = "not available: " + strings.TrimSpace(string(rest))
		return col, nil
	}
	var results []result
	var report struct {
		Results []result `json:"results"`
	}
	if json.Unmarshal(b, &report) == nil && report.Results != nil {
		results = report.Results
	} else {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r result
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Name != "" && r.Outcome != "" {
				results = append(results, r)
			}
		}
	}
	if len(results) == 0 {
		return col, errors.New("no probe results in the file")
	}
	for _, r := range results {
		if _, dup := col.results[r.Name]; !dup {
			col.order = append(col.order, r.Name)
		}
		col.results[r.Name] = r
	}
	return col, nil
}

// writeTable prints the rows in the order of the first column that has
// results, then any probe only another column knows.
func writeTable(w io.Writer, cols []column) {
	var names []string
	seen := map[string]bool{}
	for _, c := range cols {
		for _, n := range c.order {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	head := []string{"probe"}
	rule := []string{"---"}
	for _, c := range cols {
		head = append(head, c.title)
		rule = append(rule, "---")
	}
	row(w, head)
	row(w, rule)
	for _, n := range names {
		cells := []string{"`" + n + "`"}
		for _, c := range cols {
			cells = append(cells, cell(c, n))
		}
		row(w, cells)
	}
	score := []string{"**score** (passed/run)"}
	for _, c := range cols {
		score = append(score, scoreCell(c))
	}
	row(w, score)
}

func cell(c column, name string) string {
	if c.missing != "" {
		return "–"
	}
	r, ok := c.results[name]
	if !ok {
		return "– not run"
	}
	mark := "✗"
	if r.Pass {
		mark = "✓"
	}
	return mark + " " + short(r)
}

// short says in a word how the attempt ended: the errno or signal that
// stopped it, else the outcome.
func short(r result) string {
	switch {
	case r.Signal != "":
		return r.Signal
	case r.Errno != "" && r.Outcome == "denied":
		return r.Errno
	case r.Errno != "":
		return r.Outcome + " (" + r.Errno + ")"
	}
	return r.Outcome
}

func scoreCell(c column) string {
	if c.missing != "" {
		return c.missing
	}
	passed, skipped := 0, 0
	for _, r := range c.results {
		if r.Pass {
			passed++
		}
		if r.Outcome == "skipped" {
			skipped++
		}
	}
	s := fmt.Sprintf("**%d/%d**", passed, len(c.results))
	if skipped > 0 {
		s += fmt.Sprintf(" (%d skipped, counted as passed)", skipped)
	}
	return s
}

func row(w io.Writer, cells []string) {
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(c, "|", `\|`)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// limitProbes are the probes that test a cgroup limit, by controller:
// without the controller the limit is not there to stop them. No probe
// tests the CPU quota.
var limitProbes = map[string][]string{
	"memory": {"resources/memory-hog"},
	"pids":   {"resources/fork-bomb"},
	"cpu":    nil,
}

// unenforcedMark starts the line on which mcpbox's rootless runtime says
// which limits it cannot enforce (launcher/rootless.go).
const unenforcedMark = "mcpbox: rootless: limits not enforced: "

// unenforcedLimits returns the limits mcpbox's stderr says were not
// enforced: "memory, pids (how to fix)".
func unenforcedLimits(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), unenforcedMark)
		if !ok {
			continue
		}
		list, _, _ := strings.Cut(rest, " (")
		for _, l := range strings.Split(list, ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// kept is how column other kept what column base holds.
type kept struct {
	base, other string
	// lost are the probes that pass in base and not in other, each with
	// how it ended there.
	lost []string
	// excused are the probes of limits other ran without, by limit.
	excused map[string][]string
	// unenforced are those limits, in the order mcpbox named them.
	unenforced []string
	// missing says why there is nothing to compare.
	missing string
}

// keep compares other with base, probe by probe.
func keep(base, other column) kept {
	k := kept{base: base.title, other: other.title, excused: map[string][]string{}, unenforced: other.unenforced}
	for _, c := range []column{base, other} {
		if c.missing != "" {
			k.missing = fmt.Sprintf("column %q has no results (%s)", c.title, c.missing)
			return k
		}
	}
	excuse := map[string]string{}
	for _, l := range other.unenforced {
		for _, p := range limitProbes[l] {
			excuse[p] = l
		}
	}
	for _, name := range base.order {
		if !base.results[name].Pass {
			continue
		}
		r, ok := other.results[name]
		switch {
		case ok && r.Pass:
		case excuse[name] != "":
			k.excused[excuse[name]] = append(k.excused[excuse[name]], name)
		case !ok:
			k.lost = append(k.lost, name+" (not run)")
		default:
			k.lost = append(k.lost, name+" ("+short(r)+")")
		}
	}
	return k
}

// summary says it in a sentence for under the table, or for the error.
func (k kept) summary() string {
	if k.missing != "" {
		return fmt.Sprintf("%q against %q: cannot compare: %s.", k.other, k.base, k.missing)
	}
	var s strings.Builder
	if len(k.lost) == 0 {
		fmt.Fprintf(&s, "Every probe that passes under %q passes under %q", k.base, k.other)
	} else {
		verbs := "probes pass under %q and fail"
		if len(k.lost) == 1 {
			verbs = "probe passes under %q and fails"
		}
		fmt.Fprintf(&s, "%d "+verbs+" under %q: %s", len(k.lost), k.base, k.other, strings.Join(k.lost, ", "))
	}
	if len(k.unenforced) == 0 {
		s.WriteString(".")
		return s.String()
	}
	var parts []string
	for _, l := range k.unenforced {
		probes := "no probe tests it"
		if ps := limitProbes[l]; len(ps) > 0 {
			probes = "`" + strings.Join(ps, "`, `") + "`"
			if len(k.excused[l]) == 0 {
				probes += " passed anyway"
			}
		}
		parts = append(parts, l+" ("+probes+")")
	}
	if len(k.lost) == 0 {
		s.WriteString(", but for")
	} else {
		s.WriteString("; besides,")
	}
	fmt.Fprintf(&s, " the limits this host does not delegate, which mcpbox said it ran without: %s.", strings.Join(parts, "; "))
	return s.String()
}
