package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// maxQueuedReplies bounds the broker's answers held while ServerToClient
// has not started yet.
const maxQueuedReplies = 1024

// clientWriter is the client's side of the session, shared by both
// directions: ServerToClient forwards the server's messages through it, and
// ClientToServer answers blocked requests through it. A mutex keeps each
// message one uninterrupted Write.
type clientWriter struct {
	mu     sync.Mutex
	w      io.Writer // set by ServerToClient
	queued [][]byte  // answers made before w was set
	log    *slog.Logger
}

// attach makes w the client's writer and writes the answers queued so far.
func (c *clientWriter) attach(w io.Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w = w
	for i, p := range c.queued {
		if err := write(w, p); err != nil {
			c.queued = c.queued[i+1:]
			return err
		}
	}
	c.queued = nil
	return nil
}

// write writes one message from the server.
func (c *clientWriter) write(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return write(c.w, p)
}

// reply writes one of the broker's own answers, or queues a copy if
// ServerToClient has not started.
func (c *clientWriter) reply(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil {
		return write(c.w, p)
	}
	if len(c.queued) >= maxQueuedReplies {
		c.log.Warn("dropping an answer to the client: the server-to-client copy has not started")
		return nil
	}
	c.queued = append(c.queued, bytes.Clone(p))
	return nil
}

// policy applies the policies to one client line and reports whether to
// forward it to the server. An error is a failed write to the client.
func (c *clientStream) policy(line []byte) (forward bool, err error) {
	b := c.b
	msg := trimSpace(line)
	v, ok := parseView(msg)
	if !ok {
		if v.kind == kindBatch {
			if b.filter != nil {
				return c.batch(msg)
			}
			b.log.LogAttrs(context.Background(), slog.LevelDebug, "passing a client batch through unread", slog.Int("bytes", len(msg)))
		}
		return true, nil
	}
	e := auditEntry{dir: "c2s", kind: v.kind, id: v.id}
	switch v.kind {
	case kindRequest, kindNotification:
		e.method = methodName(v.method)
		var rule, why string
		var denied bool
		if e.method == "tools/call" {
			e.tool, e.args, e.hasArgs, rule, denied = b.filter.callParams(v.params)
		}
		if b.filter != nil && !denied && v.dup {
			// Which "method" or "params" counts depends on the server's
			// parser: with a filter, do not guess.
			rule, denied = "duplicate", true
		}
		if b.guard != nil && !denied {
			if k := kindForUse(e.method); k != nil {
				if why = b.guard.refusedParams(k, v.params); why != "" {
					rule, denied = "tools.pin", true
					if e.tool == "" {
						e.tool = useName(k, v.params)
					}
				}
			}
		}
		if b.audit != nil && b.auditBodies {
			e.body = c.bodyOf(msg)
		}
		if denied {
			e.blocked = true
			b.log.LogAttrs(context.Background(), slog.LevelInfo, "blocked a client message",
				slog.String("method", e.method), slog.String("tool", e.tool), slog.String("rule", rule))
			if b.audit != nil {
				c.audit = b.audit.write(c.audit, &e)
			}
			if v.kind == kindNotification {
				// A notification gets no answer; the server must not see it either.
				return false, nil
			}
			id := v.id
			if !json.Valid(id) {
				id = []byte("null") // the client's stdout only ever gets valid JSON
			}
			if why == "" {
				why = blockedMessage(e.tool, rule)
			}
			c.reply = appendErrorReply(c.reply[:0], id, CodeToolBlocked, why)
			if err := b.client.reply(c.reply); err != nil {
				return false, errWriteClient(err)
			}
			if b.audit != nil {
				r := auditEntry{dir: "s2c", kind: kindError, id: v.id, method: e.method, tool: e.tool, errCode: codeBlocked, blocked: true, hasDur: true}
				c.audit = b.audit.write(c.audit, &r)
			}
			return false, nil
		}
		if v.kind == kindRequest {
			p := pending{method: e.method, tool: e.tool, start: time.Now()}
			if kindForList(e.method) != nil && len(v.params) > 0 && hasMember(v.params, "cursor") {
				p.paged = true
			}
			c.key = b.remember(b.clientReqs, "client", c.key, v.id, p)
		}
	case kindResponse, kindError:
		c.key, _ = settle(b.serverReqs, c.key, &v, &e)
		if b.audit != nil && b.auditBodies {
			e.body = c.bodyOf(msg)
		}
	}
	if b.audit != nil {
		c.audit = b.audit.write(c.audit, &e)
	}
	return true, nil
}

