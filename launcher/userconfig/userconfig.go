// Package userconfig reads the user's mcpbox config file,
// $XDG_CONFIG_HOME/mcpbox/config.yaml: settings that hold for every
// command the user runs (today the runtime; the file is meant to grow).
// It reads YAML as strictly as profiles are read, with the same library —
// an unknown key, a wrong type or a bad value is an error that names the
// file, the line and the field — and it never writes the file: a file
// with a mistake stays as the user wrote it.
package userconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/mcpbox/mcpbox/launcher/backend"
)

// FileName is the config file's name in mcpbox's config directory.
const FileName = "config.yaml"

// maxSize bounds what is read as a config file; a real one is a few lines.
const maxSize = 64 << 10

// keys are the keys the file may set.
var keys = []string{"runtime"}

// Config is what the config file sets; zero values are unset.
type Config struct {
	// File is the file read, "" when there is none.
	File string
	// Runtime is the runtime setting: auto, containerd or rootless.
	Runtime string
	// Lines are the lines keys are set on, by key, so that a caller can
	// point at the line that set a value it refuses.
	Lines map[string]int
}

// Error is a mistake in the config file, with the position that shows it.
// Line is 0 when no line applies; Field is "" for the file as a whole.
type Error struct {
	File   string
	Line   int
	Field  string
	Reason string
}

// Error reads like `~/.config/mcpbox/config.yaml:2: runtime: "rootles" is
// not a runtime: use auto, containerd or rootless`.
func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Reason
}

// Load reads FileName in dir (mcpbox's config directory). A missing file
// is the zero Config; so is one that holds nothing but comments.
func Load(dir string) (Config, error) {
	file := filepath.Join(dir, FileName)
	data, err := readFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, misnamed(dir)
	}
	if err != nil {
		return Config{}, &Error{File: file, Reason: err.Error()}
	}
	return Parse(file, data)
}

func readFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Size() > maxSize {
		return nil, fmt.Errorf("larger than %d bytes: a config file is a few lines of YAML", maxSize)
	}
	return os.ReadFile(file)
}

// misnamed reports a config file written under another name, which would
// otherwise be ignored without a word.
func misnamed(dir string) error {
	for _, name := range []string{"config.yml", "config.toml", "config.json"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return &Error{File: p, Reason: "mcpbox reads " + FileName + " (YAML, e.g. `runtime: rootless`), not this file: rename it or write " + filepath.Join(dir, FileName)}
		}
	}
	return nil
}

// Parse reads a config file's contents; file names it in errors. Every
// error is an *Error.
func Parse(file string, data []byte) (Config, error) {
	errAt := func(field string, line int, format string, args ...any) (Config, error) {
		return Config{}, &Error{File: file, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(data) > maxSize {
		return errAt("", 0, "larger than %d bytes: a config file is a few lines of YAML", maxSize)
	}
	// Duplicate keys are reported below, with both lines.
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		var ye interface {
			GetToken() *token.Token
			GetMessage() string
		}
		if errors.As(err, &ye) {
			return errAt("", tokenLine(ye.GetToken()), "invalid YAML: %s", ye.GetMessage())
		}
		return errAt("", 1, "invalid YAML: %v", err)
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			return errAt("", tokenLine(doc.Body.GetToken()), "a second YAML document: the config file holds one mapping of settings")
		}
		body = doc.Body
	}
	cfg := Config{File: file, Lines: map[string]int{}}
	if body == nil {
		return cfg, nil
	}
	m, ok := body.(*ast.MappingNode)
	if !ok {
		hint := ""
		if s, ok := body.(*ast.StringNode); ok && strings.Contains(s.Value, "=") {
			hint = " (it reads like TOML; the config file is YAML)"
		}
		return errAt("", tokenLine(body.GetToken()), "the config file is a mapping of settings (e.g. `runtime: rootless`), not %s%s", describe(body), hint)
	}
	for _, mv := range m.Values {
		k, ok := mv.Key.(*ast.StringNode)
		line := tokenLine(mv.Key.GetToken())
		if !ok {
			return errAt("", line, "a key must be a plain name, not %s", describe(mv.Key))
		}
		key := k.Value
		if prev, dup := cfg.Lines[key]; dup {
			return errAt(key, line, "duplicate key: %s is already set on line %d", key, prev)
		}
		known := false
		for _, name := range keys {
			known = known || name == key
		}
		if !known {
			return errAt(key, line, "unknown key: the config file knows %s", strings.Join(keys, ", "))
		}
		cfg.Lines[key] = line
		switch v := mv.Value.(type) {
		case *ast.NullNode:
			// `runtime:` with nothing after it leaves the setting unset.
		case *ast.StringNode:
			if err := backend.CheckSetting(v.Value); err != nil {
				return errAt(key, line, "%v", err)
			}
			cfg.Runtime = v.Value
		case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode:
			return errAt(key, line, "YAML anchors, aliases and tags are not supported in the config file: write the value")
		default:
			return errAt(key, line, "expected auto, containerd or rootless, got %s", describe(mv.Value))
		}
	}
	return cfg, nil
}

func tokenLine(tk *token.Token) int {
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 {
		return 1
	}
	return tk.Position.Line
}

// describe names what a node is for an error: the value of a scalar, the
// kind of anything else.
func describe(n ast.Node) string {
	switch x := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		if len(x.Value) <= 40 {
			return strconv.Quote(x.Value)
		}
		return "a long string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return x.GetToken().Value
	}
	return "a " + n.Type().String()
}
