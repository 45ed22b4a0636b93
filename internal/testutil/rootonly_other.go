//go:build !linux

package testutil

import "testing"

// RootOnlyDir is Linux's only: elsewhere it skips (or fails under CI).
func RootOnlyDir(t testing.TB) string {
	t.Helper()
	RequiresRoot(t)
	return ""
}
