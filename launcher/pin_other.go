//go:build !linux

package launcher

import (
	"errors"

	"github.com/mcpbox/mcpbox/sandbox"
)

// pin is the host object behind one bind (see pin_linux.go).
type pin struct{}

func pinMounts([]sandbox.Mount) ([]pin, error) {
	return nil, errors.ErrUnsupported
}

func closePins([]pin) {}

func verifyPins(uint32, []pin) error { return errors.ErrUnsupported }
