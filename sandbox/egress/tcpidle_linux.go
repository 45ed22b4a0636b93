package egress

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// recvIdle reports how long ago the kernel last received data on c
// (TCP_INFO tcpi_last_data_recv). It lets relay hand TCP-to-TCP copies to
// splice(2), which the proxy cannot watch byte by byte, and still close
// connections on which nothing moved.
func recvIdle(c net.Conn) (time.Duration, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || serr != nil {
		return 0, false
	}
	return time.Duration(info.Last_data_recv) * time.Millisecond, true
}
