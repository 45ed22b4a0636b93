package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// maxAuditID is the longest raw id copied into an audit line; a longer one
// is left out rather than let a peer blow up the log.
const maxAuditID = 256

// auditLog serializes audit lines from both directions onto one writer.
type auditLog struct {
	mu  sync.Mutex
	w   io.Writer
	log *slog.Logger
}

// auditEntry is one audit line before formatting. Only metadata: never a
// message body.
type auditEntry struct {
	dir      string // "c2s" or "s2c": the way the message travelled
	kind     kind
	id       []byte
	method   string
	tool     string
	args     []byte // a tools/call's raw arguments
	hasArgs  bool
	duration time.Duration // for a response to a tracked request
	hasDur   bool
	errCode  []byte         // raw error.code
	blocked  bool           // the broker answered instead of the peer
	redacted map[string]int // secrets masked, by kind
	body     []byte         // the whole message, with --audit-bodies
	// A policy line (kind policy) says what a policy found or did.
	policy, finding, severity, detail string
}

// write formats e into buf and writes it with one Write. A failed write is
// logged, not returned: losing the audit log must not cut the session.
func (a *auditLog) write(buf []byte, e *auditEntry) []byte {
	buf = appendAudit(buf[:0], time.Now(), e)
	a.mu.Lock()
	_, err := a.w.Write(buf)
	a.mu.Unlock()
	if err != nil {
		a.log.LogAttrs(context.Background(), slog.LevelWarn, "write audit log", slog.Any("err", err))
	}
	return buf
}

func appendAudit(b []byte, now time.Time, e *auditEntry) []byte {
	b = append(b, `{"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","dir":"`...)
	b = append(b, e.dir...)
	b = append(b, `","kind":"`...)
	b = append(b, e.kind.String()...)
	b = append(b, '"')
	if len(e.id) > 0 && len(e.id) <= maxAuditID && utf8.Valid(e.id) && json.Valid(e.id) {
		b = append(b, `,"id":`...)
		b = append(b, e.id...)
	}
	if e.method != "" {
		b = append(b, `,"method":`...)
		b = appendQuoted(b, e.method)
	}
	if e.tool != "" {
		b = append(b, `,"tool":`...)
		b = appendQuoted(b, e.tool)
	}
	if e.hasArgs {
		sum := sha256.Sum256(e.args)
		b = append(b, `,"args_bytes":`...)
		b = strconv.AppendInt(b, int64(len(e.args)), 10)
		b = append(b, `,"args_sha256":"`...)
		b = hex.AppendEncode(b, sum[:])
		b = append(b, '"')
	}
	if e.hasDur {
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, float64(e.duration.Microseconds())/1000, 'f', -1, 64)
	}
	if len(e.errCode) > 0 && len(e.errCode) <= 32 && json.Valid(e.errCode) && e.errCode[0] != '"' {
		b = append(b, `,"error_code":`...)
		b = append(b, e.errCode...)
	}
	if e.blocked {
		b = append(b, `,"blocked":true`...)
	}
	if len(e.redacted) > 0 {
		b = append(b, `,"redacted":{`...)
		kinds := make([]string, 0, len(e.redacted))
		for k := range e.redacted {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for i, k := range kinds {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendQuoted(b, k)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(e.redacted[k]), 10)
		}
		b = append(b, '}')
	}
	for _, f := range []struct{ name, v string }{{"policy", e.policy}, {"finding", e.finding}, {"severity", e.severity}, {"detail", e.detail}} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = appendQuoted(b, f.v)
		}
	}
	if len(e.body) > 0 {
		b = append(b, `,"body":`...)
		b = append(b, e.body...)
	}
	return append(b, "}\n"...)
}

// appendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// so the result is always valid JSON.
func appendQuoted(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
