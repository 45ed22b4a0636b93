package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// guard applies the pin and scan policies to the lists a server answers
// (tools, prompts, resources, resource templates) and to its instructions,
// and remembers which items it withheld so that uses of them are refused.
type guard struct {
	pin, scan Mode
	store     PinStore // nil: pins are not kept
	id        Identity
	others    []string // other servers' tool names, for the shadowing check
	diag      io.Writer
	log       *slog.Logger
	now       func() time.Time

	mu sync.Mutex
	// withheld maps list kind → item name → why, for refusing uses.
	withheld map[string]map[string]string
	// unreadable is set when the pin store cannot be read: every item is
	// withheld until the user resets it.
	unreadable string
	// trusted marks lists pinned for the first time in this session:
	// everything the server lists in it is pinned, across pages.
	trusted map[string]bool
	warned  map[string]bool // warnings already shown, by kind/name/sha
}

func newGuard(opts Options, diag io.Writer, log *slog.Logger) *guard {
	pin, scan := opts.Pin, opts.Scan
	if pin == "" {
		pin = ModeBlock
	}
	if scan == "" {
		scan = ModeOff
	}
	if opts.Pins == nil {
		pin = ModeOff
	}
	if pin == ModeOff && scan == ModeOff {
		return nil
	}
	return &guard{
		pin: pin, scan: scan, store: opts.Pins, id: opts.Identity, others: opts.OtherTools,
		diag: diag, log: log, now: time.Now,
		withheld: map[string]map[string]string{},
		trusted:  map[string]bool{},
		warned:   map[string]bool{},
	}
}

// listItem is one element of a list result.
type listItem struct {
	name    string
	raw     []byte
	canon   json.RawMessage
	sum     string
	invalid string // why the item could not be read; it is withheld
}

// policyEvent is something the guard did or saw, for the audit log.
type policyEvent struct {
	policy   string // "pin" or "scan"
	item     string
	finding  string
	severity string
	detail   string
}

// checkList applies the policies to the items of one list result and
// returns which to withhold (same order as items) and what happened.
// complete says the result is the whole list (no paging), so pinned items
// missing from it were removed.
//
// The first listing of a kind the store has never seen is trusted, all
// its pages: what it holds is pinned. Later listings are checked.
func (g *guard) checkList(k *listKind, items []listItem, complete, lastPage bool) (drop []bool, events []policyEvent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	drop = make([]bool, len(items))
	withheld := map[string]string{}
	for i, it := range items {
		if it.invalid != "" {
			drop[i] = true
			withheld[it.name] = it.invalid
		}
	}
	if g.pin != ModeOff {
		events = g.checkPins(k, items, complete, drop, withheld)
	}
	if g.scan != ModeOff {
		events = append(events, g.checkScan(k, items, drop, withheld)...)
	}
	// A list answer replaces what was withheld before for the items it
	// names; items not in it keep their state (another page may hold them).
	w := g.withheld[k.name]
	if w == nil {
		w = map[string]string{}
		g.withheld[k.name] = w
	}
	for _, it := range items {
		delete(w, it.name)
	}
	for name, why := range withheld {
		w[name] = why
	}
	if lastPage {
		g.trusted[k.name] = false
	}
	return drop, events
}

