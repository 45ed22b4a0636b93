//go:build linux && !amd64

package main

// legacySetIDAttempts: arm64 has no open, creat, chmod or mknod, only
// their *at forms, which fs/setuid-bit tries on every architecture.
func legacySetIDAttempts(uint32, func(string) string) []setIDAttempt { return nil }
