//go:build !linux || !cgo || !seccomp

package seccomp

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestWithoutLibseccomp(t *testing.T) {
	_, buildErr := Build(Options{})
	for name, err := range map[string]error{
		"Build":       buildErr,
		"Validate":    Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno}),
		"CheckKernel": CheckKernel(),
		"CheckNames":  CheckNames("read"),
	} {
		if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "-tags seccomp") {
			t.Errorf("%s = %v, want errors.ErrUnsupported and a hint to build with -tags seccomp", name, err)
		}
	}
}
