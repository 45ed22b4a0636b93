// Package launcher runs one MCP server session end to end: it resolves the
// command, turns the options into a sandbox.Policy, asks sandbox for the OCI
// spec, runs the container through containerd, brokers the stdio stream and
// cleans everything up again.
//
// It does not build OCI specs itself (that is package sandbox), it does not
// parse MCP messages (that is launcher/broker), and it never writes to the
// process's stdout except through the broker.
package launcher

import (
	"io"
	"log/slog"
	"time"

	"github.com/mcpbox/mcpbox/launcher/memfd"
	"github.com/mcpbox/mcpbox/launcher/observe"
	"github.com/mcpbox/mcpbox/sandbox"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "mcpbox"
	DefaultRunDir      = "/run/mcpbox"
	DefaultStopTimeout = 5 * time.Second
)

// Options describe one `mcpbox run` session.
type Options struct {
	// Runtime is the --runtime setting: "" or "auto" (containerd when the
	// caller can use its socket, else rootless), "containerd" or
	// "rootless"; see backend.Choose. Sessions run in the rootless runtime
	// only when it is "rootless" and this process runs in mcpbox's user
	// namespace (cmd/mcpbox re-executes itself there).
	Runtime string
	// Address of containerd's socket and the containerd namespace to use.
	Address   string
	Namespace string
	// InitPath is the mcpbox-init binary run as the sandbox's pid 1; ""
	// means the one next to mcpbox's executable.
	InitPath string
	// RunDir holds per-session directories (empty root, synthetic /etc
	// files, FIFOs). Each is removed when its session ends.
	RunDir string

	// Dirs are mcpbox's config, state and cache directories; zero means
	// DefaultDirs().
	Dirs Dirs
	// Profile is the --profile value: a profile name or a file; "" picks
	// one by the package (see profiles.Catalog.Resolve).
	Profile string
	// Update reinstalls a package as requested instead of reusing the
	// version pinned in the cache (mcpbox pull --update).
	Update bool
	// FindLinks is a local directory of Python wheels to install from
	// instead of an index.
	FindLinks string

	// Command is the server's command line as the client gave it.
	Command []string
	// Mounts are host paths granted to the server (from --mount). A
	// session checks and binds each with its symlinks resolved.
	Mounts []sandbox.Mount
	// Env lists "NAME" (value taken from Environ) or "NAME=VALUE" entries;
	// only these reach the server.
	Env []string
	// Environ is mcpbox's own environment, the source of "NAME" entries of
	// Env; nil means os.Environ().
	Environ []string
	// Network is NetworkNone or NetworkAllowlist; "" means allowlist when
	// AllowHosts is set, else none.
	Network string
	// AllowHosts are egress allowlist entries (see egress.ParseAllowlist).
	AllowHosts []string
	// EgressLog receives the egress decisions as JSON lines; nil drops
	// them. Denials are also logged as warnings.
	EgressLog io.Writer
	// Workdir is the server's working directory inside the sandbox.
	Workdir string
	Limits  sandbox.Limits

	// StopTimeout is how long the server gets after its stdin is closed,
	// and again after SIGTERM, before it is killed.
	StopTimeout time.Duration
	// MaxMessage bounds one message from the server, in bytes.
	MaxMessage int64

	// Audit is the audit log file: "" means the server's default file in
	// Dirs.AuditDir(), AuditNone none.
	Audit string
	// AuditBodies adds whole messages, secrets redacted, to the audit log.
	AuditBodies bool
	// NoRedact turns secret redaction off.
	NoRedact bool
	// Observe, when set, watches the session (mcpbox trial).
	Observe *observe.Hooks
	// ReportViolations reports each syscall the profile denies outright,
	// on stderr and in the audit log; it is still denied.
	ReportViolations bool
	// Memfd is the --memfd setting: how the sandbox keeps code written
	// into memory from running (see memfd.Setting). The zero value is
	// memfd.Auto.
	Memfd memfd.Setting

	// The client's side of the stdio stream; only the broker writes Stdout.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	Logger *slog.Logger

	// RequireLimits refuses to start a server whose memory, pids or CPU
	// limit the runtime cannot enforce (rootless without a delegated
	// cgroup), instead of saying so on stderr.
	RequireLimits bool
}

func (o *Options) setDefaults() {
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.isRootless() && (o.RunDir == "" || o.RunDir == DefaultRunDir) {
		// An error here shows again, with its fix, when the runtime opens.
		if dir, err := rootlessRunDir(); err == nil {
			o.RunDir = dir
		}
	}
	if o.RunDir == "" {
		o.RunDir = DefaultRunDir
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Dirs == (Dirs{}) {
		o.Dirs = DefaultDirs()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
