package broker

// Pins: what a server's tools, prompts and resources looked like when the
// user first trusted it. A server that later changes a definition (a "rug
// pull": the tool the user approved now asks the model for ~/.ssh) is caught
// by comparing each listed item's canonical SHA-256 with its pin.
//
// The broker owns the comparison and the record's shape; where the record
// lives is the caller's (PinStore).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Mode is what a policy does when it fires.
type Mode string

const (
	ModeBlock Mode = "block" // withhold the item and refuse calls to it, with a warning
	ModeWarn  Mode = "warn"  // a warning only
	ModeOff   Mode = "off"   // nothing
)

// PinFormat is the version of the PinSet record.
const PinFormat = 1

// PinSet is the record of one server's pinned definitions.
type PinSet struct {
	Format   int    `json:"format"`
	Server   string `json:"server"`   // the name shown to the user
	Identity string `json:"identity"` // what the pins are keyed by (see Identity)
	// Package and Version name the package the pins were approved for,
	// when the server is one.
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	// Lists holds one entry per list kind ("tools", "prompts",
	// "resources", "resourceTemplates") the server has answered.
	Lists map[string]*PinList `json:"lists"`
}

// PinList is the pins of one kind of item, by name (URI for resources).
type PinList struct {
	Pinned map[string]Pin `json:"pinned"`
	// Pending are definitions seen that differ from their pin, or items
	// that were never pinned: what `mcpbox pins approve` would accept.
	Pending map[string]Pin `json:"pending,omitempty"`
}

// Pin is one item's definition as pinned or seen.
type Pin struct {
	SHA256 string `json:"sha256"`
	// Definition is the canonical JSON of the hashed fields, kept so a
	// change can be shown as a diff. It is a string, not embedded JSON,
	// so that it survives any re-encoding byte for byte and keeps
	// matching its hash.
	Definition string    `json:"definition"`
	Version    string    `json:"version,omitempty"` // the package version it was seen in
	Time       time.Time `json:"time"`
}

// Identity names the server a PinSet belongs to.
type Identity struct {
	Server  string // short display name, e.g. "server-everything"
	Key     string // e.g. "npm:@modelcontextprotocol/server-everything" or "cmd:<sha256>"
	Package string // package name, "" for a host command
	Version string // package version, "" for a host command
}

// PinStore keeps one server's PinSet between sessions.
type PinStore interface {
	// Load returns the server's pins, or nil and no error when nothing is
	// pinned yet. An error means the record exists but cannot be read:
	// the broker then withholds every item until the user resets it.
	Load() (*PinSet, error)
	// Save replaces the record.
	Save(*PinSet) error
	// Where says where the record lives, for messages.
	Where() string
}

// listKind describes one MCP list method whose items are pinned and scanned.
type listKind struct {
	bit     uint8    // in view.lists
	name    string   // key in PinSet.Lists, and the result's array member
	method  string   // the list request
	key     string   // the member that names an item
	noun    string   // for messages
	hashed  []string // members that make up an item's definition
	use     string   // the request that uses an item ("" for none)
	useKey  string   // the params member naming the item in use
	useVerb string
}

var listKinds = []*listKind{
	{bit: 1, name: "tools", method: "tools/list", key: "name", noun: "tool",
		hashed: []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"},
		use:    "tools/call", useKey: "name", useVerb: "call"},
	{bit: 2, name: "prompts", method: "prompts/list", key: "name", noun: "prompt",
		hashed: []string{"name", "title", "description", "arguments"},
		use:    "prompts/get", useKey: "name", useVerb: "get"},
	{bit: 4, name: "resources", method: "resources/list", key: "uri", noun: "resource",
		hashed: []string{"uri", "name", "title", "description", "mimeType"},
		use:    "resources/read", useKey: "uri", useVerb: "read"},
	{bit: 8, name: "resourceTemplates", method: "resources/templates/list", key: "uriTemplate", noun: "resource template",
		hashed: []string{"uriTemplate", "name", "title", "description", "mimeType"}},
}

func kindForList(method string) *listKind {
	for _, k := range listKinds {
		if k.method == method {
			return k
		}
	}
	return nil
}

func kindForUse(method string) *listKind {
	for _, k := range listKinds {
		if k.use != "" && k.use == method {
			return k
		}
	}
	return nil
}

// Definition returns the canonical JSON of the members of item that make
// up its definition, and its SHA-256 in hex. Canonical means members in
// sorted order at every level, no insignificant whitespace, numbers as
// written, strings re-encoded without HTML escaping: two servers that
// describe a tool the same way hash the same, however they format it.
// list is "tools", "prompts", "resources" or "resourceTemplates".
func Definition(list string, item json.RawMessage) (canonical json.RawMessage, sum string, err error) {
	var kind *listKind
	for _, k := range listKinds {
		if k.name == list {
			kind = k
		}
	}
	if kind == nil {
		return nil, "", fmt.Errorf("broker: unknown list %q", list)
	}
	return kind.definition(item)
}

