package clientconfig

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// tomlFile is a TOML config (Codex) edited by splicing: the spans of the
// values wrap changes are found with a small scanner, and every other byte
// stays as it was, comments included.
type tomlFile struct {
	name string
	data []byte
	spec *FileSpec
}

// tomlKV is one key = value line of a table.
type tomlKV struct {
	table  []string // the table's key path
	key    []string // the (dotted) key
	vs, ve int      // the value's span
}

func parseTOML(file string, data []byte, spec *FileSpec) (*tomlFile, error) {
	f := &tomlFile{name: file, data: data, spec: spec}
	if _, err := f.scan(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *tomlFile) Bytes() []byte { return f.data }

// scan lists every key/value of the file with its table.
func (f *tomlFile) scan() ([]tomlKV, error) {
	d := f.data
	var out []tomlKV
	var table []string
	errAt := func(i int, msg string) error {
		line := bytes.Count(d[:i], []byte("\n")) + 1
		col := i - bytes.LastIndexByte(d[:i], '\n')
		return fmt.Errorf("%s: line %d, column %d: %s", f.name, line, col, msg)
	}
	i := 0
	for i < len(d) {
		i = skipBlank(d, i, true)
		if i >= len(d) {
			break
		}
		switch d[i] {
		case '#':
			i = lineEnd(d, i)
			continue
		case '[':
			arrayTable := i+1 < len(d) && d[i+1] == '['
			j := i + 1
			if arrayTable {
				j++
			}
			keys, k, err := tomlKey(d, j)
			if err != nil {
				return nil, errAt(j, err.Error())
			}
			k = skipBlank(d, k, false)
			if k >= len(d) || d[k] != ']' || (arrayTable && (k+1 >= len(d) || d[k+1] != ']')) {
				return nil, errAt(k, "expected ] to close the table header")
			}
			table = keys
			if arrayTable {
				table = append([]string{"[[array]]"}, keys...) // never a server table
				k++
			}
			i = k + 1
			if e := afterValue(d, i); e < 0 {
				return nil, errAt(i, "unexpected text after the table header")
			} else {
				i = e
			}
			continue
		}
		keys, k, err := tomlKey(d, i)
		if err != nil {
			return nil, errAt(i, err.Error())
		}
		k = skipBlank(d, k, false)
		if k >= len(d) || d[k] != '=' {
			return nil, errAt(k, "expected = after the key")
		}
		vs := skipBlank(d, k+1, false)
		ve, err := skipTOMLValue(d, vs)
		if err != nil {
			return nil, errAt(vs, err.Error())
		}
		out = append(out, tomlKV{table: table, key: keys, vs: vs, ve: ve})
		e := afterValue(d, ve)
		if e < 0 {
			return nil, errAt(ve, "unexpected text after the value")
		}
		i = e
	}
	return out, nil
}

// skipBlank skips spaces and tabs, and newlines when nl.
func skipBlank(d []byte, i int, nl bool) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || (nl && (d[i] == '\n' || d[i] == '\r'))) {
		i++
	}
	return i
}