// bodyOf returns a client message for the audit log, with secrets redacted;
// nil if it is not valid JSON.
func (c *clientStream) bodyOf(msg []byte) []byte {
	if !json.Valid(msg) {
		return nil
	}
	if c.b.redact != nil {
		msg, _ = c.b.redact.Redact(msg)
	}
	return msg
}

var codeBlocked = []byte("-32602")

// batch applies the tool filter to a client batch (JSON-RPC 2.0 batches,
// which MCP 2025-03-26 allowed). A batch is forwarded untouched unless one of
// its messages would be blocked on its own: then none of it is forwarded,
// and each request in it is answered with the error, in one batch response.
func (c *clientStream) batch(msg []byte) (forward bool, err error) {
	b := c.b
	var tool, rule string
	blocked := false
	eachElement(msg, func(s, e int) {
		v, ok := parseView(msg[s:e])
		if blocked || !ok || (v.kind != kindRequest && v.kind != kindNotification) {
			return
		}
		if methodName(v.method) == "tools/call" {
			tool, _, _, rule, blocked = b.filter.callParams(v.params)
		}
		if !blocked && v.dup {
			rule, blocked = "duplicate", true
		}
	})
	if !blocked {
		b.log.LogAttrs(context.Background(), slog.LevelDebug, "passing a client batch through", slog.Int("bytes", len(msg)))
		return true, nil
	}
	b.log.LogAttrs(context.Background(), slog.LevelInfo, "blocked a client batch", slog.String("tool", tool), slog.String("rule", rule))
	r := append(c.reply[:0], '[')
	n := 0
	eachElement(msg, func(s, e int) {
		v, ok := parseView(msg[s:e])
		if !ok || v.kind != kindRequest || !json.Valid(v.id) {
			return
		}
		if n > 0 {
			r = append(r, ',')
		}
		n++
		r = appendErrorReply(r, v.id, CodeToolBlocked, blockedMessage(tool, rule))
		r = r[:len(r)-1] // each reply's "\n"
		if b.audit != nil {
			a := auditEntry{dir: "c2s", kind: kindRequest, id: v.id, method: methodName(v.method), blocked: true}
			c.audit = b.audit.write(c.audit, &a)
		}
	})
	c.reply = append(r, ']', '\n')
	if n == 0 {
		return false, nil
	}
	if err := b.client.reply(c.reply); err != nil {
		return false, errWriteClient(err)
	}
	return false, nil
}

// policy applies the policies to one server message (msg, already known to
// be a JSON object) and returns what to write to the client: out, or a
// rewritten message.
//
// v is msg's view, ok false if msg is not a JSON-RPC shape it knows.
func (s *serverStream) policy(msg, out []byte, v view, ok bool) []byte {
	b := s.b
	if !ok {
		if v.kind == kindBatch {
			b.log.LogAttrs(context.Background(), slog.LevelDebug, "passing a server batch through unread", slog.Int("bytes", len(msg)))
		}
		return s.redacted(msg, out, nil)
	}
	e := auditEntry{dir: "s2c", kind: v.kind, id: v.id}
	var events []policyEvent
	switch v.kind {
	case kindRequest, kindNotification:
		e.method = methodName(v.method)
		if v.kind == kindRequest {
			s.key = b.remember(b.serverReqs, "server", s.key, v.id, pending{method: e.method, start: time.Now()})
		}
	case kindResponse, kindError:
		var p pending
		s.key, p = settle(b.clientReqs, s.key, &v, &e)
		if v.kind == kindResponse {
			out, events = s.result(msg, out, &v, e.method, p.paged)
		}
	}
	out = s.redacted(msg, out, &e)
	if b.audit != nil {
		if b.auditBodies {
			e.body = trimSpace(out)
		}
		s.audit = b.audit.write(s.audit, &e)
		for _, ev := range events {
			pe := auditEntry{dir: "s2c", kind: kindPolicy, method: e.method, tool: ev.item, policy: ev.policy, finding: ev.finding, severity: ev.severity, detail: ev.detail}
			s.audit = b.audit.write(s.audit, &pe)
		}
	}
	return out
}

