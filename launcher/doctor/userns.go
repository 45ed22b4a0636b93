package doctor

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProbeCommand is the hidden mcpbox command that runs ProbeChild. Options.Self
// must be a program that runs ProbeChild when started with it as its only
// argument.
const ProbeCommand = "doctor-userns-child"

// The sysctls that keep unprivileged users from user namespaces, as
// /proc/sys paths.
const (
	sysctlMaxUserNS        = "/proc/sys/user/max_user_namespaces"
	sysctlUnprivUserNS     = "/proc/sys/kernel/unprivileged_userns_clone"             // Debian's and Ubuntu's patch
	sysctlAppArmorRestrict = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns" // Ubuntu 23.10+
)

// sysctlFix is the one command that sets a sysctl now and at every boot.
func sysctlFix(name, value string) string {
	return fmt.Sprintf("echo %s=%s | sudo tee /etc/sysctl.d/99-mcpbox-userns.conf && sudo sysctl --system", name, value)
}

// checkUserNamespaces really does what the rootless runtime does at start:
// it creates a user namespace, a network namespace in it, and mcpbox's
// nftables rules in a network namespace in that (see ProbeChild). needed
// says whether the chosen runtime depends on them: containerd does not,
// so there a failure is a warning.
func checkUserNamespaces(ctx context.Context, opts Options, needed bool) Result {
	c := Result{Name: "user namespaces"}
	if opts.Self == "" {
		c.Status, c.Detail = Skip, "not checked: no mcpbox executable to run the check in"
		return c
	}
	err := probeUserns(ctx, opts.Self)
	if err == nil {
		c.Status = OK
		c.Detail = fmt.Sprintf("as uid %d: created a user namespace, a network namespace in it, and mcpbox's nftables rules in that", opts.Caller.UID)
		return c
	}
	c = classifyUserns(err, readUsernsSysctls(opts), opts.Caller.UID != 0)
	if !needed && c.Status == Fail {
		c.Status = Warn
		c.Detail += " (containerd does not need them; the rootless runtime does)"
	}
	return c
}

// usernsSysctls are the values of the sysctls that restrict user
// namespaces; -1 for one the kernel does not have.
type usernsSysctls struct {
	maxUserNS, unprivClone, apparmorRestrict int
}

func readUsernsSysctls(opts Options) usernsSysctls {
	read := func(p string) int {
		data, err := os.ReadFile(opts.path(p))
		if err != nil {
			return -1
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return -1
		}
		return n
	}
	return usernsSysctls{read(sysctlMaxUserNS), read(sysctlUnprivUserNS), read(sysctlAppArmorRestrict)}
}

// classifyUserns names the cause of a failed user namespace check from the
// sysctls that cause it, each with the command that lifts it; any other
// failure is shown as it came. unprivileged says whether the caller is an
// ordinary user, whom only the last two sysctls concern.
func classifyUserns(err error, s usernsSysctls, unprivileged bool) Result {
	c := Result{Name: "user namespaces", Status: Fail}
	switch {
	case s.maxUserNS == 0:
		c.Detail = fmt.Sprintf("user.max_user_namespaces is 0: nobody may create a user namespace (%v)", err)
		c.Fix = sysctlFix("user.max_user_namespaces", "15000")
	case unprivileged && s.unprivClone == 0:
		c.Detail = fmt.Sprintf("kernel.unprivileged_userns_clone is 0: only root may create a user namespace (%v)", err)
		c.Fix = sysctlFix("kernel.unprivileged_userns_clone", "1")
	case unprivileged && s.apparmorRestrict == 1:
		c.Detail = fmt.Sprintf("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1) and no profile lets mcpbox use them (%v)", err)
		c.Fix = "sudo mcpbox setup apparmor"
	default:
		c.Detail = err.Error()
	}
	return c
}
