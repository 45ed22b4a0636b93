//go:build !linux

package grant

import (
	"errors"

	"github.com/mcpbox/mcpbox/sandbox"
)

// pin is the host object behind one bind (see pin_linux.go).
type pin struct{}

// Pins are the pins of a sandbox's binds (see pin_linux.go).
type Pins []pin

// PinMounts needs openat2(2): Linux only.
func PinMounts([]sandbox.Mount) (Pins, error) {
	return nil, errors.ErrUnsupported
}

func (Pins) Close() {}

func (Pins) Verify(uint32) error { return errors.ErrUnsupported }
