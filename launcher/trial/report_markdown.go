package trial

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/broker"
)

// WriteMarkdown writes r as report.md: a title naming the command, the
// ranked findings as a table, then one section per category. Everything the
// server chose (names, descriptions, paths, hosts, arguments, errors) is
// escaped so that it shows as text: it can neither start Markdown or HTML
// structure nor hide characters. Call Rank first for the findings table.
func WriteMarkdown(w io.Writer, r *Report) error {
	r = r.sorted()
	var d mdDoc
	d.header(r)
	d.findings(r)
	d.observed(r)
	d.listings(r)
	d.calls(r)
	_, err := w.Write(d.Bytes())
	return err
}

// mdDoc is report.md as it is written, one section per method.
type mdDoc struct{ bytes.Buffer }

func (d *mdDoc) p(format string, a ...any) { fmt.Fprintf(&d.Buffer, format, a...) }

// header writes the title and the table of what was run, how and when.
func (d *mdDoc) header(r *Report) {
	p := d.p
	p("# mcpbox trial: %s\n\n", md(strings.Join(r.Command, " ")))
	p("| | |\n|---|---|\n")
	if r.Package != nil {
		p("| package | %s %s %s |\n", md(r.Package.Ecosystem), md(r.Package.Name), md(r.Package.Version))
	}
	p("| started | %s |\n", r.Started.UTC().Format("2006-01-02 15:04:05Z"))
	p("| duration | %s s |\n", strconv.FormatFloat(r.DurationS, 'f', 1, 64))
	p("| base profile | %s |\n", md(r.BaseProfile))
	mode := "observe (denials logged, calls let through)"
	if r.Enforce {
		mode = "enforce (denied calls failed)"
	}
	p("| mode | %s |\n", mode)
	exit := "not seen"
	if r.ExitCode != nil {
		exit = strconv.Itoa(*r.ExitCode)
	}
	p("| exit code | %s |\n", exit)
	p("| usage | %s |\n\n", md(usageText(r.Usage)))
}

// findings writes the ranked findings and their count per severity.
func (d *mdDoc) findings(r *Report) {
	p := d.p
	h, m, l := counts(r.Findings)
	p("## Findings\n\n%d findings: %d high, %d medium, %d low.\n\n", len(r.Findings), h, m, l)
	if len(r.Findings) > 0 {
		p("| severity | kind | finding |\n|---|---|---|\n")
		for _, f := range r.Findings {
			p("| %s | %s | %s |\n", md(f.Severity), md(f.Kind), md(f.Summary))
		}
		p("\n")
	}
}

// observed writes what the sandbox saw the server do: processes,
// syscalls, network and files.
func (d *mdDoc) observed(r *Report) {
	p := d.p
	p("## Processes\n\n")
	if len(r.Processes) == 0 {
		p("None seen.\n\n")
	} else {
		p("| pid | command |\n|---|---|\n")
		for _, pr := range r.Processes {
			p("| %d | %s |\n", pr.PID, code(argvText(pr.Argv)))
		}
		p("\n")
	}

	p("## Syscalls\n\n")
	if len(r.Syscalls) == 0 {
		p("None beyond the base filter.\n\n")
	} else {
		p("| syscall | count | verdict | examples |\n|---|---|---|---|\n")
		for _, s := range r.Syscalls {
			ex := make([]string, len(s.Examples))
			for i, e := range s.Examples {
				ex[i] = code(e)
			}
			p("| %s | %d | %s | %s |\n", md(s.Name), s.Count, md(s.Verdict), strings.Join(ex, "<br>"))
		}
		p("\n")
	}

	p("## Network\n\n")
	if len(r.Network) == 0 {
		p("No DNS lookups or connections.\n\n")
	} else {
		p("| kind | host | verdict | count | reason |\n|---|---|---|---|---|\n")
		for _, n := range r.Network {
			p("| %s | %s | %s | %d | %s |\n", md(n.Kind), code(hostPort(n)), md(n.Verdict), n.Count, md(n.Reason))
		}
		p("\n")
	}

	p("## Files\n\n")
	if len(r.Files) == 0 {
		p("No files changed.\n\n")
	} else {
		p("| path | change | type | size | mode |\n|---|---|---|---|---|\n")
		for _, f := range r.Files {
			p("| %s | %s | %s | %s | %s |\n", code(f.Path), md(f.Change), md(f.Type), sizeText(f.Size), md(f.Mode))
		}
		p("\n")
	}
}

