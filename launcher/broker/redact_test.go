package broker

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// Fake secrets, assembled so that no scanner mistakes this file for a leak.
var (
	fakeAWS       = "AKIA" + "IOSFODNN7EXAMPLE"
	fakeGitHub    = "ghp_" + "R4nd0mT0k3nV4lu3F0rT3st1ngOnlyAbCdEf"
	fakeGitHubPAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789abcdefgh"
	fakeGitLab    = "glpat-" + "xYz12AbC34dEf56GhI78"
	fakeSlack     = "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUv"
	fakeJWT       = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	fakeOpenAI    = "sk-" + "proj-Q8bZ3kLmN7pX2vR9tY4wA1cD6eF0gH5j"
	fakeAnthropic = "sk-ant-" + "api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa"
	fakeKey       = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQ\n-----END OPENSSH PRIVATE KEY-----"
)

// toolResult is a tools/call reply whose text content is text.
func toolResult(text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 7,
		"result": map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}, "isError": false},
	})
	return b
}

func TestRedact(t *testing.T) {
	r := NewRedactor(map[string]string{
		"DB_PASSWORD":  `p@ss"w/rd\with<escapes>`,
		"API_TOKEN":    "tok_live_0123456789",
		"SHORT":        "abc",
		"URL_WITH_KEY": "https://api.example.com/v1?key=Zm9vYmFy",
	})
	for _, tc := range []struct {
		name   string
		in     []byte
		counts map[string]int
		gone   []string // must not survive, in any form
	}{
		{"aws", toolResult("key id " + fakeAWS + " region eu-west-1"), map[string]int{"aws-access-key": 1}, []string{fakeAWS}},
		{"github", toolResult("token=" + fakeGitHub), map[string]int{"github-token": 1}, []string{fakeGitHub}},
		{"github pat", toolResult(fakeGitHubPAT + "\n"), map[string]int{"github-token": 1}, []string{fakeGitHubPAT}},
		{"gitlab", toolResult("GITLAB_TOKEN=" + fakeGitLab), map[string]int{"gitlab-token": 1}, []string{fakeGitLab}},
		{"slack", toolResult("SLACK_BOT_TOKEN=" + fakeSlack), map[string]int{"slack-token": 1}, []string{fakeSlack}},
		{"jwt", toolResult("Authorization: Bearer " + fakeJWT), map[string]int{"jwt": 1}, []string{fakeJWT}},
		{"openai", toolResult("OPENAI_API_KEY=" + fakeOpenAI), map[string]int{"openai-key": 1}, []string{fakeOpenAI}},
		{"anthropic", toolResult("ANTHROPIC_API_KEY=" + fakeAnthropic), map[string]int{"anthropic-key": 1}, []string{fakeAnthropic}},
		{"private key", toolResult("id_ed25519:\n" + fakeKey + "\n"), map[string]int{"private-key": 1}, []string{"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"}},
		{"truncated private key", toolResult("-----BEGIN RSA PRIVATE KEY-----\nMIIEow"), map[string]int{"private-key": 1}, []string{"MIIEow"}},
		{"after dash", toolResult("id-" + fakeAWS), map[string]int{"aws-access-key": 1}, []string{fakeAWS}},
		{"after newline", toolResult("x\n" + fakeGitHub + "\t" + fakeOpenAI), map[string]int{"github-token": 1, "openai-key": 1}, []string{fakeGitHub, fakeOpenAI}},
		{"sk after dash", toolResult("a-" + fakeOpenAI), nil, nil},
		{"several", toolResult(fakeAWS + " and " + fakeGitHub + " and " + fakeAWS), map[string]int{"aws-access-key": 2, "github-token": 1}, []string{fakeAWS, fakeGitHub}},
		{"resource read", []byte(`{"jsonrpc":"2.0","id":"r1","result":{"contents":[{"uri":"file:///app/.env","mimeType":"text/plain","text":"AWS_ACCESS_KEY_ID=` + fakeAWS + `\nDB_PASSWORD=p@ss\"w/rd\\with<escapes>\n"}]}}`),
			map[string]int{"aws-access-key": 1, "DB_PASSWORD": 1}, []string{fakeAWS, `p@ss\"w`}},
		{"log notification", []byte(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"debug","logger":"http","data":{"url":"https:\/\/api.example.com\/v1?key=Zm9vYmFy","token":"tok_live_0123456789"}}}`),
			map[string]int{"URL_WITH_KEY": 1, "API_TOKEN": 1}, []string{"Zm9vYmFy", "tok_live"}},
		{"exact escaped by HTML-safe encoder", []byte(`{"result":{"text":"pw is p@ss\"w/rd\\with\u003cescapes\u003e!"}}`), map[string]int{"DB_PASSWORD": 1}, []string{"rd"}},
		{"exact double-encoded", toolResult(`{"password":"p@ss\"w/rd\\with<escapes>"}`), map[string]int{"DB_PASSWORD": 1}, []string{"p@ss"}},
		{"exact in unicode escapes", []byte(`{"text":"\u0074ok_live_0123456789"}`), map[string]int{"API_TOKEN": 1}, []string{"live"}},
		{"key", []byte(`{"tok_live_0123456789":"x"}`), map[string]int{"API_TOKEN": 1}, []string{"tok_live"}},
		{"short exact ignored", toolResult("abc abc"), nil, nil},
		{"prose", toolResult("risk-assessment for task-1; ask-me-anything; disk-usage-report-2024-final-version; see https://example.com/a?x=1&y=2"), nil, nil},
		{"sk prose", toolResult("install sk-learn-compatible-models-and-more now"), nil, nil},
		{"not a jwt", toolResult("eyJhbGciOiJIUzI1NiJ9 alone, and eyJ.eyJ"), nil, nil},
		{"akia too short", toolResult("AKIA123"), nil, nil},
		{"image", []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"image","mimeType":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg+eyJhbGciOi/xyzeyJ0eXAiOiJKV1QifQ=="}]}}`), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, counts := r.Redact(tc.in)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON out: %s", out)
			}
			if !maps.Equal(counts, tc.counts) {
				t.Errorf("counts = %v, want %v\nout: %s", counts, tc.counts, out)
			}
			if tc.counts == nil && !bytes.Equal(out, tc.in) {
				t.Errorf("changed without cause:\n in: %s\nout: %s", tc.in, out)
			}
			var decoded any
			_ = json.Unmarshal(out, &decoded)
			flat, _ := json.Marshal(decoded) // one canonical form to search
			for _, g := range tc.gone {
				if bytes.Contains(out, []byte(g)) || bytes.Contains(flat, []byte(g)) {
					t.Errorf("%q survived: %s", g, out)
				}
			}
			for kind := range tc.counts {
				if !bytes.Contains(out, []byte("[REDACTED:"+kind+"]")) {
					t.Errorf("no [REDACTED:%s] in %s", kind, out)
				}
			}
		})
	}
}

