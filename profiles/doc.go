// Package profiles owns mcpbox's profile format: the schema of a profile
// (how much one MCP server may do), strict YAML loading that names the file,
// line and field of every mistake, `extends` between profiles, the built-in
// catalog (one embedded file per known server under builtin/), and lookup:
// which profile a `--profile` flag, a user profile directory or a package
// name selects.
//
// Loading is strict: an unknown key, a duplicate key, a value of the wrong
// type or outside its allowed set is a *ValidationError with the position of
// the offending key or list entry. The package checks shape and syntax only.
// It deliberately makes no sandbox decisions: it does not parse network
// allowlist entries (the egress package does), does not know which syscalls
// exist or are safe (the seccomp package does), does not expand `~` or
// ${STATE} against a real home or state directory, and does not decide how a
// profile becomes a sandbox policy (the launcher does, and reports its own
// deeper errors at the positions Profile.Pos and Profile.Errorf give it).
// Its only I/O is reading profile files.
package profiles
