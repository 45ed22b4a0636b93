package profiles

import (
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Field syntax. These are compiled once and never changed.
var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	envRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	syscallRE = regexp.MustCompile(`^[a-z0-9_]+$`)
	digestRE  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// npm: optional @scope/, lowercase URL-safe characters (legacy names
	// with capitals exist, so they are accepted).
	npmRE = regexp.MustCompile(`^(@[A-Za-z0-9~-][A-Za-z0-9._~-]*/)?[A-Za-z0-9~-][A-Za-z0-9._~-]*$`)
	// PyPI: PEP 508 names.
	pypiRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
)

const nameRule = "use 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit"

// The keys each mapping accepts, in the order a rendered profile has them.
var (
	topKeys     = []string{"name", "description", "extends", "match", "rootfs", "image", "network", "pathArgs", "mounts", "env", "setenv", "limits", "seccomp", "tools", "install"}
	matchKeys   = []string{NPM, PyPI}
	networkKeys = []string{"allow"}
	mountKeys   = []string{"host", "path", "mode"}
	limitsKeys  = []string{"memory", "pids", "cpus", "tmp", "required"}
	seccompKeys = []string{"allow"}
	toolsKeys   = []string{"allow", "deny", "pin", "scan"}
	installKeys = []string{"scripts"}
)

// maxFileSize bounds what is read as a profile; real ones are a few KiB.
const maxFileSize = 1 << 20

// layer is what one file says: the fields it sets (those with an entry in
// pos), before extends is resolved.
type layer struct {
	file string
	p    Profile
	pos  map[string]int // field path → line, for every field the file sets
}

func (l *layer) has(field string) bool {
	_, ok := l.pos[field]
	return ok
}

type decoder struct {
	file string
	pos  map[string]int // fields with a value
	keys map[string]int // every key, also those with a null value
}

// decode parses one profile file. Every error is a *ValidationError.
func decode(file string, data []byte) (*layer, error) {
	d := &decoder{file: file, pos: map[string]int{}, keys: map[string]int{}}
	if len(data) > maxFileSize {
		return nil, d.errAt("", 0, "the file is larger than %d bytes: a profile is a few lines of YAML", maxFileSize)
	}
	// Duplicate keys are reported by the walk below, with the field path.
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		var ye interface {
			GetToken() *token.Token
			GetMessage() string
		}
		if errors.As(err, &ye) {
			line := 1
			if tk := ye.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
				line = tk.Position.Line
			}
			return nil, d.errAt("", line, "invalid YAML: %s", ye.GetMessage())
		}
		return nil, d.errAt("", 1, "invalid YAML: %s", err)
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			return nil, d.errAt("", nodeLine(doc.Body), "a second YAML document: a profile file holds exactly one")
		}
		body = doc.Body
	}
	if body == nil {
		return nil, d.errAt("", 1, "the file is empty: a profile needs at least `name:`")
	}
	body, err = d.unwrap(body, "", nodeLine(body))
	if err != nil {
		return nil, err
	}
	if _, ok := body.(*ast.MappingNode); !ok {
		return nil, d.errAt("", nodeLine(body), "a profile is a mapping of fields (name:, description:, ...), not %s", kind(body))
	}
	l := &layer{file: file, pos: d.pos}
	if err := d.mapping(body, "", topKeys, func(key, f string, v ast.Node) error {
		return d.top(&l.p, key, f, v)
	}); err != nil {
		return nil, err
	}
	if l.p.Name == "" {
		line := 1
		if n, ok := d.keys["name"]; ok {
			line = n
		}
		return nil, d.errAt("name", line, "a profile needs a name: %s", nameRule)
	}
	return l, nil
}

// imageRef checks an image reference: name[:tag][@sha256:<64 hex>]. It
// returns what is wrong, "" if nothing.
func imageRef(s string) string {
	if strings.TrimSpace(s) == "" {
		return "an empty image reference: write e.g. mcpbox.local/runtime/node:20 or NAME@sha256:<64 hex digits>"
	}
	name, dgst, pinned := strings.Cut(s, "@")
	if pinned && !digestRE.MatchString(dgst) {
		return "a pinned image needs a digest of the form sha256:<64 lowercase hex digits>"
	}
	if _, err := reference.ParseNormalizedNamed(name); err != nil {
		return fmt.Sprintf("not a valid image reference (%v)", err)
	}
	return ""
}

