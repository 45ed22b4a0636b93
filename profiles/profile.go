package profiles

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Package ecosystems a profile can match.
const (
	NPM  = "npm"
	PyPI = "pypi"
)

// SourceBuiltin is Profile.Source for a profile from the embedded catalog.
const SourceBuiltin = "builtin"

// Values of Profile.RootFS.
const (
	// RootFSHost is an empty root with read-only binds of the host's
	// runtime directories.
	RootFSHost = "host"
	// RootFSImage is a read-only view of a containerd image (Profile.Image):
	// the server sees nothing of the host's root filesystem.
	RootFSImage = "image"
)

// StateVar in a mount's host path stands for the server's own state
// directory, which the launcher creates and owns.
const StateVar = "${STATE}"

// Access says how a host path is visible inside the sandbox.
type Access string

// Values of Access. AccessNone is only meaningful for Profile.PathArgs.
const (
	AccessNone Access = "none"
	AccessRO   Access = "ro"
	AccessRW   Access = "rw"
)

// Action is what the broker does when a tool check fails (tools.pin,
// tools.scan).
type Action string

// Values of Action.
const (
	ActionBlock Action = "block"
	ActionWarn  Action = "warn"
	ActionOff   Action = "off"
)

// Match names one package a profile is meant for.
type Match struct {
	Ecosystem string // NPM or PyPI
	Package   string // without a version
}

// Network is the egress allowlist. Entries are kept as written; the egress
// package parses them.
type Network struct {
	Allow []string
}

// Mount grants one host path. Host may start with "~" or StateVar; see
// ExpandHost.
type Mount struct {
	Host string
	Path string // absolute, inside the sandbox
	Mode Access // AccessRO or AccessRW
}

// Limits are the sandbox's resource limits. Sizes are in bytes.
type Limits struct {
	Memory int64
	PIDs   int64
	CPUs   float64
	Tmp    int64
	// Required refuses to start the server where the runtime cannot
	// enforce memory, pids or CPU (rootless without a delegated cgroup).
	Required bool
}

// Seccomp lists syscalls allowed beyond the base filter.
type Seccomp struct {
	Allow []string
}

// Tools configures the broker's tool policy.
type Tools struct {
	Allow []string // if not empty, only these tools are visible
	Deny  []string
	Pin   Action // a tool definition changed since it was pinned
	Scan  Action // a tool description looks like prompt injection
}

// Install configures the sandboxed install step.
type Install struct {
	Scripts bool // run the package's install scripts
}

// Profile is an effective profile: the fields of its file merged over the
// profile it extends (or over the defaults, which equal the built-in
// `untrusted`). It remembers where each field was written, so that callers
// can report their own errors at the right file and line.
type Profile struct {
	Name        string
	Description string
	Extends     string // the parent named in the file, "" if none
	Match       []Match
	RootFS      string
	// Image is the image reference of RootFSImage, "" otherwise; it may
	// be pinned by digest (name[:tag]@sha256:...).
	Image    string
	Network  Network
	PathArgs Access
	Mounts   []Mount
	Env      []string          // variable names passed through
	Setenv   map[string]string // variables set to fixed values
	Limits   Limits
	Seccomp  Seccomp
	Tools    Tools
	Install  Install

	// Source is SourceBuiltin or the path of the profile's file.
	Source string
	// File names the profile's file in messages ("builtin/filesystem.yaml"
	// or a path).
	File string

	pos map[string]position
}

type position struct {
	file string
	line int
}

// defaults returns the values a profile starts from when it extends nothing:
// the strictest settings, equal to the built-in untrusted profile (a test
// keeps the two in step).
func defaults() *Profile {
	return &Profile{
		RootFS:   RootFSHost,
		PathArgs: AccessNone,
		Setenv:   map[string]string{},
		Limits:   Limits{Memory: 256 << 20, PIDs: 64, CPUs: 1, Tmp: 64 << 20},
		Tools:    Tools{Pin: ActionBlock, Scan: ActionWarn},
	}
}

