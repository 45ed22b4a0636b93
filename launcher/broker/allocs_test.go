// The race detector makes sync.Pool drop items at random, and json.Valid
// pools its scanner, so allocation counts only mean something without it.

//go:build !race

package broker

import (
	"bytes"
	"io"
	"testing"
)

func TestNoAllocsPerMessage(t *testing.T) {
	msg := mcp1KB()
	b := New(Options{Diag: io.Discard})
	for _, tc := range []struct {
		name string
		line []byte
		copy func(io.Writer, io.Reader) error
	}{
		{"server to client", append(bytes.Clone(msg), '\n'), b.ServerToClient},
		{"server to client CRLF", append(bytes.Clone(msg), '\r', '\n'), b.ServerToClient},
		{"server to client with diverted lines", append([]byte("log line\n"), append(bytes.Clone(msg), '\n')...), b.ServerToClient},
		{"client to server", append(bytes.Clone(msg), '\n'), b.ClientToServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allocs := func(n int) float64 {
				in := bytes.Repeat(tc.line, n)
				r := bytes.NewReader(in)
				return testing.AllocsPerRun(20, func() {
					r.Reset(in)
					if err := tc.copy(io.Discard, r); err != nil {
						t.Fatal(err)
					}
				})
			}
			// A call allocates its reader and buffers; nothing may scale
			// with the number of messages.
			few, many := allocs(10), allocs(1000)
			if many > few || many > 8 {
				t.Errorf("%v allocations for 10 messages, %v for 1000; want a few per call, none per message", few, many)
			}
		})
	}
}
