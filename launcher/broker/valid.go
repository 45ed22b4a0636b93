package broker

import (
	"encoding/binary"
	"math/bits"
)

// validJSON reports whether data is one valid JSON value, optionally
// surrounded by JSON whitespace. It gives exactly the answer of
// encoding/json.Valid for every input, including its quirks: bytes that are
// not valid UTF-8 are accepted inside strings, and nesting deeper than 10000
// arrays or objects is rejected.
//
// It exists because json.Valid, at about 300 MB/s, was the broker's
// bottleneck on large tool results, which are mostly one long JSON string.
// validJSON skips string content 8 bytes at a time (SWAR on a uint64) and
// walks the structure iteratively with a bit stack, so it neither allocates
// nor recurses. FuzzValidJSON checks it against json.Valid.
func validJSON(data []byte) bool {
	return validJSONMembers(data, nil, nil)
}

// validJSONMembers is validJSON that also calls member, if not nil, for each
// member of a top-level object, in order, with its raw key and the span of
// its value, so that a message is validated and viewed in one pass; and
// nested, if not nil, with the raw key of each member of an object that is
// the value of a top-level member, and that member's key. The calls happen
// as the members are read: a later error still returns false.
//
// Length: it is one state machine (value, next, pop, member) whose states
// jump to each other with goto, so the whole grammar reads in one place and
// the parser's state (i, depth, arr, kinds) is local, not passed between
// functions at every value. Taking the scalars, the opening of a container
// and the key's colon out into functions still left 106 lines and made the
// structured10MB input of BenchmarkValidJSON about 5% slower (CPU time per
// call; text10MB did not change); splitting the states themselves would
// mean returning a state code from each to a dispatch loop.
func validJSONMembers(data []byte, member func(key []byte, vs, ve int), nested func(parent, key []byte)) bool {
	var ks, ke, vs int // the top-level member being read
	// kinds has one bit per open array or object: set for an array.
	var kinds [(vjMaxDepth + 63) / 64]uint64
	n := len(data)
	depth := 0
	arr := false // whether the innermost open value is an array
	i := vjSkipSpace(data, 0)
	var c byte

value: // A value must start at data[i].
	if i >= n {
		return false
	}
	c = data[i]
	switch {
	case c == '"':
		if i = vjString(data, i+1); i < 0 {
			return false
		}
	case c == '{':
		if depth == vjMaxDepth {
			return false
		}
		kinds[depth>>6] &^= 1 << (depth & 63)
		depth++
		i = vjSkipSpace(data, i+1)
		if i < n && data[i] == '}' {
			i++
			goto pop
		}
		arr = false
		goto member
	case c == '[':
		if depth == vjMaxDepth {
			return false
		}
		kinds[depth>>6] |= 1 << (depth & 63)
		depth++
		i = vjSkipSpace(data, i+1)
		if i < n && data[i] == ']' {
			i++
			goto pop
		}
		arr = true
		goto value
	case c == '-' || c-'0' <= 9:
		if i = vjNumber(data, i); i < 0 {
			return false
		}
	case c == 't':
		if n-i < 4 || string(data[i:i+4]) != "true" {
			return false
		}
		i += 4
	case c == 'f':
		if n-i < 5 || string(data[i:i+5]) != "false" {
			return false
		}
		i += 5
	case c == 'n':
		if n-i < 4 || string(data[i:i+4]) != "null" {
			return false
		}
		i += 4
	default:
		return false
	}

next: // A value just ended at data[i].
	if depth == 0 {
		return vjSkipSpace(data, i) == n
	}
	if depth == 1 && member != nil && !arr {
		member(data[ks:ke], vs, i)
	}
	if i = vjSkipSpace(data, i); i >= n {
		return false
	}
	c = data[i]
	if arr {
		switch c {
		case ',':
			i = vjSkipSpace(data, i+1)
			goto value
		case ']':
			i++
			goto pop
		}
		return false
	}
	switch c {
	case ',':
		i = vjSkipSpace(data, i+1)
		goto member
	case '}':
		i++
		goto pop
	}
	return false

pop: // The innermost array or object just closed.
	depth--
	if depth > 0 {
		arr = kinds[(depth-1)>>6]&(1<<((depth-1)&63)) != 0
	}
	goto next

member: // An object member, "key": value, must start at data[i].
	if i >= n || data[i] != '"' {
		return false
	}
	if depth == 1 {
		ks = i
	}
	nks := i
	if i = vjString(data, i+1); i < 0 {
		return false
	}
	if depth == 1 {
		ke = i
	} else if depth == 2 && nested != nil {
		nested(data[ks:ke], data[nks:i])
	}
	if i < n && data[i] == ':' {
		i++
	} else {
		i = vjSkipSpace(data, i)
		if i >= n || data[i] != ':' {
			return false
		}
		i++
	}
	i = vjSkipSpace(data, i)
	if depth == 1 {
		vs = i
	}
	goto value
}

