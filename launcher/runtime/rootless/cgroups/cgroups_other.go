//go:build !linux

package cgroups

import "context"

// Find returns ErrUnsupported: only Linux has cgroups.
func Find(uid int) (Delegation, error) { return Delegation{}, ErrUnsupported }

// PrepareV1 returns ErrUnsupported: only Linux has cgroups.
func PrepareV1(root, userName string, uid, gid int) ([]string, error) { return nil, ErrUnsupported }

// StartScope returns ErrUnsupported: only Linux has cgroups.
func StartScope(ctx context.Context, unitName string, pid int) (Delegation, error) {
	return Delegation{}, ErrUnsupported
}
