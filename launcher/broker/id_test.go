package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// idSpellings are ids as a server may write them (raw JSON): every
// spelling of 2 and 0 the SDKs accept, near-misses, and ids the SDKs
// confuse through float64 rounding or int64 conversion.
var idSpellings = []string{
	`2`, `2.0`, `2e0`, `20e-1`, `0.2e1`, `2.5`, `2.9`, `-2.5`, `"2"`, `" 2"`, `"2 "`, `"\t2\n"`, `"\u00a02"`, `"\ufeff2"`,
	`"\u20282"`, `"\u001c2"`, `"02"`, `"+2"`, `"2.0"`, `"2."`, `"2e0"`, `"0x2"`, `"0X2"`, `"0o2"`, `"0b10"`, `"\u0032"`,
	`"٢"`, `"２"`, `"0_2"`, `"2_0"`, `"_2"`, `"2_"`, `"-0x2"`, `"0x"`, `".5"`, `"2.5"`,
	`0`, `-0`, `0.0`, `1e-400`, `-1e-400`, `0.9`, `""`, `" "`, `"0"`, `"-0"`, `"00"`, `"0x0"`, `"0.0"`, `"+0"`,
	`1`, `"1"`, `-1`, `"-1"`, `"-0001"`,
	`9007199254740992`, `9007199254740993`, `"9007199254740993"`, `9007199254740992.5`,
	`9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`, `1e19`, `1e300`, `1e400`, `-1e400`,
	`"Infinity"`, `"-Infinity"`, `"NaN"`, `"inf"`, `"1e400"`, `"0x1F"`, `"31"`, `31`,
	`"abc"`, `"ab"`, `"a\u0062"`, `"a\/b"`, `"a/b"`, `"true"`, `"null"`, `"x\ud800"`, `"x\ufffd"`, `"x\ufffd\ufffd"`,
	`true`, `false`, `null`, `{}`, `[]`, `[2]`,
}

// sdkIDs maps each id spelling to what one SDK compares it by; "" means
// the SDK rejects that id.
type sdkIDs map[string]string

// goSDKID is what the Go SDK (1.8, internal/jsonrpc2.MakeID) makes of an
// id: a number is decoded as float64 and converted with int64(), a string
// is a string of its own kind.
func goSDKID(raw string) string {
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return ""
	}
	switch v := v.(type) {
	case float64:
		return "i:" + strconv.FormatInt(int64(v), 10)
	case string:
		return "s:" + v
	}
	return ""
}

// runIDScript runs a node or python3 program that reads a JSON array of
// raw ids on stdin and prints one line per id.
func runIDScript(t *testing.T, name string, args ...string) sdkIDs {
	t.Helper()
	bin := testutil.RequiresCommand(t, name)
	in, err := json.Marshal(idSpellings)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(idSpellings) {
		t.Fatalf("%s printed %d lines for %d ids:\n%s", name, len(lines), len(idSpellings), out)
	}
	m := sdkIDs{}
	for i, raw := range idSpellings {
		m[raw] = lines[i]
	}
	return m
}