// listings writes what the server offers: its tools, prompts and resources
// with their scan findings, and the findings in its instructions.
func (d *mdDoc) listings(r *Report) {
	p := d.p
	p("## Tools\n\n")
	if len(r.Tools) == 0 {
		p("None listed.\n\n")
	}
	for _, t := range r.Tools {
		p("### %s\n\n", md(t.Name))
		p("sha256 %s, description %d bytes, %d findings.\n\n", code(t.SHA256), t.DescriptionBytes, len(t.Findings))
		if t.Description != "" {
			// The description is the attacker's text: md() turns < > into
			// entities, so it cannot close this block or open another.
			p("<details><summary>description</summary>\n\n%s\n\n</details>\n\n", md(t.Description))
		}
		findingsTable(&d.Buffer, t.Findings)
	}
	for _, sec := range []struct {
		title string
		items []Item
	}{{"Prompts", r.Prompts}, {"Resources", r.Resources}} {
		p("## %s\n\n", sec.title)
		if len(sec.items) == 0 {
			p("None listed.\n\n")
			continue
		}
		p("| name | sha256 | findings |\n|---|---|---|\n")
		for _, it := range sec.items {
			p("| %s | %s | %d |\n", md(it.Name), code(it.SHA256), len(it.Findings))
		}
		p("\n")
		for _, it := range sec.items {
			if len(it.Findings) > 0 {
				p("%s:\n\n", md(it.Name))
				findingsTable(&d.Buffer, it.Findings)
			}
		}
	}
	if len(r.Instructions) > 0 {
		p("## Instructions\n\n")
		findingsTable(&d.Buffer, r.Instructions)
	}
}

// calls writes the tool calls of the trial and the path arguments.
func (d *mdDoc) calls(r *Report) {
	p := d.p
	p("## Calls\n\n")
	if len(r.Calls) == 0 {
		p("No tools called.\n\n")
	} else {
		p("| tool | arguments | ok | error | ms |\n|---|---|---|---|---|\n")
		for _, c := range r.Calls {
			p("| %s | %s | %t | %s | %s |\n", md(c.Tool), code(string(c.Arguments)), c.OK, md(c.Error), strconv.FormatFloat(c.DurationMS, 'f', 0, 64))
		}
		p("\n")
	}

	if len(r.PathArgs) > 0 {
		p("## Path arguments\n\n| path |\n|---|\n")
		for _, a := range r.PathArgs {
			p("| %s |\n", code(a))
		}
		p("\n")
	}
}

func findingsTable(b *bytes.Buffer, fs []broker.Finding) {
	if len(fs) == 0 {
		return
	}
	b.WriteString("| severity | rule | field | excerpt |\n|---|---|---|---|\n")
	for _, f := range fs {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", md(f.Severity), md(f.Rule), md(f.Field), md(f.Excerpt))
	}
	b.WriteString("\n")
}

// mdEscaper escapes what Markdown (GitHub's included) or HTML would read as
// structure: < > & " become entities, other punctuation that can start
// emphasis, links, code, tables or raw HTML gets a backslash (CommonMark
// defines one for every ASCII punctuation character), and the beginnings of
// GitHub's bare autolinks are broken up.
var mdEscaper = strings.NewReplacer(
	"://", `\:\/\/`, "www.", `www\.`, "WWW.", `WWW\.`,
	"&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;",
	`\`, `\\`, "`", "\\`", "|", `\|`, "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`,
	"*", `\*`, "_", `\_`, "~", `\~`, "#", `\#`, "!", `\!`, "{", `\{`, "}", `\}`, "@", `\@`,
)

// md returns untrusted text as one line of inert Markdown: hidden and
// control characters escaped (newlines too, so the text stays on its table
// row or paragraph), Markdown and HTML syntax escaped.
func md(s string) string {
	e := mdEscaper.Replace(broker.EscapeHidden(s))
	// At the start of a line, these begin a list or a heading underline.
	if e != "" && strings.ContainsRune("-+=", rune(e[0])) {
		e = `\` + e
	} else if i := strings.IndexFunc(e, func(r rune) bool { return r < '0' || r > '9' }); i > 0 && (e[i] == '.' || e[i] == ')') {
		e = e[:i] + `\` + e[i:]
	}
	return e
}

// code shows untrusted text in a monospace font: md's escaping inside an
// HTML <code> element (whose content Markdown still reads, so the escaping
// is what keeps it inert). A code span would show the text more literally,
// but GitHub splits table cells at | even inside one.
func code(s string) string {
	if s == "" {
		return ""
	}
	return "<code>" + md(s) + "</code>"
}
