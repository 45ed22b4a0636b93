//go:build !linux || !cgo || !seccomp

package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

// WithFileNotify needs libseccomp's syscall table; this build has none. See
// notify_files_linux.go.
func WithFileNotify(p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, []string, error) {
	return nil, nil, errNoLibseccomp("file notify")
}
