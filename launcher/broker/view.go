package broker

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// kind is what a line is at the JSON-RPC level.
type kind uint8

const (
	kindUnknown      kind = iota // not something the broker reads: forwarded untouched
	kindRequest                  // method and id
	kindNotification             // method, no id
	kindResponse                 // result and id
	kindError                    // error, id possibly null or absent
	kindBatch                    // a top-level array: forwarded untouched
)

func (k kind) String() string {
	switch k {
	case kindRequest:
		return "request"
	case kindNotification:
		return "notification"
	case kindResponse:
		return "response"
	case kindError:
		return "error"
	case kindBatch:
		return "batch"
	}
	return "unknown"
}

// view is what the broker reads of one message without decoding it: the
// top-level members it needs, as raw spans of the message. Values are not
// decoded or validated beyond finding where they end, so a 10 MB result costs
// one pass over its bytes and no allocation.
type view struct {
	kind   kind
	id     []byte // raw JSON; nil when absent
	method []byte // raw JSON string with its quotes; nil when absent
	params []byte
	result []byte
	err    []byte
	// resultAt is the offset of result in the message, for splicing.
	resultAt int
	// dup is set when id, method, params, result or error appears twice,
	// or a key differs from one of them only in case ("Method", "ID"),
	// which Go's encoding/json reads as that member: parsers disagree on
	// which one counts, so policies must not guess.
	dup bool
	// rpc is set when the object has any of those members, in any case,
	// even when the view is not ok: a JSON-RPC message the broker cannot
	// classify, rather than stray output.
	rpc bool
	// lists has the bit of each list (listKind.bit) that the result names
	// as a member, in any case: the message carries that list.
	lists uint8
}

// parseView reads msg, a line with surrounding whitespace trimmed. ok is
// false when msg is not one JSON object the scanner can follow, or not a
// JSON-RPC shape it recognizes; v.kind then says kindBatch or kindUnknown
// (v.id, v.dup and v.rpc still say what was seen) and the line must not be
// read as a message.
func parseView(msg []byte) (v view, ok bool) {
	if len(msg) == 0 {
		return v, false
	}
	if msg[0] == '[' {
		v.kind = kindBatch
		return v, false
	}
	var b viewBuilder
	end, ok := eachMember(msg, 0, func(key []byte, vs, ve int) bool {
		b.add(msg, key, vs, ve)
		if keyIs(key, "result") {
			eachMember(msg[vs:ve], 0, func(k []byte, _, _ int) bool {
				b.nested(k)
				return true
			})
		}
		return true
	})
	if !ok || end != len(msg) {
		return view{}, false
	}
	return b.finish()
}

// parseValidView is parseView for a line that must be a JSON object: it
// validates msg (as validJSON) and reads its members in the same pass,
// which halves the cost of a large message. valid is false when msg is not
// a JSON object; then the view is empty.
func parseValidView(msg []byte) (v view, ok, valid bool) {
	if len(msg) == 0 || msg[0] != '{' || msg[len(msg)-1] != '}' {
		return view{}, false, false
	}
	var b viewBuilder
	if !validJSONMembers(msg, func(key []byte, vs, ve int) { b.add(msg, key, vs, ve) }, func(parent, key []byte) {
		if keyIs(parent, "result") {
			b.nested(key)
		}
	}) {
		return view{}, false, false
	}
	v, ok = b.finish()
	return v, ok, true
}

// viewBuilder collects a view from a message's top-level members.
type viewBuilder struct {
	v    view
	seen uint8
}

func (b *viewBuilder) add(msg, key []byte, vs, ve int) {
	var bit uint8
	v := &b.v
	switch {
	case keyIs(key, "id"):
		bit, v.id = 1, msg[vs:ve]
	case keyIs(key, "method"):
		bit, v.method = 2, msg[vs:ve]
	case keyIs(key, "params"):
		bit, v.params = 4, msg[vs:ve]
	case keyIs(key, "result"):
		bit, v.result, v.resultAt = 8, msg[vs:ve], vs
	case keyIs(key, "error"):
		bit, v.err = 16, msg[vs:ve]
	default:
		if foldsToRPC(key) {
			v.dup, v.rpc = true, true
		}
		return
	}
	if b.seen&bit != 0 {
		v.dup = true
	}
	b.seen |= bit
	v.rpc = true
}

// nested notes a member of the result object.
func (b *viewBuilder) nested(key []byte) {
	for _, k := range listKinds {
		if keyFold(key, k.name) {
			b.v.lists |= k.bit
		}
	}
}

// finish classifies the message by the members seen.
func (b *viewBuilder) finish() (view, bool) {
	v := b.v
	switch {
	case v.method != nil && v.result == nil && v.err == nil:
		if v.method[0] != '"' {
			return v, false
		}
		if v.id != nil {
			v.kind = kindRequest
		} else {
			v.kind = kindNotification
		}
	case v.method == nil && v.result != nil && v.err == nil && v.id != nil:
		v.kind = kindResponse
	case v.method == nil && v.err != nil && v.result == nil:
		v.kind = kindError
	default:
		return v, false // kindUnknown, with what was seen
	}
	return v, true
}

