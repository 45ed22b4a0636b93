package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// RootOnlyDir returns a new directory (mode 0755, removed after the test)
// that only root can change, as can only root every directory above it,
// none on a nosuid mount: a place where a file is as safe as in /usr/bin,
// for tests of what mcpbox trusts only there (t.TempDir is under /tmp,
// which anyone may write into). It needs root.
func RootOnlyDir(t testing.TB) string {
	t.Helper()
	RequiresRoot(t)
	var tried []string
	for _, base := range []string{"/var/lib", "/root", "/run", "/opt"} {
		if why := rootOnlyChain(base); why != "" {
			tried = append(tried, why)
			continue
		}
		d, err := os.MkdirTemp(base, "mcpbox-test-")
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Fatalf("no directory that only root can change to make a test directory in: %s", strings.Join(tried, "; "))
	return ""
}

// rootOnlyChain says why dir or a directory above it is not root's alone,
// "" if all are.
func rootOnlyChain(dir string) string {
	for p := dir; ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		var sfs unix.Statfs_t
		switch {
		case syscall.Lstat(p, &st) != nil:
			return p + ": cannot stat"
		case st.Mode&syscall.S_IFMT != syscall.S_IFDIR || st.Uid != 0 || st.Mode&0o022 != 0:
			return p + " is not a directory only root may write"
		case unix.Statfs(p, &sfs) != nil || sfs.Flags&unix.ST_NOSUID != 0:
			return p + " is on a nosuid mount"
		}
		if p == "/" {
			return ""
		}
	}
}
