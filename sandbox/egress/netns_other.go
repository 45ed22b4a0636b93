//go:build !linux

package egress

import (
	"errors"
	"fmt"
)

// NetNS is a sandbox's network namespace; it exists only on Linux.
type NetNS struct{}

// NewNetNS fails: network namespaces are a Linux feature.
func NewNetNS() (*NetNS, error) {
	return nil, fmt.Errorf("egress: network namespaces: %w", errors.ErrUnsupported)
}

// Path is empty.
func (n *NetNS) Path() string { return "" }

// Do fails.
func (n *NetNS) Do(func() error) error { return errors.ErrUnsupported }

// Install fails.
func (n *NetNS) Install(uint16, ...uint16) error { return errors.ErrUnsupported }

// Close does nothing.
func (n *NetNS) Close() error { return nil }
