//go:build linux

package main

const haveInt80 = true

// int80getpid is in int80_amd64.s.
func int80getpid() int64

// int80Getpid returns what the i386 getpid returned through INT $0x80: a
// pid, or a negative errno.
func int80Getpid() (int64, bool) { return int80getpid(), true }
