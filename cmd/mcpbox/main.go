// Command mcpbox runs third-party MCP servers in sandboxes. See README.md.
package main

import "os"

func main() {
	os.Exit(run(os.Args))
}
