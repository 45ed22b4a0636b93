// Package broker carries newline-delimited JSON-RPC between an MCP client and
// a sandboxed MCP server, and keeps the client's stream clean.
//
// It owns the framing rules of the stdio transport: where a message ends, how
// long one may be, and what happens to server output that is not a message.
// A server line that is not a JSON object is diverted to a diagnostic writer
// with a warning, never forwarded: anything but MCP messages on the client's
// stdout breaks the client. Each message is written with one Write, as the
// object followed by "\n", so messages never tear or interleave.
//
// The broker sees only io.Reader and io.Writer. It does not know about
// containers, processes or signals, and does not check JSON-RPC and MCP
// semantics. Without a policy that refuses anything, it does not judge the
// client's input either: that passes through unchanged, so that the server
// answers malformed requests itself.
//
// Policies that need to understand MCP (audit, tool filtering, pinning,
// the poisoning scan, redaction) run as per-message hooks on a cheap view
// of each line (view.go): its top-level id, method and kind, found without
// decoding the values. With no policy configured no line is even viewed.
// Lines no policy acts on are forwarded byte for byte.
//
// The policies that refuse or withhold (filter, pins, scan) decide on what
// the other side will actually read. Responses are matched to requests by
// id value, the way the MCP SDKs match them (id.go). A client line that a
// server could read differently from the broker (a carriage return Python
// splits on, invalid UTF-8, two JSON values, duplicate or case-variant
// members, a shape the broker cannot classify, an over-long line) is
// refused, never forwarded unread; a server message a client could read
// differently, or a list result that answers no request for that list, is
// withheld from the client.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/mcpbox/mcpbox/launcher/audit"
)

// DefaultMaxMessage is the longest server message accepted when
// Options.MaxMessage is zero.
const DefaultMaxMessage = 64 << 20

// ErrMessageTooLarge is returned by ServerToClient when the server writes a
// line longer than the message limit.
var ErrMessageTooLarge = errors.New("message too large")

const (
	// readBufferSize matches the Linux pipe capacity: one read can drain a
	// full pipe, and most messages are framed without a copy.
	readBufferSize = 64 << 10

	// keepBuffer is the largest line buffer held from one line to the next.
	// A larger one (for a big tool result) is only offered back through a
	// sync.Pool, so it does not stay pinned for the rest of the session.
	keepBuffer = 4 << 20

	// diagShown is how much of a diverted line is shown on the diagnostic writer.
	diagShown = 1 << 10

	diagPrefix = "mcpbox: server wrote a non-JSON line to stdout (diverted): "
)

// Options configure a Broker. The zero value is usable.
type Options struct {
	// MaxMessage is the most bytes one line may hold, not counting its "\n"
	// or "\r\n": a longer server line ends the session, a longer client
	// line is streamed through. Zero or less means DefaultMaxMessage.
	MaxMessage int64
	// Diag receives server output that is not a message, with a warning;
	// normally mcpbox's stderr. Nil discards it.
	Diag io.Writer
	// Logger receives debug events. Nil discards them.
	Logger *slog.Logger

	// ToolAllow and ToolDeny filter tools by name, with path.Match
	// patterns. A tool is blocked if it matches a deny pattern, or if
	// ToolAllow is not empty and it matches none of its patterns. Blocked
	// tools are removed from tools/list results, and a tools/call for one
	// is answered by the broker with a CodeToolBlocked error: the server
	// never sees it. Both empty means no filter. See Options.Validate.
	ToolAllow, ToolDeny []string
	// Audit receives one JSON line per message (requests, responses,
	// notifications, errors) with its metadata, never its body. Nil means
	// no audit log. Writes from both directions are serialized.
	Audit io.Writer
	// AuditBodies adds each whole message, secrets redacted, to its
	// audit line.
	AuditBodies bool
	// MaxInFlight bounds the requests tracked per direction while they
	// wait for a response; past it the oldest is forgotten with a warning.
	// Zero or less means DefaultMaxInFlight.
	MaxInFlight int

	// Pins keeps the server's pinned tool, prompt and resource definitions;
	// nil turns pinning off. Pin says what a new or changed definition
	// does: ModeBlock ("" too) withholds it from the client and refuses
	// uses of it until the user approves it, ModeWarn only warns.
	Pins     PinStore
	Pin      Mode
	Identity Identity
	// Scan is the poisoning scan's mode: ModeWarn warns on stderr,
	// ModeBlock also withholds items with medium or high findings and
	// strips poisoned instructions, ModeOff ("" too) skips the scan.
	Scan Mode
	// OtherTools are tool names of the user's other servers, for the
	// look-alike name check.
	OtherTools []string
	// Redactor masks secrets in the server's messages; nil means none.
	Redactor *Redactor
}

