package broker

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

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
