// Package trial is `mcpbox trial`: it watches an untrusted MCP server run in
// a sandbox and writes what it saw as a report (report.json, report.md, a
// summary on stderr) and as a least-privilege profile to start from.
//
// It runs the session through a Runner the caller gives it (cmd/mcpbox
// wires in launcher.Run) and watches it through launcher/observe's hooks:
// it never imports launcher, its parent.
//
// The report types and writers here are pure: they do no I/O beyond the
// writer, file or directory they are given, and they decide nothing about
// the sandbox.
// A profile written by Profile grants only what the run was seen to need and
// leaves every network host for the user to approve.
package trial

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mcpbox/mcpbox/launcher/broker"
)

// SchemaVersion is the version of the report.json format. ReadJSON refuses a
// report with a newer one.
const SchemaVersion = 1

// Verdicts of syscalls and network events.
const (
	VerdictAllowed = "allowed"
	VerdictDenied  = "denied"
)

// Kinds of network events.
const (
	NetDNS     = "dns"
	NetConnect = "connect"
)

// Kinds of file changes.
const (
	ChangeCreated  = "created"
	ChangeModified = "modified"
	ChangeDeleted  = "deleted"
)

// Types of changed files.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Severities of a Finding, highest first. The first three are broker's.
const (
	SeverityHigh   = broker.SeverityHigh
	SeverityMedium = broker.SeverityMedium
	SeverityLow    = broker.SeverityLow
	SeverityInfo   = "info"
)

// Kinds of a Finding.
const (
	KindSyscall      = "syscall"
	KindNetwork      = "network"
	KindFile         = "file"
	KindTool         = "tool"
	KindInstructions = "instructions"
	KindProcess      = "process"
	KindResources    = "resources"
)

// maxExamples is how many decoded argument lists a Syscall keeps.
const maxExamples = 5

// Report is everything one trial saw. The driver fills it; Rank computes
// Findings from the rest.
type Report struct {
	Schema      int       `json:"schema"`
	Started     time.Time `json:"started"`
	DurationS   float64   `json:"duration_s"`
	Command     []string  `json:"command"`
	Package     *Package  `json:"package,omitempty"`
	BaseProfile string    `json:"base_profile"`
	Enforce     bool      `json:"enforce"`
	ExitCode    *int      `json:"exit_code,omitempty"`
	// Home is $HOME inside the sandbox, so that file changes under it can
	// be told apart from the rest.
	Home     string       `json:"home,omitempty"`
	Syscalls []Syscall    `json:"syscalls"`
	Network  []NetEvent   `json:"network"`
	Files    []FileChange `json:"files"`
	// Reads are the server's attempts to open secrets for reading: paths
	// under $HOME and credential files anywhere (ssh keys, cloud and
	// package-manager credentials, .env files, MCP client configs).
	Reads        []FileRead       `json:"reads"`
	Processes    []Process        `json:"processes"`
	Tools        []Tool           `json:"tools"`
	Prompts      []Item           `json:"prompts"`
	Resources    []Item           `json:"resources"`
	Instructions []broker.Finding `json:"instructions_findings,omitempty"`
	Calls        []Call           `json:"calls"`
	Usage        Usage            `json:"usage"`
	// PathArgs are the host paths among the command's arguments.
	PathArgs []string  `json:"path_args,omitempty"`
	Findings []Finding `json:"findings"`
}

// Package is the package the command ran, if it ran one.
type Package struct {
	Ecosystem string `json:"ecosystem"` // profiles.NPM or profiles.PyPI
	Name      string `json:"name"`
	Version   string `json:"version"`
}

// Syscall is one syscall the server made that the base filter does not
// allow outright (the notify agent saw it).
type Syscall struct {
	Name    string `json:"name"`
	Count   int    `json:"count"`
	Verdict string `json:"verdict"` // VerdictAllowed or VerdictDenied
	// Examples are decoded argument lists ("PTRACE_ATTACH pid 1"), at
	// most maxExamples, each once.
	Examples []string `json:"examples"`
}

