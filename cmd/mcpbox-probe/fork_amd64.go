//go:build linux

package main

import "syscall"

// forkPause is in int80_amd64.s.
func forkPause() int64

// forkHolder forks a child that does nothing but wait to be killed, costing
// one pid and almost no memory, as a fork bomb's children do.
func forkHolder() (int, error) {
	r := forkPause()
	if r < 0 {
		return 0, syscall.Errno(-r)
	}
	return int(r), nil
}
