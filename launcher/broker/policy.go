package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mcpbox/mcpbox/launcher/audit"
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

// Why the broker refuses a client line it cannot read unambiguously, or
// withholds a server message: each says what the peer did and why it
// matters.
const (
	whyCR          = "it holds a carriage return, where Python servers (universal newlines) and Node's readline end a line, so the server would read other messages than mcpbox checked"
	whyUTF8        = "it is not valid UTF-8, which Go, JavaScript and Python decode differently"
	whyJSON        = "it is not one valid JSON value"
	whyShape       = "it is not a JSON-RPC message mcpbox can classify (a request has a string method and neither result nor error)"
	whyDup         = "a member (id, method, params, result or error) appears twice or in another letter case, and parsers differ on which one counts"
	whyDupParam    = "its params member %q appears twice or in another letter case, and servers differ on which one counts"
	whyID          = "its id is neither a string nor a number, so its answer could not be matched to it"
	whyCollide     = "its id equals one of a request still waiting for its answer (ids are compared by value, as clients compare them: 2, \"2\" and 2.0 are one id); use a fresh id"
	whyTooLong     = "it is longer than the message limit (--max-message), so mcpbox cannot check it"
	whyInBatch     = "another message of its batch was refused"
	whyUnsolicited = "it carries a %s list but answers no %s request in flight"
	whyOtherList   = "it answers %s but carries another list"
)

// codeInvalidRequest is JSON-RPC's code for a message that is not a valid
// request: the broker's answer to one it cannot read unambiguously.
const codeInvalidRequest = -32600

// codeWithheld answers a request whose response the broker withheld.
const codeWithheld = -32603

// readClient reads a client line under an enforcing policy: a line that a
// server could read differently from the broker gets a reason to refuse
// it. line is the raw line, msg the same trimmed. For a batch, v.kind is
// kindBatch and ok false.
//
// Servers split lines on "\n" (the TypeScript and Go SDKs; Go's decoder
// also reads two values on one line), and on a lone "\r" too: the Python
// SDK reads stdin through a TextIOWrapper with universal newlines, Node's
// readline ends a line at "\r". U+2028, U+2029 and U+0085, which
// str.splitlines() would also split on, are not refused: none of those
// transports splits there, and as they can only occur raw inside strings,
// a piece cut at them has the line's structure as its string contents and
// its strings as structure, so it cannot spell a request's members.
func readClient(line, msg []byte) (v view, ok bool, why string) {
	if bytes.IndexByte(line[:contentLen(line)], '\r') >= 0 {
		return view{}, false, whyCR
	}
	if !utf8.Valid(msg) {
		return view{}, false, whyUTF8
	}
	if msg[0] == '[' {
		if !validJSON(msg) {
			return view{}, false, whyJSON
		}
		return view{kind: kindBatch}, false, ""
	}
	v, ok, valid := parseValidView(msg)
	switch {
	case !valid:
		return v, false, whyJSON
	case !ok:
		return v, false, whyShape
	}
	return v, true, ""
}

// policy applies the policies to one client line and reports whether to
// forward it to the server. An error is a failed write to the client.
//
// With an enforcing policy (tool filter, pins, scan), a line is forwarded
// only if the broker read it as the server will: see readClient, and a
// request must have a string or number id that no request in flight
// shares. Anything else is refused: a request gets the broker's error.
func (c *clientStream) policy(line []byte) (forward bool, err error) {
	b := c.b
	msg := trimSpace(line)
	var v view
	var ok bool
	if b.enforcing {
		if len(msg) == 0 {
			return true, nil // a blank line carries nothing to check
		}
		var why string
		if v, ok, why = readClient(line, msg); why != "" {
			return c.refuse(msg, why)
		}
		if v.kind == kindBatch {
			return c.batch(msg)
		}
	} else if v, ok = parseView(msg); !ok {
		if v.kind == kindBatch {
			b.log.LogAttrs(context.Background(), slog.LevelDebug, "passing a client batch through unread", slog.Int("bytes", len(msg)))
		}
		return true, nil
	}
	d := c.judge(msg, &v)
	if d.why == "" && v.kind == kindRequest {
		p := pending{method: d.e.Method, tool: d.e.Tool, start: time.Now()}
		if kindForList(d.e.Method) != nil && len(v.params) > 0 && hasMemberFold(v.params, "cursor") {
			p.paged = true
		}
		var added bool
		if c.key, added = b.remember(b.clientReqs, "client", c.key, v.id, p, b.enforcing); !added {
			d.refuse(codeInvalidRequest, "read", whyCollide)
		}
	}
	if d.why != "" {
		return false, c.deny(&v, &d)
	}
	if b.audit != nil {
		c.audit = b.audit.write(c.audit, &d.e)
	}
	return true, nil
}