// checkPins compares items with the pin store; it runs with g.mu held.
func (g *guard) checkPins(k *listKind, items []listItem, complete bool, drop []bool, withheld map[string]string) []policyEvent {
	set, err := g.store.Load()
	if err != nil {
		return g.pinStoreUnreadable(k, items, err, drop, withheld)
	}
	g.unreadable = ""
	set, list := g.pinList(set, k)
	now := g.now().UTC()
	changed := false
	upgrade := set.Version != "" && g.id.Version != "" && set.Version != g.id.Version
	seen := make(map[string]bool, len(items))
	var events []policyEvent
	for i, it := range items {
		if it.invalid != "" {
			continue
		}
		seen[it.name] = true
		p := Pin{SHA256: it.sum, Definition: string(it.canon), Version: g.id.Version, Time: now}
		old, pinned := list.Pinned[it.name]
		approved, recorded := g.recordPin(k, list, it, p)
		changed = changed || recorded
		if approved {
			continue
		}
		what := "new " + k.noun
		if pinned {
			what = k.noun + " changed since it was pinned"
		}
		if upgrade {
			what += fmt.Sprintf(" (package %s updated %s → %s)", g.id.Package, set.Version, g.id.Version)
		}
		action := "warning only (tools.pin: warn)"
		if g.pin == ModeBlock {
			drop[i] = true
			withheld[it.name] = what
			action = "withheld from the client"
		}
		events = append(events, policyEvent{policy: "pin", item: it.name, severity: SeverityHigh, detail: what + "; " + action})
		if key := "pin/" + k.name + "/" + it.name + "/" + it.sum; !g.warned[key] {
			g.warned[key] = true
			g.warnf("%s %s of %s: %s; %s.\n%s  review: mcpbox pins diff %s\n  accept: mcpbox pins approve %s %s",
				k.noun, shownName(it.name), g.id.Server, what, action,
				indent(DiffDefinitions(old.Definition, string(it.canon))), g.id.Server, g.id.Server, shellQuote(it.name))
		}
	}
	if complete && !g.trusted[k.name] {
		events = append(events, g.pinsGone(k, list, seen)...)
	}
	g.savePins(set, upgrade, changed)
	return events
}

// pinStoreUnreadable withholds every item while the pin store cannot be
// read, and says so once.
func (g *guard) pinStoreUnreadable(k *listKind, items []listItem, err error, drop []bool, withheld map[string]string) []policyEvent {
	g.unreadable = fmt.Sprintf("the pin store for %s cannot be read (%v): every %s is withheld until you check it and run `mcpbox pins reset %s`",
		g.id.Server, err, k.noun, g.id.Server)
	if !g.warned["unreadable"] {
		g.warned["unreadable"] = true
		g.warnf("%s", g.unreadable)
	}
	for i := range items {
		drop[i] = true
		withheld[items[i].name] = "pin store unreadable"
	}
	return []policyEvent{{policy: "pin", severity: SeverityHigh, detail: g.unreadable}}
}

// pinList returns the pins of kind k in set, creating set (nil: the store
// holds nothing for this server) and the list where they are missing. A
// list created here is trusted: what the server lists in it is pinned.
func (g *guard) pinList(set *PinSet, k *listKind) (*PinSet, *PinList) {
	if set == nil {
		set = &PinSet{Format: PinFormat, Server: g.id.Server, Identity: g.id.Key, Package: g.id.Package, Version: g.id.Version}
	}
	if set.Lists == nil {
		set.Lists = map[string]*PinList{}
	}
	list := set.Lists[k.name]
	if list == nil {
		list = &PinList{}
		set.Lists[k.name] = list
		g.trusted[k.name] = true
	}
	if list.Pinned == nil {
		list.Pinned = map[string]Pin{}
	}
	return set, list
}

// recordPin records p, the item's definition as listed now, in list:
// pinned if the list is trusted and the item new, pending approval if it
// is not the pinned one. It reports whether the item passes (its pinned
// definition, or pinned just now) and whether list changed.
func (g *guard) recordPin(k *listKind, list *PinList, it listItem, p Pin) (approved, changed bool) {
	old, pinned := list.Pinned[it.name]
	switch {
	case pinned && old.SHA256 == it.sum:
		if _, ok := list.Pending[it.name]; ok {
			delete(list.Pending, it.name) // the server went back to the pinned definition
			return true, true
		}
		return true, false
	case g.trusted[k.name] && !pinned:
		list.Pinned[it.name] = p
		return true, true
	}
	if q, ok := list.Pending[it.name]; !ok || q.SHA256 != it.sum {
		if list.Pending == nil {
			list.Pending = map[string]Pin{}
		}
		list.Pending[it.name] = p
		return false, true
	}
	return false, false
}

