//go:build !linux

package egress

import (
	"net"
	"time"
)

// recvIdle is Linux-only; elsewhere relay copies through a buffer and
// watches every read.
func recvIdle(net.Conn) (time.Duration, bool) { return 0, false }
