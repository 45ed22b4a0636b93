// Package apparmor owns mcpbox's AppArmor profile: the text that lets an
// installed mcpbox create user namespaces where Ubuntu 23.10 and later deny
// that to unconfined programs (kernel.apparmor_restrict_unprivileged_userns),
// the file name AppArmor's convention gives it, and a parse-only check with
// apparmor_parser. It does not install or load the profile into the kernel:
// `make install`, the Debian package and `mcpbox setup apparmor` do that.
//
// The profile confines nothing. It names the binary, leaves it unconfined
// and grants `userns,`, as Ubuntu's own profiles for runc, crun and podman
// do: mcpbox's sandbox is its namespaces, seccomp filter and mounts, not
// this profile. The rule needs AppArmor 4.0's policy ABI; an older AppArmor
// (Debian 12 has 3.0) neither knows the rule nor restricts user namespaces,
// and refuses to parse the profile — which is why Check comes before any
// install: a profile that does not parse, left in /etc/apparmor.d, makes
// apparmor.service fail at every boot.
package apparmor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

// Dir is where AppArmor loads profiles from at boot.
const Dir = "/etc/apparmor.d"

// ErrPath is returned for a binary path the profile cannot name.
var ErrPath = errors.New("apparmor: unusable binary path")

var profileText = template.Must(template.New("profile").Parse(`# AppArmor profile for mcpbox installed at {{.Binary}}.
# Written by mcpbox (launcher/apparmor); local changes belong in
# {{.Local}}, which this profile includes.
#
# mcpbox creates user namespaces to run MCP servers without root, which
# Ubuntu 23.10 and later deny to unconfined programs. This profile confines
# nothing: it leaves mcpbox unconfined and grants it user namespaces, as
# Ubuntu's profiles for runc, crun and podman do. The sandbox itself is
# mcpbox's namespaces, seccomp filter and mounts.

abi <abi/4.0>,

include <tunables/global>

profile {{.Binary}} flags=(unconfined) {
  userns,

  include if exists <local/{{.Name}}>
}
`))

// Profile returns the AppArmor profile for the mcpbox executable at binary,
// an absolute, clean path made only of letters, digits and "._+-/" (the
// kernel matches a profile to the executable's path with symlinks resolved:
// pass that path). It refuses any other path rather than quote AppArmor's
// glob and variable characters into a rule.
func Profile(binary string) ([]byte, error) {
	name, err := FileName(binary)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = profileText.Execute(&b, struct{ Binary, Name, Local string }{binary, name, filepath.Join(Dir, "local", name)})
	if err != nil {
		return nil, fmt.Errorf("apparmor: render profile for %s: %w", binary, err)
	}
	return b.Bytes(), nil
}

// FileName returns the profile's file name in Dir by AppArmor's convention,
// the path without its leading slash and with dots for slashes:
// "usr.bin.mcpbox" for /usr/bin/mcpbox. It refuses what Profile refuses.
func FileName(binary string) (string, error) {
	if err := checkPath(binary); err != nil {
		return "", err
	}
	return strings.ReplaceAll(strings.TrimPrefix(binary, "/"), "/", "."), nil
}

func checkPath(binary string) error {
	switch {
	case !filepath.IsAbs(binary):
		return fmt.Errorf("%w %q: give an absolute path", ErrPath, binary)
	case filepath.Clean(binary) != binary || binary == "/":
		return fmt.Errorf("%w %q: give a clean path to the executable (no trailing slash, . or ..)", ErrPath, binary)
	}
	for _, c := range binary {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._+-/", c)
		if !ok {
			return fmt.Errorf("%w %q: %q is not allowed in it (only letters, digits and ._+-/): install mcpbox under a plainer path", ErrPath, binary, c)
		}
	}
	return nil
}

// Check has the AppArmor parser at parser compile profile without loading
// it into the kernel or touching the cache (apparmor_parser -Q -K), and
// returns the parser's complaint if it refuses it. An AppArmor older than
// 4.0 refuses every profile Profile writes.
func Check(ctx context.Context, parser string, profile []byte) error {
	dir, err := os.MkdirTemp("", "mcpbox-apparmor-")
	if err != nil {
		return fmt.Errorf("apparmor: check profile: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "profile")
	if err := os.WriteFile(file, profile, 0o644); err != nil {
		return fmt.Errorf("apparmor: check profile: %w", err)
	}
	out, err := exec.CommandContext(ctx, parser, "--skip-kernel-load", "--skip-cache", "--quiet", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("apparmor: %s refuses the profile (an AppArmor before 4.0 does, for its userns rule, and restricts no user namespaces: it needs no profile): %w\n%s",
			parser, err, bytes.TrimSpace(out))
	}
	return nil
}
