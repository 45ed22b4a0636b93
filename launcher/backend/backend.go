// Package backend decides which runtime a caller's sessions run in: the
// containerd daemon when the caller may use its socket, else the rootless
// runtime (runc in a user namespace of mcpbox's own); and where the
// rootless runtime keeps its state. It starts nothing and changes nothing
// but the rootless state directory, which StateDir creates.
//
// It answers for the caller as the host sees them: inside the user
// namespace the rootless runtime re-executes mcpbox into, the process is
// uid 0 but not the host's root, and the answers must not change there.
package backend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	ctrd "github.com/mcpbox/mcpbox/launcher/runtime/containerd"
)

// The runtime settings (--runtime, MCPBOX_RUNTIME, the config file's
// runtime key). Containerd and Rootless are also the kinds of a Choice.
const (
	Auto       = "auto"
	Containerd = "containerd"
	Rootless   = "rootless"
)

// ErrRootlessAsRoot is returned by Choose for the rootless setting when the
// caller is the host's root: the rootless runtime maps the caller's id to
// the sandbox's, and root's is the one id it must never hand a sandbox.
var ErrRootlessAsRoot = errors.New("the rootless runtime is for ordinary users: as root, sessions run through containerd (use --runtime containerd, or auto)")

// CheckSetting says what is wrong with a runtime setting, nil if nothing:
// "" means auto.
func CheckSetting(s string) error {
	switch s {
	case "", Auto, Containerd, Rootless:
		return nil
	}
	return fmt.Errorf("%q is not a runtime: use auto, containerd or rootless", s)
}

// Choice is the runtime a caller's sessions run in, and why, in words for
// the info log and doctor ("uid 1000 may not open
// /run/containerd/containerd.sock").
type Choice struct {
	Kind string // Containerd or Rootless
	Why  string
}

// probeTimeout bounds the wait for containerd's answer: a daemon that
// accepts connections but hangs is not one a session can use either.
const probeTimeout = 5 * time.Second

// Choose resolves setting for the caller. An explicit setting is taken as
// it is (containerd is not probed: the session's own connection reports
// an unusable socket, with its fix); auto is containerd for the host's
// root, and for anyone else containerd only when they may open its socket
// at address and containerd answers there, else rootless.
func Choose(ctx context.Context, setting, address string) (Choice, error) {
	if err := CheckSetting(setting); err != nil {
		return Choice{}, err
	}
	uid := HostUID()
	return choose(setting, uid, func() (bool, string) { return probe(ctx, address, uid) }, address)
}

// choose is Choose with the caller's host uid and the containerd probe
// given.
func choose(setting string, uid int, probe func() (ok bool, why string), address string) (Choice, error) {
	switch setting {
	case Containerd:
		return Choice{Containerd, "asked for"}, nil
	case Rootless:
		if uid == 0 {
			return Choice{}, ErrRootlessAsRoot
		}
		return Choice{Rootless, "asked for"}, nil
	}
	if uid == 0 {
		return Choice{Containerd, "uid 0 is root: sessions run through containerd at " + address}, nil
	}
	ok, why := probe()
	if ok {
		return Choice{Containerd, why}, nil
	}
	return Choice{Rootless, why}, nil
}

// probe says whether uid may use containerd at address: the socket exists,
// connect(2) succeeds and containerd answers a version request.
func probe(ctx context.Context, address string, uid int) (bool, string) {
	conn, err := net.DialTimeout("unix", address, 2*time.Second)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, "no containerd socket at " + address
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return false, fmt.Sprintf("uid %d may not open %s", uid, address)
	case errors.Is(err, syscall.ECONNREFUSED):
		return false, "nothing answers at " + address + " (a socket left by a containerd that stopped)"
	case err != nil:
		return false, fmt.Sprintf("cannot open %s: %v", address, err)
	}
	conn.Close()
	client, err := ctrd.Connect(address, "mcpbox")
	if err != nil {
		return false, fmt.Sprintf("%s accepts connections but containerd does not answer there", address)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	v, err := client.Version(ctx)
	if err != nil {
		return false, fmt.Sprintf("%s accepts connections but containerd does not answer there (%v)", address, err)
	}
	return true, fmt.Sprintf("uid %d may open %s and containerd %s answers", uid, address, v.Version)
}

// HostUID is the caller's uid as the host sees it: the effective uid,
// mapped out of the user namespace this process runs in (see
// /proc/self/uid_map); the effective uid itself when the map cannot be
// read.
func HostUID() int {
	euid := os.Geteuid()
	f, err := os.Open("/proc/self/uid_map")
	if err != nil {
		return euid
	}
	defer f.Close()
	if id, ok := mapOut(f, euid); ok {
		return id
	}
	return euid
}

// mapOut finds id in an id map ("inside outside count" lines, as in
// /proc/PID/uid_map) and returns the id outside.
func mapOut(r io.Reader, id int) (int, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		in, err1 := strconv.ParseUint(f[0], 10, 32)
		out, err2 := strconv.ParseUint(f[1], 10, 32)
		n, err3 := strconv.ParseUint(f[2], 10, 33)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if uint64(id) >= in && uint64(id)-in < n {
			return int(out + uint64(id) - in), true
		}
	}
	return 0, false
}
