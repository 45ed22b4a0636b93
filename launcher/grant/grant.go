// Package grant decides which host paths a server may see, and as whom:
// it finds the user's homes and the credentials in them, checks what
// --mount, a profile's mounts and the server's path arguments ask for
// (each with its symlinks resolved), picks the package tree of a script,
// chooses the uid and gid that can use every grant, and pins the source of
// each bind until the sandbox shows it.
//
// It builds no OCI spec (sandbox does) and starts nothing. It must not
// import launcher (the session package, which calls it) or cmd, which sit
// above it: it takes plain paths, not the launcher's directories.
package grant

// Error is a grant refused because of what the user asked for: a path
// argument that may not be granted, grants no allowed user can use. The
// launcher reports it as a usage error.
type Error struct {
	Err error
}

func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }
