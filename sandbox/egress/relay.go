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
// Between two TCP sockets on Linux the copy is io.Copy, which uses
// splice(2) and never passes the bytes through user space; the idle
// watchdog then asks the kernel when data last arrived (recvIdle).
// Otherwise the copy goes through a buffer and every read is noted.
func (s *session) relay(check bool) {
	p := s.p
	idle := p.opts.IdleTimeout
	_, ok1 := recvIdle(s.client)
	_, ok2 := recvIdle(s.upstream)
	splice := ok1 && ok2

	var last atomic.Int64 // unix nanoseconds of the last read on either side
	touch := func() { last.Store(time.Now().UnixNano()) }
	touch()
	var closeOnce sync.Once
	closeBoth := func() {
		closeOnce.Do(func() {
			_ = s.client.Close()
			_ = s.upstream.Close()
		})
	}

	// The watchdog closes both sides once nothing has moved for idle; that
	// also frees a writer stuck on a peer that stopped reading.
	var idled atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTimer(idle)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				since := time.Since(time.Unix(0, last.Load()))
				if splice {
					for _, c := range []net.Conn{s.client, s.upstream} {
						if d, ok := recvIdle(c); ok && d < since {
							since = d
						}
					}
				}
				if since >= idle {
					idled.Store(true)
					closeBoth()
					return
				}
				t.Reset(idle - since)
			}
		}
	}()

	type result struct {
		n   int64
		err error
	}
	downc := make(chan result, 1)
	go func() {
		n, err := copyConn(s.client, s.upstream, splice, touch)
		if err == nil {
			closeWrite(s.client)
		} else {
			closeBoth()
		}
		downc <- result{n, err}
	}()

	var (
		up      int64
		upErr   error
		denyWhy string
	)
	if check {
		buf, res, _ := sniff(s.client, s.pending, time.Time{}, p.opts.HandshakeTimeout, touch)
		s.pending = buf
		if res.proto != "" {
			denyWhy = s.judge(res)
		}
	}
	if denyWhy != "" {
		closeBoth()
	} else {
		if len(s.pending) > 0 {
			var n int
			n, upErr = s.upstream.Write(s.pending)
			up = int64(n)
			s.pending = nil
		}
		if upErr == nil {
			var n int64
			n, upErr = copyConn(s.upstream, s.client, splice, touch)
			up += n
		}
		if upErr == nil {
			closeWrite(s.upstream)
		} else {
			closeBoth()
		}
	}
	down := <-downc

	s.ev.BytesUp, s.ev.BytesDown = up, down.n
	switch {
	case denyWhy != "":
		s.deny(denyWhy)
	case idled.Load():
		s.finish(VerdictAllow, "closed after "+idle.String()+" idle")
	default:
		reason := ""
		for _, err := range []error{upErr, down.err} {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				reason = err.Error()
				break
			}
		}
		s.finish(VerdictAllow, reason)
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
