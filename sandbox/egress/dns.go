package egress

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// FakeCIDR is the block the DNS stub hands out addresses from (RFC 2544
// benchmarking space, which no real service uses). The sandbox netns must
// route it (the default route via lo does) and redirect TCP to it like any
// other non-loopback destination.
const FakeCIDR = "198.18.0.0/15"

// Read-only after initialisation.
var fakePrefix = netip.MustParsePrefix(FakeCIDR)

// FakeTTL is the TTL of every fake A record.
const FakeTTL = 60 * time.Second

const fakePoolAddrs = 1 << 17 // addresses in fakePrefix

// fakePool maps allowed names to synthetic addresses and back. It holds at
// most max names; the least recently used one is evicted first. Addresses
// are handed out sequentially through the whole /15, so an evicted address
// is reused only after 131070 further allocations, long after any client
// cache (FakeTTL) has forgotten it.
type fakePool struct {
	mu     sync.Mutex
	max    int
	next   uint32 // offset of the next candidate address in fakePrefix
	byName map[string]*list.Element
	byAddr map[netip.Addr]*list.Element
	lru    list.List // front: most recently used; values are *fakeEntry
}

type fakeEntry struct {
	name string
	addr netip.Addr
}

func newFakePool(max int) *fakePool {
	return &fakePool{
		max:    max,
		next:   1,
		byName: make(map[string]*list.Element),
		byAddr: make(map[netip.Addr]*list.Element),
	}
}

// addrFor returns the fake address of name, allocating one if needed.
func (f *fakePool) addrFor(name string) netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if el, ok := f.byName[name]; ok {
		f.lru.MoveToFront(el)
		return el.Value.(*fakeEntry).addr
	}
	for f.lru.Len() >= f.max {
		old := f.lru.Remove(f.lru.Back()).(*fakeEntry)
		delete(f.byName, old.name)
		delete(f.byAddr, old.addr)
	}
	base := binary.BigEndian.Uint32(fakePrefix.Addr().AsSlice())
	var addr netip.Addr
	for {
		off := f.next
		f.next++
		if f.next >= fakePoolAddrs-1 {
			f.next = 1 // skip the all-zeros and all-ones addresses
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], base+off)
		addr = netip.AddrFrom4(b)
		if _, taken := f.byAddr[addr]; !taken {
			break // max < fakePoolAddrs, so this ends
		}
	}
	el := f.lru.PushFront(&fakeEntry{name: name, addr: addr})
	f.byName[name] = el
	f.byAddr[addr] = el
	return addr
}

// nameFor returns the name a fake address stands for.
func (f *fakePool) nameFor(addr netip.Addr) (string, bool) {
	if !addr.Is4() || !fakePrefix.Contains(addr) {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	el, ok := f.byAddr[addr]
	if !ok {
		return "", false
	}
	f.lru.MoveToFront(el)
	return el.Value.(*fakeEntry).name, true
}

func (f *fakePool) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lru.Len()
}

// ServeDNS answers DNS queries on pc (UDP) until pc is closed, then returns
// nil. See the package documentation for what it answers.
func (p *Proxy) ServeDNS(pc net.PacketConn) error {
	if !p.track(pc) {
		return fmt.Errorf("egress: serve dns: %w", net.ErrClosed)
	}
	defer p.untrack(pc)
	buf := make([]byte, 65535)
	var backoff time.Duration
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if backoff = nextBackoff(backoff); isTemporary(err) {
				p.log.Warn("egress: dns read", "err", err)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("egress: serve dns on %s: %w", pc.LocalAddr(), err)
		}
		backoff = 0
		if resp := p.answerDNS(buf[:n]); resp != nil {
			if _, err := pc.WriteTo(resp, from); err != nil {
				p.log.Debug("egress: dns write", "to", from, "err", err)
			}
		}
	}
}

// ServeDNSTCP answers DNS queries over TCP (RFC 7766 framing) on l until l
// is closed, then returns nil. Connections count towards MaxConns.
func (p *Proxy) ServeDNSTCP(l net.Listener) error {
	return p.serve(l, "dns", p.handleDNSConn)
}

func (p *Proxy) handleDNSConn(c net.Conn) {
	var lenBuf [2]byte
	msg := make([]byte, 65535)
	for {
		// A query must arrive within IdleTimeout of the last answer and be
		// read completely within HandshakeTimeout.
		_ = c.SetReadDeadline(time.Now().Add(p.opts.IdleTimeout))
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(p.opts.HandshakeTimeout))
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg[:n]); err != nil {
			return
		}
		resp := p.answerDNS(msg[:n])
		if resp == nil {
			return // not DNS: drop the connection
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		_ = c.SetWriteDeadline(time.Now().Add(p.opts.HandshakeTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// answerDNS builds the answer to one DNS message, or returns nil when the
// message is to be ignored (unparsable header, or a response).
func (p *Proxy) answerDNS(req []byte) (resp []byte) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("egress: panic answering dns", "panic", r)
			resp = nil
		}
	}()
	var parser dnsmessage.Parser
	h, err := parser.Start(req)
	if err != nil || h.Response {
		return nil
	}
	rh := dnsmessage.Header{
		ID:                 h.ID,
		Response:           true,
		OpCode:             h.OpCode,
		RecursionDesired:   h.RecursionDesired,
		RecursionAvailable: true,
	}
	if h.OpCode != 0 {
		rh.RCode = dnsmessage.RCodeNotImplemented
		return buildDNS(rh, nil, nil)
	}
	qs, err := parser.AllQuestions()
	if err != nil || len(qs) != 1 {
		rh.RCode = dnsmessage.RCodeFormatError
		return buildDNS(rh, nil, nil)
	}
	q := qs[0]
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	ev := Event{Time: time.Now(), Kind: KindDNS, Host: name, DNSType: dnsTypeName(q.Type)}
	var answer *netip.Addr
	switch {
	case q.Class != dnsmessage.ClassINET:
		rh.RCode = dnsmessage.RCodeNotImplemented
		ev.Verdict, ev.Reason = VerdictDeny, "query class is not IN"
	case !p.allow.AllowsNameAnyPort(name):
		rh.RCode = dnsmessage.RCodeNameError
		ev.Verdict, ev.Reason = VerdictDeny, "not in allowlist"
	case q.Type == dnsmessage.TypeA:
		a := p.pool.addrFor(name)
		answer = &a
		ev.Verdict, ev.Addr = VerdictAllow, a.String()
	default:
		// NODATA, not NXDOMAIN: the name exists (clients would otherwise
		// cache its absence for the A query too); the sandbox only gets A.
		ev.Verdict, ev.Reason = VerdictAllow, "no data: the sandbox only gets A records"
	}
	p.emit(ev)
	return buildDNS(rh, &q, answer)
}

func buildDNS(h dnsmessage.Header, q *dnsmessage.Question, a *netip.Addr) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), h)
	b.EnableCompression()
	if q != nil {
		if err := b.StartQuestions(); err != nil {
			return nil
		}
		if err := b.Question(*q); err != nil {
			return nil
		}
	}
	if a != nil {
		if err := b.StartAnswers(); err != nil {
			return nil
		}
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: uint32(FakeTTL / time.Second)}
		if err := b.AResource(rh, dnsmessage.AResource{A: a.As4()}); err != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

func dnsTypeName(t dnsmessage.Type) string {
	s := t.String()
	return strings.TrimPrefix(s, "Type")
}
