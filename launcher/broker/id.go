package broker

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Request ids are matched the way clients match them, which is by value,
// not by bytes. What the three SDKs do with the id of a response (read in
// their sources):
//
//   - TypeScript SDK (1.32, shared/protocol.ts, Protocol._onresponse): the
//     handler is looked up with Number(response.id) in a Map keyed by the
//     numbers it sent (0, 1, 2, …); the envelope schema admits a string or
//     an integer. So "2", " 2\n", "02", "+2", "2.0", "0x2", "0b10" and ""
//     (Number("") is 0) all answer request 2 (or 0); the numbers 2.0, 2e0
//     and 20e-1 are 2 once parsed; -0 is 0 (Map keys compare with
//     SameValueZero); integers past 2^53 round to the nearest double.
//   - Python SDK (shared/session.py, _normalize_request_id): a string id
//     becomes int(s) when that parses (surrounding whitespace, a sign,
//     underscores between digits, any Unicode decimal digit: "٢" is 2), and
//     ids compare as Python ints or strs, exactly. The envelope's id is a
//     strict int or a str: 2.0, true and null are rejected.
//   - Go SDK (1.8, internal/jsonrpc2.MakeID): a number is decoded as a
//     float64 and converted with int64(v), which truncates (2.5 is 2, 1e-400
//     is 0) and, outside the int64 range, gives math.MinInt64 on amd64. A
//     string id is its own kind: "2" is not 2.
//
// All three keep the last of duplicate members. idKey joins every pair of
// ids that one of them takes for the same id; it also joins some that none
// does (2.5 and "2.5" and 2), which costs at most the refusal of a request
// whose id collides with one in flight.

// idKey appends to dst the key a request id is tracked under. ok is false
// for ids no SDK matches a response to (absent, null, true, an object).
//
// A number's key is its value as a float64, truncated toward zero and
// clamped to the int64 range (every value outside it is one key, as on
// amd64). A string that JavaScript's Number() or Python's int() reads as a
// number has the key of that number; any other string is keyed by its
// text as unquote decodes it.
func idKey(dst, id []byte) ([]byte, bool) {
	if len(id) == 0 {
		return dst, false
	}
	switch c := id[0]; {
	case c == '"':
		return stringIDKey(dst, id)
	case c == '-' || c-'0' <= 9:
		f, ok := jsonNumber(id)
		if !ok {
			return dst, false
		}
		return numberKey(dst, f), true
	}
	return dst, false
}