// top decodes one top-level field into p.
func (d *decoder) top(p *Profile, key, f string, v ast.Node) error {
	var err error
	switch key {
	case "name":
		if p.Name, err = d.str(v, f); err != nil {
			return err
		}
		if !nameRE.MatchString(p.Name) {
			return d.err(f, "%q is not a valid name: %s", p.Name, nameRule)
		}
	case "description":
		p.Description, err = d.str(v, f)
	case "extends":
		if p.Extends, err = d.str(v, f); err != nil {
			return err
		}
		if !nameRE.MatchString(p.Extends) {
			return d.err(f, "%q is not a profile name: %s", p.Extends, nameRule)
		}
	case "match":
		if seq, ok := v.(*ast.SequenceNode); ok {
			return d.list(seq, f, func(_ int, fi string, item ast.Node) error {
				return d.match(p, item, fi)
			})
		}
		return d.match(p, v, f)
	case "rootfs":
		if m, ok := v.(*ast.MappingNode); ok && len(m.Values) > 0 && m.Values[0].Key.GetToken().Value == "image" {
			return d.err(f, "write the image as its own field: `rootfs: image` and `image: REF`")
		}
		if p.RootFS, err = d.str(v, f); err != nil {
			return err
		}
		switch p.RootFS {
		case RootFSHost, RootFSImage:
		default:
			return d.err(f, "%q is not valid: use host or image", p.RootFS)
		}
	case "image":
		if p.Image, err = d.str(v, f); err != nil {
			return err
		}
		if r := imageRef(p.Image); r != "" {
			return d.err(f, "%q: %s", p.Image, r)
		}
	case "network":
		return d.network(p, v, f)
	case "pathArgs":
		p.PathArgs, err = d.access(v, f, AccessNone, AccessRO, AccessRW)
	case "mounts":
		return d.list(v, f, func(_ int, fi string, item ast.Node) error {
			m, err := d.mount(item, fi)
			p.Mounts = append(p.Mounts, m)
			return err
		})
	case "env":
		p.Env, err = d.stringList(v, f, envName)
	case "setenv":
		return d.setenv(p, v, f)
	case "limits":
		return d.limits(p, v, f)
	case "seccomp":
		return d.seccomp(p, v, f)
	case "tools":
		return d.tools(p, v, f)
	case "install":
		return d.install(p, v, f)
	}
	return err
}

// network decodes `network: {allow: [...]}`, the hosts the server may reach.
func (d *decoder) network(p *Profile, v ast.Node, f string) error {
	return d.mapping(v, f, networkKeys, func(_, f string, v ast.Node) error {
		var err error
		p.Network.Allow, err = d.stringList(v, f, func(s string) string {
			if strings.TrimSpace(s) == "" {
				return "an empty host pattern: write a host like api.example.com or *.example.com:443"
			}
			return ""
		})
		return err
	})
}

// setenv decodes the variables a profile sets, NAME: value.
func (d *decoder) setenv(p *Profile, v ast.Node, f string) error {
	p.Setenv = map[string]string{}
	return d.mapping(v, f, nil, func(key, f string, v ast.Node) error {
		if r := envName(key); r != "" {
			return d.err(f, "%s", r)
		}
		s, err := d.text(v, f)
		p.Setenv[key] = s
		return err
	})
}

// limits decodes memory, pids, cpus, tmp and required.
func (d *decoder) limits(p *Profile, v ast.Node, f string) error {
	return d.mapping(v, f, limitsKeys, func(key, f string, v ast.Node) error {
		var err error
		switch key {
		case "memory":
			p.Limits.Memory, err = d.size(v, f)
		case "tmp":
			p.Limits.Tmp, err = d.size(v, f)
		case "pids":
			if p.Limits.PIDs, err = d.integer(v, f); err == nil && p.Limits.PIDs < 1 {
				err = d.err(f, "%d is not valid: allow at least 1 process", p.Limits.PIDs)
			}
		case "cpus":
			p.Limits.CPUs, err = d.cpus(v, f)
		case "required":
			b, ok := v.(*ast.BoolNode)
			if !ok {
				return d.typeErr(f, "true or false", v)
			}
			p.Limits.Required = b.Value
		}
		return err
	})
}

// seccomp decodes `seccomp: {allow: [...]}`, the syscalls added to the base filter.
func (d *decoder) seccomp(p *Profile, v ast.Node, f string) error {
	return d.mapping(v, f, seccompKeys, func(_, f string, v ast.Node) error {
		var err error
		p.Seccomp.Allow, err = d.stringList(v, f, func(s string) string {
			if !syscallRE.MatchString(s) {
				return fmt.Sprintf("%q is not a syscall name: use the kernel's name, like memfd_create", s)
			}
			return ""
		})
		return err
	})
}

