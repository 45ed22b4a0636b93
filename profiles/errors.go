package profiles

import (
	"errors"
	"strconv"
)

// ErrNotFound is returned (wrapped) by Catalog.Get when no user or built-in
// profile has the name asked for.
var ErrNotFound = errors.New("profile not found")

// ValidationError is a mistake in a profile file, with the position that
// shows it. Line is 0 when no line applies; Field is the dotted path of the
// offending field ("limits.memory", "mounts[1].mode", "network.allow[2]") or
// "" for a problem with the file as a whole.
type ValidationError struct {
	File   string
	Line   int
	Field  string
	Reason string
}

// Error reads like `profiles/x.yaml:12: limits.memory: "12X" is not a size: ...`.
func (e *ValidationError) Error() string {
	s := e.File
	if s == "" {
		s = "profile"
	}
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Reason
}
