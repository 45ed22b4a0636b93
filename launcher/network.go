package launcher

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/mcpbox/mcpbox/sandbox/egress"
)

// Network modes of a session.
const (
	// NetworkNone: a namespace with only loopback; every connect to
	// anything else fails at once.
	NetworkNone = "none"
	// NetworkAllowlist: all TCP and DNS go to mcpbox's proxy and DNS stub,
	// which let through only the allowlisted hosts.
	NetworkAllowlist = "allowlist"
)

// hostsPath is the host's hosts file: names it maps to loopback cannot be
// allowlisted (checkHostsFile).
const hostsPath = "/etc/hosts"

// networkPolicy checks the network options and parses the allowlist. It
// returns a nil allowlist for NetworkNone.
func networkPolicy(opts Options) (*egress.Allowlist, error) {
	mode := opts.Network
	if mode == "" {
		mode = NetworkNone
		if len(opts.AllowHosts) > 0 {
			mode = NetworkAllowlist
		}
	}
	switch mode {
	case NetworkNone:
		if len(opts.AllowHosts) > 0 {
			return nil, &UsageError{Flag: "network", Err: fmt.Errorf("none contradicts --allow-host %s: drop one of them", opts.AllowHosts[0])}
		}
		return nil, nil
	case NetworkAllowlist:
		allow, err := egress.ParseAllowlist(opts.AllowHosts)
		if err != nil {
			return nil, &UsageError{Flag: "allow-host", Err: err}
		}
		return allow, nil
	}
	return nil, &UsageError{Flag: "network", Err: fmt.Errorf("%q: use none or allowlist", opts.Network)}
}

// egressEvents composes the consumers of a session's egress decisions:
// observe (trial's OnEgress) and the egress log's JSON lines (log). They
// get one event at a time, in the same order; nil when there is neither.
func egressEvents(log io.Writer, observe func(egress.Event)) func(egress.Event) {
	if log == nil && observe == nil {
		return nil
	}
	var mu sync.Mutex
	return func(e egress.Event) {
		mu.Lock()
		defer mu.Unlock()
		if observe != nil {
			observe(e)
		}
		if log == nil {
			return
		}
		if b, err := json.Marshal(e); err == nil {
			log.Write(append(b, '\n'))
		}
	}
}
