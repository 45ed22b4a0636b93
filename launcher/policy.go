package launcher

import (
	"fmt"
	"io"
	"strings"

	"github.com/mcpbox/mcpbox/launcher/audit"
	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/launcher/pins"
	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// AuditNone as Options.Audit turns the audit log off.
const AuditNone = "none"

// sessionPolicy is what the broker enforces for one session, beyond the
// tool filter.
type sessionPolicy struct {
	broker    broker.Options // Pins, Pin, Scan, Identity, OtherTools, Redactor, AuditBodies
	auditPath string         // "" for none
}

// brokerPolicy turns the profile's tools section and the flags into the
// broker's policies. env are the NAME=VALUE pairs passed into the sandbox:
// their values are what redaction looks for first.
func brokerPolicy(opts Options, prof *profiles.Profile, id broker.Identity, env []string) sessionPolicy {
	var p sessionPolicy
	p.broker.Identity = id
	p.broker.Pin = mode(prof.Tools.Pin)
	p.broker.Scan = mode(prof.Tools.Scan)
	if p.broker.Pin != broker.ModeOff {
		p.broker.Pins = pins.For(opts.Dirs.PinsDir(), id)
	}
	if p.broker.Scan != broker.ModeOff {
		p.broker.OtherTools = pins.OtherTools(opts.Dirs.PinsDir(), id)
	}
	if !opts.NoRedact {
		exact := map[string]string{}
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				exact[k] = v
			}
		}
		p.broker.Redactor = broker.NewRedactor(exact)
	}
	p.broker.AuditBodies = opts.AuditBodies
	switch opts.Audit {
	case AuditNone:
	case "":
		p.auditPath = fmt.Sprintf("%s/%s.jsonl", opts.Dirs.AuditDir(), id.Server)
	default:
		p.auditPath = opts.Audit
	}
	return p
}

func mode(a profiles.Action) broker.Mode {
	switch a {
	case profiles.ActionBlock:
		return broker.ModeBlock
	case profiles.ActionOff:
		return broker.ModeOff
	}
	return broker.ModeWarn
}

// openAudit opens the session's audit log, rotated by size; nil when the
// audit log is off.
func (p sessionPolicy) openAudit(opts Options) (io.WriteCloser, error) {
	if p.auditPath == "" {
		return nil, nil
	}
	f, err := audit.Open(p.auditPath, audit.DefaultMaxSize, audit.DefaultKeep)
	if err != nil {
		return nil, fmt.Errorf("launcher: audit log %s: %w (choose another file with --audit FILE, or turn it off with --audit=%s)", p.auditPath, err, AuditNone)
	}
	return f, nil
}

// deniedSyscallLine is the audit line for a syscall that
// --report-violations denied.
func deniedSyscallLine(ev seccomp.Event) []byte {
	return audit.AppendEntry(nil, &audit.Entry{Time: ev.Time, Dir: audit.ServerToClient, Kind: audit.KindPolicy,
		Policy: "seccomp", Finding: ev.Syscall, Severity: "medium", Detail: "denied: " + ev.Detail})
}
