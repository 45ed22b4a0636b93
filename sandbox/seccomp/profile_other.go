//go:build !linux

package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Default returns an error wrapping errors.ErrUnsupported: seccomp and the
// upstream profile exist on Linux only.
func Default() (*specs.LinuxSeccomp, error) {
	return nil, fmt.Errorf("seccomp: default profile: %w: seccomp sandboxes need Linux", errors.ErrUnsupported)
}

// WithMemfdDenied returns an error wrapping errors.ErrUnsupported: seccomp
// profiles are built on Linux only.
func WithMemfdDenied(p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	return nil, fmt.Errorf("seccomp: memfd denied: %w: seccomp sandboxes need Linux", errors.ErrUnsupported)
}
