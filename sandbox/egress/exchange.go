package egress

import (
	"fmt"
	"sync"
)

// relayMode is how a connection's bytes are relayed.
type relayMode uint8

const (
	modeUndecided relayMode = iota // the client's first bytes are not judged yet
	modeOpaque                     // bytes as they are: TLS, another protocol, a granted address
	modeHTTP                       // plain HTTP/1.x to a name: every request checked
)

// exchange follows the requests and responses of one connection. The
// client goroutine calls requests and awaitUpgrade, the upstream goroutine
// calls responses; what both touch is under mu.
//
// A request's bytes are forwarded only after its whole head has passed
// check. A response is framed to find where it ends; it is matched to the
// oldest request not yet answered. A request with Upgrade: websocket holds
// the client's further bytes until its response is known: after 101 both
// directions are opaque, otherwise the next bytes must be a request again.
// When a response ends before its request's body was forwarded completely
// the server may be reading the rest as something else, so nothing more
// is forwarded and the connection ends once every response is in.
type exchange struct {
	check func(*reqHead) string // policy for each request head
	limit int                   // requests the connection may carry; 0: no limit

	// Client goroutine only.
	skip int // bytes to pass before the first request's body (begin)
	req  framer
	nreq int      // requests approved
	cur  *request // the request whose body is being forwarded
	wait *upgrade // the upgrade being waited for in stWait

	// Upstream goroutine only.
	resp framer

	mu      sync.Mutex
	mode    relayMode
	early   bool       // upstream bytes were relayed before the mode was known
	pending []*request // forwarded and not yet answered completely, oldest first
	sent    int        // requests forwarded
	cutoff  bool       // a response ended before its request's body: no more requests
}

// request is a forwarded request as the response side needs it.
type request struct {
	method   string
	upgrade  *upgrade // non-nil while an Upgrade: websocket request awaits its response
	bodyDone bool     // all of its body was forwarded
}

// upgrade is an Upgrade: websocket request's outcome: done is closed once
// the response status is known, and upgraded says whether it was 101.
type upgrade struct {
	done     chan struct{}
	upgraded bool
}

func newExchange(check func(*reqHead) string, limit int) *exchange {
	return &exchange{check: check, limit: limit, resp: framer{lenient: true}}
}

// decide fixes the relay mode from the client's first bytes. HTTP is
// refused when the upstream already sent bytes: its responses could no
// longer be told apart.
func (x *exchange) decide(http bool) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !http {
		x.mode = modeOpaque
		return ""
	}
	if x.early {
		return "the server sent bytes before the first HTTP request, so its responses cannot be told apart"
	}
	x.mode = modeHTTP
	return ""
}

func (x *exchange) currentMode() relayMode {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.mode
}

// upstreamRead is called when upstream bytes are about to be relayed, and
// returns the mode to relay them in.
func (x *exchange) upstreamRead() relayMode {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.mode == modeUndecided {
		x.early = true
	}
	return x.mode
}

// begin starts the exchange with a request head the caller checked and
// rewrote itself (the explicit proxy's), as the first headLen bytes of the
// client's stream; its body follows.
func (x *exchange) begin(h *reqHead, headLen int) {
	x.skip = headLen
	x.mode = modeHTTP
	x.push(&request{method: h.method})
	x.req.startBody(h.body, h.length)
	if x.req.st == stHead {
		x.requestEnded()
	}
}

func (x *exchange) push(r *request) {
	x.nreq++
	x.cur = r
	x.mu.Lock()
	x.pending = append(x.pending, r)
	x.sent++
	x.mu.Unlock()
}

// stop ends the requests: none is forwarded any more. It reports whether
// the connection must end now: nothing is outstanding, or the request
// being forwarded was cut short, so the upstream waits for the rest of it.
// Otherwise it ends once the responses to the requests forwarded so far
// are in. The client goroutine calls it.
func (x *exchange) stop() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cutoff = true
	return len(x.pending) == 0 || x.cur != nil && !x.cur.bodyDone
}

func (x *exchange) isCutoff() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cutoff
}

