package launcher

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/mount"
	"github.com/moby/sys/mountinfo"

	"github.com/mcpbox/mcpbox/sandbox"
)

// newPhases returns a function that logs, at debug level, how long each
// phase of start-up took since the previous one, so the slowest is visible.
func newPhases(log *slog.Logger) func(string) {
	start := time.Now()
	last := start
	var mu sync.Mutex
	return func(name string) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		log.Debug("phase", "name", name, "took", now.Sub(last).Round(time.Microsecond), "since_start", now.Sub(start).Round(time.Microsecond))
		last = now
	}
}

// firstWrite calls first once, before the first write to w.
type firstWrite struct {
	w     io.Writer
	first func()
	once  sync.Once
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(f.first)
	return f.w.Write(p)
}

// findInit returns the mcpbox-init binary: the given path, else the one
// installed next to mcpbox's own executable.
func findInit(path string) (string, error) {
	return findHelper("mcpbox-init", path, "`make build` puts both in bin/")
}

// findProbe returns the mcpbox-probe binary: path, or the one next to
// mcpbox's executable.
func findProbe(path string) (string, error) {
	return findHelper("mcpbox-probe", path, "`make build` puts it in bin/")
}

// findHelper returns the executable name at path, or next to mcpbox's own
// executable when path is "".
func findHelper(name, path, how string) (string, error) {
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("launcher: find %s: %w", name, err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return "", fmt.Errorf("launcher: find %s: %w", name, err)
		}
		path = filepath.Join(filepath.Dir(exe), name)
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("launcher: %s is missing at %s: install it next to mcpbox (%s)", name, path, how)
	}
	return path, nil
}

// ownerIdentity returns this process's pid and its start time (clock ticks
// since boot), which together name it even after the pid is reused.
func ownerIdentity() (pid, start string) {
	pid = strconv.Itoa(os.Getpid())
	return pid, processStart(pid)
}

func ownerLabel() string {
	pid, start := ownerIdentity()
	return pid + " " + start + "\n"
}

// processStart reads field 22 of /proc/PID/stat; "" if the process is gone.
func processStart(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// ownerAlive tells whether the process named by pid and start still runs.
func ownerAlive(pid, start string) bool {
	if pid == "" {
		return false
	}
	got := processStart(pid)
	return got != "" && (start == "" || got == start)
}

// removeSessionDir deletes a session directory, but only after checking
// that nothing is mounted below it: a bind mount left there would make
// RemoveAll delete the host files behind it.
func removeSessionDir(dir string) error {
	dir = filepath.Clean(dir)
	// An image-mode session's image view, which a killed mcpbox leaves
	// mounted; anything else mounted below dir is refused below.
	if img := filepath.Join(dir, "image"); isMountPoint(img) {
		if err := mount.UnmountAll(img, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", img, err)
		}
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("check mounts under %s: %w", dir, err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("refusing to remove %s: %s is still mounted", dir, mounts[0].Mountpoint)
	}
	return os.RemoveAll(dir)
}

func isMountPoint(p string) bool {
	mounted, err := mountinfo.Mounted(p)
	return err == nil && mounted
}

// dedupeMounts drops a mount that an earlier one already provides: a path
// inside an earlier bind of the same host tree with the same mode (the
// executable's directory inside the script's package tree, say). A later
// mount at the same destination replaces the earlier one, so a user's
// --mount overrides a default. sandbox orders the result.
func dedupeMounts(in []sandbox.Mount) []sandbox.Mount {
	var out []sandbox.Mount
	index := map[string]int{}
next:
	for _, m := range in {
		if i, ok := index[m.Destination]; ok {
			out[i] = m
			continue
		}
		for _, p := range out {
			rel, err := filepath.Rel(p.Destination, m.Destination)
			if err == nil && p.ReadOnly == m.ReadOnly && p.NoExec == m.NoExec && rel != "." && !strings.HasPrefix(rel, "..") &&
				filepath.Join(p.Source, rel) == m.Source {
				continue next
			}
		}
		index[m.Destination] = len(out)
		out = append(out, m)
	}
	return out
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
