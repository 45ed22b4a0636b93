package sandbox

import (
	"fmt"
	"path/filepath"
	"strings"
)

// SyntheticEtc returns the contents of the /etc files a host-rootfs sandbox
// gets instead of the host's, keyed by their path inside the sandbox:
// /etc/passwd, /etc/group, /etc/hosts, /etc/nsswitch.conf and
// /etc/resolv.conf. The caller writes them into a per-session directory and
// binds each one read-only.
//
// The process's user is nobody when uid is 65534 and "sandbox" otherwise,
// with home as its home directory and no login shell. Zero or unusable
// arguments take the same defaults as Policy (65534:65534, DefaultHome,
// DefaultHostname), so the files never hold a line an attacker-chosen value
// could break; Spec rejects those values outright.
func SyntheticEtc(uid, gid uint32, home, hostname string) map[string][]byte {
	if uid == 0 || gid == 0 {
		uid, gid = DefaultUID, DefaultGID
	}
	if !filepath.IsAbs(home) || strings.ContainsAny(home, ":\n") {
		home = DefaultHome
	}
	home = filepath.Clean(home)
	if checkHostname(hostname) != nil {
		hostname = DefaultHostname
	}

	const nologin = "/usr/sbin/nologin"
	var passwd strings.Builder
	fmt.Fprintf(&passwd, "root:x:0:0:root:/root:%s\n", nologin)
	if uid == DefaultUID {
		fmt.Fprintf(&passwd, "nobody:x:%d:%d:nobody:%s:%s\n", uid, gid, home, nologin)
	} else {
		fmt.Fprintf(&passwd, "nobody:x:%d:%d:nobody:/nonexistent:%s\n", DefaultUID, DefaultGID, nologin)
		fmt.Fprintf(&passwd, "sandbox:x:%d:%d:sandbox:%s:%s\n", uid, gid, home, nologin)
	}

	var group strings.Builder
	group.WriteString("root:x:0:\n")
	group.WriteString("tty:x:5:\n") // the gid of /dev/pts entries (WithSystemMounts)
	group.WriteString("nogroup:x:65534:\n")
	if gid != 5 && gid != DefaultGID {
		fmt.Fprintf(&group, "sandbox:x:%d:\n", gid)
	}

	hosts := fmt.Sprintf("127.0.0.1\tlocalhost %s\n::1\tlocalhost\n", hostname)

	return map[string][]byte{
		"/etc/passwd": []byte(passwd.String()),
		"/etc/group":  []byte(group.String()),
		"/etc/hosts":  []byte(hosts),
		"/etc/nsswitch.conf": []byte("" +
			"passwd: files\n" +
			"group: files\n" +
			"shadow: files\n" +
			"hosts: files dns\n"),
		// No name server yet: the sandbox has no network unless a profile
		// allows hosts, and then the egress DNS stub is written here.
		"/etc/resolv.conf": []byte("# mcpbox: this sandbox has no DNS.\n"),
	}
}