func lineEnd(d []byte, i int) int {
	if j := bytes.IndexByte(d[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(d)
}

// afterValue checks that only blanks or a comment follow on the line and
// returns the start of the next line, or -1.
func afterValue(d []byte, i int) int {
	i = skipBlank(d, i, false)
	switch {
	case i >= len(d):
		return i
	case d[i] == '#' || d[i] == '\n':
		return lineEnd(d, i)
	case d[i] == '\r' && i+1 < len(d) && d[i+1] == '\n':
		return i + 2
	}
	return -1
}

// tomlKey reads a dotted key of bare and quoted parts.
func tomlKey(d []byte, i int) ([]string, int, error) {
	var keys []string
	for {
		i = skipBlank(d, i, false)
		if i >= len(d) {
			return nil, i, fmt.Errorf("expected a key")
		}
		switch d[i] {
		case '"', '\'':
			e, err := skipTOMLString(d, i)
			if err != nil {
				return nil, i, err
			}
			s, err := tomlString(d[i:e])
			if err != nil {
				return nil, i, err
			}
			keys = append(keys, s)
			i = e
		default:
			s := i
			for i < len(d) && (isBare(d[i])) {
				i++
			}
			if i == s {
				return nil, i, fmt.Errorf("expected a key, found %q", d[i])
			}
			keys = append(keys, string(d[s:i]))
		}
		j := skipBlank(d, i, false)
		if j < len(d) && d[j] == '.' {
			i = j + 1
			continue
		}
		return keys, i, nil
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// skipTOMLString returns the end of the string starting at d[i].
func skipTOMLString(d []byte, i int) (int, error) {
	q := d[i]
	if bytes.HasPrefix(d[i:], []byte{q, q, q}) {
		end := bytes.Index(d[i+3:], []byte{q, q, q})
		if end < 0 {
			return 0, fmt.Errorf("unterminated multi-line string")
		}
		e := i + 3 + end + 3
		for e < len(d) && d[e] == q { // up to two more quotes belong to the content
			e++
		}
		return e, nil
	}
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			if q == '"' {
				j++
			}
		case '\n':
			return 0, fmt.Errorf("newline in a string")
		case q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string")
}

// tomlString decodes a one-line basic or literal string.
func tomlString(raw []byte) (string, error) {
	if len(raw) >= 2 && raw[0] == '\'' {
		return string(raw[1 : len(raw)-1]), nil
	}
	if bytes.HasPrefix(raw, []byte(`"""`)) || bytes.HasPrefix(raw, []byte(`'''`)) {
		s := string(raw[3 : len(raw)-3])
		return strings.TrimPrefix(s, "\n"), nil
	}
	s, err := strconv.Unquote(string(raw))
	if err != nil {
		return "", fmt.Errorf("bad string %s", raw)
	}
	return s, nil
}

// skipTOMLValue returns the end of the value starting at d[i].
func skipTOMLValue(d []byte, i int) (int, error) {
	if i >= len(d) {
		return 0, fmt.Errorf("expected a value")
	}
	switch d[i] {
	case '"', '\'':
		return skipTOMLString(d, i)
	case '[', '{':
		closer := byte(']')
		if d[i] == '{' {
			closer = '}'
		}
		inline := d[i] == '{'
		j := i + 1
		for {
			j = skipBlank(d, j, !inline)
			for !inline && j < len(d) && d[j] == '#' {
				j = skipBlank(d, lineEnd(d, j), true)
			}
			if j >= len(d) {
				return 0, fmt.Errorf("unterminated %c", d[i])
			}
			if d[j] == closer {
				return j + 1, nil
			}
			if inline {
				_, k, err := tomlKey(d, j)
				if err != nil {
					return 0, err
				}
				k = skipBlank(d, k, false)
				if k >= len(d) || d[k] != '=' {
					return 0, fmt.Errorf("expected = in an inline table")
				}
				j = skipBlank(d, k+1, false)
			}
			e, err := skipTOMLValue(d, j)
			if err != nil {
				return 0, err
			}
			j = skipBlank(d, e, !inline)
			for !inline && j < len(d) && d[j] == '#' {
				j = skipBlank(d, lineEnd(d, j), true)
			}
			if j < len(d) && d[j] == ',' {
				j++
				continue
			}
			if j < len(d) && d[j] == closer {
				return j + 1, nil
			}
			return 0, fmt.Errorf("expected , or %c", closer)
		}
	}
	j := i
	for j < len(d) && d[j] != '\n' && d[j] != '#' && d[j] != ',' && d[j] != ']' && d[j] != '}' && d[j] != '\r' {
		j++
	}
	for j > i && (d[j-1] == ' ' || d[j-1] == '\t') {
		j--
	}
	if j == i {
		return 0, fmt.Errorf("expected a value")
	}
	return j, nil
}

// arrayElems returns the spans of the elements of the array at d[s:e].
func arrayElems(d []byte, s, e int) [][2]int {
	var out [][2]int
	j := s + 1
	for j < e-1 {
		j = skipBlank(d, j, true)
		for j < e && d[j] == '#' {
			j = skipBlank(d, lineEnd(d, j), true)
		}
		if j >= e-1 || d[j] == ']' {
			break
		}
		ve, err := skipTOMLValue(d, j)
		if err != nil {
			break
		}
		out = append(out, [2]int{j, ve})
		j = skipBlank(d, ve, true)
		for j < e && d[j] == '#' {
			j = skipBlank(d, lineEnd(d, j), true)
		}
		if j < e && d[j] == ',' {
			j++
		}
	}
	return out
}

// servers groups the key/values of each server table.
func (f *tomlFile) servers() (map[string][]tomlKV, []string) {
	kvs, _ := f.scan()
	by := map[string][]tomlKV{}
	var order []string
	for _, kv := range kvs {
		full := append(append([]string(nil), kv.table...), kv.key...)
		for _, sec := range f.spec.Sections {
			if len(full) < len(sec)+2 || strings.Join(full[:len(sec)], "\x00") != strings.Join(sec, "\x00") {
				continue
			}
			name := full[len(sec)]
			if _, ok := by[name]; !ok {
				order = append(order, name)
			}
			rest := full[len(sec)+1:]
			by[name] = append(by[name], tomlKV{table: kv.table, key: rest, vs: kv.vs, ve: kv.ve})
		}
	}
	return by, order
}

func (f *tomlFile) Entries() []Entry {
	by, order := f.servers()
	var out []Entry
	for _, name := range order {
		e := Entry{Section: strings.Join(f.spec.Sections[0], "."), Name: name}
		for _, kv := range by[name] {
			raw := f.data[kv.vs:kv.ve]
			switch {
			case len(kv.key) == 1 && kv.key[0] == "command":
				e.Command, _ = tomlString(raw)
			case len(kv.key) == 1 && kv.key[0] == "url":
				e.URL, _ = tomlString(raw)
			case len(kv.key) == 1 && kv.key[0] == "args":
				for _, sp := range arrayElems(f.data, kv.vs, kv.ve) {
					s, _ := tomlString(f.data[sp[0]:sp[1]])
					e.Args = append(e.Args, s)
				}
			case len(kv.key) == 1 && kv.key[0] == "env" && len(raw) > 0 && raw[0] == '{':
				e.EnvNames = append(e.EnvNames, inlineKeys(raw)...)
			case len(kv.key) == 2 && kv.key[0] == "env":
				e.EnvNames = append(e.EnvNames, kv.key[1])
			}
		}
		sort.Strings(e.EnvNames)
		out = append(out, e)
	}
	return out
}

// inlineKeys lists the keys of an inline table.
func inlineKeys(raw []byte) []string {
	var keys []string
	j := 1
	for j < len(raw) {
		j = skipBlank(raw, j, false)
		if j >= len(raw) || raw[j] == '}' {
			break
		}
		k, e, err := tomlKey(raw, j)
		if err != nil {
			break
		}
		keys = append(keys, strings.Join(k, "."))
		e = skipBlank(raw, e, false)
		if e >= len(raw) || raw[e] != '=' {
			break
		}
		ve, err := skipTOMLValue(raw, skipBlank(raw, e+1, false))
		if err != nil {
			break
		}
		j = skipBlank(raw, ve, false)
		if j < len(raw) && raw[j] == ',' {
			j++
		}
	}
	return keys
}

// find returns the spans of an entry's command and args values.
func (f *tomlFile) find(e Entry) (cmd, args *tomlKV, err error) {
	by, _ := f.servers()
	kvs, ok := by[e.Name]
	if !ok {
		return nil, nil, fmt.Errorf("%s: no server %q", f.name, e.Name)
	}
	for i := range kvs {
		if len(kvs[i].key) == 1 && kvs[i].key[0] == "command" {
			cmd = &kvs[i]
		}
		if len(kvs[i].key) == 1 && kvs[i].key[0] == "args" {
			args = &kvs[i]
		}
	}
	if cmd == nil {
		return nil, nil, fmt.Errorf("%s: server %q has no command", f.name, e.Name)
	}
	return cmd, args, nil
}

func (f *tomlFile) Wrap(e Entry, mcpbox string) error {
	cmd, args, err := f.find(e)
	if err != nil {
		return err
	}
	orig := string(f.data[cmd.vs:cmd.ve])
	var ins strings.Builder
	for _, p := range wrapPrefix(e) {
		ins.WriteString(strconv.Quote(p) + ", ")
	}
	ins.WriteString(orig)
	var edits []splice
	if args != nil {
		if indent, ok := multiline(f.data, args.vs); ok {
			// One element a line, as the array is written.
			items := append(wrapQuoted(e), orig)
			edits = append(edits, splice{cmd.vs, cmd.ve, strconv.Quote(mcpbox)},
				splice{args.vs + 1, args.vs + 1, "\n" + indent + strings.Join(items, ",\n"+indent) + ","})
			f.data = apply(f.data, edits)
			return nil
		}
	}
	edits = append(edits, splice{cmd.vs, cmd.ve, strconv.Quote(mcpbox)})
	if args == nil {
		// A new args line after the command's line.
		at := lineEnd(f.data, cmd.ve)
		nl := "\n"
		if at == len(f.data) && (len(f.data) == 0 || f.data[len(f.data)-1] != '\n') {
			nl = ""
			edits = append(edits, splice{at, at, "\nargs = [" + ins.String() + "]"})
		} else {
			edits = append(edits, splice{at, at, "args = [" + ins.String() + "]" + nl})
		}
	} else {
		raw := f.data[args.vs:args.ve]
		if raw[0] != '[' {
			return fmt.Errorf("%s: server %q: args is not an array", f.name, e.Name)
		}
		if len(arrayElems(f.data, args.vs, args.ve)) > 0 {
			ins.WriteString(", ")
		}
		edits = append(edits, splice{args.vs + 1, args.vs + 1, ins.String()})
	}
	f.data = apply(f.data, edits)
	return nil
}

func (f *tomlFile) Unwrap(e Entry) error {
	cmd, args, err := f.find(e)
	if err != nil {
		return err
	}
	if args == nil {
		return fmt.Errorf("%s: server %q is not wrapped", f.name, e.Name)
	}
	elems := arrayElems(f.data, args.vs, args.ve)
	var strs []string
	for _, sp := range elems {
		s, _ := tomlString(f.data[sp[0]:sp[1]])
		strs = append(strs, s)
	}
	c, _ := tomlString(f.data[cmd.vs:cmd.ve])
	n := prefixLen(strs)
	if commandName(c) != "mcpbox" || n < 0 {
		return fmt.Errorf("%s: server %q is not wrapped by mcpbox", f.name, e.Name)
	}
	inner := string(f.data[elems[n][0]:elems[n][1]])
	var edits []splice
	edits = append(edits, splice{cmd.vs, cmd.ve, inner})
	if indent, ok := multiline(f.data, args.vs); ok {
		items := append(wrapQuoted(Entry{EnvNames: envFromPrefix(strs[:n])}), inner)
		ins := "\n" + indent + strings.Join(items, ",\n"+indent) + ","
		if bytes.HasPrefix(f.data[args.vs+1:], []byte(ins)) {
			edits = append(edits, splice{args.vs + 1, args.vs + 1 + len(ins), ""})
			f.data = apply(f.data, edits)
			return nil
		}
	}
	if n+1 == len(elems) {
		// Only mcpbox's part: the args line was added by wrap, or was [].
		start, end := args.vs+1, args.ve-1
		if lineStart(f.data, args.vs) == lineStart(f.data, args.ve) && isOwnLine(f.data, args) {
			edits = append(edits, splice{lineStart(f.data, args.vs), lineEnd(f.data, args.ve), ""})
		} else {
			edits = append(edits, splice{start, end, ""})
		}
	} else if end := elems[n][1]; bytes.HasPrefix(f.data[end:], []byte(", ")) {
		// Exactly what wrap inserted after "[".
		edits = append(edits, splice{elems[0][0], end + 2, ""})
	} else {
		edits = append(edits, splice{elems[0][0], elems[n+1][0], ""})
	}
	f.data = apply(f.data, edits)
	return nil
}

func lineStart(d []byte, i int) int { return bytes.LastIndexByte(d[:i], '\n') + 1 }

// isOwnLine reports whether the key/value is a line of its own: `args = [...]`.
func isOwnLine(d []byte, kv *tomlKV) bool {
	return strings.HasPrefix(string(d[lineStart(d, kv.vs):kv.vs]), "args = ")
}

type splice struct {
	s, e int
	text string
}

// apply makes non-overlapping edits, given in any order.
func apply(d []byte, edits []splice) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].s < edits[j].s })
	var out []byte
	last := 0
	for _, ed := range edits {
		out = append(out, d[last:ed.s]...)
		out = append(out, ed.text...)
		last = ed.e
	}
	return append(out, d[last:]...)
}

// multiline reports whether the array at d[i] starts with a newline, and
// the indentation of its first element.
func multiline(d []byte, i int) (string, bool) {
	j := i + 1
	if j < len(d) && d[j] == '\r' {
		j++
	}
	if j >= len(d) || d[j] != '\n' {
		return "", false
	}
	k := j + 1
	for k < len(d) && (d[k] == ' ' || d[k] == '\t') {
		k++
	}
	if k >= len(d) || d[k] == '\n' || d[k] == ']' || d[k] == '#' {
		return "", false
	}
	return string(d[j+1 : k]), true
}

// wrapQuoted is wrapPrefix as TOML strings.
func wrapQuoted(e Entry) []string {
	var out []string
	for _, p := range wrapPrefix(e) {
		out = append(out, strconv.Quote(p))
	}
	return out
}

// envFromPrefix recovers the names of a wrap prefix's --env flags.
func envFromPrefix(prefix []string) []string {
	var names []string
	for i := 0; i+1 < len(prefix); i++ {
		if prefix[i] == "--env" {
			names = append(names, prefix[i+1])
			i++
		}
	}
	return names
}
