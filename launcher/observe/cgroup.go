package observe

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupFiles are where a cgroup's figures are, under cgroup v2 or v1.
type cgroupFiles struct {
	peak, pids, cpu string
	cpuV2           bool
}

func findCgroup(root, path string) cgroupFiles {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		d := filepath.Join(root, path)
		return cgroupFiles{peak: filepath.Join(d, "memory.peak"), pids: filepath.Join(d, "pids.current"),
			cpu: filepath.Join(d, "cpu.stat"), cpuV2: true}
	}
	f := cgroupFiles{
		peak: filepath.Join(root, "memory", path, "memory.max_usage_in_bytes"),
		pids: filepath.Join(root, "pids", path, "pids.current"),
		cpu:  filepath.Join(root, "cpuacct", path, "cpuacct.usage"),
	}
	if _, err := os.Stat(filepath.Dir(f.cpu)); err != nil {
		f.cpu = filepath.Join(root, "cpu,cpuacct", path, "cpuacct.usage")
	}
	return f
}

func readUint(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// sample reads the cgroup's usage; ok is false once the cgroup is gone.
func (f cgroupFiles) sample() (u Usage, ok bool) {
	u.PeakMemory, ok = readUint(f.peak)
	u.Pids, _ = readUint(f.pids)
	if f.cpuV2 {
		if b, err := os.ReadFile(f.cpu); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, found := strings.CutPrefix(line, "usage_usec "); found {
					us, _ := strconv.ParseUint(v, 10, 64)
					u.CPU = time.Duration(us) * time.Microsecond
				}
			}
		}
	} else if ns, ok := readUint(f.cpu); ok {
		u.CPU = time.Duration(ns)
	}
	return u, ok
}

// WatchUsage samples the cgroup at cgroupPath (below each hierarchy's
// root) for OnUsage until stop is closed, reports the last sample once
// more then, and closes done.
func (h *Hooks) WatchUsage(cgroupPath string, stop <-chan struct{}, done chan<- struct{}) {
	h.watch(findCgroup(cgroupRoot, cgroupPath), stop, done)
}

func (h *Hooks) watch(f cgroupFiles, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := h.UsageEvery
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	var last Usage
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if u, ok := f.sample(); ok {
			last = u
			h.OnUsage(u)
		}
		select {
		case <-stop:
			h.OnUsage(last)
			return
		case <-tick.C:
		}
	}
}
