// Package apparmor owns mcpbox's AppArmor profile: the text that lets an
// installed mcpbox create user namespaces where Ubuntu 23.10 and later deny
// that to unconfined programs (kernel.apparmor_restrict_unprivileged_userns),
// the file name AppArmor's convention gives it, a parse-only check with
// apparmor_parser, whether an installed binary is fit to have the profile
// (CheckInstalled: only root can replace it) and which binary a file in
// Dir is mcpbox's profile for (Binary). It does not install or load the
// profile into the kernel: `make install`, the Debian package and `mcpbox
// setup apparmor` do that.
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

// ErrReplaceable is returned by CheckInstalled for an executable that
// someone other than root could replace.
var ErrReplaceable = errors.New("apparmor: others than root could replace")

// Name is the base name of the only executable mcpbox writes a profile
// for: the profile lifts a restriction, and is meant for mcpbox alone.
const Name = "mcpbox"

// header is the profile's first line, the marker by which Binary knows a
// file of mcpbox's (and for which binary): changing its wording orphans
// every profile installed before.
const header = "# AppArmor profile for mcpbox installed at "

var profileText = template.Must(template.New("profile").Parse(header + `{{.Binary}}.
# Written by mcpbox (launcher/apparmor), which replaces this file only while
# its first line is as above; local changes belong in
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
// an absolute, clean path made only of letters, digits and "._+-/" whose
// last element is Name (the kernel matches a profile to the executable's
// path with symlinks resolved: pass that path). It refuses any other path
// rather than quote AppArmor's glob and variable characters into a rule,
// or grant another program what the profile grants.
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
// Two paths may share a name (/a/b.c/mcpbox and /a.b/c/mcpbox): Binary
// tells which one a file in Dir is for.
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
	if filepath.Base(binary) != Name {
		return fmt.Errorf("%w %q: the profile is for mcpbox only, and this file is not named %s: give the path of the mcpbox executable", ErrPath, binary, Name)
	}
	return nil
}

// Binary returns the mcpbox executable that profile, the text of a file in
// Dir, is mcpbox's profile for, known by the first line Profile writes; ok
// is false for any other file, such as another program's profile, which
// mcpbox must never replace.
func Binary(profile []byte) (binary string, ok bool) {
	first, _, _ := bytes.Cut(profile, []byte("\n"))
	rest, ok := bytes.CutPrefix(first, []byte(header))
	if !ok {
		return "", false
	}
	binary, ok = strings.CutSuffix(string(rest), ".")
	if !ok || checkPath(binary) != nil {
		return "", false
	}
	return binary, true
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