// vjMaxDepth is encoding/json's nesting limit (maxNestingDepth).
const vjMaxDepth = 10000

const (
	vjOnes  = 0x0101010101010101
	vjHighs = 0x8080808080808080
)

// vjSkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func vjSkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\n', '\r', '\t':
			i++
			continue
		}
		break
	}
	return i
}

// vjString validates the rest of a string whose opening quote is just before
// data[i]. It returns the index after the closing quote, or -1.
func vjString(data []byte, i int) int {
	n := len(data)
	for {
		// Skip 16, then 8 bytes at a time while none is '"', '\\' or
		// < 0x20.
		for i <= n-16 {
			m0 := vjSpecial(binary.LittleEndian.Uint64(data[i : i+8]))
			m1 := vjSpecial(binary.LittleEndian.Uint64(data[i+8 : i+16]))
			if m0|m1 != 0 {
				if m0 != 0 {
					i += bits.TrailingZeros64(m0) >> 3
				} else {
					i += 8 + bits.TrailingZeros64(m1)>>3
				}
				goto special
			}
			i += 16
		}
		if i <= n-8 {
			if m := vjSpecial(binary.LittleEndian.Uint64(data[i : i+8])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special
			}
			i += 8
		}
		for i < n && data[i] >= 0x20 && data[i] != '"' && data[i] != '\\' {
			i++
		}
		if i >= n {
			return -1
		}
	special: // data[i] is '"', '\\' or a control character.
		switch data[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= n {
				return -1
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if n-i < 6 || !vjHex[data[i+2]] || !vjHex[data[i+3]] ||
					!vjHex[data[i+4]] || !vjHex[data[i+5]] {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default: // A control character.
			return -1
		}
	}
}

// vjSpecial flags the high bit of each byte of x, read little-endian, that is
// '"', '\\' or below 0x20. The first terms are the classic has-zero-byte test
// after an XOR, the last the has-less-than test. Flags above the lowest true
// one may be spurious (from borrows), so callers use only the lowest.
func vjSpecial(x uint64) uint64 {
	q := x ^ (vjOnes * '"')
	b := x ^ (vjOnes * '\\')
	return (((q - vjOnes) &^ q) | ((b - vjOnes) &^ b) | ((x - vjOnes*0x20) &^ x)) & vjHighs
}

// vjNumber validates a number starting at data[i], which is '-' or a digit,
// and returns the index after it, or -1.
func vjNumber(data []byte, i int) int {
	n := len(data)
	if data[i] == '-' {
		i++
		if i >= n {
			return -1
		}
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case c-'1' <= 8:
		i++
		for i < n && data[i]-'0' <= 9 {
			i++
		}
	default:
		return -1
	}
	if i < n && data[i] == '.' {
		i++
		if i >= n || data[i]-'0' > 9 {
			return -1
		}
		i++
		for i < n && data[i]-'0' <= 9 {
			i++
		}
	}
	if i < n && data[i]|0x20 == 'e' {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n || data[i]-'0' > 9 {
			return -1
		}
		i++
		for i < n && data[i]-'0' <= 9 {
			i++
		}
	}
	return i
}

// vjHex reports which bytes are hexadecimal digits.
var vjHex = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true,
	'5': true, '6': true, '7': true, '8': true, '9': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true,
}
