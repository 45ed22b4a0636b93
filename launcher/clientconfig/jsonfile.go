package clientconfig

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/tailscale/hujson"
)

// jsonFile is a JSON or JSONC config held as hujson's exact syntax tree.
type jsonFile struct {
	name string
	root hujson.Value
	spec *FileSpec
}

func parseJSON(file string, data []byte, spec *FileSpec) (*jsonFile, error) {
	v, err := hujson.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, lineColumn(data, err))
	}
	if _, ok := v.Value.(*hujson.Object); !ok && len(bytes.TrimSpace(data)) > 0 {
		return nil, fmt.Errorf("%s: the file is not a JSON object", file)
	}
	return &jsonFile{name: file, root: v, spec: spec}, nil
}

// lineColumn makes hujson's byte-offset errors say line and column.
func lineColumn(data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "hujson: ")
	if strings.HasPrefix(msg, "line ") {
		return fmt.Errorf("%s", msg)
	}
	var off int
	if i := strings.Index(msg, "offset "); i >= 0 {
		if _, serr := fmt.Sscanf(msg[i:], "offset %d", &off); serr == nil && off <= len(data) {
			line := bytes.Count(data[:off], []byte("\n")) + 1
			col := off - bytes.LastIndexByte(data[:off], '\n')
			return fmt.Errorf("line %d, column %d: %s", line, col, msg)
		}
	}
	return err
}

func (f *jsonFile) Bytes() []byte { return f.root.Pack() }

// section is one object holding entries, and its dotted path.
type section struct {
	path string
	obj  *hujson.Object
}

func (f *jsonFile) sections() []section {
	var out []section
	for _, steps := range f.spec.Sections {
		var walk func(v *hujson.Value, steps []string, at string)
		walk = func(v *hujson.Value, steps []string, at string) {
			obj, ok := v.Value.(*hujson.Object)
			if !ok {
				return
			}
			if len(steps) == 0 {
				out = append(out, section{at, obj})
				return
			}
			for i := range obj.Members {
				m := &obj.Members[i]
				name := literalString(m.Name)
				if steps[0] != "*" && name != steps[0] {
					continue
				}
				next := name
				if at != "" {
					next = at + "." + name
				}
				walk(&m.Value, steps[1:], next)
			}
		}
		walk(&f.root, steps, "")
	}
	return out
}

func literalString(v hujson.Value) string {
	if l, ok := v.Value.(hujson.Literal); ok && l.Kind() == '"' {
		return l.String()
	}
	return ""
}

func member(obj *hujson.Object, name string) *hujson.ObjectMember {
	var found *hujson.ObjectMember
	for i := range obj.Members {
		if literalString(obj.Members[i].Name) == name {
			found = &obj.Members[i] // the last one counts, as in most parsers
		}
	}
	return found
}

func (f *jsonFile) Entries() []Entry {
	var out []Entry
	for _, s := range f.sections() {
		for i := range s.obj.Members {
			m := &s.obj.Members[i]
			if e, ok := readEntry(s.path, m); ok {
				out = append(out, e)
			}
		}
	}
	return out
}

func readEntry(sec string, m *hujson.ObjectMember) (Entry, bool) {
	obj, ok := m.Value.Value.(*hujson.Object)
	if !ok {
		return Entry{}, false
	}
	e := Entry{Section: sec, Name: literalString(m.Name)}
	if c := member(obj, "command"); c != nil {
		e.Command = literalString(c.Value)
	}
	if a := member(obj, "args"); a != nil {
		if arr, ok := a.Value.Value.(*hujson.Array); ok {
			for _, el := range arr.Elements {
				e.Args = append(e.Args, literalString(el))
			}
		}
	}
	if env := member(obj, "env"); env != nil {
		if eo, ok := env.Value.Value.(*hujson.Object); ok {
			for _, em := range eo.Members {
				e.EnvNames = append(e.EnvNames, literalString(em.Name))
			}
			sort.Strings(e.EnvNames)
		}
	}
	for _, k := range []string{"url", "serverUrl", "httpUrl"} {
		if u := member(obj, k); u != nil {
			e.URL = literalString(u.Value)
		}
	}
	if t := member(obj, "type"); t != nil {
		e.Type = literalString(t.Value)
	}
	return e, true
}

// entry finds e's object in the tree.
func (f *jsonFile) entry(e Entry) (*hujson.Object, error) {
	for _, s := range f.sections() {
		if s.path != e.Section {
			continue
		}
		if m := member(s.obj, e.Name); m != nil {
			if obj, ok := m.Value.Value.(*hujson.Object); ok {
				return obj, nil
			}
		}
	}
	return nil, fmt.Errorf("%s: no server %q in %s", f.name, e.Name, e.Section)
}