// tools decodes the allow and deny lists and the pin and scan actions.
func (d *decoder) tools(p *Profile, v ast.Node, f string) error {
	return d.mapping(v, f, toolsKeys, func(key, f string, v ast.Node) error {
		var err error
		switch key {
		case "allow":
			p.Tools.Allow, err = d.stringList(v, f, nonEmpty("a tool name"))
		case "deny":
			p.Tools.Deny, err = d.stringList(v, f, nonEmpty("a tool name"))
		case "pin":
			p.Tools.Pin, err = d.action(v, f)
		case "scan":
			p.Tools.Scan, err = d.action(v, f)
		}
		return err
	})
}

// install decodes `install: {scripts: BOOL}`.
func (d *decoder) install(p *Profile, v ast.Node, f string) error {
	return d.mapping(v, f, installKeys, func(_, f string, v ast.Node) error {
		b, ok := v.(*ast.BoolNode)
		if !ok {
			return d.typeErr(f, "true or false", v)
		}
		p.Install.Scripts = b.Value
		return nil
	})
}

// match decodes `{npm: NAME}`, `{pypi: NAME}` or both.
func (d *decoder) match(p *Profile, v ast.Node, f string) error {
	n := 0
	err := d.mapping(v, f, matchKeys, func(eco, f string, v ast.Node) error {
		pkg, err := d.str(v, f)
		if err != nil {
			return err
		}
		re, what := npmRE, "an npm package name, like @scope/name"
		if eco == PyPI {
			re, what = pypiRE, "a PyPI project name, like mcp-server-fetch"
		}
		if !re.MatchString(pkg) {
			return d.err(f, "%q is not %s (without a version)", pkg, what)
		}
		p.Match = append(p.Match, Match{Ecosystem: eco, Package: pkg})
		n++
		return nil
	})
	if err == nil && n == 0 {
		return d.errAt(f, d.lineOf(f, v), "an empty match: write { npm: NAME } or { pypi: NAME }")
	}
	return err
}

func (d *decoder) mount(v ast.Node, f string) (Mount, error) {
	m := Mount{Mode: AccessRO}
	err := d.mapping(v, f, mountKeys, func(key, f string, v ast.Node) error {
		var err error
		switch key {
		case "host":
			if m.Host, err = d.str(v, f); err != nil {
				return err
			}
			if r := hostPathProblem(m.Host); r != "" {
				return d.err(f, "%q %s", m.Host, r)
			}
		case "path":
			if m.Path, err = d.str(v, f); err != nil {
				return err
			}
			switch {
			case !path.IsAbs(m.Path):
				return d.err(f, "%q is not absolute: write the path inside the sandbox, like /data", m.Path)
			case path.Clean(m.Path) != m.Path:
				return d.err(f, "%q is not clean: write %s", m.Path, path.Clean(m.Path))
			case m.Path == "/":
				return d.err(f, "cannot mount over the sandbox's root: pick a directory like /data")
			}
		case "mode":
			m.Mode, err = d.access(v, f, AccessRO, AccessRW)
		}
		return err
	})
	if err != nil {
		return m, err
	}
	if m.Host == "" {
		return m, d.err(f, "a mount needs host: (the host path to grant)")
	}
	if m.Path == "" {
		return m, d.err(f, "a mount needs path: (where it appears inside the sandbox)")
	}
	return m, nil
}

// hostPathProblem says what is wrong with a mount's host path, or "".
func hostPathProblem(h string) string {
	const hint = "use an absolute path, ~/path or ${STATE}/path"
	switch {
	case strings.ContainsRune(h, 0):
		return "contains a NUL byte"
	case h == "~" || strings.HasPrefix(h, "~/"):
	case strings.HasPrefix(h, "~"):
		return "names another user's home: " + hint
	case h == StateVar || strings.HasPrefix(h, StateVar+"/"):
	case strings.HasPrefix(h, "$"):
		return "uses an unknown variable: only ${STATE} (the server's state directory) is supported"
	case !path.IsAbs(h):
		return "is relative: it would depend on where mcpbox runs; " + hint
	}
	if strings.Contains(h[1:], "${") {
		return "uses ${...} after the start: only a leading ${STATE} is expanded"
	}
	return ""
}

func envName(s string) string {
	if !envRE.MatchString(s) {
		return fmt.Sprintf("%q is not a variable name: use letters, digits and _, not starting with a digit", s)
	}
	return ""
}

func nonEmpty(what string) func(string) string {
	return func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "an empty entry: write " + what
		}
		return ""
	}
}