// TestIDKeyJoinsWhatSDKsJoin checks idKey against the SDKs' own rules, run
// by the real runtimes: any two ids one SDK takes for the same id have the
// same key. The TypeScript SDK looks a response up with Number(id) (after
// its schema admits a string or an integer); the Python SDK turns a string
// id into int(s) when it parses; the Go SDK converts numbers with int64().
func TestIDKeyJoinsWhatSDKsJoin(t *testing.T) {
	js := runIDScript(t, "node", "-e", `
const ids = JSON.parse(require("fs").readFileSync(0, "utf8"));
for (const raw of ids) {
  const v = JSON.parse(raw);
  const ok = typeof v === "string" || (typeof v === "number" && Number.isInteger(v));
  const n = ok ? Number(v) : NaN;
  console.log(Number.isNaN(n) ? "" : "n:" + String(n === 0 ? 0 : n));
}`)
	py := runIDScript(t, "python3", "-c", `
import json, sys
for raw in json.load(sys.stdin):
    v = json.loads(raw)
    if isinstance(v, bool) or v is None or isinstance(v, (float, list, dict)):
        print("")
    elif isinstance(v, int):
        print("i:%d" % v)
    else:
        try:
            print("i:%d" % int(v))
        except ValueError:
            print("s:" + json.dumps(v))
`)
	gosdk := sdkIDs{}
	for _, raw := range idSpellings {
		gosdk[raw] = goSDKID(raw)
	}
	keys := map[string]string{}
	for _, raw := range idSpellings {
		if k, ok := idKey(nil, []byte(raw)); ok {
			keys[raw] = string(k)
		}
	}
	joined := 0
	for name, sdk := range map[string]sdkIDs{"TypeScript": js, "Python": py, "Go": gosdk} {
		for _, a := range idSpellings {
			for _, b := range idSpellings {
				if sdk[a] == "" || sdk[a] != sdk[b] {
					continue
				}
				joined++
				ka, oka := keys[a]
				kb, okb := keys[b]
				if !oka || !okb || ka != kb {
					t.Errorf("the %s SDK takes %s and %s for one id (%s), idKey does not: %q %v, %q %v", name, a, b, sdk[a], ka, oka, kb, okb)
				}
			}
		}
	}
	// The check above must have something to check, and idKey must still
	// tell ids apart.
	if joined < 3*len(idSpellings) {
		t.Fatalf("only %d joined pairs: the SDK scripts did not run as expected", joined)
	}
	for _, pair := range [][2]string{{`1`, `2`}, {`"1"`, `2`}, {`"ab"`, `"abc"`}, {`"abc"`, `"ab"`}, {`9007199254740992`, `9007199254740994`}, {`"x"`, `"y"`}} {
		if keys[pair[0]] == keys[pair[1]] && keys[pair[0]] != "" {
			t.Errorf("idKey joins %s and %s", pair[0], pair[1])
		}
	}
	for _, raw := range []string{`true`, `false`, `null`, `{}`, `[]`, `[2]`, ``} {
		if _, ok := idKey(nil, []byte(raw)); ok {
			t.Errorf("idKey(%s) is trackable; no SDK matches it to a request", raw)
		}
	}
}

// TestIDKeyExamples pins the equivalences the issue names, without the
// runtimes: each group is one key, and the groups differ.
func TestIDKeyExamples(t *testing.T) {
	groups := [][]string{
		{`2`, `"2"`, `2.0`, `2e0`, `20e-1`, `"2.0"`, `" 2"`, `"0x2"`, `"02"`, `"\u0032"`, `"٢"`, `"+2"`, `2.5`, `"0b10"`},
		{`0`, `-0`, `"-0"`, `""`, `" "`, `1e-400`, `"0x0"`},
		{`9007199254740992`, `9007199254740993`, `"9007199254740993"`},
		{`9223372036854775808`, `1e400`, `-1e400`, `-9223372036854775808`, `1e19`},
		{`"ab"`, `"a\u0062"`},
		{`"x\ud800"`, `"x\ufffd"`, `"x\ufffd\ufffd"`, "\"x\xff\xfe\""},
	}
	var prev []string
	for _, g := range groups {
		want, ok := idKey(nil, []byte(g[0]))
		if !ok {
			t.Fatalf("idKey(%s) not trackable", g[0])
		}
		for _, raw := range g[1:] {
			if got, ok := idKey(nil, []byte(raw)); !ok || !bytes.Equal(got, want) {
				t.Errorf("idKey(%s) = %q, want the key of %s, %q", raw, got, g[0], want)
			}
		}
		for _, p := range prev {
			if p == string(want) {
				t.Errorf("group of %s shares its key with another group", g[0])
			}
		}
		prev = append(prev, string(want))
	}
}

func BenchmarkIDKey(b *testing.B) {
	for _, id := range []string{`42`, `"c-3"`, `"8f0e4c2a-1b7d-4e5f-9a3c-2d6b8e1f0a4c"`, `"42"`} {
		b.Run(fmt.Sprintf("%s", id), func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for range b.N {
				buf, _ = idKey(buf[:0], []byte(id))
			}
		})
	}
}
