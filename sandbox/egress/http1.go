package egress

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// HTTP/1.x message framing, for plain-HTTP connections to a name.
//
// On such a connection every request head is parsed and checked before any
// of its bytes is forwarded, and every body is framed exactly, so the proxy
// and the upstream agree on where the next request starts. Whatever a
// server could read differently is refused rather than guessed: a line
// ending other than CRLF, obs-fold, white space before a colon, both
// Transfer-Encoding and Content-Length, a Transfer-Encoding other than a
// single "chunked", Transfer-Encoding in HTTP/1.0, two Content-Lengths or
// two Hosts, no Host, an HTTP/2 preface or an h2c upgrade, any upgrade but
// websocket, CONNECT. Responses are framed too (leniently on line endings,
// strictly on lengths), only far enough to know when each ends and whether
// an upgrade happened: after "101 Switching Protocols" to a websocket
// request the stream is opaque, as it would be to the server.

// maxResponseHead bounds a response head the proxy holds while framing it.
const maxResponseHead = 256 << 10

// maxChunkLine bounds a chunk-size line, extensions included.
const maxChunkLine = 4 << 10

// msgState is where a framer is in the stream of messages.
type msgState uint8

const (
	stHead       msgState = iota // expecting a head
	stLength                     // in a Content-Length body: remain bytes left
	stChunkSize                  // expecting a chunk-size line
	stChunkData                  // in chunk data: remain bytes left
	stChunkEnd                   // expecting the CRLF after chunk data
	stTrailer                    // in the trailer section after the last chunk
	stUntilClose                 // a response body that ends when the upstream closes
	stWait                       // requests: holding the client until an upgrade is decided
	stDone                       // requests: no further request on this connection
	stOpaque                     // after 101 Switching Protocols: not HTTP any more
)

type bodyKind uint8

const (
	bodyNone bodyKind = iota
	bodyLength
	bodyChunked
	bodyUntilClose
)

type targetForm uint8

const (
	formOrigin    targetForm = iota // /path
	formAbsolute                    // http://host/path
	formAuthority                   // host:port (CONNECT)
	formAsterisk                    // * (OPTIONS)
)

// reqHead is a request head that passed parseRequestHead.
type reqHead struct {
	method  string
	target  string
	version string // "HTTP/1.0" or "HTTP/1.1"
	form    targetForm
	host    string // the host the request names: the absolute target's, else Host's; "" for CONNECT
	port    int    // its port; 0 when not given
	body    bodyKind
	length  int64
	upgrade bool // Upgrade: websocket
}

// httpMethods are the request methods the sniffer takes for HTTP at once;
// a stream that starts with another word is HTTP when its first line
// says so ("HTTP/").
var httpMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

func isKnownMethod(b []byte) bool {
	for _, m := range httpMethods {
		if string(b) == m {
			return true
		}
	}
	return false
}

// isKnownMethodPrefix reports whether b could still become a known method.
func isKnownMethodPrefix(b []byte) bool {
	for _, m := range httpMethods {
		if len(b) <= len(m) && m[:len(b)] == string(b) {
			return true
		}
	}
	return false
}

// isTchar reports an RFC 9110 token character.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// skipEmptyLines returns how many bytes of CRLF pairs b starts with:
// servers ignore empty lines before a request line (RFC 9112 2.2).
func skipEmptyLines(b []byte) int {
	n := 0
	for n+1 < len(b) && b[n] == '\r' && b[n+1] == '\n' {
		n += 2
	}
	return n
}

// scanHead finds the end of a request head in b: the offset just past the
// CRLF CRLF, or -1 if more bytes are needed. Lines must end in CRLF:
// servers disagree on a bare LF or CR, so either is an error.
func scanHead(b []byte) (int, string) {
	for i := 0; i < len(b); i++ {
		if i >= maxHead {
			return -1, "HTTP request head larger than 16 KiB"
		}
		switch b[i] {
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return -1, "bare LF in an HTTP request head (lines must end in CRLF)"
			}
			if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
				return i + 1, ""
			}
		case '\r':
			if i+1 < len(b) && b[i+1] != '\n' {
				return -1, "bare CR in an HTTP request head"
			}
		}
	}
	if len(b) >= maxHead {
		return -1, "HTTP request head larger than 16 KiB"
	}
	return -1, ""
}

