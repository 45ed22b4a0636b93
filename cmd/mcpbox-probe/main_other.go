//go:build !linux

// Command mcpbox-probe runs only inside an mcpbox sandbox, which exists only
// on Linux.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "mcpbox-probe: refusing to run: mcpbox sandboxes exist only on Linux")
	os.Exit(3)
}
