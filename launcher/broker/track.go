package broker

import (
	"sync"
	"time"
)

// DefaultMaxInFlight is how many requests per direction are tracked when
// Options.MaxInFlight is zero.
const DefaultMaxInFlight = 4096

// pending is a request waiting for its response.
type pending struct {
	id     string // the id as the requester wrote it, for the broker's own answers
	method string
	tool   string // the tool of a tools/call
	start  time.Time
	seq    uint64
	paged  bool // a list request for a page after the first
}

// tracker maps the ids of one direction's requests in flight, by idKey,
// to what they asked. It is bounded: past max, the oldest request is
// forgotten, and its response is one to an unknown id (withheld if it
// carries a list).
type tracker struct {
	mu    sync.Mutex
	max   int
	m     map[string]pending
	order []orderEntry // arrival order; entries whose seq no longer matches m are stale
	head  int
	seq   uint64
}

type orderEntry struct {
	key string
	seq uint64
}

func newTracker(max int) *tracker {
	return &tracker{max: max, m: make(map[string]pending)}
}

// add records a request: buf holds its key (buf[:keyLen]) followed by its
// raw id. It returns the method of a request it evicted to stay within the
// bound, if any. With unique set, a request whose key is already in flight
// is not recorded (added is false): one response could answer both.
func (t *tracker) add(buf []byte, keyLen int, p pending, unique bool) (added bool, evicted string, didEvict bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[string(buf[:keyLen])]; ok && unique {
		return false, "", false
	}
	t.seq++
	p.seq = t.seq
	both := string(buf) // one allocation for the key and the id
	k := both[:keyLen]
	p.id = both[keyLen:]
	t.m[k] = p
	t.order = append(t.order, orderEntry{k, p.seq})
	for len(t.m) > t.max && t.head < len(t.order) {
		e := t.order[t.head]
		t.order[t.head] = orderEntry{}
		t.head++
		if old, ok := t.m[e.key]; ok && old.seq == e.seq {
			delete(t.m, e.key)
			evicted, didEvict = old.method, true
		}
	}
	if n := len(t.order) - t.head; n > 2*t.max+64 || (t.head > 0 && t.head >= len(t.order)/2) {
		t.compact()
	}
	return true, evicted, didEvict
}

// has reports whether a request with key is in flight.
func (t *tracker) has(key []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[string(key)]
	return ok
}

// compact drops answered entries from order, so it stays within a small
// multiple of the bound however many requests a session makes.
func (t *tracker) compact() {
	n := 0
	for _, e := range t.order[t.head:] {
		if p, ok := t.m[e.key]; ok && p.seq == e.seq {
			t.order[n] = e
			n++
		}
	}
	clear(t.order[n:])
	t.order, t.head = t.order[:n], 0
}

// get returns the request with key, leaving it in flight.
func (t *tracker) get(key []byte) (pending, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[string(key)]
	return p, ok
}

// take removes and returns the request with key.
func (t *tracker) take(key []byte) (pending, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[string(key)]
	if ok {
		delete(t.m, string(key))
	}
	return p, ok
}

func (t *tracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// intern returns common method names without allocating.
func intern(s []byte) string {
	switch string(s) {
	case "tools/call":
		return "tools/call"
	case "tools/list":
		return "tools/list"
	case "initialize":
		return "initialize"
	case "ping":
		return "ping"
	case "resources/read":
		return "resources/read"
	case "resources/list":
		return "resources/list"
	case "prompts/get":
		return "prompts/get"
	case "prompts/list":
		return "prompts/list"
	case "sampling/createMessage":
		return "sampling/createMessage"
	case "elicitation/create":
		return "elicitation/create"
	case "roots/list":
		return "roots/list"
	case "notifications/progress":
		return "notifications/progress"
	}
	return string(s)
}
