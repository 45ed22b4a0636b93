package testutil

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// BuiltAppArmorParser is where scripts/apparmor4.sh (run by `make setup`)
// installs an AppArmor 4 parser on hosts whose own is older, such as
// Debian 12's 3.0.
const BuiltAppArmorParser = "/opt/mcpbox-ci/apparmor4/apparmor_parser"

// AppArmorParser4 returns an apparmor_parser of version 4 or later, the
// first AppArmor whose policy knows user namespaces: the host's own, else
// BuiltAppArmorParser. It skips (or fails under CI) when there is neither.
func AppArmorParser4(t testing.TB) string {
	t.Helper()
	candidates := []string{"/usr/sbin/apparmor_parser", "/sbin/apparmor_parser", BuiltAppArmorParser}
	if p, err := exec.LookPath("apparmor_parser"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	var seen []string
	for _, p := range candidates {
		out, err := exec.Command(p, "--version").Output()
		if err != nil {
			continue
		}
		// "AppArmor parser version 4.1.0" on the first line.
		first, _, _ := strings.Cut(string(out), "\n")
		f := strings.Fields(first)
		if len(f) == 0 {
			continue
		}
		seen = append(seen, p+" "+f[len(f)-1])
		major, _, _ := strings.Cut(f[len(f)-1], ".")
		if n, err := strconv.Atoi(major); err == nil && n >= 4 {
			return p
		}
	}
	skip(t, "no apparmor_parser of version 4 or later (found: "+strings.Join(seen, ", ")+"); `make setup` builds one into "+BuiltAppArmorParser)
	return ""
}
