package trial

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// client is the MCP client a trial drives the server with: newline-
// delimited JSON-RPC over the session's stdio, one request at a time. It
// answers the server's own requests minimally (no roots, no sampling, no
// elicitation) so that a server cannot stall the trial on them.
type client struct {
	w      io.Writer
	mu     sync.Mutex
	nextID int
	resp   map[string]chan rpcMessage
	done   chan struct{}
	err    error
}

type rpcMessage struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("%s (code %d)", e.Message, e.Code) }

func newClient(w io.Writer, r io.Reader) *client {
	c := &client{w: w, resp: map[string]chan rpcMessage{}, done: make(chan struct{})}
	go c.read(r)
	return c
}

func (c *client) read(r io.Reader) {
	defer close(c.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var m rpcMessage
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		switch {
		case m.Method != "" && m.ID != nil:
			c.answer(m)
		case m.Method == "" && m.ID != nil:
			c.mu.Lock()
			ch := c.resp[string(m.ID)]
			delete(c.resp, string(m.ID))
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
	c.err = sc.Err()
}

// answer replies to a request from the server.
func (c *client) answer(m rpcMessage) {
	var reply any
	switch m.Method {
	case "roots/list":
		reply = map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": map[string]any{"roots": []any{}}}
	case "ping":
		reply = map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": map[string]any{}}
	case "elicitation/create":
		reply = map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": map[string]any{"action": "decline"}}
	default:
		reply = map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{"code": -32601, "message": "the mcpbox trial client does not support " + m.Method}}
	}
	c.send(reply)
}

func (c *client) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = c.w.Write(append(b, '\n'))
	return err
}

// call sends a request and waits for its answer.
func (c *client) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	c.mu.Lock()
	c.nextID++
	id := strconv.Itoa(c.nextID)
	ch := make(chan rpcMessage, 1)
	c.resp[id] = ch
	c.mu.Unlock()
	req := map[string]any{"jsonrpc": "2.0", "id": c.nextID, "method": method}
	if params != nil {
		req["params"] = params
	}
	if err := c.send(req); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, m.Error
		}
		return m.Result, nil
	case <-c.done:
		return nil, fmt.Errorf("%s: the server closed its output", method)
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (c *client) notify(method string) error {
	return c.send(map[string]any{"jsonrpc": "2.0", "method": method})
}