// pinsGone reports the pinned items of list that a complete listing no
// longer holds; they stay pinned.
func (g *guard) pinsGone(k *listKind, list *PinList, seen map[string]bool) []policyEvent {
	var gone []string
	for name := range list.Pinned {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	var events []policyEvent
	for _, name := range gone {
		events = append(events, policyEvent{policy: "pin", item: name, severity: SeverityLow, detail: k.noun + " pinned before is no longer listed"})
		if key := "gone/" + k.name + "/" + name; !g.warned[key] {
			g.warned[key] = true
			g.warnf("%s %s of %s is no longer listed (it stays pinned)", k.noun, shownName(name), g.id.Server)
		}
	}
	return events
}

// savePins records the package's version in set unless an upgrade left
// definitions to approve, and saves set if anything in it changed.
func (g *guard) savePins(set *PinSet, upgrade, changed bool) {
	if upgrade && set.PendingCount() == 0 {
		// A new package version with the same definitions: nothing to approve.
		g.log.LogAttrs(context.Background(), slog.LevelInfo, "package updated, pinned definitions unchanged",
			slog.String("package", g.id.Package), slog.String("from", set.Version), slog.String("to", g.id.Version))
		set.Version = g.id.Version
		changed = true
	}
	if set.Version == "" && g.id.Version != "" {
		set.Version, changed = g.id.Version, true
	}
	if changed {
		if err := g.store.Save(set); err != nil {
			g.warnf("could not save the pins of %s to %s: %v", g.id.Server, g.store.Where(), err)
		}
	}
}

// checkScan runs the poisoning scan on items; it runs with g.mu held.
func (g *guard) checkScan(k *listKind, items []listItem, drop []bool, withheld map[string]string) []policyEvent {
	findings := make([][]Finding, len(items))
	var names []string
	var named []int // index in items of each name
	for i, it := range items {
		if it.invalid != "" {
			continue
		}
		if k.name == "tools" {
			findings[i] = ScanTool(it.raw, i)
			names, named = append(names, it.name), append(named, i)
		} else {
			findings[i] = scanItem(k, it.raw, i)
		}
	}
	if len(g.others) > 0 && len(names) > 0 {
		for _, f := range ScanShadowing(names, g.others) {
			var n int
			fmt.Sscanf(f.Field, "tools[%d]", &n)
			if n >= 0 && n < len(named) {
				i := named[n]
				f.Field = fmt.Sprintf("tools[%d].name", i)
				findings[i] = append(findings[i], f)
			}
		}
	}
	var events []policyEvent
	for i, it := range items {
		g.applyFindings(k, i, it, findings[i], drop, withheld, &events)
	}
	return events
}

func (g *guard) applyFindings(k *listKind, i int, it listItem, findings []Finding, drop []bool, withheld map[string]string, events *[]policyEvent) {
	if len(findings) == 0 {
		return
	}
	block := false
	for _, f := range findings {
		if f.Severity != SeverityLow {
			block = g.scan == ModeBlock
		}
	}
	action := "warning only (tools.scan: warn)"
	if block {
		drop[i] = true
		withheld[it.name] = "poisoning scan: " + findings[0].Rule
		action = "withheld from the client (tools.scan: block)"
	}
	var lines []string
	for _, f := range findings {
		*events = append(*events, policyEvent{policy: "scan", item: it.name, finding: f.Rule, severity: f.Severity, detail: f.Field + ": " + f.Excerpt})
		lines = append(lines, fmt.Sprintf("  [%s] %s at %s: %s", f.Severity, f.Rule, f.Field, f.Excerpt))
	}
	if key := "scan/" + k.name + "/" + it.name + "/" + it.sum; !g.warned[key] {
		g.warned[key] = true
		g.warnf("%s %s of %s looks poisoned; %s:\n%s", k.noun, shownName(it.name), g.id.Server, action, strings.Join(lines, "\n"))
	}
}

// scanItem scans a prompt, resource or resource template: its name, title
// and description, and a prompt's argument descriptions.
func scanItem(k *listKind, raw []byte, index int) []Finding {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	prefix := fmt.Sprintf("%s[%d]", k.name, index)
	var out []Finding
	for _, f := range []string{"name", "title", "description"} {
		if s, ok := m[f].(string); ok {
			out = append(out, scanText(prefix+"."+f, s, f == "description")...)
		}
	}
	if args, ok := m["arguments"].([]any); ok {
		for j, a := range args {
			if am, ok := a.(map[string]any); ok {
				if s, ok := am["description"].(string); ok {
					out = append(out, scanText(fmt.Sprintf("%s.arguments[%d].description", prefix, j), s, true)...)
				}
			}
		}
	}
	return out
}

// checkInstructions scans a server's instructions (initialize or
// server/discover result) and reports whether to strip them.
func (g *guard) checkInstructions(s string) (strip bool, events []policyEvent) {
	if g.scan == ModeOff {
		return false, nil
	}
	findings := ScanInstructions(s)
	if len(findings) == 0 {
		return false, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	action := "warning only (tools.scan: warn)"
	for _, f := range findings {
		if f.Severity != SeverityLow && g.scan == ModeBlock {
			strip, action = true, "removed before the client sees them (tools.scan: block)"
		}
	}
	var lines []string
	for _, f := range findings {
		events = append(events, policyEvent{policy: "scan", finding: f.Rule, severity: f.Severity, detail: f.Field + ": " + f.Excerpt})
		lines = append(lines, fmt.Sprintf("  [%s] %s: %s", f.Severity, f.Rule, f.Excerpt))
	}
	if !g.warned["instructions/"+s] {
		g.warned["instructions/"+s] = true
		g.warnf("the instructions of %s look poisoned; %s:\n%s", g.id.Server, action, strings.Join(lines, "\n"))
	}
	return strip, events
}

// refused reports why a use of an item (tools/call, prompts/get,
// resources/read) must be refused, or "".
func (g *guard) refused(k *listKind, name string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unreadable != "" {
		return g.unreadable
	}
	why, ok := g.withheld[k.name][name]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s %s is withheld by mcpbox: %s (see mcpbox's warnings; `mcpbox pins diff %s`)", k.noun, escapeNonASCII(name), why, g.id.Server)
}

func (g *guard) warnf(format string, args ...any) {
	msg := "mcpbox: " + fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	if _, err := io.WriteString(g.diag, msg); err != nil {
		g.log.LogAttrs(context.Background(), slog.LevelDebug, "write diagnostic", slog.Any("err", err))
	}
}

// shownName quotes an item's name for a warning, every non-ASCII rune
// escaped: a look-alike name must not pass for the real one.
func shownName(name string) string {
	return `"` + escapeNonASCII(name) + `"`
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
}

// shellQuote quotes s for a command the user may paste.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(EscapeHidden(s), "'", `'\''`) + "'"
}

// readItems reads the elements of a list result's array into items, with
// their definitions. An element that is not an object with a string name
// (URI) is kept unnamed and marked invalid: it is withheld, since it cannot
// be pinned or refused by name. So is one where a member of its definition
// appears twice, or in another letter case ("Description"): Go's
// encoding/json reads that one, the pin and the scan another.
func readItems(k *listKind, arr []byte) ([]listItem, bool) {
	var items []listItem
	ok := eachElement(arr, func(s, e int) {
		raw := arr[s:e]
		it := listItem{raw: raw}
		names := 0
		ambiguous := ""
		seen := make(map[string]bool, len(k.hashed)+1)
		eachMember(raw, 0, func(key []byte, vs, ve int) bool {
			if keyFold(key, k.key) {
				names++
				if n, ok := unquote(raw[vs:ve]); ok {
					it.name = n
				}
			}
			for _, f := range k.hashed {
				if !keyFold(key, f) {
					continue
				}
				if seen[f] || !keyIs(key, f) {
					ambiguous = f
				}
				seen[f] = true
			}
			return true
		})
		switch {
		case names != 1 || it.name == "":
			it.invalid = fmt.Sprintf("malformed %s entry (its %s is missing, duplicated or not a string)", k.noun, k.key)
		case ambiguous != "":
			it.invalid = fmt.Sprintf("ambiguous %s entry (its %s appears twice or in another letter case)", k.noun, ambiguous)
		default:
			canon, sum, err := k.definition(raw)
			if err != nil {
				it.invalid = err.Error()
			}
			it.canon, it.sum = canon, sum
		}
		items = append(items, it)
	})
	return items, ok
}

// hasMember reports whether the object obj has a member named name.
func hasMember(obj []byte, name string) bool {
	found := false
	eachMember(obj, 0, func(key []byte, _, _ int) bool {
		if keyIs(key, name) {
			found = true
			return false
		}
		return true
	})
	return found
}

// hasMemberFold is hasMember ignoring letter case, as Go's encoding/json
// matches a key with a struct field.
func hasMemberFold(obj []byte, name string) bool {
	found := false
	eachMember(obj, 0, func(key []byte, _, _ int) bool {
		if keyFold(key, name) {
			found = true
			return false
		}
		return true
	})
	return found
}

// memberValue returns the raw value of obj's last member named name.
func memberValue(obj []byte, name string) []byte {
	var v []byte
	eachMember(obj, 0, func(key []byte, vs, ve int) bool {
		if keyIs(key, name) {
			v = obj[vs:ve]
		}
		return true
	})
	return v
}

// rewriteList applies the guard to the k list in msg's result and appends
// to dst the message with withheld items removed; changed is false (and dst
// unchanged) when nothing is withheld. Every other byte of msg is kept.
func (g *guard) rewriteList(dst, msg []byte, v *view, k *listKind, complete, lastPage bool) (out []byte, events []policyEvent, changed bool) {
	var cuts []span
	var keep [][]span
	base := v.resultAt
	arrays := 0
	// "Tools" is the list to Go's encoding/json, "tools" to the others.
	eachMember(v.result, 0, func(key []byte, vs, ve int) bool {
		if keyFold(key, k.name) {
			arrays++
		}
		return true
	})
	eachMember(v.result, 0, func(key []byte, vs, ve int) bool {
		if !keyFold(key, k.name) {
			return true
		}
		arr := v.result[vs:ve]
		items, ok := readItems(k, arr)
		if !ok {
			return true
		}
		drop, evs := g.checkList(k, items, complete && arrays == 1, lastPage)
		events = append(events, evs...)
		var kept []span
		cut := false
		i := 0
		eachElement(arr, func(s, e int) {
			if drop[i] || arrays > 1 {
				// Two arrays under one key: clients disagree on which
				// counts, so neither is shown.
				cut = true
			} else {
				kept = append(kept, span{base + vs + s, base + vs + e})
			}
			i++
		})
		if cut {
			cuts = append(cuts, span{base + vs, base + ve})
			keep = append(keep, kept)
		}
		return true
	})
	if len(cuts) == 0 {
		return dst, events, false
	}
	return spliceArrays(dst, msg, cuts, keep), events, true
}

// refusedParams is refused for the item a request's params name; every
// member naming it counts, so a duplicate, or a member that differs from
// the name's only in letter case, cannot smuggle a withheld name.
func (g *guard) refusedParams(k *listKind, params []byte) string {
	if len(params) == 0 || params[0] != '{' {
		return ""
	}
	why := ""
	eachMember(params, 0, func(key []byte, vs, ve int) bool {
		if keyFold(key, k.useKey) {
			if n, ok := unquote(params[vs:ve]); ok {
				why = g.refused(k, n)
			}
		}
		return why == ""
	})
	return why
}

// useName is the item a request's params name.
func useName(k *listKind, params []byte) string {
	n, _ := unquote(memberValue(params, k.useKey))
	return n
}

// removeMember appends to dst msg with every member named name, in any
// letter case, removed from the object that starts at msg[at], in one
// pass; the bytes around the members that stay are kept. ok is false if it
// has no such member.
func removeMember(dst, msg []byte, at int, name string) ([]byte, bool) {
	type member struct {
		ks, ve int
		drop   bool
	}
	var ms []member
	found := false
	obj := msg[at:]
	eachMember(obj, 0, func(key []byte, vs, ve int) bool {
		ks := cap(obj) - cap(key) // key is a subslice of obj
		drop := keyFold(key, name)
		found = found || drop
		ms = append(ms, member{at + ks, at + ve, drop})
		return true
	})
	if !found {
		return dst, false
	}
	lastKept := -1
	for i, m := range ms {
		if !m.drop {
			lastKept = i
		}
	}
	// A kept member brings the separator after it, except the last one
	// kept: the text after the last member (space, "}") follows it.
	dst = append(dst, msg[:ms[0].ks]...)
	for i := 0; i < lastKept; i++ {
		if !ms[i].drop {
			dst = append(dst, msg[ms[i].ks:ms[i+1].ks]...)
		}
	}
	if lastKept >= 0 {
		dst = append(dst, msg[ms[lastKept].ks:ms[lastKept].ve]...)
	}
	return append(dst, msg[ms[len(ms)-1].ve:]...), true
}
