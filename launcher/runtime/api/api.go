// Package api holds the values and handles that cross the runtime seam:
// what a session asks a runtime to create, and what it gets back. It is a
// leaf so that the implementations below launcher/runtime and the
// launcher/runtime package that declares the Runtime interface share these
// types without any of them importing its parent.
package api

import (
	"context"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config is one container to create.
type Config struct {
	ID string
	// Spec is the complete OCI spec. The server's stdio travels through
	// FIFOs the spec binds in (see cmd/mcpbox-init): the runtime gives the
	// process no stdio of its own.
	Spec  *specs.Spec
	Owner Owner
	// Image is the view the spec's root binds read from, from ImageRoot
	// of the same runtime; nil when the root is a plain directory.
	Image ImageRoot
}

// Owner says which mcpbox process a container belongs to, so that gc can
// tell a live session's container from a dead one's.
type Owner struct {
	PID, Start string // the owner process's pid and start time (see launcher's owner identity)
	Started    time.Time
	Command    string // the server's command line, shortened
	SessionDir string // the session's directory on the host
}

// ImageRoot is a read-only view of an image on the host.
type ImageRoot interface {
	// Dir is the host directory holding the image's files.
	Dir() string
	// Name is the image's name, for messages.
	Name() string
	// Release unmounts and removes the view if no container holds it.
	Release(ctx context.Context) error
}

// Container is one created container and its first process.
type Container interface {
	ID() string
	// Pid is the process's pid in the caller's pid namespace.
	Pid() uint32
	// Start runs the process.
	Start(ctx context.Context) error
	// Exited delivers the process's exit once.
	Exited() <-chan Exit
	// Signal sends sig to the process, or with all to every process of
	// the container.
	Signal(ctx context.Context, sig syscall.Signal, all bool) error
	// OOMKilled reports whether the kernel killed a process of the
	// container for exceeding its memory limit.
	OOMKilled() bool
	// Delete kills what still runs and removes the container and
	// everything the runtime made for it.
	Delete(ctx context.Context) error
}

// Exit is how a container's process ended.
type Exit struct {
	Code int
	// Err is set when the runtime lost track of the process: the code
	// means nothing then.
	Err error
}

// Leftover is a container or image view a session made.
type Leftover struct {
	ID string
	// Owner: PID and Start are empty for an image view, and for a
	// container whose labels could not be read (gc leaves it alone).
	Owner Owner
	// View marks an image view whose container was never created.
	View bool
}