// A Broker copies one session's stdio in both directions. ClientToServer and
// ServerToClient may run concurrently, each in its own goroutine; they share
// the requests in flight and the client's writer.
//
// The broker answers a blocked tools/call itself, so ClientToServer also
// writes to the client: it uses the writer ServerToClient was given, and the
// two directions' writes are serialized by a mutex so messages never
// interleave. An answer made before ServerToClient has started is queued and
// written when it starts.
type Broker struct {
	maxMessage int
	diag       io.Writer
	log        *slog.Logger
	bufSize    int // read buffer size; tests shrink it to reach the long-line paths

	policies    bool        // some policy needs to view messages
	enforcing   bool        // some policy refuses or withholds messages: filter, pins, scan
	server      string      // the server's name, for warnings
	filter      *toolFilter // nil: no tool filter
	audit       *auditLog   // nil: no audit log
	auditBodies bool
	guard       *guard    // nil: no pins and no scan
	redact      *Redactor // nil: no redaction
	noteMu      sync.Mutex
	noted       map[string]bool // warnings already shown, by kind
	clientReqs  *tracker        // client requests waiting for the server
	serverReqs  *tracker        // server requests waiting for the client
	client      clientWriter
}

// New returns a Broker configured by opts.
func New(opts Options) *Broker {
	b := &Broker{
		maxMessage: DefaultMaxMessage,
		diag:       opts.Diag,
		log:        opts.Logger,
		bufSize:    readBufferSize,
	}
	if opts.MaxMessage > 0 {
		b.maxMessage = int(min(opts.MaxMessage, math.MaxInt-2))
	}
	if b.diag == nil {
		b.diag = io.Discard
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.filter = newToolFilter(opts.ToolAllow, opts.ToolDeny)
	if opts.Audit != nil {
		b.audit = &auditLog{w: opts.Audit, log: b.log}
	}
	b.auditBodies = opts.AuditBodies
	b.guard = newGuard(opts, b.diag, b.log)
	b.redact = opts.Redactor
	b.enforcing = b.filter != nil || b.guard != nil
	b.policies = b.enforcing || b.audit != nil || b.redact != nil
	b.server = opts.Identity.Server
	inFlight := DefaultMaxInFlight
	if opts.MaxInFlight > 0 {
		inFlight = opts.MaxInFlight
	}
	b.clientReqs, b.serverReqs = newTracker(inFlight), newTracker(inFlight)
	b.client.log = b.log
	return b
}

// ClientToServer copies lines from the client (src) to the server (dst) until
// src reaches EOF, which returns nil, or a read or write error, which is
// returned wrapped. Lines pass through unchanged, malformed or not, and one
// Write carries each line. A line longer than the message limit is streamed
// to dst as it arrives rather than held in memory, and a final line without a
// newline is forwarded as it is.
//
// With an enforcing policy (tool filter, pins, scan), a tools/call for a
// blocked tool is not forwarded but answered on the client's writer (see
// Broker); so is a line the broker cannot read exactly as the server will
// (see clientStream.policy); and an over-long line is dropped with a
// warning and an audit line, since it cannot be checked.
func (b *Broker) ClientToServer(dst io.Writer, src io.Reader) error {
	lines := b.newLineReader(src)
	c := &clientStream{b: b, dst: dst}
	for {
		line, err := lines.next()
		switch {
		case err == nil, err == io.EOF:
			if werr := c.fromClient(line); werr != nil {
				return werr
			}
			if err == io.EOF {
				return nil
			}
		case err == errLineTooLong:
			w := dst
			if b.enforcing {
				// Fail closed: the policies cannot read what the broker does not hold.
				c.tooLong()
				w = io.Discard
			} else {
				b.log.Debug("streaming an over-long client line", "limit", b.maxMessage)
			}
			rerr, werr := lines.copyRest(w, line)
			if werr != nil {
				return fmt.Errorf("broker: write to server: %w", werr)
			}
			if rerr == io.EOF {
				return nil
			}
			if rerr != nil {
				return fmt.Errorf("broker: read from client: %w", rerr)
			}
		default:
			// Pass-through is byte for byte, so what arrived before the
			// error still goes to the server.
			if werr := c.fromClient(line); werr != nil {
				return werr
			}
			return fmt.Errorf("broker: read from client: %w", err)
		}
	}
}

// clientStream is the state of one ClientToServer call.
type clientStream struct {
	b     *Broker
	dst   io.Writer
	key   []byte // reused for request ids
	audit []byte // reused to format audit lines
	reply []byte // reused to format the broker's answers
}

// fromClient handles one line from the client: the place for per-message
// policies on requests.
func (c *clientStream) fromClient(line []byte) error {
	if c.b.policies {
		forward, err := c.policy(line)
		if err != nil || !forward {
			return err
		}
	}
	if err := write(c.dst, line); err != nil {
		return fmt.Errorf("broker: write to server: %w", err)
	}
	return nil
}

// ServerToClient copies messages from the server's stdout (src) to the client
// (dst) until src reaches EOF, which returns nil, or an error.
//
// Each line that is a JSON object, once surrounding JSON whitespace is
// trimmed, is written to dst with one Write as the object and a "\n": the
// message bytes are unchanged, but a "\r\n" ending, padding around the
// object or a missing final newline are normalized. Blank lines are dropped
// silently. Any other line is not written to dst: it goes to the diagnostic
// writer as a one-line warning, truncated if long.
//
// A line longer than the message limit stops the copy with an error matching
// ErrMessageTooLarge; at most about the limit is buffered to find that out.
// Read errors and write errors (the client went away) are returned wrapped.
//
// dst becomes the client's writer for the broker's own answers too (see
// Broker); writes to it are serialized.
func (b *Broker) ServerToClient(dst io.Writer, src io.Reader) error {
	if err := b.client.attach(dst); err != nil {
		return fmt.Errorf("broker: write to client: %w", err)
	}
	s := serverStream{b: b, lines: b.newLineReader(src)}
	for {
		line, err := s.lines.next()
		switch {
		case err == nil:
		case err == io.EOF:
			if len(line) == 0 {
				return nil
			}
		case err == errLineTooLong:
			limit := int64(b.maxMessage)
			return fmt.Errorf("broker: server sent a message over the %s limit: %w (raise the limit with --max-message, e.g. --max-message=%s)",
				formatSize(limit), ErrMessageTooLarge, formatSize(2*limit))
		default:
			// An unfinished line is dropped: it may not be a whole message.
			return fmt.Errorf("broker: read from server: %w", err)
		}
		if werr := s.fromServer(line); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
	}
}

// serverStream is the state of one ServerToClient call.
type serverStream struct {
	b     *Broker
	lines *lineReader
	diag  []byte // reused to format diverted lines
	key   []byte // reused for request ids
	audit []byte // reused to format audit lines
	out   []byte // reused for rewritten messages
	spare []byte // reused for messages rewritten twice
	red   []byte // reused for redacted messages
	reply []byte // reused for the broker's answers
}

// fromServer handles one line from the server: the place for per-message
// policies on responses and notifications.
func (s *serverStream) fromServer(line []byte) error {
	msg := trimSpace(line)
	if len(msg) == 0 {
		return nil
	}
	var v view
	var viewed bool
	if s.b.policies {
		// Validate and view in one pass.
		var valid bool
		if v, viewed, valid = parseValidView(msg); !valid {
			s.divert(msg)
			return nil
		}
	} else if !isObject(msg) {
		s.divert(msg)
		return nil
	}
	out := line
	if len(line) != len(msg)+1 || line[len(line)-1] != '\n' {
		// Only msg+"\n" is framing every client accepts: the Go SDK, for
		// one, rejects a message followed by spaces.
		out = s.lines.terminate(msg)
	}
	if s.b.policies {
		if out = s.policy(msg, out, v, viewed); out == nil {
			return nil // withheld
		}
	}
	if err := s.b.client.write(out); err != nil {
		return fmt.Errorf("broker: write to client: %w", err)
	}
	return nil
}

// noteRedactions warns once per kind of secret that the server's messages
// carried one.
func (b *Broker) noteRedactions(counts map[string]int, e *audit.Entry) {
	var fresh []string
	for k := range counts {
		if b.noteOnce("redacted/" + k) {
			fresh = append(fresh, k)
		}
	}
	where := "a message"
	if e != nil && e.Method != "" {
		where = "a " + e.Method + " message"
	}
	sort.Strings(fresh)
	for _, k := range fresh {
		fmt.Fprintf(b.diag, "mcpbox: redacted a %s from %s of the server (further ones are counted in the audit log)\n", k, where)
	}
}

// noteOnce reports whether the warning named key is due: true the first
// time only.
func (b *Broker) noteOnce(key string) bool {
	b.noteMu.Lock()
	defer b.noteMu.Unlock()
	if b.noted[key] {
		return false
	}
	if b.noted == nil {
		b.noted = map[string]bool{}
	}
	b.noted[key] = true
	return true
}

// serverName names the server in warnings.
func (b *Broker) serverName() string {
	if b.server != "" {
		return b.server
	}
	return "the server"
}

// isObject reports whether msg, with no surrounding whitespace, is a JSON
// object. The first and last bytes reject most stray output before
// validJSON looks at the whole line.
func isObject(msg []byte) bool {
	return msg[0] == '{' && msg[len(msg)-1] == '}' && validJSON(msg)
}

// divert writes msg to the diagnostic writer as one warning line. Control
// characters are escaped so the warning stays one line and cannot drive the
// user's terminal.
func (s *serverStream) divert(msg []byte) {
	shown := msg
	if len(shown) > diagShown {
		cut := diagShown
		for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(msg[cut]); i++ {
			cut--
		}
		shown = msg[:cut]
	}
	d := append(s.diag[:0], diagPrefix...)
	d = appendEscaped(d, shown)
	if len(shown) < len(msg) {
		d = append(d, "… ("...)
		d = strconv.AppendInt(d, int64(len(msg)), 10)
		d = append(d, " bytes)"...)
	}
	d = append(d, '\n')
	s.diag = d
	s.b.log.LogAttrs(context.Background(), slog.LevelDebug, "diverted a non-JSON server line", slog.Int("bytes", len(msg)))
	if _, err := s.b.diag.Write(d); err != nil {
		// Losing a warning must not end the session.
		s.b.log.LogAttrs(context.Background(), slog.LevelDebug, "write diagnostic", slog.Any("err", err))
	}
}

func appendEscaped(dst, p []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range p {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// trimSpace removes JSON whitespace (space, tab, CR, LF) from both ends.
func trimSpace(p []byte) []byte {
	for len(p) > 0 && isSpace(p[0]) {
		p = p[1:]
	}
	for len(p) > 0 && isSpace(p[len(p)-1]) {
		p = p[:len(p)-1]
	}
	return p
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// write writes p with one Write call.
func write(w io.Writer, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return err
}

// formatSize renders n the way --max-message takes it.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "Gi"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "Mi"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "Ki"
	}
	return strconv.FormatInt(n, 10)
}