// parseRequestHead parses and validates a request head (head ends with the
// blank line). It refuses what servers could frame or route differently
// from the proxy; which host a request may name is for the caller.
func parseRequestHead(head []byte) (*reqHead, string) {
	lines := strings.Split(string(head[:len(head)-4]), "\r\n")
	h := &reqHead{}
	if why := h.parseRequestLine(lines[0]); why != "" {
		return nil, why
	}
	var hosts, lengths, codings, upgrades []string
	for _, l := range lines[1:] {
		name, value, why := parseField(l)
		if why != "" {
			return nil, why
		}
		switch strings.ToLower(name) {
		case "host":
			hosts = append(hosts, value)
		case "content-length":
			lengths = append(lengths, value)
		case "transfer-encoding":
			codings = append(codings, value)
		case "upgrade":
			upgrades = append(upgrades, value)
		case "connection":
			// A proxy drops what Connection names: naming the framing or
			// the Host would change them for the next hop.
			for tok := range strings.SplitSeq(value, ",") {
				switch t := strings.ToLower(strings.Trim(tok, " \t")); t {
				case "content-length", "transfer-encoding", "host":
					return nil, fmt.Sprintf("Connection header names %s, which the next hop would then drop", t)
				}
			}
		case "http2-settings":
			return nil, "HTTP2-Settings header (an h2c upgrade): the streams of HTTP/2 name hosts the proxy does not check; use https or HTTP/1.1"
		}
	}
	if len(upgrades) > 0 {
		switch v := upgrades[0]; {
		case len(upgrades) > 1:
			return nil, "more than one Upgrade header"
		case strings.Contains(strings.ToLower(v), "h2c"):
			return nil, "Upgrade to h2c: the streams of HTTP/2 name hosts the proxy does not check; use https or HTTP/1.1"
		case !strings.EqualFold(v, "websocket"):
			return nil, fmt.Sprintf("Upgrade to %q: only websocket may follow a plain HTTP/1.1 request to a name", v)
		}
		h.upgrade = true
	}
	switch {
	case len(codings) > 0 && h.version == "HTTP/1.0":
		return nil, "Transfer-Encoding in an HTTP/1.0 request (servers disagree on where its body ends)"
	case len(codings) > 0 && len(lengths) > 0:
		return nil, "both Transfer-Encoding and Content-Length (servers disagree on where the body ends)"
	case len(codings) > 1 || len(codings) == 1 && !strings.EqualFold(codings[0], "chunked"):
		return nil, fmt.Sprintf("Transfer-Encoding %q: only a single \"chunked\" is accepted", strings.Join(codings, ", "))
	case len(codings) == 1:
		h.body = bodyChunked
	case len(lengths) > 1:
		return nil, "more than one Content-Length"
	case len(lengths) == 1:
		n, ok := parseLength(lengths[0])
		if !ok {
			return nil, fmt.Sprintf("bad Content-Length %q", lengths[0])
		}
		if n > 0 {
			h.body, h.length = bodyLength, n
		}
	}
	if len(hosts) > 1 {
		return nil, "more than one Host header"
	}
	if why := h.parseTarget(); why != "" {
		return nil, why
	}
	if h.form == formAuthority {
		return h, "" // CONNECT names its host in the target; its caller checks it
	}
	if len(hosts) == 1 {
		host, port, why := parseAuthority(hosts[0])
		if why != "" {
			return nil, fmt.Sprintf("bad Host %q: %s", hosts[0], why)
		}
		if h.form == formAbsolute {
			if !sameName(host, h.host) || port != 0 && h.port != 0 && port != h.port {
				return nil, "request target " + h.host + " and Host " + host + " differ"
			}
			if h.port == 0 {
				h.port = port
			}
			return h, ""
		}
		h.host, h.port = host, port
		return h, ""
	}
	if h.form != formAbsolute {
		return nil, "no Host header (the server would pick a site by itself)"
	}
	return h, ""
}

func (h *reqHead) parseRequestLine(line string) string {
	method, rest, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" {
		return "malformed request line"
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] >= 0x7f {
			return "malformed request line"
		}
	}
	switch version {
	case "HTTP/1.1", "HTTP/1.0":
	case "HTTP/2.0", "HTTP/2":
		if method == "PRI" {
			return "HTTP/2 connection preface (PRI * HTTP/2.0): the streams of HTTP/2 name hosts the proxy does not check; use https or HTTP/1.1"
		}
		return "HTTP version " + version + " in a request line (only HTTP/1.0 and HTTP/1.1)"
	default:
		if strings.HasPrefix(strings.ToUpper(version), "HTTP/") {
			return fmt.Sprintf("HTTP version %q not supported (only HTTP/1.0 and HTTP/1.1)", version)
		}
		return "malformed request line"
	}
	h.method, h.target, h.version = method, target, version
	return ""
}

