package observe

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSample reads a cgroup's figures under cgroup v2 and both v1 layouts
// of the CPU accounting controller.
func TestSample(t *testing.T) {
	want := Usage{PeakMemory: 70 << 20, Pids: 9, CPU: 1250 * time.Millisecond}
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"v2", map[string]string{
			"cgroup.controllers":     "cpu memory pids\n",
			"mcpbox/s1/memory.peak":  "73400320\n",
			"mcpbox/s1/pids.current": "9\n",
			"mcpbox/s1/cpu.stat":     "usage_usec 1250000\nuser_usec 1000000\nsystem_usec 250000\n",
		}},
		{"v1", map[string]string{
			"memory/mcpbox/s1/memory.max_usage_in_bytes": "73400320\n",
			"pids/mcpbox/s1/pids.current":                "9\n",
			"cpuacct/mcpbox/s1/cpuacct.usage":            "1250000000\n",
		}},
		{"v1 cpu,cpuacct", map[string]string{
			"memory/mcpbox/s1/memory.max_usage_in_bytes": "73400320\n",
			"pids/mcpbox/s1/pids.current":                "9\n",
			"cpu,cpuacct/mcpbox/s1/cpuacct.usage":        "1250000000\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, tt.files)
			got, ok := findCgroup(root, "mcpbox/s1").sample()
			if !ok || got != want {
				t.Errorf("sample = %+v, %v; want %+v, true", got, ok, want)
			}
		})
	}
	if _, ok := findCgroup(t.TempDir(), "mcpbox/gone").sample(); ok {
		t.Error("a cgroup that is gone gives a sample")
	}
}

// TestWatch: the watcher reports a sample as soon as it starts and the
// last one again when it is stopped.
func TestWatch(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"cgroup.controllers": "",
		"s1/memory.peak":     "4096\n",
		"s1/pids.current":    "2\n",
		"s1/cpu.stat":        "usage_usec 10\n",
	})
	var got []Usage
	first := make(chan struct{})
	h := &Hooks{UsageEvery: time.Hour, OnUsage: func(u Usage) {
		got = append(got, u)
		if len(got) == 1 {
			close(first)
		}
	}}
	stop, done := make(chan struct{}), make(chan struct{})
	go h.watch(findCgroup(root, "s1"), stop, done)
	<-first
	close(stop)
	<-done
	want := Usage{PeakMemory: 4096, Pids: 2, CPU: 10 * time.Microsecond}
	if len(got) != 2 || got[0] != want || got[1] != want {
		t.Errorf("reports = %+v, want %+v twice", got, want)
	}
}
