package clientconfig

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Entry is one server of a config file, as far as wrapping cares.
type Entry struct {
	// Section is where the entry lives, its path joined with ".", e.g.
	// "mcpServers" or "projects./home/u/app.mcpServers".
	Section  string
	Name     string
	Command  string
	Args     []string
	EnvNames []string // the names of its env block, sorted
	URL      string   // a remote server's url (or serverUrl, httpUrl)
	Type     string   // "stdio", "http", "sse", ... when given
}

// File is a parsed config file that can be edited and written back.
type File interface {
	Entries() []Entry
	// Wrap rewrites the entry to run its command through mcpbox.
	Wrap(e Entry, mcpbox string) error
	// Unwrap is Wrap's exact inverse.
	Unwrap(e Entry) error
	// Bytes is the file as edited.
	Bytes() []byte
}

// Parse reads a config file's content. A file that does not parse is an
// error that names the file, line and column; nothing is ever written
// for it.
func Parse(file string, data []byte, spec *FileSpec) (File, error) {
	if spec.Format == TOML {
		return parseTOML(file, data, spec)
	}
	return parseJSON(file, data, spec)
}

// wrappable are the commands wrap rewrites without --all: package runners
// and interpreters of the usual third-party servers.
var wrappable = map[string]bool{"npx": true, "uvx": true, "node": true, "python": true, "python3": true, "pipx": true, "bunx": true, "deno": true}

// commandName is a command's base name without a Windows extension.
func commandName(cmd string) string {
	cmd = strings.ReplaceAll(cmd, `\`, "/")
	base := path.Base(cmd)
	for _, ext := range []string{".exe", ".cmd", ".bat", ".EXE", ".CMD"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

// Wrapped reports whether the entry runs through `mcpbox run` already.
func (e Entry) Wrapped() bool {
	return commandName(e.Command) == "mcpbox" && len(e.Args) > 0 && e.Args[0] == "run"
}

// Remote reports whether the entry is a remote server (no command).
func (e Entry) Remote() bool {
	return e.URL != "" || (e.Command == "" && e.Type != "" && e.Type != "stdio")
}

// Wrappable says whether wrap would rewrite the entry, and if not, why.
func (e Entry) Wrappable(all bool) (bool, string) {
	switch {
	case e.Remote():
		return false, "remote server (url): nothing runs locally"
	case e.Command == "":
		return false, "no command"
	case e.Wrapped():
		return false, "already wrapped"
	case commandName(e.Command) == "docker" || commandName(e.Command) == "podman":
		return false, "runs in a container already (" + commandName(e.Command) + ")"
	case !all && !wrappable[commandName(e.Command)]:
		return false, fmt.Sprintf("command %s is not a package runner or interpreter (use --all to wrap it too)", commandName(e.Command))
	}
	return true, ""
}

// Inner is the server command line a wrapped entry runs.
func (e Entry) Inner() (cmd string, args []string, ok bool) {
	if !e.Wrapped() {
		return "", nil, false
	}
	for i, a := range e.Args {
		if a == "--" && i+1 < len(e.Args) {
			return e.Args[i+1], e.Args[i+2:], true
		}
	}
	return "", nil, false
}

// wrapPrefix is what wrap puts before the original command in args:
// `run`, an `--env NAME` for each variable of the entry's env block (the
// sandbox gets only what is named), and `--`.
func wrapPrefix(e Entry) []string {
	p := []string{"run"}
	names := append([]string(nil), e.EnvNames...)
	sort.Strings(names)
	for _, n := range names {
		p = append(p, "--env", n)
	}
	return append(p, "--")
}

// prefixLen returns how many leading args of a wrapped entry are mcpbox's
// (up to and including "--"), or -1.
func prefixLen(args []string) int {
	if len(args) == 0 || args[0] != "run" {
		return -1
	}
	for i, a := range args {
		if a == "--" {
			if i+1 >= len(args) {
				return -1
			}
			return i + 1
		}
	}
	return -1
}
