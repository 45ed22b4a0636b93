package broker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMain lets the test binary run as a fake MCP server (os/exec's
// helper-process pattern).
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") == "fake-mcp-server" {
		os.Exit(fakeServer(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

const (
	fakeBanner    = "fake server starting"
	fakeToolsNote = "fake server: listing tools"
)

// fakeServer is a tiny MCP server on stdio that misbehaves the way real ones
// do: a banner on stdout before the first message, a log line on stdout,
// and a response padded with whitespace and ended by "\r\n".
func fakeServer(in io.Reader, out io.Writer) int {
	fmt.Fprintln(out, fakeBanner)
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<20)
	reply := func(id json.RawMessage, key string, value any, eol string) {
		b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, key: value})
		if err != nil {
			panic(err)
		}
		if _, err := out.Write(append(b, eol...)); err != nil {
			os.Exit(3)
		}
	}
	for sc.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"params"`
		}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			reply(json.RawMessage("null"), "error", map[string]any{"code": -32700, "message": "parse error"}, "\n")
			continue
		}
		if req.ID == nil {
			continue // a notification
		}
		switch req.Method {
		case "initialize":
			reply(req.ID, "result", map[string]any{
				"protocolVersion": req.Params.ProtocolVersion,
				"capabilities":    map[string]any{"tools": map[string]any{}},
				"serverInfo":      map[string]any{"name": "fake", "version": "0.0.1"},
			}, "\n")
		case "tools/list":
			fmt.Fprintln(out, fakeToolsNote)
			reply(req.ID, "result", map[string]any{"tools": []any{map[string]any{
				"name":        "echo",
				"description": "Echoes its input.",
				"inputSchema": map[string]any{
					"type":       "object",
					"properties": map[string]any{"text": map[string]any{"type": "string"}},
				},
			}}}, " \t\r\n")
		default:
			reply(req.ID, "error", map[string]any{"code": -32601, "message": "method not found: " + req.Method}, "\n")
		}
	}
	if sc.Err() != nil {
		return 2
	}
	return 0
}

// TestSDKClientThroughBroker drives the fake server with the official MCP Go
// SDK client, through both directions of a broker running concurrently.
func TestSDKClientThroughBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=fake-mcp-server")
	cmd.Stderr = os.Stderr
	serverIn, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	serverOut, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	clientIn, toClient := io.Pipe()    // broker → SDK client
	fromClient, clientOut := io.Pipe() // SDK client → broker
	var diag lockedBuffer
	b := New(Options{Diag: &diag})
	c2s := make(chan error, 1)
	go func() {
		err := b.ClientToServer(serverIn, fromClient)
		serverIn.Close() // the server exits at EOF
		c2s <- err
	}()
	s2c := make(chan error, 1)
	go func() {
		err := b.ServerToClient(toClient, serverOut)
		toClient.Close()
		s2c <- err
	}()

	client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-test", Version: "v0.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.IOTransport{Reader: clientIn, Writer: clientOut}, nil)
	if err != nil {
		t.Fatalf("initialize through the broker: %v\ndiagnostics:\n%s", err, diag.String())
	}
	if got := session.InitializeResult().ServerInfo.Name; got != "fake" {
		t.Errorf("server name = %q, want fake", got)
	}
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list through the broker: %v\ndiagnostics:\n%s", err, diag.String())
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "echo" {
		t.Errorf("tools = %+v, want the fake echo tool", tools.Tools)
	}
	if err := session.Close(); err != nil {
		t.Errorf("close session: %v", err)
	}

	if err := <-c2s; err != nil {
		t.Errorf("ClientToServer: %v", err)
	}
	if err := <-s2c; err != nil {
		t.Errorf("ServerToClient: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("fake server: %v", err)
	}
	want := diagPrefix + fakeBanner + "\n" + diagPrefix + fakeToolsNote + "\n"
	if got := diag.String(); got != want {
		t.Errorf("diagnostics = %q, want the banner and the log line diverted:\n%q", got, want)
	}
	if strings.Contains(diag.String(), `"jsonrpc"`) {
		t.Error("a message was diverted")
	}
}
