package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// describeMachine returns the rows of the report's machine table.
func describeMachine(b *bench) [][2]string {
	first := func(out []byte, err error) string {
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	cpu := "unknown"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if kb, err := fieldKB("/proc/meminfo", "MemTotal"); err == nil {
		mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	osName := "unknown"
	if raw, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				osName = strings.Trim(v, `"`)
			}
		}
	}
	containerd := "unknown"
	if out, err := exec.Command("ctr", "--address", b.addr, "version").Output(); err == nil {
		server := false
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "Server:") {
				server = true
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok && server {
				containerd = strings.TrimSpace(v)
				break
			}
		}
	}
	commit := first(exec.Command("git", "describe", "--always", "--dirty").Output())
	return [][2]string{
		{"CPU", fmt.Sprintf("%s, %d cores", cpu, runtime.NumCPU())},
		{"memory", mem},
		{"OS", osName},
		{"kernel", fmt.Sprintf("%s (%s)", strings.TrimSpace(string(kernel)), runtime.GOARCH)},
		{"containerd", containerd},
		{"runc", first(exec.Command("runc", "--version").Output())},
		{"crun", first(exec.Command("crun", "--version").Output())},
		{"node", first(exec.Command("node", "--version").Output())},
		{"mcpbox", first(exec.Command(b.bin, "version").Output())},
		{"commit", commit},
		{"load average at start (1, 5, 15 min)", loadAverage()},
	}
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute figures: the machine
// may be shared, and a busy one widens the spread of every measurement.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// statusKB reads a "kB" field of /proc/PID/status.
func statusKB(pid int, field string) (int64, error) {
	return fieldKB(fmt.Sprintf("/proc/%d/status", pid), field)
}

func fieldKB(file, field string) (int64, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s", field, file)
}

func allPids() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// descendants lists the processes below pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	for _, p := range allPids() {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces.
		i := strings.LastIndexByte(string(raw), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(raw[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, children[p]...)
	}
	return out
}
