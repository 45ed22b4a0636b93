//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
)

// baseEnv are the names every sandbox may have.
var baseEnv = []string{"PATH", "HOME", sandboxEnv}

func environProbes() []probe {
	return []probe{
		{name: "environment/environ-allowlist", category: "environment",
			tried: "read /proc/self/environ; only PATH, HOME, MCPBOX_SANDBOX and the -expect-env names may be set (values are never printed)",
			run:   probeEnviron},
	}
}

func probeEnviron(e *env) result {
	b, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return errored(err.Error())
	}
	unexpected, names := unexpectedEnv(b, e.expectEnv)
	if len(unexpected) > 0 {
		return fail(outcomeAllowed, fmt.Sprintf("unexpected variables: %s", strings.Join(unexpected, ", ")))
	}
	return pass(outcomeDenied, fmt.Sprintf("%d variables, all expected: %s", len(names), strings.Join(names, ", ")))
}

// unexpectedEnv returns the names in a NUL-separated environ block that are
// neither in baseEnv nor in expect, and all names seen. It never returns
// values.
func unexpectedEnv(environ []byte, expect []string) (unexpected, names []string) {
	ok := map[string]bool{}
	for _, n := range baseEnv {
		ok[n] = true
	}
	for _, n := range expect {
		ok[n] = true
	}
	seen := map[string]bool{}
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if len(kv) == 0 {
			continue
		}
		name, _, _ := strings.Cut(string(kv), "=")
		if seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
		if !ok[name] {
			unexpected = append(unexpected, name)
		}
	}
	sort.Strings(names)
	sort.Strings(unexpected)
	return unexpected, names
}
