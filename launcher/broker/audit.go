package broker

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mcpbox/mcpbox/launcher/audit"
)

// auditLog serializes audit lines from both directions onto one writer.
type auditLog struct {
	mu  sync.Mutex
	w   io.Writer
	log *slog.Logger
}

// write stamps e with the time, formats it into buf and writes it with one
// Write. A failed write is logged, not returned: losing the audit log must
// not cut the session.
func (a *auditLog) write(buf []byte, e *audit.Entry) []byte {
	e.Time = time.Now()
	buf = audit.AppendEntry(buf[:0], e)
	a.mu.Lock()
	_, err := a.w.Write(buf)
	a.mu.Unlock()
	if err != nil {
		a.log.LogAttrs(context.Background(), slog.LevelWarn, "write audit log", slog.Any("err", err))
	}
	return buf
}

// appendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// so the result is always valid JSON. (The audit package has its own for
// its lines; this one is for the broker's answers to the client.)
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
