package broker

import (
	"encoding/json"
	"strings"
	"testing"
)

// validJSONCases are tricky inputs with the answer encoding/json.Valid gives.
var validJSONCases = []struct {
	in   string
	want bool
}{
	// Empty input and whitespace.
	{"", false},
	{" ", false},
	{" \t\r\n", false},
	{" \t\r\n1 \t\r\n", true},
	{"\f1", false},
	{"1\f", false},
	{"\v1", false},
	{"\u00a01", false},
	{"1 2", false},
	{"{}{}", false},
	{"{} x", false},
	{"[]]", false},
	{"\x001", false},
	{"1\x00", false},

	// Literals.
	{"true", true},
	{"false", true},
	{"null", true},
	{"tru", false},
	{"fals", false},
	{"nul", false},
	{"True", false},
	{"NULL", false},
	{"truex", false},
	{"true1", false},
	{"nulll", false},
	{"[true,false,null]", true},
	{"[truefalse]", false},
	{"t", false},
	{"f", false},
	{"n", false},

	// Numbers.
	{"0", true},
	{"-0", true},
	{"-0.0", true},
	{"1", true},
	{"-1", true},
	{"123456789012345678901234567890", true},
	{"1e5", true},
	{"1E5", true},
	{"1e+5", true},
	{"1e-5", true},
	{"1.5E-3", true},
	{"0.5", true},
	{"0e0", true},
	{"-0e-0", true},
	{"01", false},
	{"-01", false},
	{"00", false},
	{"1.", false},
	{".5", false},
	{"-.5", false},
	{"1.e5", false},
	{"1e", false},
	{"1e+", false},
	{"1e-", false},
	{"1E+-5", false},
	{"1ee5", false},
	{"1.5.5", false},
	{"-", false},
	{"--1", false},
	{"+1", false},
	{"0x10", false},
	{"Infinity", false},
	{"NaN", false},
	{"1_000", false},
	{"[1,-]", false},
	{"[0]", true},
	{"[01]", false},
	{"[1.]", false},
	{"[-0,1e5,1.5E-3]", true},
	{"{\"a\":1e5}", true},
	{"{\"a\":1.}", false},
	{"1 ", true},
	{"1true", false},

	// Strings.
	{`""`, true},
	{`"`, false},
	{`"abc`, false},
	{`"abc"`, true},
	{`"a"b"`, false},
	{`"\"\\\/\b\f\n\r\t"`, true},
	{`"\u00e9\uD83D\uDE00\uFFFF\uabcd"`, true},
	{`"\ud800"`, true}, // lone surrogate: json.Valid accepts it
	{`"\u"`, false},
	{`"\u12"`, false},
	{`"\u123"`, false},
	{`"\u123g"`, false},
	{`"\uG123"`, false},
	{`"\U0041"`, false},
	{`"\x41"`, false},
	{`"\a"`, false},
	{`"\'"`, false},
	{`"\0"`, false},
	{`"\`, false},
	{`"\"`, false},
	{`"\\"`, true},
	{`"\\\"`, false},
	{"\"\x00\"", false},
	{"\"\x1f\"", false},
	{"\"\t\"", false},
	{"\"\n\"", false},
	{"\"\x7f\"", true},
	{"\"\x20\"", true},
	{"'a'", false},
	{"\"é日本語😀\"", true},
	{"\"\x80\"", true},             // invalid UTF-8: json.Valid accepts it
	{"\"\xff\xfe\xc0\xaf\"", true}, // invalid UTF-8: accepted
	{"\"\xed\xa0\x80\"", true},     // UTF-8 encoded surrogate: accepted
	{"\x80", false},
	{"[\"a\"\xff]", false},
	{"\xef\xbb\xbf{}", false}, // byte order mark

	// SWAR boundaries: the interesting byte at each position of a word.
	{"\"abcdefg\"", true},
	{"\"abcdefgh\"", true},
	{"\"abcdefghijklmno\"", true},
	{"\"abcdefghijklmnop\"", true},
	{"\"abcdefgh\x01\"", false},
	{"\"abcdefg\x1f\"", false},
	{"\"abc\\\"defgh\"", true},
	{"\"abcdefghijklmno\\n\"", true},
	{"\"abcdefghijklmnopqrst", false},
	{"\"abcdefghijklmnopqrs\\", false},

	// Objects and arrays.
	{"{}", true},
	{"[]", true},
	{" { } ", true},
	{" [ ] ", true},
	{"{", false},
	{"[", false},
	{"}", false},
	{"]", false},
	{"{]", false},
	{"[}", false},
	{"[1,]", false},
	{"[,1]", false},
	{"[1,,2]", false},
	{"[1 2]", false},
	{"[1,2]", true},
	{" [ 1 , 2 ] ", true},
	{`{"a":1}`, true},
	{` { "a" : 1 , "b" : [ ] } `, true},
	{`{"a":1,}`, false},
	{`{,"a":1}`, false},
	{`{"a"}`, false},
	{`{"a":}`, false},
	{`{"a" 1}`, false},
	{`{"a"::1}`, false},
	{`{a:1}`, false},
	{`{1:1}`, false},
	{`{null:1}`, false},
	{`{"a":1 "b":2}`, false},
	{`{"a":1,"a":2}`, true}, // duplicate keys are accepted
	{`{"a":[{"b":{"c":[null]}}]}`, true},
	{`{"a":[{"b":{"c":[null]}]}}`, false},
	{`[{"a":1}]`, true},
	{`[{"a":1]}`, false},
	{`{"a":"b"]`, false},
	{`["a":1]`, false},
	{`{"a","b"}`, false},
}

func TestValidJSON(t *testing.T) {
	for _, tc := range validJSONCases {
		if got := json.Valid([]byte(tc.in)); got != tc.want {
			t.Errorf("json.Valid(%q) = %v, table says %v", tc.in, got, tc.want)
		}
		if got := validJSON([]byte(tc.in)); got != tc.want {
			t.Errorf("validJSON(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestValidJSONDepth checks the nesting limit json.Valid enforces.
func TestValidJSONDepth(t *testing.T) {
	for _, depth := range []int{1, 63, 64, 65, 9999, 10000, 10001, 20000} {
		for _, nest := range []struct {
			open, close string
			levels      int // nesting levels per repetition
		}{{"[", "]", 1}, {`{"a":`, "}", 1}, {`[{"a":`, "}]", 2}} {
			reps := depth / nest.levels
			in := []byte(strings.Repeat(nest.open, reps) + "1" + strings.Repeat(nest.close, reps))
			want := json.Valid(in)
			if got := validJSON(in); got != want {
				t.Errorf("validJSON(%s × %d) = %v, json.Valid says %v", nest.open, reps, got, want)
			}
			// Unclosed nesting is invalid at every depth.
			if validJSON(in[:len(in)-1]) {
				t.Errorf("validJSON(%s × %d, last closer cut) = true", nest.open, reps)
			}
		}
	}
	ok := []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))
	if !validJSON(ok) || !json.Valid(ok) {
		t.Errorf("depth 10000: validJSON %v, json.Valid %v, want true", validJSON(ok), json.Valid(ok))
	}
	deep := []byte(strings.Repeat("[", 10001) + strings.Repeat("]", 10001))
	if validJSON(deep) || json.Valid(deep) {
		t.Errorf("depth 10001: validJSON %v, json.Valid %v, want false", validJSON(deep), json.Valid(deep))
	}
}

// TestValidJSONSWAR moves one interesting byte through every position of the
// 8-byte words, including the very last byte of the input.
func TestValidJSONSWAR(t *testing.T) {
	specials := []string{`"`, `\`, `\"`, `\\`, `\n`, `\u00e9`, `\u00g9`, `\x`, "\x00", "\x1f", "\x20", "\x7f", "\x80", "\xff", "é", "\n"}
	for pre := 0; pre < 24; pre++ {
		for post := 0; post < 10; post++ {
			for _, sp := range specials {
				body := strings.Repeat("a", pre) + sp + strings.Repeat("b", post)
				for _, in := range []string{`"` + body + `"`, `"` + body, `["` + body + `"]`, `{"` + body + `":1}`} {
					want := json.Valid([]byte(in))
					if got := validJSON([]byte(in)); got != want {
						t.Errorf("validJSON(%q) = %v, json.Valid says %v", in, got, want)
					}
				}
			}
		}
	}
}

// TestValidJSONNoAlloc guards against the bit stack escaping to the heap.
func TestValidJSONNoAlloc(t *testing.T) {
	in := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello\nworld"}]}}`)
	if n := testing.AllocsPerRun(100, func() { validJSON(in) }); n != 0 {
		t.Errorf("validJSON allocates %v times per call", n)
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, tc := range validJSONCases {
		f.Add([]byte(tc.in))
	}
	seeds := []string{
		`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a\"b\\c\/d\be\ff\ng\rh\ti\u00e9j"}],"isError":false}}`,
		`{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"Method not found","data":null}}`,
		`[-0,0,1,-1,1e5,1E5,1e+5,1e-5,1.5E-3,0.5,-0.0e-0,123456789]`,
		`[01]`, `[1.]`, `[.5]`, `[1e]`, `[-]`, `[+1]`,
		`"\u00e9\uD83D\uDE00"`, `"\u00"`, `"\u00zz"`, `"\uXXXX"`,
		"\"\x00\"", "\"\x01\"", "\"\x1f\"", "\"\x7f\"",
		"\"\x80\x81\xfe\xff\"", "\"\xc3\"", "\"\xe6\x97\"", "\"\xf0\x9f\x98\"",
		"\x80", "\xff", "[\xc3\xa9]",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100),
		strings.Repeat("[", 70) + strings.Repeat("]", 69),
		strings.Repeat("[{}", 65) + strings.Repeat("]", 65),
		" \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ \t\r\n1 \t\r\n, \t\r\n2 \t\r\n] \t\r\n} \t\r\n",
	}
	// SWAR boundaries: an interesting byte at each position of a word and at
	// the very end of the input.
	for pos := 0; pos < 17; pos++ {
		pad := strings.Repeat("x", pos)
		seeds = append(seeds,
			`"`+pad+`"`,
			`"`+pad+`\"`+pad+`"`,
			`"`+pad+`\\`+pad+`"`,
			`"`+pad+"\x1f"+pad+`"`,
			`"`+pad+"\x00"+`"`,
			`"`+pad+"\xe9"+pad+`"`,
			`"`+pad+`\u00e9`+pad+`"`,
			`"`+pad,
			`"`+pad+`\`,
			`"`+pad+`\u00`,
		)
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", data, got, want)
		}
	})
}
