package broker

import (
	"fmt"
	"path"
	"strconv"

	"github.com/mcpbox/mcpbox/launcher/audit"
)

// CodeToolBlocked is the JSON-RPC error code of the broker's answer to a
// tools/call for a tool the profile blocks. It is the code MCP servers use
// for an unknown tool, which is what a blocked tool is to the client.
const CodeToolBlocked = -32602

// toolFilter decides which tools a session may see and call.
type toolFilter struct {
	allow, deny []string
}

func newToolFilter(allow, deny []string) *toolFilter {
	if len(allow) == 0 && len(deny) == 0 {
		return nil
	}
	return &toolFilter{allow: allow, deny: deny}
}

// blocked reports whether name is blocked, and by which rule. A malformed
// pattern counts as matching a deny rule and as not matching an allow rule:
// a typo in a profile must not open a tool up. Options.Validate reports it.
func (f *toolFilter) blocked(name string) (rule string, blocked bool) {
	for _, p := range f.deny {
		if ok, err := path.Match(p, name); ok || err != nil {
			return "tools.deny", true
		}
	}
	if len(f.allow) == 0 {
		return "", false
	}
	for _, p := range f.allow {
		if ok, err := path.Match(p, name); ok && err == nil {
			return "", false
		}
	}
	return "tools.allow", true
}

// Validate reports the first malformed pattern in opts.ToolAllow or
// opts.ToolDeny. New accepts them and fails closed; callers that load a
// profile should call Validate and tell the user.
func (opts Options) Validate() error {
	for _, set := range []struct {
		name     string
		patterns []string
	}{{"tools.allow", opts.ToolAllow}, {"tools.deny", opts.ToolDeny}} {
		for _, p := range set.patterns {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("broker: %s pattern %q: %w", set.name, p, err)
			}
		}
	}
	return nil
}

// callParams reads a tools/call request's params: the tool name and the raw
// arguments. denied is set if any member naming the tool is blocked: a
// duplicate, or one that differs from "name" only in letter case, which
// Go's encoding/json reads as the name (the last such member wins there;
// TypeScript and Python servers read "name" exactly). tool is the last one.
// args is nil when there are none and never nil when there are (a slice of
// params): the audit line tells the two apart.
func (f *toolFilter) callParams(params []byte) (tool string, args []byte, rule string, denied bool) {
	if len(params) == 0 || params[0] != '{' {
		return "", nil, "", false
	}
	eachMember(params, 0, func(key []byte, vs, ve int) bool {
		switch {
		case keyFold(key, "name"):
			name, ok := unquote(params[vs:ve])
			if !ok {
				return true
			}
			tool = name
			if f != nil && !denied {
				rule, denied = f.blocked(name)
			}
		case keyIs(key, "arguments"):
			args = params[vs:ve]
		}
		return true
	})
	return tool, args, rule, denied
}

// blockedMessage is the error message for a request the tool filter blocks.
func blockedMessage(tool, rule string) string {
	return "tool " + tool + " is blocked by the profile (" + rule + ")"
}

// appendErrorReply appends the broker's own JSON-RPC error answer to id.
func appendErrorReply(b, id []byte, code int, msg string) []byte {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = audit.AppendQuoted(b, msg)
	return append(b, "}}\n"...)
}

// filterToolsList appends to dst msg with the blocked tools removed from its
// result's tools array, and reports the names removed. Every other byte of
// msg is kept: only the removed elements and their commas go. It returns
// removed == nil (and dst unchanged) when nothing is blocked or the result
// is not shaped as expected.
func (f *toolFilter) filterToolsList(dst, msg []byte, v *view) (out []byte, removed []string) {
	if len(v.result) == 0 || v.result[0] != '{' {
		return dst, nil
	}
	var cuts []span   // tools arrays to rewrite, in order
	var keep [][]span // the kept elements of each
	base := v.resultAt
	eachMember(v.result, 0, func(key []byte, vs, ve int) bool {
		if !keyFold(key, "tools") { // "Tools" is the list to Go's encoding/json
			return true
		}
		arr := v.result[vs:ve]
		var kept []span
		cut := false
		ok := eachElement(arr, func(s, e int) {
			name := ""
			eachMember(arr, s, func(k []byte, nvs, nve int) bool {
				if keyFold(k, "name") {
					n, _ := unquote(arr[nvs:nve])
					if _, blocked := f.blocked(n); blocked || name == "" {
						name = n // a blocked duplicate wins
					}
				}
				return true
			})
			if _, blocked := f.blocked(name); blocked {
				removed = append(removed, name)
				cut = true
				return
			}
			kept = append(kept, span{base + vs + s, base + vs + e})
		})
		if ok && cut {
			cuts = append(cuts, span{base + vs, base + ve})
			keep = append(keep, kept)
		}
		return true
	})
	if len(cuts) == 0 {
		return dst, nil
	}
	return spliceArrays(dst, msg, cuts, keep), removed
}

// span is a range of offsets in a message.
type span struct{ s, e int }

// spliceArrays appends to dst msg with each array cuts[i] replaced by its
// elements keep[i], in order; cuts are sorted and do not overlap.
func spliceArrays(dst, msg []byte, cuts []span, keep [][]span) []byte {
	last := 0
	for i, c := range cuts {
		dst = append(dst, msg[last:c.s]...)
		dst = append(dst, '[')
		for j, k := range keep[i] {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, msg[k.s:k.e]...)
		}
		dst = append(dst, ']')
		last = c.e
	}
	return append(dst, msg[last:]...)
}