// decision is what the client policies make of one message.
type decision struct {
	e    audit.Entry
	why  string // "": forward; else the refusal's message
	code int    // the refusal's error code
	rule string // what refused it, for the log
}

func (d *decision) refuse(code int, rule, why string) {
	if d.why != "" {
		return
	}
	d.code, d.rule, d.why = code, rule, why
	if rule == "read" {
		// The tool policies' refusals are known by their tool; this
		// one needs saying.
		d.e.Policy, d.e.Detail = rule, why
		d.why = "mcpbox refused this message: " + why
	}
}

// judge applies the policies to one readable client message, without
// tracking or answering it, and fills its audit entry.
func (c *clientStream) judge(msg []byte, v *view) decision {
	b := c.b
	d := decision{e: audit.Entry{Dir: audit.ClientToServer, Kind: v.kind.String(), ID: v.id}}
	e := &d.e
	switch v.kind {
	case kindRequest, kindNotification:
		e.Method = methodName(v.method)
		if e.Method == "tools/call" {
			var rule string
			var denied bool
			if e.Tool, e.Args, rule, denied = b.filter.callParams(v.params); denied {
				d.refuse(CodeToolBlocked, rule, blockedMessage(e.Tool, rule))
			}
		}
		if b.enforcing && v.dup {
			d.refuse(codeInvalidRequest, "read", whyDup)
		}
		if k := kindForUse(e.Method); b.enforcing && k != nil {
			if m := ambiguousMember(v.params, k.useKey, "arguments"); m != "" {
				d.refuse(codeInvalidRequest, "read", fmt.Sprintf(whyDupParam, m))
			}
		}
		if b.enforcing && v.kind == kindRequest && !trackable(v.id) {
			d.refuse(codeInvalidRequest, "read", whyID)
		}
		if b.guard != nil && d.why == "" {
			if k := kindForUse(e.Method); k != nil {
				if why := b.guard.refusedParams(k, v.params); why != "" {
					d.refuse(CodeToolBlocked, "tools.pin", why)
					if e.Tool == "" {
						e.Tool = useName(k, v.params)
					}
				}
			}
		}
	case kindResponse, kindError:
		if b.enforcing && v.dup {
			d.refuse(codeInvalidRequest, "read", whyDup)
		}
		if d.why == "" {
			c.key, _, _ = settle(b.serverReqs, c.key, v, e)
		}
	}
	if b.audit != nil && b.auditBodies {
		e.Body = c.bodyOf(msg)
	}
	return d
}

// ambiguousMember returns the first of names that the object params has
// twice, or in another letter case (which Go's encoding/json reads as
// that member), or "".
func ambiguousMember(params []byte, names ...string) string {
	if len(params) == 0 || params[0] != '{' {
		return ""
	}
	var seen [4]int
	var odd [4]bool
	eachMember(params, 0, func(key []byte, _, _ int) bool {
		for i, n := range names {
			if keyFold(key, n) {
				seen[i]++
				odd[i] = odd[i] || !keyIs(key, n)
			}
		}
		return true
	})
	for i, n := range names {
		if seen[i] > 1 || odd[i] {
			return n
		}
	}
	return ""
}

// trackable reports whether id, from a valid message, is one a response
// can be matched to (see idKey): a string or a number.
func trackable(id []byte) bool {
	return len(id) > 0 && (id[0] == '"' || isJSONNumber(id))
}

// deny refuses one client message: audited as blocked, and a request
// answered with the broker's error. The server never sees it.
func (c *clientStream) deny(v *view, d *decision) error {
	b := c.b
	e := &d.e
	e.Blocked = true
	level := slog.LevelInfo
	if d.rule == "read" {
		level = slog.LevelWarn
	}
	b.log.LogAttrs(context.Background(), level, "blocked a client message",
		slog.String("method", e.Method), slog.String("tool", e.Tool), slog.String("rule", d.rule), slog.String("why", d.why))
	if b.audit != nil {
		c.audit = b.audit.write(c.audit, e)
	}
	if v.kind != kindRequest || !replyID(v.id) {
		// A notification or a response gets no answer; the server must not see it either.
		return nil
	}
	c.reply = appendErrorReply(c.reply[:0], v.id, d.code, d.why)
	if err := b.client.reply(c.reply); err != nil {
		return errWriteClient(err)
	}
	if b.audit != nil {
		r := audit.Entry{Dir: audit.ServerToClient, Kind: kindError.String(), ID: v.id, Method: e.Method, Tool: e.Tool, ErrorCode: strconv.AppendInt(nil, int64(d.code), 10), Blocked: true, HasDuration: true}
		c.audit = b.audit.write(c.audit, &r)
	}
	return nil
}

