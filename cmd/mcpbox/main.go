// Command mcpbox runs third-party MCP servers in sandboxes. See README.md.
package main

import (
	"os"

	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/userns"
)

func main() {
	// A child mcpbox started in its user namespace waits there for its
	// ids to be mapped and executes itself again (see userns).
	userns.Continue()
	os.Exit(run(os.Args))
}