func (f *jsonFile) Wrap(e Entry, mcpbox string) error {
	obj, err := f.entry(e)
	if err != nil {
		return err
	}
	cmd := member(obj, "command")
	if cmd == nil || literalString(cmd.Value) == "" {
		return fmt.Errorf("%s: server %q has no command to wrap", f.name, e.Name)
	}
	prefix := wrapPrefix(e)
	// The original command moves into args with its exact bytes.
	moved := hujson.Value{Value: cmd.Value.Value}
	cmd.Value.Value = hujson.String(mcpbox)

	args := member(obj, "args")
	if args == nil {
		arr := &hujson.Array{}
		obj.Members = insertAfter(obj.Members, cmd, hujson.ObjectMember{
			Name:  hujson.Value{BeforeExtra: cloneExtra(cmd.Name.BeforeExtra), Value: hujson.String("args")},
			Value: hujson.Value{BeforeExtra: cloneExtra(cmd.Value.BeforeExtra), Value: arr},
		})
		for i, p := range prefix {
			arr.Elements = append(arr.Elements, hujson.Value{BeforeExtra: sepIf(i > 0, " "), Value: hujson.String(p)})
		}
		moved.BeforeExtra = hujson.Extra(" ")
		arr.Elements = append(arr.Elements, moved)
		return nil
	}
	arr, ok := args.Value.Value.(*hujson.Array)
	if !ok {
		return fmt.Errorf("%s: server %q: args is not an array", f.name, e.Name)
	}
	orig := arr.Elements
	sep := hujson.Extra(" ")
	switch {
	case len(orig) >= 2:
		sep = cloneExtra(orig[1].BeforeExtra)
	case len(orig) == 1 && bytes.ContainsRune(orig[0].BeforeExtra, '\n'):
		sep = cloneExtra(orig[0].BeforeExtra)
	}
	var first hujson.Extra // what followed "[" before
	if len(orig) > 0 {
		first = orig[0].BeforeExtra
	}
	var els []hujson.Value
	for i, p := range prefix {
		x := sep
		if i == 0 {
			x = first
		}
		els = append(els, hujson.Value{BeforeExtra: cloneExtra(x), Value: hujson.String(p)})
	}
	moved.BeforeExtra = cloneExtra(sep)
	els = append(els, moved)
	if len(orig) > 0 {
		o0 := orig[0]
		o0.BeforeExtra = cloneExtra(sep)
		els = append(els, o0)
		els = append(els, orig[1:]...)
	} else if len(orig) == 0 && len(arr.AfterExtra) > 0 {
		// "[ ]": the space stays before "]".
	}
	arr.Elements = els
	return nil
}

func (f *jsonFile) Unwrap(e Entry) error {
	obj, err := f.entry(e)
	if err != nil {
		return err
	}
	cmd, args := member(obj, "command"), member(obj, "args")
	if cmd == nil || args == nil {
		return fmt.Errorf("%s: server %q is not wrapped", f.name, e.Name)
	}
	arr, ok := args.Value.Value.(*hujson.Array)
	if !ok {
		return fmt.Errorf("%s: server %q: args is not an array", f.name, e.Name)
	}
	var strs []string
	for _, el := range arr.Elements {
		strs = append(strs, literalString(el))
	}
	n := prefixLen(strs)
	if commandName(literalString(cmd.Value)) != "mcpbox" || n < 0 {
		return fmt.Errorf("%s: server %q is not wrapped by mcpbox", f.name, e.Name)
	}
	first := arr.Elements[0].BeforeExtra
	cmd.Value.Value = arr.Elements[n].Value
	rest := arr.Elements[n+1:]
	if len(rest) == 0 {
		// wrap added args to an entry without them; an entry that had
		// "args": [] loses it (documented).
		obj.Members = remove(obj.Members, args)
		return nil
	}
	rest[0].BeforeExtra = first
	arr.Elements = append([]hujson.Value(nil), rest...)
	return nil
}

func sepIf(cond bool, s string) hujson.Extra {
	if cond {
		return hujson.Extra(s)
	}
	return nil
}

func cloneExtra(x hujson.Extra) hujson.Extra {
	if x == nil {
		return nil
	}
	return append(hujson.Extra(nil), x...)
}

func insertAfter(ms []hujson.ObjectMember, after *hujson.ObjectMember, m hujson.ObjectMember) []hujson.ObjectMember {
	for i := range ms {
		if &ms[i] == after {
			out := append([]hujson.ObjectMember(nil), ms[:i+1]...)
			out = append(out, m)
			return append(out, ms[i+1:]...)
		}
	}
	return append(ms, m)
}

func remove(ms []hujson.ObjectMember, m *hujson.ObjectMember) []hujson.ObjectMember {
	for i := range ms {
		if &ms[i] == m {
			out := append([]hujson.ObjectMember(nil), ms[:i]...)
			return append(out, ms[i+1:]...)
		}
	}
	return ms
}
