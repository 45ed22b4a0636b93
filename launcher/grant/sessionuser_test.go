package grant

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/sandbox"
)

// TestSessionUser: the server runs as a user that can use every grant, or
// does not start.
func TestSessionUser(t *testing.T) {
	testutil.RequiresRoot(t)
	root := testutil.TempDir(t)
	mk := func(name string, uid, gid int, mode os.FileMode, file bool) string {
		p := filepath.Join(root, name)
		if file {
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte("x"), mode); err != nil {
				t.Fatal(err)
			}
		} else if err := os.MkdirAll(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ro := func(p string) Grant {
		return Grant{Mount: sandbox.Mount{Source: p, Destination: p, ReadOnly: true}, What: "--mount " + p}
	}
	rw := func(p string) Grant {
		return Grant{Mount: sandbox.Mount{Source: p, Destination: p}, What: "--mount " + p + ":rw"}
	}
	at := func(g Grant, dest string) Grant { g.Destination = dest; return g }

	open := mk("open", 0, 0, 0o755, false)
	private := mk("private", 4321, 4321, 0o700, false)
	privateFile := mk("private.txt", 4321, 4321, 0o600, true)
	rootPrivate := mk("root-private", 0, 0, 0o700, false)
	groupOnly := mk("group-only", 0, 4444, 0o750, false)
	mine := mk("mine", 4321, 4321, 0o755, false)
	theirs := mk("theirs", 4322, 4322, 0o700, false)
	rootShared := mk("root-shared", 0, 0, 0o777, false)
	rootRO := mk("root-ro", 0, 0, 0o755, false)
	data := mk("data", 0, 0, 0o755, false)
	mk("data/locked", 0, 0, 0o700, false)

	nobody := ids{uid: sandbox.DefaultUID, gid: sandbox.DefaultGID}
	for _, tc := range []struct {
		name   string
		grants []Grant
		want   ids
		err    []string
	}{
		{"readable by all", []Grant{ro(open)}, nobody, nil},
		{"0700 directory of a user", []Grant{ro(private), ro(open)}, ids{uid: 4321, gid: 4321}, nil},
		{"0600 file of a user", []Grant{ro(privateFile)}, ids{uid: 4321, gid: 4321}, nil},
		{"group-readable only", []Grant{ro(groupOnly)}, ids{uid: sandbox.DefaultUID, gid: 4444}, nil},
		{"read-write grant's owner first", []Grant{ro(open), rw(mine)}, ids{uid: 4321, gid: 4321}, nil},
		{"root's, writable by all", []Grant{rw(rootShared)}, nobody, nil},
		{"0700 directory of root", []Grant{ro(rootPrivate)}, ids{}, []string{"--mount " + rootPrivate, "cannot work", "mode 0700", "not let it read", "never runs a server as root", "chmod o+rX " + rootPrivate}},
		{"root's, granted read-write", []Grant{rw(rootRO)}, ids{}, []string{"not let it write", "never runs a server as root", "read-only"}},
		{"two owners", []Grant{rw(mine), ro(theirs)}, ids{}, []string{"--mount " + theirs, "uid 4321", "different users"}},
		{"a directory above a grant that it cannot pass", []Grant{at(ro(data), "/d"), at(ro(open), "/d/locked/x")}, ids{}, []string{data + "/locked", "pass through"}},
		{"the same, below a grant it can", []Grant{at(ro(data), "/d"), at(ro(open), "/d/x")}, nobody, nil},
	} {
		uid, gid, err := SessionUser(tc.grants, slog.New(slog.DiscardHandler))
		if tc.err != nil {
			var refusal *Error
			if !errors.As(err, &refusal) {
				t.Errorf("%s: SessionUser = %d:%d, %v; want a refusal", tc.name, uid, gid, err)
				continue
			}
			for _, w := range tc.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not say %q", tc.name, err, w)
				}
			}
			continue
		}
		if err != nil || (ids{uid: uid, gid: gid}) != tc.want {
			t.Errorf("%s: SessionUser = %d:%d, %v; want %v", tc.name, uid, gid, err, tc.want)
		}
	}
}