// parseTarget sets the request-target's form and, for the absolute form,
// the host and port it names.
func (h *reqHead) parseTarget() string {
	t := h.target
	switch {
	case h.method == "CONNECT":
		h.form = formAuthority
	case t[0] == '/':
		h.form = formOrigin
	case t == "*":
		if h.method != "OPTIONS" {
			return "request target * is only for OPTIONS"
		}
		h.form = formAsterisk
	default:
		scheme, rest, ok := strings.Cut(t, "://")
		if !ok || !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
			return fmt.Sprintf("bad request target %q", t)
		}
		auth := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			auth = rest[:i]
		}
		if strings.Contains(auth, "@") {
			return "user information in the request target"
		}
		host, port, why := parseAuthority(auth)
		if why != "" {
			return fmt.Sprintf("bad absolute request target: %s", why)
		}
		h.form, h.host, h.port = formAbsolute, host, port
	}
	return ""
}

// parseAuthority splits "host[:port]" or "[v6]:port". The host may use
// only the characters of a DNS name or an IP literal: any other character
// is something servers could read differently.
func parseAuthority(s string) (host string, port int, why string) {
	host, portStr, hasPort := s, "", false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, "missing ']'"
		}
		host = s[1:end]
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			portStr, hasPort = rest[1:], true
		default:
			return "", 0, "unexpected characters after ']'"
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return "", 0, "bad IPv6 address"
			}
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, portStr, hasPort = s[:i], s[i+1:], true
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
				return "", 0, fmt.Sprintf("character %q in a host name", c)
			}
		}
	}
	if host == "" {
		return "", 0, "empty host"
	}
	if hasPort {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 || portStr[0] == '+' || portStr[0] == '0' {
			return "", 0, fmt.Sprintf("bad port %q", portStr)
		}
		port = n
	}
	return host, port, ""
}

// parseField splits a header line, refusing obs-fold, white space before
// the colon, a bad name and control characters in the value.
func parseField(l string) (name, value, why string) {
	if l != "" && (l[0] == ' ' || l[0] == '\t') {
		return "", "", "obs-fold (a header line that starts with white space)"
	}
	name, value, ok := strings.Cut(l, ":")
	switch {
	case !ok:
		return "", "", "header line without a colon"
	case name != "" && (name[len(name)-1] == ' ' || name[len(name)-1] == '\t'):
		return "", "", "white space between a header name and its colon"
	case !isToken(name):
		return "", "", fmt.Sprintf("bad header name %q", name)
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", fmt.Sprintf("control character in header %s", name)
		}
	}
	return name, value, ""
}

// parseLength parses a Content-Length: digits only, at most 18.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// respHead is what the framer needs of a response head.
type respHead struct {
	status int
	body   bodyKind
	length int64
}

// scanResponseHead finds the end of a response head in b (lines may end in
// CRLF or LF, as clients accept both), or -1 if more bytes are needed.
func scanResponseHead(b []byte) (int, string) {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			if len(b) >= maxResponseHead {
				return -1, "response head larger than 256 KiB"
			}
			return -1, ""
		}
		line := b[start : start+i]
		start += i + 1
		if start > maxResponseHead {
			return -1, "response head larger than 256 KiB"
		}
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			if start == i+1 {
				return -1, "response starts with an empty line"
			}
			return start, ""
		}
	}
}

// parseResponseHead parses a response head to the request method, for its
// status and framing (RFC 9112 6.3).
func parseResponseHead(head []byte, method string) (*respHead, string) {
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	sl := lines[0]
	if len(sl) < 12 || (sl[:9] != "HTTP/1.1 " && sl[:9] != "HTTP/1.0 ") || len(sl) > 12 && sl[12] != ' ' {
		return nil, fmt.Sprintf("malformed status line %q", printable(sl[:min(len(sl), 40)]))
	}
	status, err := strconv.Atoi(sl[9:12])
	if err != nil || status < 100 || status > 999 || sl[9] == '+' {
		return nil, fmt.Sprintf("malformed status line %q", printable(sl[:min(len(sl), 40)]))
	}
	r := &respHead{status: status}
	var lengths, codings []string
	for _, l := range lines[1:] {
		name, value, why := parseField(l)
		if why != "" {
			return nil, why
		}
		switch strings.ToLower(name) {
		case "content-length":
			lengths = append(lengths, value)
		case "transfer-encoding":
			codings = append(codings, value)
		}
	}
	switch {
	case method == "HEAD" || status < 200 || status == 204 || status == 304:
		return r, ""
	case len(codings) > 0 && len(lengths) > 0:
		return nil, "response with both Transfer-Encoding and Content-Length"
	case len(codings) > 0:
		all := strings.Split(strings.Join(codings, ","), ",")
		if strings.EqualFold(strings.TrimSpace(all[len(all)-1]), "chunked") {
			r.body = bodyChunked
		} else {
			r.body = bodyUntilClose
		}
	case len(lengths) > 0:
		for _, l := range lengths[1:] {
			if l != lengths[0] {
				return nil, "response with differing Content-Lengths"
			}
		}
		n, ok := parseLength(lengths[0])
		if !ok {
			return nil, fmt.Sprintf("response with a bad Content-Length %q", lengths[0])
		}
		if n > 0 {
			r.body, r.length = bodyLength, n
		}
	default:
		r.body = bodyUntilClose
	}
	return r, ""
}

