package egress

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const relayBufSize = 32 << 10

// relay copies bytes between client and upstream until both directions
// have ended, one fails, or nothing moved either way for IdleTimeout. When
// one side ends its stream the other side's write half is closed, so
// request/response protocols that rely on half-close work. With check set,
// the client's first bytes (which arrived after PeekWait, so the upstream
// is already connected) are judged before any of them is forwarded.
//
// Plain HTTP to a name goes through the exchange: each request head is
// checked before it is forwarded, bodies and responses are framed (see
// exchange). Anything else is opaque. Between two TCP sockets on Linux an
// opaque copy is io.Copy, which uses splice(2) and never passes the bytes
// through user space; the idle watchdog then asks the kernel when data last
// arrived (recvIdle). Otherwise the copy goes through a buffer and every
// read is noted.
func (s *session) relay(check bool) {
	idle := s.p.opts.IdleTimeout
	_, ok1 := recvIdle(s.client)
	_, ok2 := recvIdle(s.upstream)
	canSplice := ok1 && ok2
	x := s.http
	if x == nil {
		x = newExchange(s.checkRequest, 0)
		s.http = x
		if !check {
			x.decide(s.name != "" && s.proto == "http") // nothing relayed yet: cannot fail
		}
	}

	l := newRelayLink(s.client, s.upstream)
	stop := make(chan struct{})
	defer close(stop)
	go l.watch(idle, stop)

	downc := make(chan relayResult, 1)
	go func() {
		r := s.copyDown(x, canSplice, &l.spliceDown, l.touch)
		switch {
		case r.err == nil && r.why == "" && !r.finished:
			closeWrite(s.client)
		default:
			l.closeBoth()
		}
		downc <- r
	}()
	up := s.relayUp(l, x, check, canSplice)
	down := <-downc

	s.ev.BytesUp, s.ev.BytesDown = up.n, down.n
	switch {
	case up.deny != "":
		s.deny(up.deny)
	case down.why != "":
		s.finish(VerdictError, "upstream's HTTP response: "+down.why)
	case l.idled.Load():
		s.finish(VerdictAllow, "closed after "+idle.String()+" idle")
	default:
		reason := ""
		for _, err := range []error{up.err, down.err} {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				reason = err.Error()
				break
			}
		}
		s.finish(VerdictAllow, reason)
	}
}

// relayUp is the client's direction of relay: it judges the client's first
// bytes if check is set, forwards what the policy lets through, then ends
// the connection as that direction ended.
func (s *session) relayUp(l *relayLink, x *exchange, check, canSplice bool) relayResult {
	var up relayResult
	if check {
		buf, res, _ := sniff(s.client, s.pending, time.Time{}, s.p.opts.HandshakeTimeout, l.touch)
		s.pending = buf
		s.proto = res.proto
		if res.proto != "" {
			up.deny = s.judge(res)
		}
		if up.deny == "" {
			up.deny = x.decide(s.name != "" && res.proto == "http")
		}
	}
	if up.deny == "" {
		if x.currentMode() == modeHTTP {
			up = s.copyUpHTTP(x, l.closed, l.touch)
		} else {
			up = s.copyUpOpaque(canSplice, &l.spliceUp, l.touch)
		}
	}
	switch {
	case up.deny != "" && x.currentMode() == modeHTTP:
		// The requests before the refused one are the client's due: their
		// responses pass, then the connection ends.
		if x.stop() {
			l.closeBoth()
		}
	case up.deny != "" || up.err != nil:
		l.closeBoth()
	case !up.finished:
		closeWrite(s.upstream)
	}
	return up
}

// relayLink is what the two directions of a relay and its idle watchdog
// share.
type relayLink struct {
	client, upstream     net.Conn
	last                 atomic.Int64 // unix nanoseconds of the last read on either side
	spliceUp, spliceDown atomic.Bool  // directions the kernel copies
	idled                atomic.Bool  // the watchdog closed the connection
	closed               chan struct{}
	closeOnce            sync.Once
}

func newRelayLink(client, upstream net.Conn) *relayLink {
	l := &relayLink{client: client, upstream: upstream, closed: make(chan struct{})}
	l.touch()
	return l
}

// touch notes that data was just read.
func (l *relayLink) touch() { l.last.Store(time.Now().UnixNano()) }

// closeBoth closes both sides, which ends both directions.
func (l *relayLink) closeBoth() {
	l.closeOnce.Do(func() {
		close(l.closed)
		_ = l.client.Close()
		_ = l.upstream.Close()
	})
}