// rpcMembers are the JSON-RPC members a view reads.
var rpcMembers = [...]string{"id", "method", "params", "result", "error"}

// foldsToRPC reports whether key, which is none of rpcMembers exactly, is
// one of them compared as Go's encoding/json compares a key with a struct
// field: Unicode case folding, so "ID", "Method" and "reſult" (long s)
// count.
func foldsToRPC(key []byte) bool {
	for _, name := range rpcMembers {
		if keyFold(key, name) {
			return true
		}
	}
	return false
}

// keyFold reports whether the raw JSON string key (with quotes), decoded,
// equals name under Unicode case folding. name is ASCII.
func keyFold(key []byte, name string) bool {
	if len(key) < 2 || key[0] != '"' {
		return false
	}
	inner := key[1 : len(key)-1]
	if bytes.IndexByte(inner, '\\') < 0 && isASCII(inner) {
		if len(inner) != len(name) {
			return false
		}
		for i := 0; i < len(inner); i++ {
			if inner[i]|0x20 != name[i]|0x20 || (inner[i]|0x20)-'a' > 'z'-'a' && inner[i] != name[i] {
				return false
			}
		}
		return true
	}
	// A letter of name is at most 6 bytes here: "\u004B", or K (U+212A).
	if len(inner) > 6*len(name) {
		return false
	}
	s, ok := unquote(key)
	return ok && strings.EqualFold(s, name)
}

// keyIs reports whether the raw JSON string key (with quotes) is name.
// Escaped keys are decoded, so "tools\/call" is tools/call too.
func keyIs(key []byte, name string) bool {
	if len(key) < 2 || key[0] != '"' {
		return false
	}
	inner := key[1 : len(key)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == name
	}
	s, ok := unquote(key)
	return ok && s == name
}

// unquote decodes a raw JSON string the way clients read it: invalid
// UTF-8 and lone surrogates become U+FFFD. Go replaces each invalid byte,
// JavaScript and Python each invalid sequence, so a run of U+FFFD is made
// one: a name then reads the same to the broker whichever client sends it
// back.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return oneReplacement(string(inner)), true
	}
	return unescape(raw)
}

// unescape is unquote for a string with escapes; apart so that unquote's
// common case does not pay for json.Unmarshal's heap-allocated target.
func unescape(raw []byte) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return oneReplacement(s), true
}

// oneReplacement returns s with invalid UTF-8 replaced and each run of
// U+FFFD made one.
func oneReplacement(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\uFFFD\uFFFD") {
		return s
	}
	var b strings.Builder
	last := false
	for _, r := range s { // an invalid byte reads as RuneError
		if r == utf8.RuneError {
			if last {
				continue
			}
			last = true
		} else {
			last = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// eachMember calls fn for each member of the object starting at data[i]
// (after optional whitespace) with the raw key and the span of the value.
// It returns the offset just past the object. fn returning false stops the
// walk with ok false. Duplicate keys are all reported, in order.
func eachMember(data []byte, i int, fn func(key []byte, vs, ve int) bool) (end int, ok bool) {
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != '{' {
		return 0, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return 0, false
		}
		ks := i
		i, ok = skipString(data, i)
		if !ok {
			return 0, false
		}
		key := data[ks:i]
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ':' {
			return 0, false
		}
		vs := skipSpace(data, i+1)
		ve, ok := skipValue(data, vs)
		if !ok {
			return 0, false
		}
		if !fn(key, vs, ve) {
			return 0, false
		}
		i = skipSpace(data, ve)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// eachElement calls fn with the span of each element of the array arr.
func eachElement(arr []byte, fn func(s, e int)) bool {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = skipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return skipSpace(arr, i+1) == len(arr)
	}
	for {
		e, ok := skipValue(arr, i)
		if !ok {
			return false
		}
		fn(i, e)
		i = skipSpace(arr, e)
		if i >= len(arr) {
			return false
		}
		switch arr[i] {
		case ',':
			i = skipSpace(arr, i+1)
		case ']':
			return skipSpace(arr, i+1) == len(arr)
		default:
			return false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipString returns the offset just past the string starting at data[i].
// It jumps from quote to quote (bytes.IndexByte is vectorized), so a large
// text result costs little more than a memchr.
func skipString(data []byte, i int) (int, bool) {
	for i++; i < len(data); {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return 0, false
		}
		i += q
		// The quote ends the string unless an odd run of backslashes escapes it.
		n := 0
		for j := i - 1; j >= 0 && data[j] == '\\'; j-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i, true
		}
	}
	return 0, false
}

// skipValue returns the offset just past the value starting at data[i].
// Objects and arrays are skipped by counting brackets outside strings;
// literals and numbers run to the next delimiter, so a lenient server's
// NaN does not hide a message from the policies.
func skipValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				e, ok := skipString(data, i)
				if !ok {
					return 0, false
				}
				i = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	case ',', '}', ']', ':':
		return 0, false
	}
	s := i
	for i < len(data) && !isSpace(data[i]) && data[i] != ',' && data[i] != '}' && data[i] != ']' {
		i++
	}
	return i, i > s
}
