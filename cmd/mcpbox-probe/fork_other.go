//go:build linux && !amd64

package main

import (
	"os"
	"syscall"
)

// forkHolder starts a probe child that sleeps; without the assembly fork it
// costs a few pids (the Go runtime's threads) instead of one.
func forkHolder() (int, error) {
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}}
	return syscall.ForkExec("/proc/self/exe", []string{"/proc/self/exe", childArg, "hold"}, attr)
}
