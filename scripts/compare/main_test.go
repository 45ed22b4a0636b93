package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// report writes a `mcpbox selftest --json` report whose probes pass or
// fail as given, and returns its file.
func report(t *testing.T, probes map[string]bool) string {
	t.Helper()
	var rep struct {
		Results []map[string]any `json:"results"`
	}
	for _, name := range []string{"identity/caps-zero", "fs/write-root", "kernel/bpf", "resources/memory-hog", "resources/fork-bomb", "resources/tmp-fill"} {
		pass, ok := probes[name]
		if !ok {
			continue
		}
		outcome := "denied"
		if !pass {
			outcome = "allowed"
		}
		rep.Results = append(rep.Results, map[string]any{"name": name, "outcome": outcome, "pass": pass})
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "report.json", string(b))
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// all is every probe passing.
func all() map[string]bool {
	return map[string]bool{"identity/caps-zero": true, "fs/write-root": true, "kernel/bpf": true,
		"resources/memory-hog": true, "resources/fork-bomb": true, "resources/tmp-fill": true}
}

func with(m map[string]bool, changes map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		out[k] = v
	}
	return out
}

func without(m map[string]bool, name string) map[string]bool {
	out := with(m, nil)
	delete(out, name)
	return out
}

// TestKeep holds the rootless column to the containerd column: any probe
// that passes on containerd and not rootless fails compare, unless it
// tests a limit mcpbox said the host does not delegate.
func TestKeep(t *testing.T) {
	const noLimits = "mcpbox: rootless: limits not enforced: memory, pids (run `sudo mcpbox setup rootless --user u`)\n"
	for _, tc := range []struct {
		name        string
		base, other map[string]bool
		otherStderr string
		code        int
		say, notSay []string
	}{
		{name: "all kept", base: all(), other: all(), code: 0,
			say: []string{`Every probe that passes under "containerd" passes under "rootless".`}},
		{name: "a kernel probe lost", base: all(), other: with(all(), map[string]bool{"kernel/bpf": false}), code: 1,
			say: []string{`1 probe passes under "containerd" and fails under "rootless": kernel/bpf (allowed)`}},
		{name: "a probe not run", base: all(), other: without(all(), "fs/write-root"), code: 1,
			say: []string{"fs/write-root (not run)"}},
		{name: "failing in both is no loss", base: with(all(), map[string]bool{"kernel/bpf": false}), other: with(all(), map[string]bool{"kernel/bpf": false}), code: 0},
		{name: "limits probes excused when not delegated", base: all(),
			other: with(all(), map[string]bool{"resources/memory-hog": false, "resources/fork-bomb": false}), otherStderr: noLimits, code: 0,
			say: []string{"but for the limits this host does not delegate, which mcpbox said it ran without: memory (`resources/memory-hog`); pids (`resources/fork-bomb`)."}},
		{name: "limits probes not excused when delegated", base: all(),
			other: with(all(), map[string]bool{"resources/memory-hog": false}), code: 1,
			say: []string{"resources/memory-hog (allowed)"}},
		{name: "only the undelegated limit is excused", base: all(),
			other:       with(all(), map[string]bool{"resources/memory-hog": false, "resources/tmp-fill": false}),
			otherStderr: "mcpbox: rootless: limits not enforced: memory (fix)\n", code: 1,
			say: []string{"resources/tmp-fill (allowed)", "besides, the limits this host does not delegate, which mcpbox said it ran without: memory (`resources/memory-hog`)."}, notSay: []string{"resources/memory-hog (allowed)"}},
		{name: "an excused limit that held anyway", base: all(), other: all(), otherStderr: "mcpbox: rootless: limits not enforced: cpu, pids (fix)\n", code: 0,
			say: []string{"cpu (no probe tests it); pids (`resources/fork-bomb` passed anyway)."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-col", "containerd=" + report(t, tc.base), "-col", "rootless=" + report(t, tc.other), "-keep", "containerd=rootless"}
			if tc.otherStderr != "" {
				args = append(args, "-stderr", "rootless="+writeFile(t, "stderr", "mcpbox: other line\n"+tc.otherStderr))
			}
			var stdout, stderr strings.Builder
			code := run(args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), "| probe | containerd | rootless |") {
				t.Errorf("no table:\n%s", stdout.String())
			}
			for _, s := range tc.say {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout does not say %q:\n%s", s, stdout.String())
				}
				if tc.code != 0 && !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr does not say %q:\n%s", s, stderr.String())
				}
			}
			for _, s := range tc.notSay {
				if strings.Contains(stdout.String(), s) {
					t.Errorf("stdout says %q:\n%s", s, stdout.String())
				}
			}
		})
	}
}

// TestKeepMissingColumn: a column that did not run cannot show that it
// kept anything.
func TestKeepMissingColumn(t *testing.T) {
	na := writeFile(t, "na", "not available: no user mcpbox-ci\n")
	var stdout, stderr strings.Builder
	code := run([]string{"-col", "containerd=" + report(t, all()), "-col", "rootless=" + na, "-keep", "containerd=rootless"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), `column "rootless" has no results (not available: no user mcpbox-ci)`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}

// TestKeepUsage: -keep and -stderr name columns that exist.
func TestKeepUsage(t *testing.T) {
	col := "a=" + report(t, all())
	for _, args := range [][]string{
		{"-col", col, "-keep", "a=b"},
		{"-col", col, "-keep", "a"},
		{"-col", col, "-stderr", "b=" + writeFile(t, "e", "")},
	} {
		var stdout, stderr strings.Builder
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}

func TestUnenforcedLimits(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		want   []string
	}{
		{"", nil},
		{"mcpbox: rootless: limits not enforced: memory, pids, cpu (sudo mcpbox setup rootless --user u; or (else))\n", []string{"memory", "pids", "cpu"}},
		{"time=… level=INFO msg=x\n  mcpbox: rootless: limits not enforced: cpu (fix)\nmcpbox: rootless: limits not enforced: cpu, memory (fix)", []string{"cpu", "memory"}},
		{"something: limits not enforced: memory (fix)", nil},
	} {
		if got := unenforcedLimits(tc.stderr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("unenforcedLimits(%q) = %q, want %q", tc.stderr, got, tc.want)
		}
	}
}
