package profiles

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/token"
)

// YAML renders the effective profile as a complete profile file, with the
// inherited fields spelled out and no `extends` (for `mcpbox profiles
// show`). Loading the result gives the same profile.
func (p *Profile) YAML() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Effective profile %s, from %s", commentText(p.Name), commentText(p.File))
	if p.Extends != "" {
		fmt.Fprintf(&b, " (extends %s)", commentText(p.Extends))
	}
	b.WriteString(".\n")
	fmt.Fprintf(&b, "name: %s\n", quote(p.Name))
	if p.Description != "" {
		fmt.Fprintf(&b, "description: %s\n", quote(p.Description))
	}
	if len(p.Match) > 0 {
		b.WriteString("match:\n")
		for _, m := range p.Match {
			fmt.Fprintf(&b, "  - %s: %s\n", m.Ecosystem, quote(m.Package))
		}
	}
	fmt.Fprintf(&b, "rootfs: %s\n", quote(p.RootFS))
	if p.Image != "" {
		fmt.Fprintf(&b, "image: %s\n", quote(p.Image))
	}
	b.WriteString("network:\n")
	writeList(&b, "  ", "allow", p.Network.Allow)
	fmt.Fprintf(&b, "pathArgs: %s\n", quote(string(p.PathArgs)))
	if len(p.Mounts) == 0 {
		b.WriteString("mounts: []\n")
	} else {
		b.WriteString("mounts:\n")
		for _, m := range p.Mounts {
			fmt.Fprintf(&b, "  - host: %s\n    path: %s\n    mode: %s\n", quote(m.Host), quote(m.Path), quote(string(m.Mode)))
		}
	}
	writeList(&b, "", "env", p.Env)
	if len(p.Setenv) == 0 {
		b.WriteString("setenv: {}\n")
	} else {
		b.WriteString("setenv:\n")
		for _, k := range slices.Sorted(maps.Keys(p.Setenv)) {
			fmt.Fprintf(&b, "  %s: %s\n", quote(k), quote(p.Setenv[k]))
		}
	}
	b.WriteString("limits:\n")
	fmt.Fprintf(&b, "  memory: %s\n", FormatSize(p.Limits.Memory))
	fmt.Fprintf(&b, "  pids: %d\n", p.Limits.PIDs)
	fmt.Fprintf(&b, "  cpus: %s\n", strconv.FormatFloat(p.Limits.CPUs, 'f', -1, 64))
	fmt.Fprintf(&b, "  tmp: %s\n", FormatSize(p.Limits.Tmp))
	b.WriteString("seccomp:\n")
	writeList(&b, "  ", "allow", p.Seccomp.Allow)
	b.WriteString("tools:\n")
	writeList(&b, "  ", "allow", p.Tools.Allow)
	writeList(&b, "  ", "deny", p.Tools.Deny)
	fmt.Fprintf(&b, "  pin: %s\n  scan: %s\n", quote(string(p.Tools.Pin)), quote(string(p.Tools.Scan)))
	fmt.Fprintf(&b, "install:\n  scripts: %t\n", p.Install.Scripts)

	// A profile changed by its caller may hold values the loader would
	// refuse; say so now rather than write a file that does not load.
	if _, err := decode(p.File, b.Bytes()); err != nil {
		return nil, fmt.Errorf("profiles: render %s: %w", p.Name, err)
	}
	return b.Bytes(), nil
}

func writeList(b *bytes.Buffer, indent, key string, items []string) {
	if len(items) == 0 {
		fmt.Fprintf(b, "%s%s: []\n", indent, key)
		return
	}
	fmt.Fprintf(b, "%s%s:\n", indent, key)
	for _, s := range items {
		fmt.Fprintf(b, "%s  - %s\n", indent, quote(s))
	}
}

// plainRE matches strings that read back as the same string when written
// without quotes (given they are not also a number, bool or null).
var plainRE = regexp.MustCompile(`^[A-Za-z0-9/_]([A-Za-z0-9/_.:-]*[A-Za-z0-9/_.-])?$`)

