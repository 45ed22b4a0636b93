package sandbox

import (
	"slices"
	"strings"
	"testing"
)

func TestSyntheticEtc(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		uid, gid             uint32
		home, hostname       string
		passwd, group, hosts []string // lines that must be there
		notPasswd            string
	}{
		{
			name:      "defaults",
			passwd:    []string{"root:x:0:0:root:/root:/usr/sbin/nologin", "nobody:x:65534:65534:nobody:/home/sandbox:/usr/sbin/nologin"},
			group:     []string{"root:x:0:", "tty:x:5:", "nogroup:x:65534:"},
			hosts:     []string{"127.0.0.1\tlocalhost mcpbox", "::1\tlocalhost"},
			notPasswd: "\nsandbox:x:",
		},
		{
			name: "own user", uid: 1000, gid: 1001, home: "/home/mcp", hostname: "fs",
			passwd: []string{"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin", "sandbox:x:1000:1001:sandbox:/home/mcp:/usr/sbin/nologin"},
			group:  []string{"sandbox:x:1001:"},
			hosts:  []string{"127.0.0.1\tlocalhost fs"},
		},
		{
			name: "unsafe values fall back", uid: 0, gid: 1000, home: "/x:y\nroot::0:0", hostname: "a b\n1.2.3.4 evil",
			passwd:    []string{"nobody:x:65534:65534:nobody:/home/sandbox:/usr/sbin/nologin"},
			hosts:     []string{"127.0.0.1\tlocalhost mcpbox"},
			notPasswd: "root::0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := SyntheticEtc(tc.uid, tc.gid, tc.home, tc.hostname)
			var keys []string
			for k := range files {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"/etc/group", "/etc/hosts", "/etc/nsswitch.conf", "/etc/passwd", "/etc/resolv.conf"}; !slices.Equal(keys, want) {
				t.Fatalf("files = %v, want %v", keys, want)
			}
			lines := func(name string) []string { return strings.Split(string(files[name]), "\n") }
			for file, want := range map[string][]string{"/etc/passwd": tc.passwd, "/etc/group": tc.group, "/etc/hosts": tc.hosts} {
				for _, l := range want {
					if !slices.Contains(lines(file), l) {
						t.Errorf("%s = %q, want the line %q", file, files[file], l)
					}
				}
			}
			if tc.notPasswd != "" && strings.Contains(string(files["/etc/passwd"]), tc.notPasswd) {
				t.Errorf("/etc/passwd = %q, must not contain %q", files["/etc/passwd"], tc.notPasswd)
			}
			for name, b := range files {
				if len(b) == 0 || b[len(b)-1] != '\n' {
					t.Errorf("%s does not end in a newline: %q", name, b)
				}
			}
			ns := string(files["/etc/nsswitch.conf"])
			for _, l := range []string{"passwd: files", "group: files", "hosts: files dns"} {
				if !strings.Contains(ns, l+"\n") {
					t.Errorf("nsswitch.conf = %q, want %q", ns, l)
				}
			}
			for _, l := range lines("/etc/resolv.conf") {
				if l != "" && !strings.HasPrefix(l, "#") {
					t.Errorf("resolv.conf has a setting: %q", l)
				}
			}
		})
	}
}
