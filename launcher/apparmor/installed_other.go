//go:build !linux

package apparmor

import (
	"errors"
	"fmt"
)

// CheckInstalled refuses every binary: AppArmor is Linux's, and the
// ownership checks it needs are not written for other systems.
func CheckInstalled(binary string) error {
	return fmt.Errorf("%w %s: %w", ErrReplaceable, binary, errors.ErrUnsupported)
}
