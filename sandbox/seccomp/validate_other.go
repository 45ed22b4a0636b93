//go:build !linux || !cgo || !seccomp

package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Validate needs libseccomp; this build has none. See validate_linux.go.
func Validate(p *specs.LinuxSeccomp) error { return errNoLibseccomp("validate profile") }

// CheckKernel needs libseccomp; this build has none. See validate_linux.go.
func CheckKernel() error { return errNoLibseccomp("check kernel") }

// CheckNames needs libseccomp; this build has none. See validate_linux.go.
func CheckNames(names ...string) error { return errNoLibseccomp("check syscall names") }

func errNoLibseccomp(op string) error {
	return fmt.Errorf("seccomp: %s: %w: mcpbox was built without libseccomp; build on Linux with cgo, libseccomp-dev and `-tags seccomp`", op, errors.ErrUnsupported)
}
