package e2e

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// demoServer is a minimal stdio MCP server in Python.
const demoServer = `import json, sys

def main():
    for line in sys.stdin:
        m = json.loads(line)
        if "id" not in m:
            continue
        if m["method"] == "initialize":
            result = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "demo-mcp", "version": "0.1.0"}}
        else:
            result = {"tools": [{"name": "hello", "inputSchema": {"type": "object"}}]}
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": result}) + "\n")
        sys.stdout.flush()
    return 0
`

// buildWheel writes demo_mcp-0.1.0-py3-none-any.whl into dir: no index is
// reachable here, so the test makes its own package.
func buildWheel(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"demo_mcp/__init__.py":                      demoServer,
		"demo_mcp-0.1.0.dist-info/METADATA":         "Metadata-Version: 2.1\nName: demo-mcp\nVersion: 0.1.0\n",
		"demo_mcp-0.1.0.dist-info/WHEEL":            "Wheel-Version: 1.0\nGenerator: mcpbox-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		"demo_mcp-0.1.0.dist-info/entry_points.txt": "[console_scripts]\ndemo-mcp = demo_mcp:main\n",
	}
	f, err := os.Create(filepath.Join(dir, "demo_mcp-0.1.0-py3-none-any.whl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z := zip.NewWriter(f)
	var record strings.Builder
	for name, body := range files {
		w, _ := z.Create(name)
		w.Write([]byte(body))
		sum := sha256.Sum256([]byte(body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", name, base64.RawURLEncoding.EncodeToString(sum[:]), len(body))
	}
	record.WriteString("demo_mcp-0.1.0.dist-info/RECORD,,\n")
	w, _ := z.Create("demo_mcp-0.1.0.dist-info/RECORD")
	w.Write([]byte(record.String()))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUvxFromWheel: `uvx demo-mcp` resolves to a PyPI package, installed
// (from a local wheel directory, since no index is reachable) in a sandbox
// and run from the cache.
func TestUvxFromWheel(t *testing.T) {
	e := newEnv(t)
	testutil.RequiresCommand(t, "python3")
	wheels := t.TempDir()
	os.Chmod(wheels, 0o755)
	buildWheel(t, wheels)
	xdg, _ := xdgEnv(t)
	ctx := testutil.Context(t, 2*time.Minute)

	cmd := e.command("--find-links", wheels, "--", "uvx", "demo-mcp")
	cmd.Env = append(cmd.Env, xdg...)
	cs, stderr := e.connectCmd(ctx, cmd)
	if got := cs.InitializeResult().ServerInfo.Name; got != "demo-mcp" {
		t.Errorf("server name %q", got)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || !hasTool(tools, "hello") {
		t.Errorf("tools/list: %v %v", toolNames(tools), err)
	}
	if !strings.Contains(stderr.String(), "installing") {
		t.Errorf("no install reported:\n%s", stderr.String())
	}
}
