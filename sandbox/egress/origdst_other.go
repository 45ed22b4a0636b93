//go:build !linux

package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// originalDst needs Linux conntrack; elsewhere every connection is refused
// unless Options.OriginalDst is set.
func originalDst(net.Conn) (netip.AddrPort, error) {
	return netip.AddrPort{}, fmt.Errorf("egress: original destination: %w", errors.ErrUnsupported)
}
