package broker

import (
	"bytes"
	"encoding/json"
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
	kindPolicy                   // not a message: an audit line for a policy decision
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
	case kindPolicy:
		return "policy"
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
	// dup is set when id, method, params, result or error appears twice:
	// parsers disagree on which one counts, so policies must not guess.
	dup bool
}

// parseView reads msg, a line with surrounding whitespace trimmed. ok is
// false when msg is not one JSON object the scanner can follow, or not a
// JSON-RPC shape it recognizes; v.kind then says kindBatch or kindUnknown and
// the line must be forwarded untouched.
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
	if !validJSONMembers(msg, func(key []byte, vs, ve int) { b.add(msg, key, vs, ve) }) {
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
	}
	if b.seen&bit != 0 {
		v.dup = true
	}
	b.seen |= bit
}

// finish classifies the message by the members seen.
func (b *viewBuilder) finish() (view, bool) {
	v := b.v
	switch {
	case v.method != nil && v.result == nil && v.err == nil:
		if v.method[0] != '"' {
			return view{}, false
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
		return view{}, false
	}
	return v, true
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

// unquote decodes a raw JSON string.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
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