func TestRedactKeepsRest(t *testing.T) {
	r := NewRedactor(nil)
	in := []byte(`{"a": "x ` + fakeAWS + ` y", "b" : [1, "\u00e9\n"], "c":{"k":"` + fakeGitHub + `"}}`)
	out, _ := r.Redact(in)
	want := `{"a": "x [REDACTED:aws-access-key] y", "b" : [1, "\u00e9\n"], "c":{"k":"[REDACTED:github-token]"}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestRedactOddInput(t *testing.T) {
	r := NewRedactor(map[string]string{"X": "secretvalue1"})
	for _, in := range []string{
		`not json ` + fakeAWS,
		`{"unterminated":"` + fakeAWS,
		`{"bad":"\q` + fakeAWS + `"}`,
		``,
		`"`,
	} {
		out, _ := r.Redact([]byte(in))
		if in == `not json `+fakeAWS {
			continue // no strings: nothing to redact, nothing to break
		}
		if string(out) != in {
			t.Errorf("Redact(%q) = %q, want input unchanged", in, out)
		}
	}
}

func TestRedactNoMatchNoAlloc(t *testing.T) {
	r := NewRedactor(map[string]string{"GITHUB_TOKEN": fakeGitHub})
	msg := redactNoMatch1KB()
	allocs := testing.AllocsPerRun(100, func() {
		out, counts := r.Redact(msg)
		if &out[0] != &msg[0] || counts != nil {
			t.Fatal("no-match line was copied")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per no-match Redact, want 0", allocs)
	}
}

func redactNoMatch1KB() []byte {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog; risk-assessment task-1. ", 13)
	return toolResult(text)
}

func BenchmarkRedactNoMatch1KB(b *testing.B) {
	r := NewRedactor(map[string]string{"GITHUB_TOKEN": fakeGitHub, "DB_PASSWORD": "hunter2hunter2"})
	msg := redactNoMatch1KB()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(msg)
	}
}

func BenchmarkRedactNoMatch10MB(b *testing.B) {
	r := NewRedactor(map[string]string{"GITHUB_TOKEN": fakeGitHub, "DB_PASSWORD": "hunter2hunter2"})
	line := strings.Repeat("The quick brown fox jumps over the lazy dog; risk-assessment task-1. ", 10<<20/70)
	msg := toolResult(line)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(msg)
	}
}

func BenchmarkRedactMatch1KB(b *testing.B) {
	r := NewRedactor(map[string]string{"GITHUB_TOKEN": fakeGitHub})
	msg := toolResult(strings.Repeat("x", 900) + " " + fakeGitHub)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(msg)
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		string(toolResult(fakeAWS + " " + fakeKey)),
		`{"a":"\u0041KIAIOSFODNN7EXAMPLE","b":"p@ss\"w/rd"}`,
		`{"jwt":"` + fakeJWT + `","k":["` + fakeSlack + `",{"x":"` + fakeOpenAI + `"}]}`,
		`["-----BEGIN PRIVATE KEY-----\n\ud800"]`,
		"{\"x\":\"\xff" + fakeGitHub + "\"}",
		`"sk-` + `ant-aaaaaaaaaaaaaaaaaaaaaaaa"`,
	} {
		f.Add([]byte(s))
	}
	r := NewRedactor(map[string]string{"PW": `p@ss"w/rd`, "TOKEN": "tok_live_0123456789"})
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, counts := r.Redact(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("input modified")
		}
		if json.Valid(in) && !json.Valid(out) {
			t.Fatalf("valid in, invalid out:\n in: %q\nout: %q", in, out)
		}
		if counts == nil && !bytes.Equal(in, out) {
			t.Fatalf("changed without counts:\n in: %q\nout: %q", in, out)
		}
	})
}

// The fast path scans long lines in blocks; a trigger that straddles a block
// edge must still be seen.
func TestRedactAcrossBlocks(t *testing.T) {
	r := NewRedactor(map[string]string{"TOKEN": "tok_live_0123456789"})
	prefix := len(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"text":"`)
	for _, secret := range []string{fakeAWS, fakeGitHub, fakeOpenAI, "tok_live_0123456789", fakeJWT} {
		for shift := -20; shift <= 2; shift++ {
			pad := strings.Repeat("a ", (32<<10+shift-prefix)/2)
			in := toolResult(pad + secret + " tail")
			out, counts := r.Redact(in)
			if len(counts) != 1 || bytes.Contains(out, []byte(secret)) || !json.Valid(out) {
				t.Fatalf("%s at shift %d: counts %v", secret, shift, counts)
			}
		}
	}
}