// framer follows the bodies of one direction's messages.
type framer struct {
	st      msgState
	remain  int64 // stLength, stChunkData
	trailer int   // stTrailer: bytes of trailer fields so far
	lenient bool  // accept LF for CRLF (responses: clients do)
}

func (f *framer) startBody(kind bodyKind, length int64) {
	switch kind {
	case bodyLength:
		f.st, f.remain = stLength, length
	case bodyChunked:
		f.st = stChunkSize
	case bodyUntilClose:
		f.st = stUntilClose
	default:
		f.st = stHead
	}
}

// line returns the line at the start of b without its ending, and the
// bytes it takes; n == 0 means more bytes are needed.
func (f *framer) line(b []byte, limit int) (line []byte, n int, why string) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > limit {
			return nil, 0, "line in body framing too long"
		}
		return nil, 0, ""
	}
	if i > 0 && b[i-1] == '\r' {
		return b[:i-1], i + 1, ""
	}
	if !f.lenient {
		return nil, 0, "bare LF in body framing (lines must end in CRLF)"
	}
	return b[:i], i + 1, ""
}

// body consumes body bytes and body framing at the start of b. It returns
// how many bytes it took and whether the message ended; 0 and false mean it
// needs more bytes.
func (f *framer) body(b []byte) (used int, ended bool, why string) {
	switch f.st {
	case stLength, stChunkData:
		k := int(min(int64(len(b)), f.remain))
		f.remain -= int64(k)
		if f.remain > 0 {
			return k, false, ""
		}
		if f.st == stLength {
			f.st = stHead
			return k, true, ""
		}
		f.st = stChunkEnd
		return k, false, ""
	case stChunkSize:
		line, n, why := f.line(b, maxChunkLine)
		if why != "" || n == 0 {
			return 0, false, why
		}
		size, why := parseChunkSize(line)
		if why != "" {
			return 0, false, why
		}
		if size == 0 {
			f.st, f.trailer = stTrailer, 0
		} else {
			f.st, f.remain = stChunkData, size
		}
		return n, false, ""
	case stChunkEnd:
		switch {
		case len(b) >= 2 && b[0] == '\r' && b[1] == '\n':
			f.st = stChunkSize
			return 2, false, ""
		case len(b) >= 1 && b[0] == '\n' && f.lenient:
			f.st = stChunkSize
			return 1, false, ""
		case len(b) == 0 || len(b) == 1 && b[0] == '\r':
			return 0, false, ""
		}
		return 0, false, "chunk data longer than its chunk size"
	case stTrailer:
		line, n, why := f.line(b, maxHead-f.trailer)
		if why != "" || n == 0 {
			return 0, false, why
		}
		if f.trailer += n; f.trailer > maxHead {
			return 0, false, "trailer section larger than 16 KiB"
		}
		if len(line) == 0 {
			f.st = stHead
			return n, true, ""
		}
		if _, _, why := parseField(string(line)); why != "" {
			return 0, false, "trailer: " + why
		}
		return n, false, ""
	}
	return 0, false, ""
}

// parseChunkSize parses "HEX[;ext]". Extensions are passed through unread,
// except that a quote is refused: servers that parse quoted extension
// values disagree on where such a line ends.
func parseChunkSize(line []byte) (int64, string) {
	bad := fmt.Sprintf("bad chunk size %q", printable(string(line[:min(len(line), 20)])))
	i := 0
	var n int64
	for ; i < len(line); i++ {
		d, ok := hexDigit(line[i])
		if !ok {
			break
		}
		if i >= 15 {
			return 0, "chunk size too large"
		}
		n = n<<4 | int64(d)
	}
	if i == 0 {
		return 0, bad
	}
	rest := line[i:]
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t') {
		j++
	}
	if j == len(rest) && j > 0 || j < len(rest) && rest[j] != ';' {
		return 0, bad
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f || c == '"' {
			return 0, "bad chunk extension"
		}
	}
	return n, ""
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