// mapping walks a mapping node, recording the line of every key. It
// rejects duplicate keys and, when known is not nil, keys not in known.
// Keys of known fields whose value is null (`limits:` with nothing after
// it) count as unset and are skipped.
func (d *decoder) mapping(n ast.Node, field string, known []string, fn func(key, f string, v ast.Node) error) error {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		return d.typeErr(field, "a mapping", n)
	}
	seen := map[string]int{}
	for _, mv := range m.Values {
		key, line, err := d.key(mv.Key, field)
		if err != nil {
			return err
		}
		f := joinField(field, key)
		if prev, dup := seen[key]; dup {
			return d.errAt(f, line, "duplicate key: %s is already set on line %d", key, prev)
		}
		seen[key] = line
		d.keys[f] = line
		if known != nil && !slices.Contains(known, key) {
			return d.errAt(f, line, "%s", unknownField(key, field, known))
		}
		v, err := d.unwrap(mv.Value, f, line)
		if err != nil {
			return err
		}
		if _, null := v.(*ast.NullNode); null && known != nil {
			continue
		}
		d.pos[f] = line
		if err := fn(key, f, v); err != nil {
			return err
		}
	}
	return nil
}

func joinField(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func unknownField(key, parent string, known []string) string {
	where := parent
	switch {
	case parent == "":
		where = "a profile"
	case strings.HasPrefix(parent, "mounts["):
		where = "a mount"
	case strings.HasPrefix(parent, "match["):
		where = "a match"
	}
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	for _, k := range known {
		if norm(k) == norm(key) {
			return fmt.Sprintf("unknown field %q: did you mean %s?", key, k)
		}
	}
	return fmt.Sprintf("unknown field %q: %s has %s", key, where, strings.Join(known, ", "))
}

func (d *decoder) key(k ast.MapKeyNode, parent string) (string, int, error) {
	line := nodeLine(k)
	switch x := k.(type) {
	case *ast.StringNode:
		return x.Value, line, nil
	case *ast.MergeKeyNode:
		return "", line, d.errAt(parent, line, "YAML merge keys (<<) are not supported: use extends to build on another profile")
	case ast.ScalarNode:
		if x.GetToken() != nil {
			return x.GetToken().Value, line, nil
		}
	}
	return "", line, d.errAt(parent, line, "%s as a key: keys are plain field names", kind(k))
}

// list walks a sequence node, recording the line of every entry; entries
// must not be empty.
func (d *decoder) list(n ast.Node, field string, fn func(i int, f string, v ast.Node) error) error {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return d.typeErr(field, "a list", n)
	}
	for i, item := range seq.Values {
		f := field + "[" + strconv.Itoa(i) + "]"
		line := nodeLine(item)
		if line == 0 {
			line = d.pos[field]
		}
		d.pos[f] = line
		v, err := d.unwrap(item, f, line)
		if err != nil {
			return err
		}
		if _, null := v.(*ast.NullNode); null {
			return d.err(f, "an empty list entry")
		}
		if err := fn(i, f, v); err != nil {
			return err
		}
	}
	return nil
}

