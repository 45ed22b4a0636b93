//go:build linux && !amd64

package main

const haveInt80 = false

// int80Getpid reports false: INT $0x80 exists only on x86.
func int80Getpid() (int64, bool) { return 0, false }