// replyID reports whether id can go into the broker's answer: the client's
// stdout only ever gets valid JSON, and an id the client could match.
func replyID(id []byte) bool {
	return len(id) > 0 && (id[0] == '"' || id[0] == '-' || id[0]-'0' <= 9) && utf8.Valid(id) && json.Valid(id)
}

// refuse refuses a client line the broker cannot read unambiguously. If
// it can tell the line is a request with a usable id, the client gets an
// error; otherwise it is dropped. Either way it is audited.
func (c *clientStream) refuse(msg []byte, why string) (forward bool, err error) {
	v, _ := parseView(msg) // for the id and method, if it has them
	d := decision{e: audit.Entry{Dir: audit.ClientToServer, Kind: v.kind.String(), ID: v.id}}
	if len(v.method) > 0 && v.method[0] == '"' {
		d.e.Method = methodName(v.method)
		if v.id != nil {
			v.kind = kindRequest
		}
	}
	if !replyID(v.id) || v.kind != kindRequest {
		v.kind = kindUnknown
	}
	d.e.Kind = v.kind.String()
	d.refuse(codeInvalidRequest, "read", why)
	return false, c.deny(&v, &d)
}

// tooLong records a client line over the message limit, which is dropped:
// the policies cannot check what the broker does not hold.
func (c *clientStream) tooLong() {
	b := c.b
	b.log.LogAttrs(context.Background(), slog.LevelWarn, "dropping an over-long client line: mcpbox cannot check it", slog.Int("limit", b.maxMessage))
	if b.audit != nil {
		e := audit.Entry{Dir: audit.ClientToServer, Kind: kindUnknown.String(), Blocked: true, Policy: "read", Detail: whyTooLong}
		c.audit = b.audit.write(c.audit, &e)
	}
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

// batch applies the policies to a client batch (JSON-RPC 2.0 batches,
// which MCP 2025-03-26 allowed), already read by readClient: every element
// goes through every policy, as a message of its own would. A batch is
// forwarded untouched, its requests tracked, unless one of its messages
// would be refused on its own, or two of its requests share an id (or one
// with a request in flight): then none of it is forwarded, and each request
// in it is answered with an error, in one batch response.
func (c *clientStream) batch(msg []byte) (forward bool, err error) {
	b := c.b
	type element struct {
		v view
		d decision
	}
	var elems []element
	keys := map[string]bool{}
	refused := ""
	eachElement(msg, func(s, e int) {
		el := element{}
		var ok bool
		if el.v, ok = parseView(msg[s:e]); !ok {
			el.d = decision{e: audit.Entry{Dir: audit.ClientToServer, Kind: kindUnknown.String(), ID: el.v.id}}
			el.d.refuse(codeInvalidRequest, "read", whyShape)
		} else {
			el.d = c.judge(msg[s:e], &el.v)
		}
		if el.d.why == "" && el.v.kind == kindRequest {
			key, _ := idKey(nil, el.v.id)
			if keys[string(key)] || b.clientReqs.has(key) {
				el.d.refuse(codeInvalidRequest, "read", whyCollide)
			}
			keys[string(key)] = true
		}
		if refused == "" && el.d.why != "" {
			refused = el.d.why
		}
		elems = append(elems, el)
	})
	if refused == "" {
		for i := range elems {
			el := &elems[i]
			if el.v.kind == kindRequest {
				p := pending{method: el.d.e.Method, tool: el.d.e.Tool, start: time.Now()}
				c.key, _ = b.remember(b.clientReqs, "client", c.key, el.v.id, p, false)
			}
			if b.audit != nil {
				c.audit = b.audit.write(c.audit, &el.d.e)
			}
		}
		b.log.LogAttrs(context.Background(), slog.LevelDebug, "passing a client batch through", slog.Int("bytes", len(msg)))
		return true, nil
	}
	b.log.LogAttrs(context.Background(), slog.LevelInfo, "blocked a client batch", slog.String("why", refused))
	r := append(c.reply[:0], '[')
	n := 0
	for i := range elems {
		el := &elems[i]
		el.d.refuse(codeInvalidRequest, "read", whyInBatch)
		el.d.e.Blocked = true
		if b.audit != nil {
			c.audit = b.audit.write(c.audit, &el.d.e)
		}
		if el.v.kind != kindRequest || !replyID(el.v.id) {
			continue
		}
		if n > 0 {
			r = append(r, ',')
		}
		n++
		r = appendErrorReply(r, el.v.id, el.d.code, el.d.why)
		r = r[:len(r)-1] // each reply's "\n"
	}
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
// be a JSON object) and returns what to write to the client: out, a
// rewritten message, or nil to write nothing.
//
// v is msg's view, ok false if msg is not a JSON-RPC shape it knows. With
// an enforcing policy, a message the client could read differently from
// the broker (duplicate or case-variant members, a result next to a method
// or an error) is withheld, and so is a result carrying a list that is not
// the answer to a request for that list: it would reach the client
// unchecked.
func (s *serverStream) policy(msg, out []byte, v view, ok bool) []byte {
	b := s.b
	if b.enforcing && (v.dup || !ok && v.rpc) {
		e := audit.Entry{Dir: audit.ServerToClient, Kind: v.kind.String(), ID: v.id}
		var p pending
		var found bool
		if v.method == nil && v.id != nil {
			s.key, p, found = settle(b.clientReqs, s.key, &v, &e)
		}
		return s.withhold(msg, &e, p, found, "read", "it is ambiguous: "+whyDupServer)
	}
	if !ok {
		return s.redacted(msg, out, nil)
	}
	e := audit.Entry{Dir: audit.ServerToClient, Kind: v.kind.String(), ID: v.id}
	var events []policyEvent
	switch v.kind {
	case kindRequest, kindNotification:
		e.Method = methodName(v.method)
		if v.kind == kindRequest {
			s.key, _ = b.remember(b.serverReqs, "server", s.key, v.id, pending{method: e.Method, start: time.Now()}, false)
		}
	case kindResponse, kindError:
		var p pending
		var found bool
		s.key, p, found = settle(b.clientReqs, s.key, &v, &e)
		if b.enforcing && !found {
			// No client waits for it, so none loses by its absence; and a
			// policy keyed on the request's method (the instructions of
			// initialize, the lists) cannot judge what answers nothing.
			return s.withhold(msg, &e, p, false, "match", whyNoRequest)
		}
		if v.kind == kindResponse {
			if b.enforcing && v.lists != 0 {
				// Only the list the request asked for: any other is read by
				// no one, and the policies would not see it.
				if k := kindForList(p.method); !found || k == nil || v.lists != k.bit {
					why := fmt.Sprintf(whyOtherList, p.method)
					if k == nil || v.lists&k.bit == 0 {
						noun := listNoun(v.lists)
						why = fmt.Sprintf(whyUnsolicited, noun, listKinds[bitIndex(v.lists)].method)
					}
					return s.withhold(msg, &e, p, found, "match", why)
				}
			}
			out, events = s.result(msg, out, &v, e.Method, p.paged)
		}
	}
	out = s.redacted(msg, out, &e)
	if b.audit != nil {
		if b.auditBodies {
			e.Body = trimSpace(out)
		}
		s.audit = b.audit.write(s.audit, &e)
		for _, ev := range events {
			pe := audit.Entry{Dir: audit.ServerToClient, Kind: audit.KindPolicy, Method: e.Method, Tool: ev.item, Policy: ev.policy, Finding: ev.finding, Severity: ev.severity, Detail: ev.detail}
			s.audit = b.audit.write(s.audit, &pe)
		}
	}
	return out
}

// sameID reports whether every client reads the ids a and b as one: the
// same spelling, or the same JSON string, or the same number exactly
// (2 and 2.0, not 2 and 2.5, which only some clients join).
func sameID(a string, b []byte) bool {
	if a == string(b) {
		return true
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	switch x := x.(type) {
	case string:
		y, ok := y.(string)
		return ok && x == y
	case float64:
		y, ok := y.(float64)
		return ok && x == y
	}
	return false
}

// whyNoRequest completes the reason for withholding an answer to no request.
const whyNoRequest = "it answers no request in flight"

// whyDupServer completes the reason for withholding an ambiguous server
// message.
const whyDupServer = "a member (id, method, params, result or error) appears twice or in another letter case, or a result comes with a method or an error, and clients differ on which counts"

// listNoun names the first list in bits, for messages: "tool", "prompt"…
func listNoun(bits uint8) string {
	return listKinds[bitIndex(bits)].noun
}

// bitIndex is the index in listKinds of the first list in bits, not 0.
func bitIndex(bits uint8) int {
	for i, k := range listKinds {
		if bits&k.bit != 0 {
			return i
		}
	}
	return 0
}

// withhold keeps a server message from the client: a warning (the first
// of each kind), an audit line, and, when it answers a request the client
// is waiting for, the broker's error in its place, under the client's own
// id.
func (s *serverStream) withhold(msg []byte, e *audit.Entry, p pending, answered bool, rule, why string) []byte {
	b := s.b
	e.Blocked, e.Policy, e.Detail = true, rule, why
	if b.noteOnce("withheld/" + rule) {
		fmt.Fprintf(b.diag, "mcpbox: withheld a message from %s: %s; the client does not see it (further ones are counted in the audit log)\n", b.serverName(), why)
	}
	b.log.LogAttrs(context.Background(), slog.LevelWarn, "withheld a server message", slog.String("rule", rule), slog.String("why", why))
	if b.audit != nil {
		if b.auditBodies {
			e.Body = msg
			if b.redact != nil {
				e.Body, _ = b.redact.Redact(msg)
			}
		}
		s.audit = b.audit.write(s.audit, e)
	}
	if answered && replyID([]byte(p.id)) {
		s.reply = appendErrorReply(s.reply[:0], []byte(p.id), codeWithheld, "mcpbox withheld the server's answer: "+why)
		return s.reply
	}
	return nil
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
		lastPage := !hasMemberFold(v.result, "nextCursor")
		rewritten, events, changed := b.guard.rewriteList(s.spare[:0], msg, v, k, !paged && lastPage, lastPage)
		if changed {
			s.spare = append(rewritten, '\n')
			out = s.spare
		}
		return out, events
	}
	if method == "initialize" || method == "server/discover" {
		// Every member Go's encoding/json would read as the instructions
		// ("Instructions" too) is scanned, and all go if one must.
		strip := false
		var events []policyEvent
		eachMember(v.result, 0, func(key []byte, vs, ve int) bool {
			if keyFold(key, "instructions") {
				if text, ok := unquote(v.result[vs:ve]); ok {
					st, evs := b.guard.checkInstructions(text)
					strip, events = strip || st, append(events, evs...)
				}
			}
			return true
		})
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
func (s *serverStream) redacted(msg, out []byte, e *audit.Entry) []byte {
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
		e.Redacted = counts
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
// matched; key is a reusable buffer, returned for the next call. With
// unique set, a request whose id is already in flight is not tracked, and
// added is false; an id that cannot be tracked is not either, with added
// true.
func (b *Broker) remember(reqs *tracker, who string, key, id []byte, p pending, unique bool) (buf []byte, added bool) {
	key, ok := idKey(key[:0], id)
	if !ok {
		return key, true
	}
	n := len(key)
	key = append(key, id...)
	added, m, evicted := reqs.add(key, n, p, unique)
	if evicted {
		b.log.LogAttrs(context.Background(), slog.LevelWarn, "too many "+who+" requests in flight: forgetting the oldest", slog.String("method", m))
	}
	return key, added
}

// settle fills e from the request a response or error answers (taken from
// reqs), and the error's code; key is a reusable buffer, returned with the
// request and whether there was one.
//
// Only an answer whose id is spelled as the request's was settles it. One
// that idKey joins to it under another spelling is treated as answering it
// (some client may take it so, and the policies must see it), but the
// request stays in flight: idKey joins more than any one client does, and a
// decoy spelled so that no client takes it ("0.5" for 0) must not use up the
// request, or the real answer would pass as answering nothing.
func settle(reqs *tracker, key []byte, v *view, e *audit.Entry) ([]byte, pending, bool) {
	var p pending
	key, ok := idKey(key[:0], v.id)
	if ok {
		if p, ok = reqs.get(key); ok {
			if sameID(p.id, v.id) {
				reqs.take(key)
			}
			e.Method, e.Tool = p.method, p.tool
			e.SetDuration(time.Since(p.start))
		}
	}
	if v.kind == kindError {
		e.ErrorCode = memberValue(v.err, "code")
	}
	return key, p, ok
}