// quote writes s as a YAML scalar that reads back as the string s: plain
// where that is safe, else double-quoted (Go's escapes are valid in YAML's
// double-quoted style).
func quote(s string) string {
	if plainRE.MatchString(s) && token.ToNumber(s) == nil && !token.IsNeedQuoted(s) {
		switch strings.ToLower(s) {
		case "true", "false", "null", "yes", "no", "on", "off", "y", "n":
		default:
			return s
		}
	}
	return strconv.Quote(s)
}

// Starter returns a commented profile for the package, for `mcpbox profiles
// init`: its name derived from the package, a match for it, and every other
// field at the strictest setting, each with a comment saying what it does.
// args are the server's arguments; ones that look like paths or URLs get a
// hint. ecosystem is NPM, PyPI or "" (a host command: no match).
func Starter(ecosystem, pkg string, args []string) []byte {
	def := defaults()
	name := NameFor(pkg)
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Profile for %s, written by `mcpbox profiles init`.\n", commentText(pkg))
	w("#\n")
	w("# Everything starts at the strictest setting: no network, no host paths, no\n")
	w("# variables from mcpbox's environment, small limits. Run the server, see what\n")
	w("# fails, and widen only what it needs (`mcpbox trial` can watch a run and\n")
	w("# suggest a profile). Unknown keys and invalid values are errors that name\n")
	w("# the line. To have it found by name or by match, save it as %s.yaml in the\n", name)
	w("# user profile directory ($XDG_CONFIG_HOME/mcpbox/profiles); a profile there\n")
	w("# replaces a built-in of the same name.\n")
	w("\n")
	w("# How --profile and extends refer to this profile: lowercase letters, digits, dashes.\n")
	w("name: %s\n", name)
	w("# One line shown by `mcpbox profiles list`.\n")
	w("description: %s\n", quote("Profile for "+pkg+"."))
	w("# Start from another profile (e.g. untrusted) and change only some fields;\n")
	w("# lists are then that profile's entries followed by these.\n")
	w("# extends: untrusted\n")
	w("# The packages this profile is chosen for when no --profile is given.\n")
	switch {
	case ecosystem == NPM && npmRE.MatchString(pkg), ecosystem == PyPI && pypiRE.MatchString(pkg):
		w("match:\n  - %s: %s\n", ecosystem, quote(pkg))
	case ecosystem == NPM, ecosystem == PyPI:
		w("# %s is not a valid %s package name, so there is no match:\n", commentText(strconv.Quote(pkg)), ecosystem)
		w("# match:\n#   - %s: NAME\n", ecosystem)
	default:
		w("# match:\n#   - npm: \"@scope/package\"   # or pypi: package\n")
	}
	w("# The sandbox's root filesystem: host = the host's runtime directories, read-only;\n")
	w("# image = a containerd image, read-only (add `image: REF[@sha256:...]`;\n")
	w("# `mcpbox image build --runtime node` makes one from the host's runtime).\n")
	w("rootfs: %s\n", def.RootFS)
	w("# Hosts the server may connect to: api.example.com (exact), *.example.com\n")
	w("# (subdomains only), host:port (default port 443), cidr:10.0.0.0/8:5432,\n")
	w("# localhost:5432 (that port of this machine's loopback, and nothing else of it).\n")
	var hosts []string
	for _, a := range args {
		if u, err := url.Parse(a); err == nil && u.Scheme != "" && u.Hostname() != "" && strings.Contains(a, "://") {
			hosts = append(hosts, allowHint(u))
		}
	}
	if len(hosts) > 0 {
		w("# Its arguments name these hosts; allow the ones it must reach: %s\n", commentList(hosts))
	}
	w("network:\n  allow: []\n")
	w("# Path arguments become bind mounts at the same path: none, ro or rw.\n")
	var paths []string
	for _, a := range args {
		if strings.HasPrefix(a, "/") || strings.HasPrefix(a, "~") || strings.HasPrefix(a, "./") || strings.HasPrefix(a, "../") {
			paths = append(paths, a)
		}
	}
	if len(paths) > 0 {
		w("# These arguments look like paths; set ro or rw if the server must reach them: %s\n", commentList(paths))
	}
	w("pathArgs: %s\n", def.PathArgs)
	w("# Further host paths: { host: ~/notes, path: /notes, mode: ro }. host may start\n")
	w("# with ~ or ${STATE} (this server's own state directory); mode is ro or rw.\n")
	w("mounts: []\n")
	w("# Names of variables passed through from mcpbox's environment, e.g. API_TOKEN.\n")
	w("env: []\n")
	w("# Variables set to fixed values, e.g. { LOG_LEVEL: info }.\n")
	w("setenv: {}\n")
	w("# Memory, processes, CPUs and the size of the /tmp tmpfs (sizes like 512Mi or 2G).\n")
	w("limits:\n  memory: %s\n  pids: %d\n  cpus: %s\n  tmp: %s\n",
		FormatSize(def.Limits.Memory), def.Limits.PIDs, strconv.FormatFloat(def.Limits.CPUs, 'f', -1, 64), FormatSize(def.Limits.Tmp))
	w("# Syscalls allowed beyond the base filter, by name. Some are never allowed.\n")
	w("seccomp:\n  allow: []\n")
	w("# Tool policy: allow (if not empty, only these tools), deny, and what to do when a\n")
	w("# tool definition changes after it was pinned (pin) or looks like prompt\n")
	w("# injection (scan): block, warn or off.\n")
	w("tools:\n  allow: []\n  deny: []\n  pin: %s\n  scan: %s\n", def.Tools.Pin, def.Tools.Scan)
	w("# Run the package's install scripts in the (sandboxed) install step.\n")
	w("install:\n  scripts: %t\n", def.Install.Scripts)
	return b.Bytes()
}

