package trial

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Compare says what changed between two trials of the same server, one
// line per change, for a user deciding whether an update still fits its
// profile: the package version, syscalls, network hosts, files, processes,
// tools, prompts and resources that appeared or went away, definitions whose
// hash changed, and the change in resource usage. It returns "no changes\n"
// when there are none worth a line.
func Compare(old, new *Report) string {
	o, n := old.sorted(), new.sorted()
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }

	ov, nv := pkgText(o.Package), pkgText(n.Package)
	if ov != nv {
		line("package: %s → %s", ov, nv)
	}
	if oc, nc := strings.Join(o.Command, " "), strings.Join(n.Command, " "); oc != nc {
		line("command: %s → %s", plain(oc), plain(nc))
	}

	setDiff(line, "syscall", keys(o.Syscalls, func(s Syscall) string { return plain(s.Name) + " (" + s.Verdict + ")" }),
		keys(n.Syscalls, func(s Syscall) string { return plain(s.Name) + " (" + s.Verdict + ")" }))
	netKey := func(e NetEvent) string { return e.Kind + " " + hostPort(e) + " (" + e.Verdict + ")" }
	setDiff(line, "network", keys(o.Network, netKey), keys(n.Network, netKey))
	fileKey := func(f FileChange) string { return plain(f.Path) + " (" + f.Change + ")" }
	setDiff(line, "file", keys(o.Files, fileKey), keys(n.Files, fileKey))
	procKey := func(p Process) string { return argvText(p.Argv) }
	setDiff(line, "process", keys(o.Processes, procKey), keys(n.Processes, procKey))

	type named struct{ name, sum string }
	items := func(what string, a, b []named) {
		ak := make([]string, len(a))
		for i, x := range a {
			ak[i] = plain(x.name)
		}
		bk := make([]string, len(b))
		for i, x := range b {
			bk[i] = plain(x.name)
		}
		setDiff(line, what, ak, bk)
		for _, x := range b {
			i := slices.IndexFunc(a, func(y named) bool { return y.name == x.name })
			if i >= 0 && a[i].sum != x.sum {
				line("%s changed: %s (sha256 %s → %s)", what, plain(x.name), short(a[i].sum), short(x.sum))
			}
		}
	}
	toolsOf := func(ts []Tool) []named {
		out := make([]named, len(ts))
		for i, t := range ts {
			out[i] = named{t.Name, t.SHA256}
		}
		return out
	}
	itemsOf := func(its []Item) []named {
		out := make([]named, len(its))
		for i, t := range its {
			out[i] = named{t.Name, t.SHA256}
		}
		return out
	}
	items("tool", toolsOf(o.Tools), toolsOf(n.Tools))
	items("prompt", itemsOf(o.Prompts), itemsOf(n.Prompts))
	items("resource", itemsOf(o.Resources), itemsOf(n.Resources))

	ou, nu := o.Usage, n.Usage
	if ou != nu {
		line("usage: peak memory %s → %s (%s), peak processes %d → %d (%s), CPU %s s → %s s (%s)",
			sizeText(ou.PeakMemoryBytes), sizeText(nu.PeakMemoryBytes), pct(float64(ou.PeakMemoryBytes), float64(nu.PeakMemoryBytes)),
			ou.PeakPIDs, nu.PeakPIDs, pct(float64(ou.PeakPIDs), float64(nu.PeakPIDs)),
			strconv.FormatFloat(ou.CPUSeconds, 'f', 2, 64), strconv.FormatFloat(nu.CPUSeconds, 'f', 2, 64), pct(ou.CPUSeconds, nu.CPUSeconds))
	}
	if b.Len() == 0 {
		return "no changes\n"
	}
	return b.String()
}

func pkgText(p *Package) string {
	if p == nil {
		return "none"
	}
	v := p.Version
	if v == "" {
		v = "(unknown version)"
	}
	return plain(p.Ecosystem + " " + p.Name + " " + v)
}

func keys[T any](s []T, key func(T) string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		if k := key(x); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// setDiff writes "WHAT added: …" and "WHAT removed: …" lines, one per entry,
// in a's and b's order.
func setDiff(line func(string, ...any), what string, a, b []string) {
	for _, k := range b {
		if !slices.Contains(a, k) {
			line("%s added: %s", what, k)
		}
	}
	for _, k := range a {
		if !slices.Contains(b, k) {
			line("%s removed: %s", what, k)
		}
	}
}

func short(sum string) string {
	if len(sum) > 12 {
		return plain(sum[:12]) + "…"
	}
	return plain(sum)
}

// pct writes the change from a to b in percent: "+50%", "-17%", "±0%",
// "new" when a was zero.
func pct(a, b float64) string {
	switch {
	case a == b:
		return "±0%"
	case a == 0:
		return "new"
	}
	p := math.Round((b - a) / a * 100)
	if p >= 0 {
		return "+" + strconv.FormatFloat(p, 'f', 0, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}