func (p *Profile) clone() *Profile {
	q := *p
	q.Match = slices.Clone(p.Match)
	q.Network.Allow = slices.Clone(p.Network.Allow)
	q.Mounts = slices.Clone(p.Mounts)
	q.Env = slices.Clone(p.Env)
	q.Setenv = maps.Clone(p.Setenv)
	if q.Setenv == nil {
		q.Setenv = map[string]string{}
	}
	q.Seccomp.Allow = slices.Clone(p.Seccomp.Allow)
	q.Tools.Allow = slices.Clone(p.Tools.Allow)
	q.Tools.Deny = slices.Clone(p.Tools.Deny)
	q.pos = maps.Clone(p.pos)
	if q.pos == nil {
		q.pos = map[string]position{}
	}
	return &q
}

// Pos returns the file and line where field was written, for field paths
// like "limits.memory", "mounts[1].mode", "network.allow[2]" or
// "setenv.MEMORY_FILE_PATH". An inherited field is found in the parent's
// file. A field that was not written (a default) falls back to the nearest
// enclosing field that was ("mounts[1]" for "mounts[1].mode"), and finally to
// the profile's own file with line 0.
func (p *Profile) Pos(field string) (file string, line int) {
	for f := field; f != ""; f = parentField(f) {
		if ps, ok := p.pos[f]; ok {
			return ps.file, ps.line
		}
	}
	return p.File, 0
}

// Line returns the line where field was written; see Pos.
func (p *Profile) Line(field string) int {
	_, line := p.Pos(field)
	return line
}

// Errorf returns a ValidationError for field at the position Pos gives, so
// that checks made outside this package (host patterns, syscall names) point
// at the line to fix.
func (p *Profile) Errorf(field, format string, args ...any) *ValidationError {
	file, line := p.Pos(field)
	return &ValidationError{File: file, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// parentField strips the last element of a field path: "a.b[1].c" → "a.b[1]"
// → "a.b" → "a" → "".
func parentField(f string) string {
	if strings.HasSuffix(f, "]") {
		if i := strings.LastIndexByte(f, '['); i >= 0 {
			return f[:i]
		}
	}
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		return f[:i]
	}
	return ""
}

// Matches reports whether the profile names the package. npm names compare
// exactly; PyPI names compare normalized (PEP 503: case and runs of -, _ and
// . do not matter).
func (p *Profile) Matches(ecosystem, pkg string) bool {
	for _, m := range p.Match {
		if m.Ecosystem == ecosystem && normalizePackage(ecosystem, m.Package) == normalizePackage(ecosystem, pkg) {
			return true
		}
	}
	return false
}

var pypiSeparators = regexp.MustCompile(`[-_.]+`)

func normalizePackage(ecosystem, pkg string) string {
	if ecosystem == PyPI {
		return pypiSeparators.ReplaceAllString(strings.ToLower(pkg), "-")
	}
	return pkg
}

// ExpandHost returns the mount's host path with a leading "~" replaced by
// home and a leading StateVar by state. The launcher calls it with the real
// directories; this package never looks them up.
func (m Mount) ExpandHost(home, state string) string {
	switch {
	case m.Host == "~":
		return home
	case strings.HasPrefix(m.Host, "~/"):
		return filepath.Join(home, m.Host[2:])
	case m.Host == StateVar:
		return state
	case strings.HasPrefix(m.Host, StateVar+"/"):
		return filepath.Join(state, m.Host[len(StateVar)+1:])
	}
	return m.Host
}

// check makes the checks that need the whole effective profile, after
// extends: a variable is either passed through or set, and no two mounts
// share a sandbox path.
func (p *Profile) check() error {
	switch {
	case p.RootFS == RootFSImage && p.Image == "":
		return p.Errorf("rootfs", "rootfs image needs an image: add `image: REF` (build one with `mcpbox image build --runtime node`)")
	case p.RootFS != RootFSImage && p.Image != "":
		return p.Errorf("image", "an image is only used with `rootfs: image` (rootfs is %s)", p.RootFS)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Setenv)) {
		if slices.Contains(p.Env, name) {
			return p.Errorf("setenv."+name, "%s is also listed in env: a variable is either passed through (env) or set here (setenv), not both", name)
		}
	}
	for j, m := range p.Mounts {
		for i := range j {
			if p.Mounts[i].Path == m.Path {
				file, line := p.Pos("mounts[" + strconv.Itoa(i) + "]")
				return p.Errorf("mounts["+strconv.Itoa(j)+"].path", "%s is already mounted by the mount at %s:%d: give each mount its own path", m.Path, file, line)
			}
		}
	}
	return nil
}