// numberKey appends the key of the numeric id f.
func numberKey(dst []byte, f float64) []byte {
	f = math.Trunc(f)
	if !(f > math.MinInt64 && f < math.MaxInt64) { // NaN too
		f = math.MinInt64
	}
	if f == 0 {
		f = 0 // not -0
	}
	dst = append(dst, 'n')
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

// jsonNumber parses a JSON number token. Overflow gives ±Inf.
func jsonNumber(tok []byte) (float64, bool) {
	if !isJSONNumber(tok) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// isJSONNumber reports whether tok is exactly one JSON number.
func isJSONNumber(tok []byte) bool {
	return len(tok) > 0 && (tok[0] == '-' || tok[0]-'0' <= 9) && vjNumber(tok, 0) == len(tok)
}

func stringIDKey(dst, id []byte) ([]byte, bool) {
	inner := id[1 : len(id)-1]
	plain := bytes.IndexByte(inner, '\\') < 0
	var s string
	if plain && isASCII(inner) {
		if !mayBeNumeric(inner) {
			return append(append(dst, 's'), inner...), true
		}
		s = string(inner)
	} else {
		var ok bool
		if s, ok = unquote(id); !ok {
			return dst, false
		}
	}
	if f, ok := numericString(s); ok {
		return numberKey(dst, f), true
	}
	return append(append(dst, 's'), s...), true
}

func isASCII(p []byte) bool {
	for _, c := range p {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// mayBeNumeric is a quick test on an ASCII string id: could Number() or
// int() read it as a number? Most string ids ("c-3", a UUID) are rejected
// by their first byte or two.
func mayBeNumeric(s []byte) bool {
	i := 0
	for i < len(s) && isIDSpace(rune(s[i])) {
		i++
	}
	if i == len(s) {
		return true // Number("") and Number("  ") are 0
	}
	switch c := s[i]; {
	case c-'0' <= 9, c == '+', c == '-', c == '.', c == 'I':
		return true
	}
	return false
}

// isIDSpace is whitespace that Number() or int() trims: JavaScript's
// WhiteSpace and LineTerminator, Python's str.isspace (which adds the
// information separators U+001C–U+001F).
func isIDSpace(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\v', r == '\f', r == '\r', r == ' ':
		return true
	case r >= 0x1c && r <= 0x1f, r == 0x85, r == 0xa0, r == 0xfeff:
		return true
	case r > 0xff:
		return unicode.Is(unicode.White_Space, r)
	}
	return false
}

// numericString returns the number JavaScript's Number(s) or, failing
// that, Python's int(s) makes of s. ok is false when neither reads one.
func numericString(s string) (float64, bool) {
	s = strings.TrimFunc(s, isIDSpace)
	if s == "" {
		return 0, true // Number("") is 0
	}
	if f, ok := jsNumber(s); ok {
		return f, true
	}
	return pyInt(s)
}

// jsNumber is ECMAScript's StringToNumber on a trimmed, non-empty s.
func jsNumber(s string) (float64, bool) {
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] | 0x20 {
		case 'x':
			base = 16
		case 'o':
			base = 8
		case 'b':
			base = 2
		}
		if base != 0 {
			digits := s[2:]
			for i := 0; i < len(digits); i++ {
				if d := digitValue(digits[i]); d < 0 || d >= base {
					return 0, false
				}
			}
			n, ok := new(big.Int).SetString(digits, base)
			if !ok {
				return 0, false
			}
			f, _ := new(big.Float).SetInt(n).Float64() // rounds to nearest even, as ECMAScript does
			return f, true
		}
	}
	body := s
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	if body == "Infinity" {
		if s[0] == '-' {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	// StrUnsignedDecimalLiteral: digits, an optional fraction (either side
	// of the point may be empty, not both) and an optional exponent.
	i, intDigits := 0, 0
	for i < len(body) && body[i]-'0' <= 9 {
		i++
		intDigits++
	}
	fracDigits := 0
	if i < len(body) && body[i] == '.' {
		i++
		for i < len(body) && body[i]-'0' <= 9 {
			i++
			fracDigits++
		}
	}
	if intDigits+fracDigits == 0 {
		return 0, false
	}
	if i < len(body) && body[i]|0x20 == 'e' {
		i++
		if i < len(body) && (body[i] == '+' || body[i] == '-') {
			i++
		}
		exp := 0
		for i < len(body) && body[i]-'0' <= 9 {
			i++
			exp++
		}
		if exp == 0 {
			return 0, false
		}
	}
	if i != len(body) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

// pyInt is Python's int(s) in base 10 on a trimmed, non-empty s: a sign,
// then decimal digits of any script, single underscores between them.
func pyInt(s string) (float64, bool) {
	var b strings.Builder
	if s[0] == '+' || s[0] == '-' {
		b.WriteByte(s[0])
		s = s[1:]
	}
	prevDigit := false
	for _, r := range s {
		if r == '_' {
			if !prevDigit {
				return 0, false
			}
			prevDigit = false
			continue
		}
		d := unicodeDigit(r)
		if d < 0 {
			return 0, false
		}
		b.WriteByte(byte('0' + d))
		prevDigit = true
	}
	if !prevDigit {
		return 0, false // empty, or a trailing underscore
	}
	f, err := strconv.ParseFloat(b.String(), 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

// digitValue is the value of an ASCII digit in bases up to 16, or -1.
func digitValue(c byte) int {
	switch {
	case c-'0' <= 9:
		return int(c - '0')
	case c|0x20-'a' < 6:
		return int(c|0x20-'a') + 10
	}
	return -1
}

// unicodeDigit is the value of a decimal digit of any script (Unicode
// category Nd, what Python's int() accepts), or -1. Nd characters come in
// runs of ten, 0 to 9, so the value is the offset within the run.
func unicodeDigit(r rune) int {
	if r < utf8.RuneSelf {
		if r >= '0' && r <= '9' {
			return int(r - '0')
		}
		return -1
	}
	if !unicode.IsDigit(r) {
		return -1
	}
	start := r
	for start > 0 && unicode.IsDigit(start-1) {
		start--
	}
	return int(r-start) % 10
}