// schemePorts are the default ports of URL schemes that servers take as
// arguments, for a hint that needs a port.
var schemePorts = map[string]string{
	"http": "80", "https": "443", "postgres": "5432", "postgresql": "5432", "mysql": "3306",
	"redis": "6379", "rediss": "6379", "mongodb": "27017", "amqp": "5672",
}

// allowHint is the allowlist entry for the host a URL argument names. A
// loopback host (localhost, 127.0.0.1, [::1]) is a service on this
// machine, which only localhost:PORT reaches: in the sandbox, loopback is
// its own. Another address needs a cidr: entry; a name is itself.
func allowHint(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = schemePorts[strings.ToLower(u.Scheme)]
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	ip, err := netip.ParseAddr(host)
	switch {
	case err == nil && (ip.Unmap().IsLoopback() || ip.Unmap().IsUnspecified()),
		name == "localhost", strings.HasSuffix(name, ".localhost"):
		if port == "" {
			port = "PORT"
		}
		return "localhost:" + port
	case err == nil:
		ip = ip.Unmap().WithZone("")
		entry := "cidr:" + netip.PrefixFrom(ip, ip.BitLen()).String()
		if ip.Is6() {
			entry = "cidr:[" + netip.PrefixFrom(ip, ip.BitLen()).String() + "]"
		}
		if port != "" {
			entry += ":" + port
		}
		return entry
	}
	return u.Host
}

// NameFor derives a valid profile name from a package or program name:
// "@modelcontextprotocol/server-filesystem" → "filesystem",
// "mcp-server-fetch" → "fetch"; "server" when nothing usable is left.
func NameFor(pkg string) string {
	s := strings.ToLower(pkg)
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, '@'); i > 0 { // a version
		s = s[:i]
	}
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			out = append(out, c)
		case len(out) > 0 && out[len(out)-1] != '-':
			out = append(out, '-')
		}
	}
	name := strings.Trim(string(out), "-")
	for _, pre := range []string{"mcp-server-", "server-", "mcp-"} {
		if rest, ok := strings.CutPrefix(name, pre); ok && rest != "" {
			name = rest
			break
		}
	}
	for _, suf := range []string{"-mcp-server", "-server", "-mcp"} {
		if rest, ok := strings.CutSuffix(name, suf); ok && rest != "" {
			name = rest
			break
		}
	}
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if name == "" {
		return "server"
	}
	return name
}

// commentText makes s safe inside a one-line YAML comment.
func commentText(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return strconv.Quote(s)
	}
	return s
}

func commentList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