// result applies the list and instructions policies to a response to a
// request for method, and returns what to forward.
func (s *serverStream) result(msg, out []byte, v *view, method string, paged bool) ([]byte, []policyEvent) {
	b := s.b
	if method == "tools/list" && b.filter != nil {
		var removed []string
		s.out, removed = b.filter.filterToolsList(s.out[:0], msg, v)
		if removed != nil {
			b.log.LogAttrs(context.Background(), slog.LevelInfo, "removed blocked tools from tools/list", slog.Any("tools", removed))
			msg = s.out
			s.out = append(s.out, '\n')
			out = s.out
			if b.guard != nil {
				// The guard reads the filtered list; view it anew.
				nv, ok := parseView(msg)
				if !ok {
					return out, nil
				}
				*v = nv
			}
		}
	}
	if b.guard == nil || len(v.result) == 0 || v.result[0] != '{' {
		return out, nil
	}
	if k := kindForList(method); k != nil {
		lastPage := !hasMember(v.result, "nextCursor")
		rewritten, events, changed := b.guard.rewriteList(s.spare[:0], msg, v, k, !paged && lastPage, lastPage)
		if changed {
			s.spare = append(rewritten, '\n')
			out = s.spare
		}
		return out, events
	}
	if method == "initialize" || method == "server/discover" {
		raw := memberValue(v.result, "instructions")
		text, ok := unquote(raw)
		if !ok {
			return out, nil
		}
		strip, events := b.guard.checkInstructions(text)
		if strip {
			if r, ok := removeMember(s.spare[:0], msg, v.resultAt, "instructions"); ok {
				s.spare = append(r, '\n')
				out = s.spare
			}
		}
		return out, events
	}
	return out, nil
}

// redacted applies secret redaction to the message about to be forwarded.
func (s *serverStream) redacted(msg, out []byte, e *auditEntry) []byte {
	r := s.b.redact
	if r == nil {
		return out
	}
	body := out
	if len(body) > 0 && body[len(body)-1] == '\n' {
		body = body[:len(body)-1]
	}
	red, counts := r.Redact(body)
	if counts == nil {
		return out
	}
	if e != nil {
		e.redacted = counts
	}
	s.b.noteRedactions(counts, e)
	s.red = append(append(s.red[:0], red...), '\n')
	return s.red
}

// methodName decodes the raw method string of a view.
func methodName(raw []byte) string {
	if len(raw) < 2 {
		return ""
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return intern(inner)
	}
	s, _ := unquote(raw)
	return s
}

func errWriteClient(err error) error {
	return fmt.Errorf("broker: write to client: %w", err)
}

// remember tracks a request sent by who, so that its response can be
// matched; key is a reusable buffer, returned for the next call.
func (b *Broker) remember(reqs *tracker, who string, key, id []byte, p pending) []byte {
	key, ok := idKey(key[:0], id)
	if !ok {
		return key
	}
	if m, evicted := reqs.add(key, p); evicted {
		b.log.LogAttrs(context.Background(), slog.LevelWarn, "too many "+who+" requests in flight: forgetting the oldest", slog.String("method", m))
	}
	return key
}

// settle fills e from the request a response or error answers (taken from
// reqs), and the error's code; key is a reusable buffer, returned with the
// request.
func settle(reqs *tracker, key []byte, v *view, e *auditEntry) ([]byte, pending) {
	var p pending
	key, ok := idKey(key[:0], v.id)
	if ok {
		if p, ok = reqs.take(key); ok {
			e.method, e.tool, e.duration, e.hasDur = p.method, p.tool, time.Since(p.start), true
		}
	}
	if v.kind == kindError {
		e.errCode = memberValue(v.err, "code")
	}
	return key, p
}
