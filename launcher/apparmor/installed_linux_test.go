package apparmor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// CheckInstalled accepts a binary only root can replace, and refuses each
// way someone else could: the file or a directory above it theirs,
// writable by group or others (sticky /tmp included), a symlink, not a
// file, or on a nosuid mount (removable media, a user's FUSE mount) —
// while a mount that is not nosuid is no reason to refuse.
func TestCheckInstalled(t *testing.T) {
	base := testutil.RootOnlyDir(t)
	write := func(t *testing.T, path string, perm os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
	}
	mount := func(t *testing.T, dir string, flags uintptr) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", flags, "mode=0755"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string) string // returns the binary
		problem string                                // "" if accepted
	}{
		{"root's", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "bin", "mcpbox"), 0o755)
			return filepath.Join(dir, "bin", "mcpbox")
		}, ""},
		{"a user's file", func(t *testing.T, dir string) string {
			b := filepath.Join(dir, "bin", "mcpbox")
			write(t, b, 0o755)
			chown(t, b)
			return b
		}, "/bin/mcpbox belongs to uid 4242, not root"},
		{"group-writable file", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "bin", "mcpbox"), 0o775)
			return filepath.Join(dir, "bin", "mcpbox")
		}, "/bin/mcpbox may be written by its group or others (mode 0775)"},
		{"world-writable file", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "bin", "mcpbox"), 0o757)
			return filepath.Join(dir, "bin", "mcpbox")
		}, "(mode 0757)"},
		{"in a user's directory", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "home", "bin", "mcpbox"), 0o755)
			chown(t, filepath.Join(dir, "home"))
			return filepath.Join(dir, "home", "bin", "mcpbox")
		}, "/home belongs to uid 4242, not root"},
		{"in a group-writable directory", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "bin", "mcpbox"), 0o755)
			if err := os.Chmod(filepath.Join(dir, "bin"), 0o775); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "bin", "mcpbox")
		}, "/bin may be written by its group or others (mode 0775)"},
		{"in a sticky directory anyone may write", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "tmp", "mcpbox"), 0o755)
			if err := os.Chmod(filepath.Join(dir, "tmp"), os.ModeSticky|0o777); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "tmp", "mcpbox")
		}, "/tmp may be written by its group or others (mode 01777)"},
		{"under t.TempDir", func(t *testing.T, _ string) string {
			b := filepath.Join(testutil.TempDir(t), "mcpbox")
			write(t, b, 0o755)
			return b
		}, "may be written by its group or others"},
		{"a symlink", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "real"), 0o755)
			if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "mcpbox")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "mcpbox")
		}, "/mcpbox is a symlink"},
		{"a directory", func(t *testing.T, dir string) string {
			if err := os.Mkdir(filepath.Join(dir, "mcpbox"), 0o755); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "mcpbox")
		}, "/mcpbox is not a regular file"},
		{"on a nosuid mount", func(t *testing.T, dir string) string {
			mount(t, filepath.Join(dir, "media"), unix.MS_NOSUID)
			write(t, filepath.Join(dir, "media", "mcpbox"), 0o755)
			return filepath.Join(dir, "media", "mcpbox")
		}, "/media/mcpbox is on a file system mounted nosuid"},
		{"on a mount that allows setuid", func(t *testing.T, dir string) string {
			mount(t, filepath.Join(dir, "opt"), 0)
			write(t, filepath.Join(dir, "opt", "mcpbox"), 0o755)
			return filepath.Join(dir, "opt", "mcpbox")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := os.MkdirTemp(base, "case-")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			binary := tc.prepare(t, dir)
			err = CheckInstalled(binary)
			if tc.problem == "" {
				if err != nil {
					t.Errorf("CheckInstalled(%s) = %v, want nil", binary, err)
				}
				return
			}
			if !errors.Is(err, ErrReplaceable) || !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("CheckInstalled(%s) = %v\nwant ErrReplaceable saying %q", binary, err, tc.problem)
			}
		})
	}
	if err := CheckInstalled(filepath.Join(base, "man")); !errors.Is(err, ErrPath) {
		t.Errorf("CheckInstalled of a binary not named mcpbox = %v, want ErrPath", err)
	}
}

func chown(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, 4242, 4242); err != nil {
		t.Fatal(err)
	}
}