// NetEvent is one kind of attempt to reach one host.
type NetEvent struct {
	Kind    string `json:"kind"` // NetDNS or NetConnect
	Host    string `json:"host"`
	Port    int    `json:"port,omitempty"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	Count   int    `json:"count"`
}

// FileChange is a path the server changed outside its tmpfs scratch space,
// or inside it (the driver decides what it watches).
type FileChange struct {
	Path   string `json:"path"`
	Change string `json:"change"` // ChangeCreated, ChangeModified or ChangeDeleted
	Size   int64  `json:"size"`
	Mode   string `json:"mode"` // octal permission bits, "0644"
	Type   string `json:"type"` // TypeFile, TypeDir or TypeSymlink
}

// FileRead is a path the server tried to read.
type FileRead struct {
	Path  string `json:"path"`
	Count int    `json:"count"`
}

// Process is a program the server executed.
type Process struct {
	PID  int      `json:"pid"`
	Argv []string `json:"argv"`
}

// Tool is one entry of the server's tools/list result.
type Tool struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	// Description is the tool's description as the server sent it:
	// attacker-controlled text, escaped wherever it is shown.
	Description      string           `json:"description,omitempty"`
	DescriptionBytes int              `json:"description_bytes"`
	Findings         []broker.Finding `json:"findings"`
}

// Item is one prompt or resource the server listed.
type Item struct {
	Name     string           `json:"name"`
	SHA256   string           `json:"sha256"`
	Findings []broker.Finding `json:"findings"`
}

// Call is one tools/call the trial made.
type Call struct {
	Tool       string          `json:"tool"`
	Arguments  json.RawMessage `json:"arguments"`
	OK         bool            `json:"ok"`
	Error      string          `json:"error,omitempty"`
	DurationMS float64         `json:"duration_ms"`
}

// Usage is the most the server used of its limits.
type Usage struct {
	PeakMemoryBytes int64   `json:"peak_memory_bytes"`
	PeakPIDs        int64   `json:"peak_pids"`
	CPUSeconds      float64 `json:"cpu_seconds"`
}

// Finding is one line of the ranked summary.
type Finding struct {
	Severity string `json:"severity"` // SeverityHigh … SeverityInfo
	Kind     string `json:"kind"`     // KindSyscall …
	Summary  string `json:"summary"`
}

// normalize sorts every list into its stable order, caps and dedupes
// syscall examples, and replaces nil slices by empty ones so that the JSON
// has [] rather than null. Calls keep the order they were made in.
func (r *Report) normalize() {
	if r.Schema == 0 {
		r.Schema = SchemaVersion
	}
	r.Command = nonNil(r.Command)
	r.Syscalls = nonNil(r.Syscalls)
	for i := range r.Syscalls {
		s := &r.Syscalls[i]
		var ex []string
		for _, e := range s.Examples {
			if !slices.Contains(ex, e) && len(ex) < maxExamples {
				ex = append(ex, e)
			}
		}
		s.Examples = nonNil(ex)
	}
	slices.SortStableFunc(r.Syscalls, func(a, b Syscall) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Name, b.Name), strings.Compare(a.Verdict, b.Verdict))
	})
	r.Network = nonNil(r.Network)
	slices.SortStableFunc(r.Network, func(a, b NetEvent) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Verdict, b.Verdict))
	})
	r.Reads = nonNil(r.Reads)
	slices.SortStableFunc(r.Reads, func(a, b FileRead) int { return cmp.Compare(a.Path, b.Path) })
	r.Files = nonNil(r.Files)
	slices.SortStableFunc(r.Files, func(a, b FileChange) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Change, b.Change))
	})
	r.Processes = nonNil(r.Processes)
	for i := range r.Processes {
		r.Processes[i].Argv = nonNil(r.Processes[i].Argv)
	}
	slices.SortStableFunc(r.Processes, func(a, b Process) int { return cmp.Compare(a.PID, b.PID) })
	r.Tools = nonNil(r.Tools)
	for i := range r.Tools {
		r.Tools[i].Findings = nonNil(r.Tools[i].Findings)
	}
	slices.SortStableFunc(r.Tools, func(a, b Tool) int { return strings.Compare(a.Name, b.Name) })
	r.Prompts = normalizeItems(r.Prompts)
	r.Resources = normalizeItems(r.Resources)
	r.Calls = nonNil(r.Calls)
	r.Findings = nonNil(r.Findings)
}

func normalizeItems(items []Item) []Item {
	items = nonNil(items)
	for i := range items {
		items[i].Findings = nonNil(items[i].Findings)
	}
	slices.SortStableFunc(items, func(a, b Item) int { return strings.Compare(a.Name, b.Name) })
	return items
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// clone returns a copy of r whose slices can be sorted without touching r's.
func (r *Report) clone() *Report {
	q := *r
	q.Command = slices.Clone(r.Command)
	q.Syscalls = slices.Clone(r.Syscalls)
	for i := range q.Syscalls {
		q.Syscalls[i].Examples = slices.Clone(q.Syscalls[i].Examples)
	}
	q.Network = slices.Clone(r.Network)
	q.Files = slices.Clone(r.Files)
	q.Processes = slices.Clone(r.Processes)
	q.Tools = slices.Clone(r.Tools)
	q.Prompts = slices.Clone(r.Prompts)
	q.Resources = slices.Clone(r.Resources)
	q.Calls = slices.Clone(r.Calls)
	q.PathArgs = slices.Clone(r.PathArgs)
	q.Findings = slices.Clone(r.Findings)
	return &q
}

// sorted returns a normalized copy of r.
func (r *Report) sorted() *Report {
	q := r.clone()
	q.normalize()
	return q
}

// WriteJSON writes r as indented JSON with every list sorted into its
// stable order; r itself is not changed.
func WriteJSON(w io.Writer, r *Report) error {
	b, err := json.MarshalIndent(r.sorted(), "", "  ")
	if err != nil {
		return fmt.Errorf("trial: encode report: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("trial: write report: %w", err)
	}
	return nil
}

// ReadJSON reads a report written by WriteJSON. A report from a newer mcpbox
// (a higher schema) is refused rather than half understood.
func ReadJSON(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trial: read report: %w", err)
	}
	var head struct {
		Schema *int `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("trial: read report %s: not a trial report: %w", path, err)
	}
	switch {
	case head.Schema == nil || *head.Schema < 1:
		return nil, fmt.Errorf("trial: read report %s: %w: no schema version (not written by `mcpbox trial`?)", path, ErrSchema)
	case *head.Schema > SchemaVersion:
		return nil, fmt.Errorf("trial: read report %s: %w: it has schema %d and this mcpbox reads up to %d: use a newer mcpbox to read it", path, ErrSchema, *head.Schema, SchemaVersion)
	}
	var r Report
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("trial: read report %s: %w", path, err)
	}
	r.normalize()
	return &r, nil
}

// ErrSchema is returned (wrapped) by ReadJSON for a report whose schema
// version it cannot read.
var ErrSchema = errors.New("unsupported report schema")
