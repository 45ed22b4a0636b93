package trial

import (
	"fmt"
	"github.com/mcpbox/mcpbox/profiles"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/broker"
)

// neverGranted are syscalls a generated profile never allows, however
// often the server needed them: each one is a way out of a sandbox or into
// the kernel's attack surface, and no MCP server has a honest use for it.
var neverGranted = []string{
	"ptrace", "mount", "umount2", "unshare", "setns", "bpf", "kexec_load",
	"init_module", "finit_module", "delete_module", "reboot", "swapon",
	"swapoff", "pivot_root", "chroot", "keyctl", "add_key", "request_key",
	"perf_event_open", "userfaultfd", "open_by_handle_at", "process_vm_readv",
	"process_vm_writev", "iopl", "ioperm",
}

// NeverGranted reports whether Profile refuses to grant the syscall.
func NeverGranted(name string) bool { return slices.Contains(neverGranted, name) }

// shells are the programs whose execution is reported as spawning a shell.
var shells = []string{"sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "csh", "tcsh", "busybox"}

// systemDirs are where a write is an attempt on the system itself.
var systemDirs = []string{"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/opt", "/root", "/var/lib"}

// scratchDirs are where a write is expected and harmless.
var scratchDirs = []string{"/tmp", "/var/tmp", "/dev/shm", "/run/user"}

// persistence are paths under $HOME whose change outlives the session on a
// real machine: shell start-up files, autostart entries, SSH keys.
var persistence = []string{
	".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile",
	".zshenv", ".bash_logout", ".ssh", ".config/autostart", ".config/systemd",
	".config/fish/config.fish", ".xinitrc", ".xprofile", ".gnupg",
}

// severityRank orders severities, highest first.
func severityRank(s string) int {
	switch s {
	case SeverityHigh:
		return 0
	case SeverityMedium:
		return 1
	case SeverityLow:
		return 2
	case SeverityInfo:
		return 4
	}
	return 3 // unknown: between low and info, so it is not lost at the bottom
}

// Rank sorts the report's lists and fills Findings from them, highest
// severity first; within a severity, in the order of the report's sections.
func (r *Report) Rank() {
	r.normalize()
	var out findingList
	for _, p := range r.Processes {
		if len(p.Argv) > 0 && isShell(p.Argv[0]) {
			out.add(SeverityHigh, KindProcess, "spawned a shell: %s", argvText(p.Argv))
		}
	}
	r.rankSyscalls(&out)
	r.rankNetwork(&out)
	r.rankFiles(&out)
	r.rankListings(&out)
	for _, c := range r.Calls {
		if !c.OK {
			out.add(SeverityLow, KindTool, "call to %s failed: %s", plain(c.Tool), plain(c.Error))
		}
	}
	for _, p := range r.Processes {
		if len(p.Argv) > 0 && !isShell(p.Argv[0]) {
			out.add(SeverityInfo, KindProcess, "ran %s", argvText(p.Argv))
		}
	}
	if r.ExitCode != nil && *r.ExitCode != 0 {
		out.add(SeverityLow, KindProcess, "exited with code %d", *r.ExitCode)
	}
	out.add(SeverityInfo, KindResources, "%s", usageText(r.Usage))

	slices.SortStableFunc(out, func(a, b Finding) int {
		return severityRank(a.Severity) - severityRank(b.Severity)
	})
	r.Findings = nonNil([]Finding(out))
}

// findingList collects findings in the order Rank finds them, which its
// stable sort keeps within a severity.
type findingList []Finding

func (out *findingList) add(sev, kind, format string, args ...any) {
	*out = append(*out, Finding{Severity: sev, Kind: kind, Summary: fmt.Sprintf(format, args...)})
}

// rankSyscalls adds the denied syscalls: high for those no profile grants.
func (r *Report) rankSyscalls(out *findingList) {
	add := out.add
	for _, s := range r.Syscalls {
		if s.Verdict != VerdictDenied {
			continue
		}
		sev := SeverityMedium
		if NeverGranted(s.Name) {
			sev = SeverityHigh
		}
		line := fmt.Sprintf("syscall %s denied %d×", plain(s.Name), s.Count)
		if len(s.Examples) > 0 {
			line += ": " + plain(s.Examples[0])
		}
		add(sev, KindSyscall, "%s", line)
	}
}

// rankNetwork adds the denied connections and lookups, and the connections
// made.
func (r *Report) rankNetwork(out *findingList) {
	add := out.add
	for _, n := range r.Network {
		host := hostPort(n)
		why := ""
		if n.Reason != "" {
			why = " (" + plain(n.Reason) + ")"
		}
		switch {
		case n.Kind == NetConnect && n.Verdict == VerdictDenied:
			add(SeverityHigh, KindNetwork, "connect to %s denied%s%s", host, times(n.Count), why)
		case n.Kind == NetDNS && n.Verdict == VerdictDenied:
			add(SeverityMedium, KindNetwork, "DNS lookup of %s denied%s%s", host, times(n.Count), why)
		case n.Kind == NetConnect:
			add(SeverityInfo, KindNetwork, "connected to %s%s", host, times(n.Count))
		}
	}
}

// rankFiles adds the files changed, by where they are, and the secrets the
// server tried to read.
func (r *Report) rankFiles(out *findingList) {
	add := out.add
	for _, f := range r.Files {
		sev, where := r.fileSeverity(f.Path)
		what := f.Change
		if f.Change != ChangeDeleted && f.Type == TypeFile {
			what += ", " + sizeText(f.Size)
		} else if f.Type == TypeDir || f.Type == TypeSymlink {
			what += ", " + f.Type
		}
		verb := "wrote"
		if f.Change == ChangeDeleted {
			verb = "deleted"
		}
		add(sev, KindFile, "%s %s%s (%s)", verb, where, plain(f.Path), what)
	}

	for _, rd := range r.Reads {
		add(SeverityHigh, KindFile, "tried to read %s%s", plain(rd.Path), times(rd.Count))
	}
}

// rankListings adds the scan findings in what the server lists and in its
// instructions.
func (r *Report) rankListings(out *findingList) {
	add := out.add
	toolFindings := func(what string, name string, fs []broker.Finding) {
		for _, f := range fs {
			add(findingSeverity(f.Severity), KindTool, "%s %s: %s in %s: %s", what, plain(name), plain(f.Rule), plain(f.Field), plain(f.Excerpt))
		}
	}
	for _, t := range r.Tools {
		toolFindings("tool", t.Name, t.Findings)
	}
	for _, p := range r.Prompts {
		toolFindings("prompt", p.Name, p.Findings)
	}
	for _, res := range r.Resources {
		toolFindings("resource", res.Name, res.Findings)
	}
	for _, f := range r.Instructions {
		add(findingSeverity(f.Severity), KindInstructions, "instructions: %s: %s", plain(f.Rule), plain(f.Excerpt))
	}
}

// fileSeverity says how bad a change at p is, and how to name where it is.
func (r *Report) fileSeverity(p string) (sev, where string) {
	clean := path.Clean(p)
	switch {
	case underAny(clean, systemDirs):
		return SeverityHigh, ""
	case r.Home != "" && under(clean, path.Clean(r.Home)):
		rel := strings.TrimPrefix(strings.TrimPrefix(clean, path.Clean(r.Home)), "/")
		for _, q := range persistence {
			if rel == q || strings.HasPrefix(rel, q+"/") {
				return SeverityHigh, "under $HOME: "
			}
		}
		return SeverityMedium, "under $HOME: "
	case underAny(clean, scratchDirs):
		return SeverityLow, ""
	}
	return SeverityMedium, ""
}

func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func underAny(p string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return under(p, d) })
}