// requests approves a prefix of b, the client bytes not forwarded yet:
// request heads that pass the checks, whole, and body bytes as far as the
// framing goes. It returns how many bytes may be forwarded and, when the
// connection must end, why.
func (x *exchange) requests(b []byte) (int, string) {
	n := min(x.skip, len(b))
	x.skip -= n
	if x.skip > 0 {
		return n, ""
	}
	for {
		if x.req.st != stOpaque && x.req.st != stDone && x.isCutoff() {
			x.req.st = stDone
		}
		switch x.req.st {
		case stHead:
			if x.limit > 0 && x.nreq >= x.limit {
				x.req.st = stDone
				continue
			}
			n += skipEmptyLines(b[n:])
			rest := b[n:]
			if len(rest) == 0 {
				return n, ""
			}
			end, why := scanHead(rest)
			if why != "" {
				return n, x.nth(why)
			}
			if end < 0 {
				return n, ""
			}
			h, why := parseRequestHead(rest[:end])
			if why == "" && x.check != nil {
				why = x.check(h)
			}
			if why != "" {
				return n, x.nth(why)
			}
			r := &request{method: h.method}
			if h.upgrade {
				r.upgrade = &upgrade{done: make(chan struct{})}
				x.wait = r.upgrade
			}
			x.push(r)
			n += end
			x.req.startBody(h.body, h.length)
			if x.req.st == stHead {
				x.requestEnded()
			}
		case stLength, stChunkSize, stChunkData, stChunkEnd, stTrailer:
			used, ended, why := x.req.body(b[n:])
			n += used
			if why != "" {
				return n, x.nthBody(why)
			}
			if ended {
				x.requestEnded()
				continue
			}
			if used == 0 {
				return n, ""
			}
		default: // stWait, stDone, stOpaque: the caller takes over
			return n, ""
		}
	}
}

// nth names the next request, which a refusal is about, when it is not the
// first; nthBody names the current one, whose body is being framed.
func (x *exchange) nth(why string) string {
	if x.nreq == 0 {
		return why
	}
	return fmt.Sprintf("request %d on the connection: %s", x.nreq+1, why)
}

func (x *exchange) nthBody(why string) string {
	if x.nreq <= 1 {
		return why
	}
	return fmt.Sprintf("request %d on the connection: %s", x.nreq, why)
}

func (x *exchange) requestEnded() {
	x.mu.Lock()
	x.cur.bodyDone = true
	x.mu.Unlock()
	if x.cur.upgrade != nil {
		x.req.st = stWait
	}
}

// awaitUpgrade blocks in stWait until the upgrade's response status is
// known or closed is closed (then it returns false).
func (x *exchange) awaitUpgrade(closed <-chan struct{}) bool {
	select {
	case <-x.wait.done:
	case <-closed:
		return false
	}
	if x.wait.upgraded {
		x.req.st = stOpaque
	} else {
		x.req.st = stHead
	}
	x.wait = nil
	return true
}

// responses approves a prefix of b, the upstream bytes not relayed yet:
// whole response heads and body bytes as far as the framing goes. finished
// reports that the last response the connection may carry has ended, and
// why that the responses cannot be framed.
func (x *exchange) responses(b []byte) (n int, finished bool, why string) {
	for {
		switch x.resp.st {
		case stHead:
			if n == len(b) {
				return n, false, ""
			}
			end, why := scanResponseHead(b[n:])
			if why != "" || end < 0 {
				return n, false, why
			}
			x.mu.Lock()
			var front *request
			if len(x.pending) > 0 {
				front = x.pending[0]
			}
			x.mu.Unlock()
			if front == nil {
				return n, false, "a response to no request"
			}
			r, why := parseResponseHead(b[n:n+end], front.method)
			if why == "" && r.status == 101 && front.upgrade == nil {
				why = "101 Switching Protocols to a request that asked for no upgrade"
			}
			if why != "" {
				return n, false, why
			}
			n += end
			switch {
			case r.status == 101:
				front.upgrade.upgraded = true
				close(front.upgrade.done)
				front.upgrade = nil
				x.resp.st = stOpaque
				x.responseEnded()
			case r.status < 200: // interim (100 Continue, 103 Early Hints): the final one follows
			default:
				if front.upgrade != nil {
					close(front.upgrade.done)
					front.upgrade = nil
				}
				x.resp.startBody(r.body, r.length)
				if x.resp.st == stHead && x.responseEnded() {
					return n, true, ""
				}
			}
		case stLength, stChunkSize, stChunkData, stChunkEnd, stTrailer:
			used, ended, why := x.resp.body(b[n:])
			n += used
			if why != "" {
				return n, false, why
			}
			if ended {
				if x.responseEnded() {
					return n, true, ""
				}
				continue
			}
			if used == 0 {
				return n, false, ""
			}
		default: // stUntilClose, stOpaque: everything else belongs to it
			return len(b), false, ""
		}
	}
}

// responseEnded retires the oldest request and reports whether the
// connection is finished: no request outstanding and none may follow.
func (x *exchange) responseEnded() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	front := x.pending[0]
	x.pending = x.pending[1:]
	if !front.bodyDone {
		x.cutoff = true
	}
	return len(x.pending) == 0 && (x.cutoff || x.limit > 0 && x.sent >= x.limit)
}