// watch is the watchdog: it closes both sides once nothing has moved for
// idle; that also frees a writer stuck on a peer that stopped reading. It
// returns when stop is closed.
func (l *relayLink) watch(idle time.Duration, stop <-chan struct{}) {
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			since := time.Since(time.Unix(0, l.last.Load()))
			for _, d := range []struct {
				on  *atomic.Bool
				src net.Conn
			}{{&l.spliceUp, l.client}, {&l.spliceDown, l.upstream}} {
				if d.on.Load() {
					if r, ok := recvIdle(d.src); ok && r < since {
						since = r
					}
				}
			}
			if since >= idle {
				l.idled.Store(true)
				l.closeBoth()
				return
			}
			t.Reset(idle - since)
		}
	}
}

// relayResult is how one direction of a relay ended.
type relayResult struct {
	n        int64  // bytes written
	err      error  // a read or write failed
	deny     string // client side: the policy refused what came next
	why      string // upstream side: its responses could not be framed
	finished bool   // the exchange is over: neither half-close nor read on
}

// copyUpOpaque forwards what was read already, then the rest of the
// client's stream as it is.
func (s *session) copyUpOpaque(canSplice bool, spliced *atomic.Bool, touch func()) relayResult {
	var r relayResult
	if len(s.pending) > 0 {
		n, err := s.upstream.Write(s.pending)
		r.n, r.err = int64(n), err
		s.pending = nil
		if err != nil {
			return r
		}
	}
	spliced.Store(canSplice)
	n, err := copyConn(s.upstream, s.client, canSplice, touch)
	r.n += n
	r.err = err
	return r
}

// copyUpHTTP forwards the client's requests as the exchange approves them.
func (s *session) copyUpHTTP(x *exchange, closed <-chan struct{}, touch func()) relayResult {
	var r relayResult
	buf := s.pending
	s.pending = nil
	rbuf := make([]byte, relayBufSize)
	for {
		n, why := x.requests(buf)
		if n > 0 {
			w, err := s.upstream.Write(buf[:n])
			r.n += int64(w)
			if err != nil {
				r.err = err
				return r
			}
			buf = buf[n:]
		}
		if why != "" {
			r.deny = why
			return r
		}
		switch x.req.st {
		case stWait:
			if !x.awaitUpgrade(closed) {
				r.err = net.ErrClosed
				return r
			}
			continue
		case stDone:
			// The connection carries no more requests: read no more, and
			// leave the upstream's read half open for its last response.
			r.finished = true
			return r
		case stOpaque:
			if len(buf) > 0 {
				w, err := s.upstream.Write(buf)
				r.n += int64(w)
				if err != nil {
					r.err = err
					return r
				}
			}
			n, err := copyConn(s.upstream, s.client, false, touch)
			r.n += n
			r.err = err
			return r
		}
		k, err := s.client.Read(rbuf)
		if k > 0 {
			touch()
			buf = append(buf, rbuf[:k]...)
		}
		if err != nil {
			if err != io.EOF {
				r.err = err
				return r
			}
			if _, why := x.requests(buf); why != "" {
				r.deny = why
			} else if len(buf) > 0 && x.req.st != stDone {
				r.deny = x.nth("truncated HTTP request")
			}
			return r
		}
	}
}

// copyDown relays the upstream's bytes to the client: as they are when the
// connection is opaque, through the exchange's response framing when it is
// HTTP, and noted as early while the client's first bytes are not judged.
func (s *session) copyDown(x *exchange, canSplice bool, spliced *atomic.Bool, touch func()) relayResult {
	var r relayResult
	if canSplice && x.currentMode() == modeOpaque {
		spliced.Store(true)
		r.n, r.err = io.Copy(s.client, s.upstream)
		return r
	}
	rbuf := make([]byte, relayBufSize)
	var held []byte // response bytes read but not yet approved
	write := func(b []byte) bool {
		w, err := s.client.Write(b)
		r.n += int64(w)
		r.err = err
		return err == nil
	}
	for {
		k, rerr := s.upstream.Read(rbuf)
		if k > 0 {
			touch()
			if x.upstreamRead() != modeHTTP {
				if !write(rbuf[:k]) {
					return r
				}
			} else {
				held = append(held, rbuf[:k]...)
				n, finished, why := x.responses(held)
				if n > 0 && !write(held[:n]) {
					return r
				}
				held = append(held[:0], held[n:]...)
				if why != "" || finished {
					r.why, r.finished = why, finished
					return r
				}
			}
		}
		if rerr != nil {
			if rerr != io.EOF {
				r.err = rerr
			} else if len(held) > 0 {
				write(held) // a response cut short: pass on what came
			}
			return r
		}
	}
}

// copyConn copies src to dst until src ends (nil error) or either fails.
// Unless splice is set, touch is called after every read that returned
// data.
func copyConn(dst, src net.Conn, splice bool, touch func()) (int64, error) {
	if splice {
		return io.Copy(dst, src)
	}
	buf := make([]byte, relayBufSize)
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			touch()
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return total, nil
			}
			return total, rerr
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
