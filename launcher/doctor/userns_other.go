//go:build !linux

package doctor

import (
	"context"
	"errors"
	"runtime"
)

var errNotLinux = errors.New(runtime.GOOS + ": user namespaces are Linux's")

// ProbeChild is the child of the user namespaces check; only on Linux.
func ProbeChild() error { return errNotLinux }

func probeUserns(context.Context, string) error { return errNotLinux }

func fileCaps(string) []byte { return nil }
