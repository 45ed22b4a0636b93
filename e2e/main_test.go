package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/snapshots"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// The mcpbox binary under test, built once by mcpboxBinary.
var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// mcpboxBinary builds cmd/mcpbox with the seccomp tag into a temp dir.
// The integration tests drive that binary exactly as an MCP client would.
func mcpboxBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcpbox-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		// The sandbox's user must reach mcpbox-probe, which runs inside.
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "mcpbox")
		// mcpbox-init is static (it runs inside sandboxes); mcpbox
		// links libseccomp. mcpbox finds the init (and the selftest probe)
		// next to itself.
		for _, b := range []struct{ pkg, cgo string }{{"./cmd/mcpbox", "1"}, {"./cmd/mcpbox-init", "0"}, {"./cmd/mcpbox-probe", "0"}} {
			cmd := exec.Command("go", "build", "-tags", "seccomp", "-o", dir, b.pkg)
			cmd.Dir = testutil.RepoRoot(t)
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// TestMain skips the whole package with -short: that flag asks for tiers 1
// and 2 only (see doc.go), and every test here is tier 3.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: -short: skipped the end-to-end tier (tier 3: the built mcpbox binary, root and containerd)")
		os.Exit(0)
	}
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// env is one integration test's world: its own containerd namespace and run
// directory, both checked for leftovers when the test ends.
type env struct {
	t         *testing.T
	bin       string
	addr      string
	namespace string
	runDir    string
	// stateDir is the sessions' $XDG_STATE_HOME: pins and audit logs.
	stateDir string
}

// newEnv gates the test on root + containerd + node and sets up cleanup
// checks: after the test, no container, task or snapshot may remain in
// its namespace and its run directory (session dirs, FIFOs) must be empty.
func newEnv(t *testing.T) *env {
	t.Helper()
	addr := testutil.RequiresContainerd(t)
	sum := sha256.Sum256([]byte(t.Name()))
	e := &env{
		t:         t,
		bin:       mcpboxBinary(t),
		addr:      addr,
		namespace: "mcpbox-test-" + hex.EncodeToString(sum[:5]),
		runDir:    t.TempDir(),
		stateDir:  t.TempDir(),
	}
	t.Cleanup(e.checkClean)
	return e
}

func (e *env) checkClean() {
	t := e.t
	client, err := containerd.New(e.addr, containerd.WithDefaultNamespace(e.namespace))
	if err != nil {
		t.Errorf("leftover check: %v", err)
		return
	}
	defer client.Close()
	ctx := context.Background()
	containers, err := client.Containers(ctx)
	if err != nil {
		t.Errorf("leftover check: list containers: %v", err)
	}
	for _, c := range containers {
		t.Errorf("container %s left behind in namespace %s", c.ID(), e.namespace)
		if task, err := c.Task(ctx, nil); err == nil {
			task.Delete(ctx, containerd.WithProcessKill)
		}
		c.Delete(ctx)
	}
	tasks, err := client.TaskService().List(ctx, nil)
	if err == nil && len(tasks.Tasks) > 0 {
		t.Errorf("%d tasks left behind in namespace %s", len(tasks.Tasks), e.namespace)
	}
	var nsnap int
	client.SnapshotService("overlayfs").Walk(ctx, func(context.Context, snapshots.Info) error { nsnap++; return nil })
	if nsnap > 0 {
		t.Errorf("%d snapshots left behind in namespace %s", nsnap, e.namespace)
	}
	entries, _ := os.ReadDir(e.runDir)
	for _, ent := range entries {
		t.Errorf("session dir %s left behind in the run dir", ent.Name())
	}
	if err := client.NamespaceService().Delete(ctx, e.namespace); err != nil {
		t.Logf("delete namespace %s: %v", e.namespace, err)
	}
}

// command returns an exec.Cmd for `mcpbox <global flags> run <args...>`.
func (e *env) command(args ...string) *exec.Cmd {
	full := append([]string{"--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir, "--log-level", "info", "run", "--stop-timeout", "1s"}, args...)
	cmd := exec.Command(e.bin, full...)
	cmd.Env = e.environ()
	return cmd
}

// environ is the environment of the mcpbox processes a test runs.
func (e *env) environ() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "XDG_STATE_HOME=" + e.stateDir}
	for _, k := range []string{"XDG_CACHE_HOME", "XDG_CONFIG_HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// mcpbox runs a non-session mcpbox command and returns its stdout, stderr
// and exit code.
func (e *env) mcpbox(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.environ()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			e.t.Fatalf("mcpbox %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// connect starts mcpbox with args and connects the official MCP Go SDK
// client to it over stdio.
func (e *env) connect(ctx context.Context, args ...string) (*mcp.ClientSession, *lockedBuilder) {
	e.t.Helper()
	return e.connectCmd(ctx, e.command(args...))
}

// connectCmd is connect for a prepared command (extra env, a namespace).
func (e *env) connectCmd(ctx context.Context, cmd *exec.Cmd) (*mcp.ClientSession, *lockedBuilder) {
	e.t.Helper()
	stderr := &lockedBuilder{}
	cmd.Stderr = stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		e.t.Fatalf("connect through mcpbox: %v\nstderr:\n%s", err, stderr.String())
	}
	e.t.Cleanup(func() {
		cs.Close()
		if t := e.t; t.Failed() {
			t.Logf("mcpbox stderr:\n%s", stderr.String())
		}
	})
	return cs, stderr
}

// lockedBuilder is a strings.Builder safe for exec's copying goroutine.
type lockedBuilder struct {
	mu sync.Mutex
	strings.Builder
}

func (b *lockedBuilder) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Builder.Write(p)
}

func (b *lockedBuilder) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Builder.String()
}

// text joins the text contents of a tool result.
func text(r *mcp.CallToolResult) string {
	var parts []string
	for _, c := range r.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}
