package egress

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetNS is a network namespace that mcpbox made for one sandbox. A
// dedicated OS thread lives in it for the namespace's whole life: runc joins
// the namespace through that thread's /proc path, and code that must run
// inside it (opening the proxy's listeners, installing nftables rules) runs
// on that thread through Do. Nothing is mounted, so nothing can outlive the
// session: once the thread has left it (Close) and the sockets opened inside
// and the sandbox's processes are gone, the kernel frees the namespace.
type NetNS struct {
	path    string
	calls   chan nsCall
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when the thread has left
	once    sync.Once
}

type nsCall struct {
	fn  func() error
	res chan error
}

// NewNetNS creates a network namespace with the loopback interface up and
// a default route through it for IPv4 and IPv6, so that every connect is
// attempted locally, where nftables rules can redirect it. Without rules a
// connection to anything but loopback then fails; Install adds them.
func NewNetNS() (*NetNS, error) {
	n := &NetNS{calls: make(chan nsCall), done: make(chan struct{}), stopped: make(chan struct{})}
	ready := make(chan error, 1)
	go n.loop(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	if err := n.Do(setupLoopback); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// loop runs on the namespace's thread. When the namespace is closed it
// moves the thread back to the namespace it came from and gives it back to
// the Go runtime; if that fails it keeps the thread locked, and the runtime
// retires it rather than letting other goroutines run in the sandbox's
// namespace.
func (n *NetNS) loop(ready chan<- error) {
	defer close(n.stopped)
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		ready <- fmt.Errorf("egress: current network namespace: %w", err)
		return
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		ready <- fmt.Errorf("egress: new network namespace: %w", err)
		return
	}
	n.path = fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	ready <- nil
	for {
		select {
		case c := <-n.calls:
			c.res <- c.fn()
		case <-n.done:
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			return
		}
	}
}

// Path is the namespace's path for the OCI spec (linux.namespaces network
// path). It is valid until Close.
func (n *NetNS) Path() string { return n.path }

// Do runs fn inside the namespace and returns its error. Sockets that fn
// opens belong to the namespace and may be used from any goroutine.
func (n *NetNS) Do(fn func() error) error {
	res := make(chan error, 1)
	select {
	case n.calls <- nsCall{fn: fn, res: res}:
		return <-res
	case <-n.done:
		return errors.New("egress: network namespace is closed")
	}
}

// Close takes the namespace's thread out of it. The namespace itself lives
// on while a process or socket still uses it; Path is no longer valid.
func (n *NetNS) Close() error {
	n.once.Do(func() { close(n.done) })
	<-n.stopped
	return nil
}

func setupLoopback() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("egress: loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("egress: loopback up: %w", err)
	}
	// The source address matters: without one the kernel picks 0.0.0.0
	// for a route through lo, and replies to redirected connections go
	// nowhere.
	for _, r := range []struct{ dst, src string }{{"0.0.0.0/0", "127.0.0.1"}, {"::/0", "::1"}} {
		_, all, _ := net.ParseCIDR(r.dst)
		route := &netlink.Route{LinkIndex: lo.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: all, Src: net.ParseIP(r.src)}
		if err := netlink.RouteAdd(route); err != nil {
			return fmt.Errorf("egress: default route %s via lo: %w", r.dst, err)
		}
	}
	return nil
}