func isShell(prog string) bool {
	return slices.Contains(shells, path.Base(prog))
}

// findingSeverity maps a broker severity onto the report's, keeping
// unknown ones visible.
func findingSeverity(s string) string {
	switch s {
	case broker.SeverityHigh, broker.SeverityMedium, broker.SeverityLow:
		return s
	}
	return SeverityMedium
}

// argvText joins argv for one line, quoting arguments that need it, with
// hidden characters escaped.
func argvText(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\") {
			q[i] = strconv.Quote(a)
		} else {
			q[i] = plain(a)
		}
	}
	return strings.Join(q, " ")
}

// plain makes untrusted text safe on one line of a terminal or a log:
// control, invisible and bidi characters are escaped.
func plain(s string) string { return broker.EscapeHidden(s) }

func hostPort(n NetEvent) string {
	h := plain(n.Host)
	if n.Port == 0 {
		return h
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(n.Port)
}

func times(n int) string {
	if n <= 1 {
		return ""
	}
	return " " + strconv.Itoa(n) + "×"
}

// sizeText writes a byte count for people: 12 B, 3.5 KiB, 80 MiB.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit || u == "TiB" {
			return strconv.FormatFloat(f, 'f', decimals(f), 64) + " " + u
		}
	}
	return "" // not reached
}

func decimals(f float64) int {
	if f >= 10 || f == float64(int64(f)) {
		return 0
	}
	return 1
}

func usageText(u Usage) string {
	return fmt.Sprintf("peak memory %s, peak %d processes, %s s CPU", sizeText(u.PeakMemoryBytes), u.PeakPIDs, strconv.FormatFloat(u.CPUSeconds, 'f', 2, 64))
}

// counts returns the number of findings per severity.
func counts(fs []Finding) (high, medium, low int) {
	for _, f := range fs {
		switch f.Severity {
		case SeverityHigh:
			high++
		case SeverityMedium:
			medium++
		case SeverityLow:
			low++
		}
	}
	return
}

// Summary writes the ranked findings for a terminal (stderr), one line
// each, and a count. Call Rank first.
func Summary(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "trial: %-6s %-12s %s\n", f.Severity, f.Kind, plain(f.Summary))
	}
	h, m, l := counts(r.Findings)
	fmt.Fprintf(&b, "trial: %d findings (%d high, %d medium, %d low)\n", len(r.Findings), h, m, l)
	_, err := io.WriteString(w, b.String())
	return err
}

// profileName derives a profile name from the package, or from the command
// when there is none: "@acme/server-notes" → "notes", "node ./srv/main.js"
// → "main". The result is a valid profile name.
func profileName(r *Report) string {
	var s string
	switch {
	case r.Package != nil && r.Package.Name != "":
		s = r.Package.Name
	case len(r.Command) > 0:
		s = path.Base(r.Command[0])
		interp := strings.TrimRight(s, "0123456789.")
		if slices.Contains([]string{"node", "python", "deno", "bun", "uv", "ruby", "perl", "java"}, interp) {
			for _, a := range r.Command[1:] {
				if !strings.HasPrefix(a, "-") {
					s = path.Base(a)
					break
				}
			}
		}
		if i := strings.LastIndexByte(s, '.'); i > 0 {
			s = s[:i]
		}
	}
	return profiles.NameFor(s)
}
