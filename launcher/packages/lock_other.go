//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package packages

import (
	"context"
	"errors"
)

// Lock is not implemented on this platform (no flock(2)): mcpbox's
// sandboxes need Linux anyway.
func (c *Cache) Lock(ctx context.Context, spec *Spec) (unlock func(), err error) {
	return nil, errors.ErrUnsupported
}
