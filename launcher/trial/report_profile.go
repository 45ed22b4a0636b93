package trial

import (
	"bytes"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpbox/mcpbox/profiles"
)

// Limits a generated profile never goes below: a Node or Python stdio
// server needs them to start at all, and a run that happened to be quiet
// should not leave the next one starved.
const (
	minMemory = 64 << 20
	memStep   = 16 << 20
	minPIDs   = 32
)

var (
	syscallNameRE = regexp.MustCompile(`^[a-z0-9_]+$`)
	plainYAMLRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*(:[0-9]+)?$`)
	npmNameRE     = regexp.MustCompile(`^(@[A-Za-z0-9~-][A-Za-z0-9._~-]*/)?[A-Za-z0-9~-][A-Za-z0-9._~-]*$`)
	pypiNameRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
)

// Profile writes a profile that extends base and grants exactly what the
// trial saw the server need: the syscalls it was denied (except those no
// profile may grant, which are listed in a comment), its path arguments
// read-only or, if it wrote under them, read-write, and limits of its peak
// usage times headroom. The network hosts it tried are written commented
// out, for the user to approve one by one: a server is not trusted with a
// host because it asked for it. The result loads with the strict profile
// loader.
func Profile(r *Report, base *profiles.Profile, headroom float64) []byte {
	r = r.sorted()
	if headroom < 1 || math.IsNaN(headroom) || math.IsInf(headroom, 0) {
		headroom = 1
	}
	var d profileDoc
	d.header(r, base)
	d.pathArgs(r)
	d.network(r, base)
	d.limits(r, base, headroom)
	d.seccomp(r, base)
	d.w("tools:\n  pin: %s\n  scan: %s\n", base.Tools.Pin, base.Tools.Scan)
	return d.Bytes()
}

// profileDoc is a generated profile as it is written, one part per method.
type profileDoc struct{ bytes.Buffer }

func (d *profileDoc) w(format string, a ...any) { fmt.Fprintf(&d.Buffer, format, a...) }

// header writes the comment saying where the profile comes from, then its
// name, description, base and package match.
func (d *profileDoc) header(r *Report, base *profiles.Profile) {
	w := d.w
	what := comment(strings.Join(r.Command, " "))
	if r.Package != nil {
		what = comment(r.Package.Ecosystem + " " + r.Package.Name + " " + r.Package.Version)
	}
	w("# Profile for %s, written by `mcpbox trial` from a run on\n", what)
	w("# %s (%s s). It extends %s and grants only what that run\n", r.Started.UTC().Format("2006-01-02T15:04:05Z"), strconv.FormatFloat(r.DurationS, 'f', 1, 64), comment(base.Name))
	w("# needed; hosts the server tried to reach are listed commented out, to be\n")
	w("# approved one by one. Review it before use: a run shows what a server did,\n")
	w("# not what it will do.\n")
	w("name: %s\n", profileName(r))
	w("description: %s\n", yamlString("Written by mcpbox trial: what one run of "+strings.Join(r.Command, " ")+" needed."))
	w("extends: %s\n", base.Name)
	if p := r.Package; p != nil {
		switch {
		case p.Ecosystem == profiles.NPM && npmNameRE.MatchString(p.Name), p.Ecosystem == profiles.PyPI && pypiNameRE.MatchString(p.Name):
			w("match:\n  - %s: %s\n", p.Ecosystem, yamlString(p.Name))
		}
	}
}

// pathArgs writes the access pathAccess decides, and why.
func (d *profileDoc) pathArgs(r *Report) {
	w := d.w
	switch access, why := pathAccess(r); access {
	case profiles.AccessNone:
		w("pathArgs: none\n")
	default:
		w("pathArgs: %s   # %s\n", access, why)
	}
}

// offeredHost is a host the server was denied, offered commented out.
type offeredHost struct {
	entry string
	count int
	dns   bool // only looked up, never connected to
}

// network writes the hosts the server was denied, commented out: never
// granted here, only offered.
func (d *profileDoc) network(r *Report, base *profiles.Profile) {
	w := d.w
	offer, granted := networkOffer(r)
	if len(offer) > 0 {
		w("# The server tried to reach these hosts and was denied. To approve one,\n")
		w("# uncomment `network:`, `allow:` and its line (no port means 443).\n")
		w("# network:\n#   allow:\n")
		for _, h := range offer {
			how := "connect"
			if h.dns {
				how = "DNS lookup only"
			}
			w("#     - %s   # %s, seen %d×: approve by uncommenting\n", yamlString(h.entry), how, h.count)
		}
	}
	if len(granted) > 0 {
		w("# Already allowed by %s and used: %s\n", comment(base.Name), comment(strings.Join(granted, ", ")))
	}
}

// networkOffer sorts the report's network events into the hosts to offer
// and those the base profile allowed already.
func networkOffer(r *Report) (offer []offeredHost, granted []string) {
	for _, n := range r.Network {
		entry := n.Host
		if n.Port != 0 {
			entry = n.Host + ":" + strconv.Itoa(n.Port)
		}
		if n.Verdict != VerdictDenied {
			if !slices.Contains(granted, entry) {
				granted = append(granted, entry)
			}
			continue
		}
		if strings.TrimSpace(n.Host) == "" {
			continue
		}
		i := slices.IndexFunc(offer, func(h offeredHost) bool { return h.entry == entry })
		if i < 0 {
			offer = append(offer, offeredHost{entry: entry, dns: n.Kind == NetDNS})
			i = len(offer) - 1
		}
		offer[i].count += n.Count
		offer[i].dns = offer[i].dns && n.Kind == NetDNS
	}
	// A host that was also connected to makes its bare DNS lookup redundant.
	offer = slices.DeleteFunc(offer, func(h offeredHost) bool {
		return h.dns && slices.ContainsFunc(offer, func(o offeredHost) bool { return !o.dns && strings.HasPrefix(o.entry, h.entry+":") })
	})
	return offer, granted
}

// limits writes the peak usage times headroom, never below a working
// minimum, or the base's limits where nothing was measured.
func (d *profileDoc) limits(r *Report, base *profiles.Profile, headroom float64) {
	w := d.w
	w("limits:\n")
	if u := r.Usage.PeakMemoryBytes; u > 0 {
		mem := int64(math.Ceil(float64(u)*headroom/memStep)) * memStep
		mem = max(mem, minMemory)
		w("  memory: %s   # peak %s × %s\n", profiles.FormatSize(mem), sizeText(u), strconv.FormatFloat(headroom, 'f', -1, 64))
	} else {
		w("  memory: %s   # not measured: %s's\n", profiles.FormatSize(base.Limits.Memory), comment(base.Name))
	}
	if u := r.Usage.PeakPIDs; u > 0 {
		pids := max(int64(math.Ceil(float64(u)*headroom)), minPIDs)
		w("  pids: %d   # peak %d × %s\n", pids, u, strconv.FormatFloat(headroom, 'f', -1, 64))
	} else {
		w("  pids: %d   # not measured: %s's\n", base.Limits.PIDs, comment(base.Name))
	}
	w("  # cpus and tmp as in %s: %s CPUs (%s s used), %s of /tmp\n", comment(base.Name),
		strconv.FormatFloat(base.Limits.CPUs, 'f', -1, 64), strconv.FormatFloat(r.Usage.CPUSeconds, 'f', 2, 64), profiles.FormatSize(base.Limits.Tmp))
}

// seccomp writes the denied syscalls as allowed, except those no profile
// may grant and names that are not syscalls, which go in comments.
func (d *profileDoc) seccomp(r *Report, base *profiles.Profile) {
	w := d.w
	var allow, never, odd []string
	for _, s := range r.Syscalls {
		if s.Verdict != VerdictDenied {
			continue
		}
		line := fmt.Sprintf("%s (%d×)", s.Name, s.Count)
		switch {
		case !syscallNameRE.MatchString(s.Name):
			odd = append(odd, comment(strconv.Quote(s.Name)))
		case NeverGranted(s.Name):
			never = append(never, line)
		case slices.Contains(base.Seccomp.Allow, s.Name) || slices.ContainsFunc(allow, func(a string) bool { return strings.HasPrefix(a, s.Name+" ") }):
		default:
			allow = append(allow, fmt.Sprintf("%s   # denied %d×", s.Name, s.Count))
		}
	}
	slices.Sort(allow)
	w("seccomp:\n")
	if len(allow) == 0 {
		w("  allow: []\n")
	} else {
		w("  allow:\n")
		for _, a := range allow {
			w("    - %s\n", a)
		}
	}
	if len(never) > 0 {
		w("  # observed but never granted: %s\n", strings.Join(never, ", "))
	}
	if len(odd) > 0 {
		w("  # observed, not syscall names: %s\n", strings.Join(odd, ", "))
	}
}

// pathAccess decides pathArgs: none without path arguments, rw if the server
// changed something under one, else ro.
func pathAccess(r *Report) (profiles.Access, string) {
	if len(r.PathArgs) == 0 {
		return profiles.AccessNone, ""
	}
	for _, f := range r.Files {
		for _, a := range r.PathArgs {
			if under(path.Clean(f.Path), path.Clean(a)) {
				return profiles.AccessRW, "the server changed " + comment(f.Path)
			}
		}
	}
	return profiles.AccessRO, "the server changed nothing under its path arguments"
}

// yamlString writes s as a YAML scalar that reads back as s: plain where
// that is plainly safe, else double-quoted (Go's escapes are valid YAML).
func yamlString(s string) string {
	if plainYAMLRE.MatchString(s) {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			switch strings.ToLower(s) {
			case "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~":
			default:
				return s
			}
		}
	}
	return strconv.Quote(s)
}

// comment makes untrusted text safe inside a one-line YAML comment.
func comment(s string) string {
	return plain(s)
}
