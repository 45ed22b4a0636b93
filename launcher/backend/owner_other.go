//go:build !unix

package backend

import "io/fs"

// owner is not known here: every directory counts as someone else's, so
// StateDir refuses rather than trusts it.
func owner(fs.FileInfo) (int, bool) { return -1, false }
