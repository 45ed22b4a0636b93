// Package runtime is the seam between a session and whatever runs its
// container. A session builds the OCI spec (package sandbox) and its stdio
// FIFOs itself; a Runtime only creates, starts, signals, waits for and
// deletes the container made from that spec, makes read-only views of
// images, and lists what dead sessions left behind.
//
// Implementations live below this package (containerd/ today) and share
// the seam's values through runtime/api, so that none imports its parent.
// This package must not know MCP, profiles or the launcher: it imports
// neither launcher nor sandbox.
package runtime

import (
	"context"

	"github.com/mcpbox/mcpbox/launcher/runtime/api"
	"github.com/mcpbox/mcpbox/launcher/runtime/containerd"
)

// Runtime runs containers from OCI specs.
type Runtime interface {
	// Image makes image ref ready for ImageRoot (fetched, checked against
	// its pin, unpacked), so that a missing image fails before the session
	// makes anything.
	Image(ctx context.Context, ref string) error
	// ImageRoot makes a read-only view of image ref on the host for the
	// session id, whose directory is sessionDir. The view lives until
	// Release, or until the container created with it is deleted.
	ImageRoot(ctx context.Context, ref, id, sessionDir string) (ImageRoot, error)
	// Create creates the container and its first process from c. The
	// process exists (its mounts are made, Pid is known) but has not run
	// any of the program yet: Start runs it. On error nothing of it is
	// left behind.
	Create(ctx context.Context, c Config) (Container, error)
	// Leftovers lists every container and image view mcpbox sessions
	// made that still exists, live sessions' included.
	Leftovers(ctx context.Context) ([]Leftover, error)
	// Remove kills and deletes one leftover.
	Remove(ctx context.Context, l Leftover) error
	// Close releases the runtime's own resources (connections).
	Close() error
}

// The seam's values, under the names a session uses.
type (
	Config    = api.Config
	Owner     = api.Owner
	ImageRoot = api.ImageRoot
	Container = api.Container
	Exit      = api.Exit
	Leftover  = api.Leftover
)

var _ Runtime = (*containerd.Runtime)(nil)
