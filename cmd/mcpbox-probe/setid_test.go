//go:build linux

package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetIDProbesOnHost shows that the probes see the hole where nothing
// closes it: on the host, without mcpbox's seccomp filter, every mode call
// succeeds and leaves set-ID files, so fs/setuid-bit fails; as root (who
// holds CAP_SETFCAP) fs/file-capability fails too. The sandbox half is
// `mcpbox selftest`. The files live in a private directory that the probe
// removes, which the test checks.
func TestSetIDProbesOnHost(t *testing.T) {
	leftovers := func() []string {
		m, _ := filepath.Glob("/tmp/mcpbox-probe-setid-*")
		n, _ := filepath.Glob("/tmp/mcpbox-probe-fcaps-*")
		return append(m, n...)
	}
	before := leftovers()

	r := probeSetIDBits(&env{})
	if r.Pass || r.Outcome != outcomeAllowed {
		t.Fatalf("fs/setuid-bit on the host: %+v, want allowed", r)
	}
	for _, want := range []string{"fchmod 04755", "fchmodat 02755", "openat O_CREAT 04755", "mknodat S_IFREG|02755", "openat O_TMPFILE 04755", "fchmod-4755 04755", "openat-2755 02755"} {
		if !strings.Contains(r.Detail, want) {
			t.Errorf("fs/setuid-bit detail lacks %q: %s", want, r.Detail)
		}
	}
	// mkdirat may succeed: the kernel drops the bits from its mode, and
	// only a set-ID result would count.
	if strings.Contains(r.Detail, "mkdirat 0") || strings.Contains(r.Detail, "mkdirat-") {
		t.Errorf("fs/setuid-bit counted mkdirat: %s", r.Detail)
	}

	c := probeFileCapability(&env{})
	if os.Geteuid() == 0 && (c.Pass || c.Outcome != outcomeAllowed) {
		t.Errorf("fs/file-capability as root on the host: %+v, want allowed", c)
	}
	t.Logf("fs/file-capability on the host: %s %s: %s", c.Outcome, c.Errno, c.Detail)

	if after := leftovers(); len(after) > len(before) {
		t.Errorf("private directories left behind: %v (before: %v)", after, before)
	}
}

// TestSetIDRefusals: the passing result names each errno with its calls
// and gives the errno only when all calls share it.
func TestSetIDRefusals(t *testing.T) {
	r := setIDRefusals(map[string][]string{"EPERM": {"chmod 04755", "fchmod 04755"}, "ENOSYS": {"openat2"}}, "note")
	if !r.Pass || r.Outcome != outcomeDenied || r.Errno != "" {
		t.Errorf("mixed errnos: %+v", r)
	}
	if want := "ENOSYS: openat2; EPERM: chmod 04755, fchmod 04755; note"; r.Detail != want {
		t.Errorf("detail %q, want %q", r.Detail, want)
	}
	if r := setIDRefusals(map[string][]string{"EPERM": {"setxattr v2"}}, ""); r.Errno != "EPERM" || r.Detail != "EPERM: setxattr v2" {
		t.Errorf("one errno: %+v", r)
	}
}

// TestVfsCapData: the layout the kernel's validheader accepts (size 20
// with revision 2, 24 with revision 3), so that a refusal is the
// capability check and not EINVAL for a malformed value.
func TestVfsCapData(t *testing.T) {
	for _, tc := range []struct {
		v3    bool
		size  int
		magic uint32
	}{{false, 20, 0x02000001}, {true, 24, 0x03000001}} {
		b := vfsCapData(tc.v3)
		if len(b) != tc.size {
			t.Errorf("v3=%t: %d bytes, want %d", tc.v3, len(b), tc.size)
			continue
		}
		if m := binary.LittleEndian.Uint32(b); m != tc.magic {
			t.Errorf("v3=%t: magic %#x, want %#x", tc.v3, m, tc.magic)
		}
		if p := binary.LittleEndian.Uint32(b[4:]); p != 1<<unix.CAP_SETUID {
			t.Errorf("v3=%t: permitted %#x, want CAP_SETUID", tc.v3, p)
		}
		if slices.ContainsFunc(b[8:], func(c byte) bool { return c != 0 }) {
			t.Errorf("v3=%t: inheritable, high words or root uid not zero: %x", tc.v3, b)
		}
	}
}