func (k *listKind) definition(item []byte) (json.RawMessage, string, error) {
	d := json.NewDecoder(bytes.NewReader(item))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, "", fmt.Errorf("broker: %s definition: %w", k.noun, err)
	}
	keep := make(map[string]any, len(k.hashed))
	for _, f := range k.hashed {
		if v, ok := m[f]; ok {
			keep[f] = v
		}
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(keep); err != nil { // maps encode with sorted keys
		return nil, "", fmt.Errorf("broker: %s definition: %w", k.noun, err)
	}
	canon := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	sum := sha256.Sum256(canon)
	return canon, hex.EncodeToString(sum[:]), nil
}

// DiffDefinitions returns a unified-style line diff of two canonical
// definitions, indented for reading, with hidden characters escaped. An
// empty old definition shows the whole new one as added.
func DiffDefinitions(old, new string) string {
	a, b := indentLines(old), indentLines(new)
	var out strings.Builder
	for _, l := range diffLines(a, b) {
		out.WriteString(EscapeHidden(l))
		out.WriteByte('\n')
	}
	return out.String()
}

func indentLines(def string) []string {
	if len(def) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(def), "", "  ") != nil {
		return []string{def}
	}
	return strings.Split(buf.String(), "\n")
}

// diffLines returns the lines of a and b as "  same", "- removed" and
// "+ added". The common head and tail are matched first; what is left in
// between is diffed by a longest common subsequence when its table stays
// under maxDiffCells, else shown as all removed, then all added. A changed
// definition comes from the server, so the bound keeps a hostile one from
// making the broker build a large table for every tool of every list.
func diffLines(a, b []string) []string {
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	out := make([]string, 0, len(a)+len(b)-head-tail)
	for _, l := range a[:head] {
		out = append(out, "  "+l)
	}
	out = diffMiddle(out, a[head:len(a)-tail], b[head:len(b)-tail])
	for _, l := range a[len(a)-tail:] {
		out = append(out, "  "+l)
	}
	return out
}

// maxDiffCells bounds the LCS table of one definition diff (4 bytes a cell).
const maxDiffCells = 1 << 16

func diffMiddle(out, a, b []string) []string {
	if (len(a)+1)*(len(b)+1) > maxDiffCells {
		for _, l := range a {
			out = append(out, "- "+l)
		}
		for _, l := range b {
			out = append(out, "+ "+l)
		}
		return out
	}
	// lcs[i*w+j] is the LCS length of a[i:] and b[j:].
	w := len(b) + 1
	lcs := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out = append(out, "  "+a[i])
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			out = append(out, "- "+a[i])
			i++
		default:
			out = append(out, "+ "+b[j])
			j++
		}
	}
	return out
}

// Approve moves pending definitions to pinned: those named, or all of them
// when names is empty. It returns the names approved, sorted, as
// "tools/NAME". The set's package version becomes the one they were seen in.
func (s *PinSet) Approve(names ...string) []string {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	var done []string
	for list, l := range s.Lists {
		for name, p := range l.Pending {
			if len(want) > 0 && !want[name] && !want[list+"/"+name] {
				continue
			}
			if l.Pinned == nil {
				l.Pinned = map[string]Pin{}
			}
			l.Pinned[name] = p
			delete(l.Pending, name)
			done = append(done, list+"/"+name)
			if p.Version != "" {
				s.Version = p.Version
			}
		}
	}
	sort.Strings(done)
	return done
}

// PendingCount is how many definitions wait for approval.
func (s *PinSet) PendingCount() int {
	n := 0
	for _, l := range s.Lists {
		n += len(l.Pending)
	}
	return n
}

// PinnedCount is how many definitions are pinned.
func (s *PinSet) PinnedCount() int {
	n := 0
	for _, l := range s.Lists {
		n += len(l.Pinned)
	}
	return n
}

// Diff describes every pending definition against its pin, for `mcpbox
// pins diff`: a header per item and the diff of its definition.
func (s *PinSet) Diff() string {
	var out strings.Builder
	lists := make([]string, 0, len(s.Lists))
	for name := range s.Lists {
		lists = append(lists, name)
	}
	sort.Strings(lists)
	for _, list := range lists {
		l := s.Lists[list]
		names := make([]string, 0, len(l.Pending))
		for n := range l.Pending {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := l.Pending[n]
			old, pinned := l.Pinned[n]
			what := "changed"
			if !pinned {
				what = "new"
			}
			fmt.Fprintf(&out, "%s %s/%s", what, list, EscapeHidden(n))
			if pinned && old.Version != p.Version && p.Version != "" {
				fmt.Fprintf(&out, " (package %s %s → %s)", s.Package, orUnknown(old.Version), p.Version)
			}
			out.WriteString(":\n")
			out.WriteString(DiffDefinitions(old.Definition, p.Definition))
		}
	}
	return out.String()
}

func orUnknown(v string) string {
	if v == "" {
		return "(unknown)"
	}
	return v
}
