//go:build linux && cgo && seccomp

package seccomp

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Each option of Build changes the profile the way the function it stands
// for does, and nothing else does.
func TestBuild(t *testing.T) {
	base := mustDefault(t)
	notify := verdict{Action: specs.ActNotify}
	const listener = "/run/mcpbox/test/seccomp.sock"
	wr, rd := uint64(unix.O_WRONLY|unix.O_CREAT), uint64(unix.O_RDONLY)
	type call struct {
		name string
		args []uint64
		want verdict
	}
	for _, tc := range []struct {
		name  string
		opts  Options
		calls []call
	}{
		{"zero options", Options{}, []call{
			{"migrate_pages", nil, eperm}, {"memfd_create", []uint64{0, unix.MFD_CLOEXEC}, allow},
			{"acct", nil, eperm}, {"execve", nil, allow}, {"openat", []uint64{0, 0, wr}, allow},
		}},
		{"allow", Options{Allow: []string{"migrate_pages"}}, []call{
			{"migrate_pages", nil, allow}, {"acct", nil, eperm},
		}},
		{"deny memfd", Options{DenyMemfd: true}, []call{
			{"memfd_create", []uint64{0, unix.MFD_CLOEXEC}, enosys}, {"memfd_create", []uint64{0, 0}, enosys},
		}},
		{"listener", Options{Listener: listener}, []call{
			{"acct", nil, notify}, {"migrate_pages", nil, notify}, {"execve", nil, allow},
			{"openat", []uint64{0, 0, wr}, allow}, {"unlinkat", nil, allow},
		}},
		{"listener and deny memfd", Options{Listener: listener, DenyMemfd: true}, []call{
			{"acct", nil, notify}, {"memfd_create", []uint64{0, 0}, enosys},
		}},
		{"exec", Options{Listener: listener, NotifyExec: true}, []call{
			{"execve", nil, notify}, {"execveat", []uint64{3, 0, 0, 0, 0}, notify},
			{"execveat", []uint64{3, 0, 0, 0, unix.AT_EMPTY_PATH}, eperm}, {"openat", []uint64{0, 0, wr}, allow},
		}},
		{"files", Options{Listener: listener, NotifyFiles: true}, []call{
			{"openat", []uint64{0, 0, wr}, notify}, {"openat", []uint64{0, 0, rd}, allow},
			{"unlinkat", nil, notify}, {"execve", nil, allow},
		}},
		{"files and reads", Options{Listener: listener, NotifyFiles: true, NotifyReads: true}, []call{
			{"openat", []uint64{0, 0, wr}, notify}, {"openat", []uint64{0, 0, rd}, notify},
			{"unlinkat", nil, notify},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Build(tc.opts)
			if err != nil {
				t.Fatalf("Build(%+v): %v", tc.opts, err)
			}
			if p.ListenerPath != tc.opts.Listener {
				t.Errorf("ListenerPath = %q, want %q", p.ListenerPath, tc.opts.Listener)
			}
			for _, c := range tc.calls {
				if got := decide(t, p, c.name, c.args...); got != c.want {
					t.Errorf("%s%v = %+v, want %+v", c.name, c.args, got, c.want)
				}
			}
		})
	}
	if p, err := Build(Options{}); err != nil || !reflect.DeepEqual(p, base) {
		got, _ := json.Marshal(p)
		t.Errorf("Build(Options{}) = %s, %v; want Default()", got, err)
	}
}

// Build's errors name what is wrong and keep the words the launcher shows:
// a syscall a profile may not allow, and notification options without a
// listener or with one runc cannot dial.
func TestBuildErrors(t *testing.T) {
	mustDefault(t)
	for _, tc := range []struct {
		opts Options
		want []string
	}{
		{Options{Allow: []string{"read", "ptrace"}}, []string{"seccomp profile: ", "ptrace", "never allows it"}},
		{Options{Allow: []string{"Not-A-Syscall"}}, []string{"seccomp profile: ", `"Not-A-Syscall"`, "not a syscall name"}},
		{Options{Allow: []string{"ioctl"}}, []string{"seccomp profile: ", "ioctl", "restricts it"}},
		{Options{NotifyExec: true}, []string{"seccomp notification: ", "needs a listener path"}},
		{Options{NotifyReads: true}, []string{"seccomp notification: ", "needs a listener path"}},
		{Options{Listener: "seccomp.sock"}, []string{"seccomp notification: ", `"seccomp.sock" is not absolute`}},
	} {
		p, err := Build(tc.opts)
		if err == nil {
			t.Errorf("Build(%+v) = a profile of %d rules, want an error", tc.opts, len(p.Syscalls))
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Build(%+v) = %v, want it to say %q", tc.opts, err, w)
			}
		}
	}
}
