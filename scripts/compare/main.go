// Command compare prints the results of mcpbox-probe under several sandboxes
// as one Markdown table, one row per probe and one column per sandbox.
// scripts/compare.sh runs the probes and calls it; it only reads files.
//
// Each column is given as -col 'TITLE=FILE'. FILE holds either the probe's
// stderr (one JSON object per probe), the report of `mcpbox selftest --json`,
// or one line "not available: REASON" when that sandbox could not run here.
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
}

type colFlags []string

func (c *colFlags) String() string     { return strings.Join(*c, ", ") }
func (c *colFlags) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	var cols colFlags
	flag.Var(&cols, "col", "a column as TITLE=FILE (repeat, in order)")
	flag.Parse()
	if len(cols) == 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: compare -col 'TITLE=FILE' [-col ...]")
		os.Exit(2)
	}
	var columns []column
	for _, c := range cols {
		title, file, ok := strings.Cut(c, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "compare: -col %q: want TITLE=FILE\n", c)
			os.Exit(2)
		}
		col, err := readColumn(title, file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "compare: %s: %v\n", file, err)
			os.Exit(1)
		}
		columns = append(columns, col)
	}
	writeTable(os.Stdout, columns)
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
