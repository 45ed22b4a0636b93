// Package egress owns a sandbox's way out: its network namespace and
// nftables rules (NetNS), the allowlist, the address policy, the TCP proxy
// and the DNS stub that serve the namespace, and the log of every decision
// they take.
//
// NetNS makes a namespace with only loopback and a default route through
// it; Install redirects all outgoing TCP to a listener served by
// Proxy.ServeTCP and all DNS to Proxy.ServeDNS / ServeDNSTCP, and drops
// everything else. Those sockets are opened inside the namespace (NetNS.Do)
// and the proxy does its upstream I/O from the host's namespace. Start does
// all of it for one sandbox and hands each decision to a callback as an
// Event; the caller decides where events go (a log file, a trial's report).
//
// The package knows nothing of the launcher, containers or MCP, and must
// not import them (nor package sandbox): it takes an Allowlist and returns
// a namespace path and environment variables for the caller's spec.
//
// # DNS: fake addresses
//
// The stub never forwards a query. An A query for a name the allowlist
// allows on some port gets a synthetic address from FakeCIDR
// (198.18.0.0/15), stable for the name while the proxy lives, TTL 60 s;
// the pool holds Options.MaxNames names and forgets the least recently
// used. Any other type (AAAA included) for an allowed name is answered
// NOERROR with no records, so clients use IPv4 and do not cache the name as
// missing. A name that is not allowed is NXDOMAIN whatever the type, a
// class other than IN or an opcode other than QUERY is NOTIMP, a query
// with other than one question is FORMERR, and an unparsable packet is
// dropped. Nothing is resolved on the host at this point. Because the
// sandbox only ever sees fake addresses, the proxy knows the name behind
// every connection (whatever the protocol), DNS rebinding has nothing to
// rebind, and connections to the sandbox's own loopback are not touched.
//
// # Connections
//
// For each connection the proxy finds the target: an explicit proxy
// request (HTTP CONNECT, or an absolute-form http:// request, when the
// client connected to the proxy itself), the name behind a fake address,
// or else the bare address the client dialled. Then, in order:
//
//  1. A name must be allowed on that port (Allowlist.AllowsName) before
//     any DNS lookup; a bare address needs a cidr: grant
//     (Allowlist.AllowsAddr), host entries never cover it.
//  2. The client's first bytes are read and buffered, not consumed: a TLS
//     ClientHello whose SNI names another host, a truncated or malformed
//     ClientHello, or an HTTP/1.x request that names another host are
//     refused. (A bare-address target has no name to compare SNI or Host
//     with.) Other bytes pass: this is a TCP proxy, and a protocol that is
//     neither TLS nor HTTP (Postgres, Redis, ...) is relayed when the name
//     and port are allowed. A transparent connection waits
//     Options.PeekWait for these bytes before dialling; if none come (the
//     server may speak first), the upstream is dialled and the first
//     client bytes are still checked before any is forwarded. A CONNECT
//     tunnel is dialled before "200 Connection established" (so a failure
//     is a 502), and its first bytes are checked the same way.
//  3. The name is resolved on the host; addresses that are Forbidden and
//     not granted by a cidr: entry are dropped, and if none is left the
//     connection is refused.
//  4. Exactly a checked address is dialled (IPv4 first, the next on
//     failure); the default dialer checks it once more just before
//     connect(2). Bytes are relayed both ways with half-close until both
//     sides end or nothing moved for Options.IdleTimeout.
//
// Each connection yields one Event when it ends (at once when refused).
//
// # Plain HTTP: every request
//
// On a plain-HTTP connection to a name (transparent, or inside a CONNECT
// tunnel) every request is checked, not only the first: keep-alive and
// pipelining stay, for API clients, and a request for another host on the
// same connection is refused before any of its bytes is forwarded; the
// requests before it still get their responses, then the connection ends.
// To know where each request starts, bodies are framed exactly as the
// upstream must frame them, and whatever two servers could frame or route
// differently is refused: see http1.go (line endings other than CRLF,
// obs-fold, Transfer-Encoding with Content-Length or other than a single
// "chunked", no Host or two, CONNECT, HTTP/0.9, the HTTP/2 preface, h2c).
// A stream is taken for HTTP when its first line says so, whatever the
// method. Responses are framed too, only to match them to requests: after
// "101 Switching Protocols" to a websocket request the connection is the
// upstream's protocol, opaque; an upgrade that is not granted leaves it
// HTTP. A response that ends before its request's body was forwarded ends
// the connection after it. An http:// request through the proxy's own
// port (HTTP_PROXY) is forwarded with "Connection: close" and is the only
// one its connection carries.
//
// # This machine's loopback
//
// Inside the sandbox, 127.0.0.1 is the sandbox's. A localhost:PORT entry
// makes the namespace send the sandbox's TCP to 127.0.0.1:PORT and
// [::1]:PORT to the proxy (Install), which dials exactly that port of the
// host's loopback from the host's namespace (the address the client used
// first, then the other family) and logs it like any connection, as host
// "localhost". Every other port, and every other loopback address, stays
// the sandbox's own. No other entry reaches the host's loopback: a name
// that resolves to it is refused, cidr: grants never cover it, and the
// allowlist refuses entries that could only mean loopback (see Allowlist).
//
// # What it does not do
//
// It does not terminate TLS or look inside it. The SNI of the first
// ClientHello is all it sees of a TLS connection: the Host header inside
// (domain fronting through a CDN that serves several names at one
// address), an Encrypted Client Hello (the name that counts is encrypted;
// the outer SNI names the provider), a TLS 1.2 renegotiation or a resumed
// session for another name are invisible, as are the streams of HTTP/2
// inside TLS. All of it reaches only an allowed name's addresses. A
// protocol that is neither TLS nor HTTP is relayed unread once its name
// and port are allowed. There is no UDP egress besides DNS to the stub,
// and no proxy authentication: the listener is reachable from the sandbox
// only.
package egress
