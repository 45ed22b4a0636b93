//go:build !linux

package main

import (
	"fmt"
	"io"
)

const memfdHookArg = "--oci-hook=memfd-noexec"

// memfdHook fails: vm.memfd_noexec is a Linux setting, and mcpbox
// sandboxes run only on Linux.
func memfdHook(stdin io.Reader, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mcpbox-init: memfd hook: only supported on Linux")
	return exitSetup
}