// stringList decodes a list of strings, each checked by problem (which returns
// "" for a good one). An entry listed twice is an error.
func (d *decoder) stringList(n ast.Node, field string, problem func(string) string) ([]string, error) {
	var out []string
	err := d.list(n, field, func(i int, f string, v ast.Node) error {
		s, err := d.str(v, f)
		if err != nil {
			return err
		}
		if r := problem(s); r != "" {
			return d.err(f, "%s", r)
		}
		if j := slices.Index(out, s); j >= 0 {
			return d.err(f, "%q is listed twice (also %s[%d])", s, field, j)
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// unwrap resolves the YAML features a profile may use around a value (a
// !!str tag) and rejects the ones it may not (anchors, aliases, other tags):
// they would make the line of a value ambiguous, and extends covers sharing.
func (d *decoder) unwrap(n ast.Node, field string, line int) (ast.Node, error) {
	switch x := n.(type) {
	case nil:
		return &ast.NullNode{BaseNode: &ast.BaseNode{}}, nil
	case *ast.AnchorNode, *ast.AliasNode:
		return nil, d.errAt(field, line, "YAML anchors and aliases are not supported in profiles: use extends to share settings")
	case *ast.TagNode:
		tag := x.Start.Value
		switch tag {
		case "!!str":
			if s, ok := x.Value.(ast.ScalarNode); ok && s.GetToken() != nil {
				return &ast.StringNode{BaseNode: &ast.BaseNode{}, Token: s.GetToken(), Value: s.GetToken().Value}, nil
			}
		case "!!map", "!!seq", "!!int", "!!float", "!!bool", "!!null":
			return d.unwrap(x.Value, field, line)
		}
		return nil, d.errAt(field, line, "YAML tag %s is not supported here", tag)
	}
	return n, nil
}

func (d *decoder) str(v ast.Node, f string) (string, error) {
	switch x := v.(type) {
	case *ast.StringNode:
		return x.Value, nil
	case *ast.LiteralNode:
		return x.Value.Value, nil
	}
	return "", d.typeErr(f, "a string", v)
}

// text decodes any scalar as the text written, for setenv values, where
// `PORT: 8080` and `DEBUG: true` mean the strings "8080" and "true".
func (d *decoder) text(v ast.Node, f string) (string, error) {
	switch x := v.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return d.str(v, f)
	case *ast.NullNode:
		return "", d.err(f, "no value: write \"\" to set the variable to the empty string")
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return x.GetToken().Value, nil
	}
	return "", d.typeErr(f, "a string", v)
}

func (d *decoder) access(v ast.Node, f string, allowed ...Access) (Access, error) {
	s, err := d.str(v, f)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, Access(s)) {
		return "", d.err(f, "%q is not valid: use %s", s, orList(allowed))
	}
	return Access(s), nil
}

func (d *decoder) action(v ast.Node, f string) (Action, error) {
	s, err := d.str(v, f)
	if err != nil {
		return "", err
	}
	allowed := []Action{ActionBlock, ActionWarn, ActionOff}
	if !slices.Contains(allowed, Action(s)) {
		return "", d.err(f, "%q is not valid: use %s", s, orList(allowed))
	}
	return Action(s), nil
}

func orList[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func (d *decoder) size(v ast.Node, f string) (int64, error) {
	switch x := v.(type) {
	case *ast.StringNode:
		n, err := ParseSize(x.Value)
		if err != nil {
			return 0, d.err(f, "%s", err)
		}
		return n, nil
	case *ast.IntegerNode:
		n, err := d.integer(v, f)
		if err == nil && n < 1 {
			err = d.err(f, "%s is not a size: use a positive number with an optional unit, like 512Mi or 2G", x.GetToken().Value)
		}
		return n, err
	}
	return 0, d.typeErr(f, "a size like 512Mi", v)
}

func (d *decoder) integer(v ast.Node, f string) (int64, error) {
	x, ok := v.(*ast.IntegerNode)
	if !ok {
		return 0, d.typeErr(f, "a whole number", v)
	}
	switch n := x.Value.(type) {
	case int64:
		return n, nil
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), nil
		}
	}
	return 0, d.err(f, "%s is too large", x.GetToken().Value)
}

func (d *decoder) cpus(v ast.Node, f string) (float64, error) {
	var c float64
	switch x := v.(type) {
	case *ast.IntegerNode:
		n, err := d.integer(v, f)
		if err != nil {
			return 0, err
		}
		c = float64(n)
	case *ast.FloatNode:
		c = x.Value
	default:
		return 0, d.typeErr(f, "a number of CPUs like 1 or 0.5", v)
	}
	if !(c > 0) || math.IsInf(c, 0) {
		return 0, d.err(f, "%s is not valid: use a number of CPUs above 0, like 1 or 0.5", v.GetToken().Value)
	}
	return c, nil
}

func (d *decoder) errAt(field string, line int, format string, args ...any) *ValidationError {
	return &ValidationError{File: d.file, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// err reports a problem with a field at the line recorded for it.
func (d *decoder) err(field, format string, args ...any) *ValidationError {
	return d.errAt(field, d.pos[field], format, args...)
}

func (d *decoder) typeErr(field, want string, got ast.Node) *ValidationError {
	return d.errAt(field, d.lineOf(field, got), "expected %s, got %s", want, describe(got))
}

func (d *decoder) lineOf(field string, n ast.Node) int {
	if line, ok := d.pos[field]; ok {
		return line
	}
	return nodeLine(n)
}

// nodeLine is the line a node starts on; for a block mapping that is its
// first key, not the ':' token the parser keeps as its start.
func nodeLine(n ast.Node) int {
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		return nodeLine(m.Values[0].Key)
	}
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

// describe names what a node is for a type error: the value itself for a
// scalar (`"12"`, `1.5`, `true`), its kind otherwise.
func describe(n ast.Node) string {
	switch x := n.(type) {
	case *ast.StringNode:
		if len(x.Value) <= 40 {
			return strconv.Quote(x.Value)
		}
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return x.GetToken().Value
	}
	return kind(n)
}

func kind(n ast.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Type() {
	case ast.MappingType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.IntegerType, ast.FloatType, ast.InfinityType, ast.NanType:
		return "a number"
	case ast.BoolType:
		return "true or false"
	case ast.NullType:
		return "nothing"
	}
	return "a YAML " + n.Type().YAMLName()
}
