package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

var record = flag.Bool("record", false, "record testdata/replay/everything.jsonl from the real server-everything (needs node and `make fixtures`)")

const replayFile = "testdata/replay/everything.jsonl"

// recorded is one line of a recorded session.
type recorded struct {
	Dir  string          `json:"dir"` // "c2s" or "s2c"
	Line json.RawMessage `json:"line"`
}

// TestReplayEverything replays a recorded session of the real
// server-everything (2026.8.31) with the official Go SDK client through a
// broker with every policy on: audit with bodies, tool filter, pins (first
// use), poisoning scan, redaction. No policy fires on this session, so every
// line must come out byte for byte as it went in, and every message must be
// audited.
func TestReplayEverything(t *testing.T) {
	if *record {
		recordEverything(t)
	}
	data, err := os.ReadFile(replayFile)
	if err != nil {
		t.Fatalf("%v (record it with go test -run TestReplayEverything -record)", err)
	}
	var lines []recorded
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r recorded
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, r)
	}
	if len(lines) < 40 {
		t.Fatalf("%d recorded lines; the recording is too short to mean much", len(lines))
	}

	store := &memPins{}
	var diag lockedBuffer
	x := newSession(t, Options{
		Diag: &diag, AuditBodies: true,
		ToolDeny: []string{"not-a-tool", "admin-*"},
		Pins:     store, Pin: ModeBlock, Identity: everything,
		Scan: ModeBlock, OtherTools: []string{"read_file", "write_file"},
		Redactor: NewRedactor(map[string]string{"GITHUB_TOKEN": "ghp_notinthissession0000000000000000000"}),
	})
	var wantServer, wantClient bytes.Buffer
	for _, r := range lines {
		if r.Dir == "c2s" {
			x.client(string(r.Line))
			wantServer.Write(append(r.Line, '\n'))
		} else {
			x.server(string(r.Line))
			wantClient.Write(append(r.Line, '\n'))
		}
	}
	if !bytes.Equal(x.toServer.Bytes(), wantServer.Bytes()) {
		t.Errorf("the server received something else than the client sent")
	}
	if got := x.toClient.bytes(); !bytes.Equal(got, wantClient.Bytes()) {
		t.Errorf("the client received something else than the server sent:\n%s", firstDiff(got, wantClient.Bytes()))
	}
	if diag.String() != "" {
		t.Errorf("policies fired on a clean session:\n%s", diag.String())
	}
	audit := x.auditLines()
	if len(audit) != len(lines) {
		t.Errorf("%d audit lines for %d messages", len(audit), len(lines))
	}
	for i, a := range audit {
		if a["body"] == nil || a["kind"] == "policy" {
			t.Errorf("audit line %d: %v", i, a)
		}
	}
	if n := store.set(t).PinnedCount(); n < 10 {
		t.Errorf("%d definitions pinned", n)
	}
}

func firstDiff(a, b []byte) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	from := max(0, n-80)
	return "got  …" + string(a[from:min(len(a), n+80)]) + "\nwant …" + string(b[from:min(len(b), n+80)])
}

// recordEverything drives the real server-everything with the Go SDK
// client and writes both directions, in order, to replayFile. The
// session avoids tools whose output depends on the machine (get-env).
func recordEverything(t *testing.T) {
	node, script := testutil.Server(t, "server-everything")
	ctx := testutil.Context(t, time.Minute)
	cmd := exec.CommandContext(ctx, node, script, "stdio")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()

	var mu sync.Mutex
	var out bytes.Buffer
	rec := func(dir string, line []byte) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(recorded{Dir: dir, Line: json.RawMessage(line)})
		// json.Marshal compacts RawMessage; keep the bytes as sent.
		b = bytes.Replace(b, mustCompact(line), line, 1)
		out.Write(append(b, '\n'))
	}
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			rec("s2c", sc.Bytes())
			pw.Write(append(sc.Bytes(), '\n'))
		}
		pw.Close()
	}()
	w := writerFunc(func(p []byte) (int, error) {
		for _, l := range bytes.SplitAfter(p, []byte("\n")) {
			rec("c2s", l)
		}
		return stdin.Write(p)
	})
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-replay", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {},
	})
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: pr, Writer: nopWriteCloser{w}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cs.ListTools(ctx, nil))
	must(cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello \"replay\" \u00e9\u00e9 \U0001F600 <b>"}}))
	must(cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 2, "b": 40}}))
	must(cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-tiny-image", Arguments: map[string]any{}}))
	must(cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-structured-content", Arguments: map[string]any{"location": "New York"}}))
	must(cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-annotated-message", Arguments: map[string]any{"messageType": "error", "includeImage": true}}))
	must(cs.CallTool(ctx, &mcp.CallToolParams{Meta: mcp.Meta{"progressToken": "p1"}, Name: "trigger-long-running-operation", Arguments: map[string]any{"duration": 1, "steps": 3}}))
	must(cs.CallTool(ctx, &mcp.CallToolParams{Name: "no-such-tool", Arguments: map[string]any{}}))
	must(cs.ListPrompts(ctx, nil))
	must(cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "simple-prompt"}))
	must(cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "args-prompt", Arguments: map[string]string{"city": "Paris", "state": "TX"}}))
	res, err := cs.ListResources(ctx, nil)
	must(res, err)
	if res.NextCursor != "" {
		must(cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: res.NextCursor}))
	}
	if len(res.Resources) > 0 {
		must(cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: res.Resources[0].URI}))
	}
	must(cs.ListResourceTemplates(ctx, nil))
	must(nil, cs.Ping(ctx, nil))
	cs.Close()
	stdin.Close()
	mu.Lock()
	defer mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(replayFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(replayFile, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d lines", strings.Count(out.String(), "\n"))
}

func mustCompact(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
