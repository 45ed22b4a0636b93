package grant

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/sandbox"
)

// A grant is checked on its path with every symlink resolved, and that
// symlink-free path is what the runtime binds. runc opens the source
// itself, in its own process, some time later: a directory on the way
// could have been swapped for a symlink in between (by a server that was
// given the directory before, say). mcpbox cannot hand runc a descriptor
// (containerd's shim starts runc, and runc resolves the path again), so it
// holds one instead: it opens each source when it builds the spec, without
// following any symlink, and once runc has made the mounts and before the
// server's first instruction runs, it compares what each destination shows
// inside the container with the object it holds. A mismatch means the
// server would see something that was not checked, and it never starts.

// pin is the host object behind one bind, held open from before the
// runtime mounts it until the session ends.
type pin struct {
	src, dest string
	fd        int
	st        unix.Stat_t
}

// Pins are the pins of a sandbox's binds; Close releases them.
type Pins []pin

// PinMounts opens the source of each mount with O_PATH, following no
// symlink: every source is a path that was checked with its symlinks
// resolved, so a symlink there now means the path changed since.
func PinMounts(ms []sandbox.Mount) (Pins, error) {
	var pins Pins
	for _, m := range ms {
		fd, err := unix.Openat2(unix.AT_FDCWD, m.Source, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			pins.Close()
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
				return nil, fmt.Errorf("launcher: %s changed after it was checked (a symlink now stands in its path), so the server is not started: run it again", m.Source)
			}
			return nil, fmt.Errorf("launcher: open %s: %w", m.Source, err)
		}
		p := pin{src: m.Source, dest: filepath.Clean(m.Destination), fd: fd}
		if err := unix.Fstat(fd, &p.st); err != nil {
			unix.Close(fd)
			pins.Close()
			return nil, fmt.Errorf("launcher: stat %s: %w", m.Source, err)
		}
		pins = append(pins, p)
	}
	return pins, nil
}

// Close closes the pins' descriptors.
func (pins Pins) Close() {
	for _, p := range pins {
		unix.Close(p.fd)
	}
}

// Verify checks that each destination, looked up inside the root of the
// process pid (the container's init, created but not started), is the
// object pinned for it.
func (pins Pins) Verify(pid uint32) error {
	root, err := unix.Open("/proc/"+strconv.FormatUint(uint64(pid), 10)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("launcher: check the sandbox's mounts: %w", err)
	}
	defer unix.Close(root)
	for _, p := range pins {
		fd, err := unix.Openat2(root, strings.TrimPrefix(p.dest, "/"), &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		var st unix.Stat_t
		if err == nil {
			err = unix.Fstat(fd, &st)
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("launcher: check the sandbox's mount at %s: %w", p.dest, err)
		}
		if st.Dev != p.st.Dev || st.Ino != p.st.Ino {
			return fmt.Errorf("launcher: the sandbox shows at %s something other than %s, which mcpbox checked: it changed while the sandbox was being made (or mcpbox runs in a mount namespace of its own, where it sees other files than containerd), so the server is not started", p.dest, p.src)
		}
	}
	return nil
}
