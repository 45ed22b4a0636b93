//go:build !linux || !cgo || !seccomp

package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

// WithNotify needs libseccomp's syscall table; this build has none. See
// notify_linux.go.
func WithNotify(p *specs.LinuxSeccomp, listenerPath string) (*specs.LinuxSeccomp, []string, error) {
	return nil, nil, errNoLibseccomp("notify")
}

// Agent answers seccomp notifications; this build cannot. See
// notify_linux.go.
type Agent struct{}

// ListenAgent needs libseccomp; this build has none. See notify_linux.go.
func ListenAgent(socketPath string, decide func(Event) Decision, opts AgentOptions) (*Agent, error) {
	return nil, errNoLibseccomp("notify agent")
}

// Stats reports nothing: no agent runs in this build.
func (a *Agent) Stats() (received, dropped uint64) { return 0, 0 }

// Counts reports nothing: no agent runs in this build.
func (a *Agent) Counts() map[string]int { return map[string]int{} }

// Close has nothing to close in this build.
func (a *Agent) Close() error { return nil }
