// Package testutil holds helpers shared by mcpbox's tests: run-time gates for
// tests that need root or containerd, and the paths of the real MCP servers
// installed under testdata/servers. It is imported only by _test.go files.
//
// Under CI=true a gate that cannot be met fails the test instead of skipping
// it: CI always has root and containerd, so a skip there would hide a broken
// setup behind a green run.
package testutil

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// DefaultContainerdAddress is where tests look for containerd unless
// MCPBOX_CONTAINERD_ADDRESS says otherwise.
const DefaultContainerdAddress = "/run/containerd/containerd.sock"

// InCI reports whether the tests run in CI, where every gate must be met.
func InCI() bool { return os.Getenv("CI") == "true" }

// skip skips the test, or fails it under CI.
func skip(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but %s: CI must provide it (run `make setup`)", why)
	}
	t.Skip(why)
}

// RequiresRoot skips (or fails under CI) unless the test runs as root on Linux.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		skip(t, "test needs Linux")
	}
	if os.Geteuid() != 0 {
		skip(t, "test needs root")
	}
}

// ContainerdAddress returns the containerd socket tests use.
func ContainerdAddress() string {
	if a := os.Getenv("MCPBOX_CONTAINERD_ADDRESS"); a != "" {
		return a
	}
	return DefaultContainerdAddress
}

// RequiresContainerd skips (or fails under CI) unless the test runs as root
// and containerd answers on its socket.
func RequiresContainerd(t testing.TB) string {
	t.Helper()
	RequiresRoot(t)
	addr := ContainerdAddress()
	conn, err := net.DialTimeout("unix", addr, 2*time.Second)
	if err != nil {
		skip(t, "containerd is not reachable at "+addr+": "+err.Error())
	}
	conn.Close()
	return addr
}

// TempDir is t.TempDir with its symlinks resolved, for tests that compare
// paths mcpbox has resolved (grants, runtime directories) with it.
func TempDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// RepoRoot returns the repository's top directory (the one holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Server returns the absolute path of the entry point of a real MCP server
// installed from npm under testdata/servers (e.g. "server-filesystem"), and
// node's path. It skips (or fails under CI) when node or the npm fixtures
// are missing.
func Server(t testing.TB, name string) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skip(t, "node is not installed (make setup installs it)")
	}
	script = filepath.Join(RepoRoot(t), "testdata", "servers", "node_modules", "@modelcontextprotocol", name, "dist", "index.js")
	if _, err := os.Stat(script); err != nil {
		skip(t, "npm fixtures are not installed: run `make fixtures` ("+err.Error()+")")
	}
	return node, script
}

// Context returns a context that ends with the test or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// RequiresCommand skips (or fails under CI) unless name is on PATH.
func RequiresCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		skip(t, name+" is not installed (make setup installs it)")
	}
	return path
}
