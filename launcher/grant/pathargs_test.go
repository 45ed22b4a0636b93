package grant

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"

	"github.com/mcpbox/mcpbox/sandbox"
)

// pathArgHome is a home with directories a server may be given,
// credentials, .env files and mcpbox's state in it, a directory outside
// it, and the user whose only home it is.
type pathArgHome struct {
	t             *testing.T
	home, outside string
	u             User
}

func newPathArgHome(t *testing.T) *pathArgHome {
	t.Helper()
	root := testutil.TempDir(t)
	home := filepath.Join(root, "home", "me")
	for _, d := range []string{"notes", "proj/sub", ".ssh", ".aws", "work", ".config/gcloud", "docs"} {
		os.MkdirAll(filepath.Join(home, d), 0o755)
	}
	os.WriteFile(filepath.Join(home, "proj", ".env"), []byte("SECRET=1"), 0o600)
	os.WriteFile(filepath.Join(home, "proj", "prod.env"), []byte("SECRET=1"), 0o600)
	outside := filepath.Join(root, "srv")
	os.MkdirAll(outside, 0o755)
	t.Setenv("HOME", home)
	u := NewUser(home)
	u.own = []string{filepath.Join(home, ".local", "state", "mcpbox")}
	os.MkdirAll(u.own[0], 0o755)
	return &pathArgHome{t: t, home: home, outside: outside, u: u}
}

// ok checks that args are granted as want.
func (h *pathArgHome) ok(args []string, mode string, explicit []sandbox.Mount, want ...sandbox.Mount) {
	h.t.Helper()
	got, err := h.u.PathArgMounts(args, mode, explicit)
	if err != nil || !reflect.DeepEqual(got, want) {
		h.t.Errorf("PathArgMounts(%q, %s) = %+v, %v; want %+v", args, mode, got, err, want)
	}
}

// refusedWith checks that args are refused, saying each of why.
func (h *pathArgHome) refusedWith(args []string, explicit []sandbox.Mount, why ...string) {
	h.t.Helper()
	_, err := h.u.PathArgMounts(args, "rw", explicit)
	var refusal *Error
	if !errors.As(err, &refusal) {
		h.t.Errorf("PathArgMounts(%q) error = %v, want a refusal", args, err)
		return
	}
	for _, w := range why {
		if !strings.Contains(err.Error(), w) {
			h.t.Errorf("PathArgMounts(%q) error = %v, want it to mention %q", args, err, w)
		}
	}
}

// refused checks that args are refused, saying why and how to grant
// them anyway.
func (h *pathArgHome) refused(args []string, why string) {
	h.t.Helper()
	h.refusedWith(args, nil, why, "--mount")
}

// link makes a symlink to target at name in the home.
func (h *pathArgHome) link(target, name string) string {
	h.t.Helper()
	p := filepath.Join(h.home, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.Symlink(target, p); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func TestPathArgMounts(t *testing.T) {
	h := newPathArgHome(t)
	home, outside, u := h.home, h.outside, h.u
	ok, refused := h.ok, h.refused
	notes, sub := filepath.Join(home, "notes"), filepath.Join(home, "proj", "sub")

	ok([]string{notes, "--depth=2", "plain", sub}, "rw", nil,
		sandbox.Mount{Source: notes, Destination: notes}, sandbox.Mount{Source: sub, Destination: sub})
	ok([]string{"~/notes"}, "ro", nil, sandbox.Mount{Source: notes, Destination: notes, ReadOnly: true})
	ok([]string{"--root=" + notes}, "ro", nil, sandbox.Mount{Source: notes, Destination: notes, ReadOnly: true})
	ok([]string{notes, notes}, "ro", nil, sandbox.Mount{Source: notes, Destination: notes, ReadOnly: true})
	ok([]string{filepath.Join(home, "missing")}, "rw", nil)                               // nothing to grant
	ok([]string{notes}, "none", nil)                                                      // profile says no
	ok([]string{outside}, "rw", []sandbox.Mount{{Source: outside, Destination: outside}}) // --mount covers it

	refused([]string{outside}, "outside your home")
	refused([]string{"/"}, "outside your home")
	refused([]string{home}, "whole home")
	refused([]string{"~"}, "whole home")
	refused([]string{filepath.Join(home, ".ssh")}, "holds credentials")
	refused([]string{filepath.Join(home, ".config", "gcloud")}, "holds credentials")
	refused([]string{filepath.Join(home, "proj", ".env")}, ".env file")
	refused([]string{filepath.Join(home, "proj", "prod.env")}, ".env file")
	refused([]string{filepath.Join(home, ".local", "state")}, "holds credentials") // holds mcpbox's own state
	// A directory that contains a credential directory.
	if _, err := u.PathArgMounts([]string{filepath.Join(home, ".config")}, "ro", nil); err == nil {
		t.Errorf("~/.config (holding ~/.config/gcloud) was granted")
	}
}

// TestPathArgMountsSymlinks: a path argument's symlinks are checked where
// they lead, and it is bound from there, at the path the server was given.
func TestPathArgMountsSymlinks(t *testing.T) {
	h := newPathArgHome(t)
	home, outside := h.home, h.outside
	refused, refusedWith, ok, link := h.refused, h.refusedWith, h.ok, h.link
	notes, docs := filepath.Join(home, "notes"), filepath.Join(home, "docs")

	ssh := filepath.Join(home, ".ssh")
	keys := link(ssh, "notes/keys")
	refusedWith([]string{keys}, nil, "symlink", ssh, "holds credentials", "--mount "+ssh+":"+keys)
	refused([]string{link("../../.aws", "notes/deep/aws")}, "holds credentials") // relative target
	refused([]string{link(outside, "notes/srv")}, "outside your home")
	refused([]string{link(home, "notes/home")}, "whole home")
	refused([]string{link(filepath.Join(home, "proj", ".env"), "notes/env")}, ".env file")
	refused([]string{link(filepath.Join(home, ".config"), "notes/cfg")}, "holds credentials")
	// A symlink in a middle component, not only the last.
	hop := link(home, "notes/hop")
	refused([]string{filepath.Join(hop, ".ssh")}, "holds credentials")
	refused([]string{filepath.Join(hop, ".ssh", "..", ".ssh")}, "holds credentials")
	// ".." right after a symlink: the host's meaning differs from the
	// path's text, so it is refused whatever it leads to.
	inDocs := link(filepath.Join(docs, "deep"), "notes/indocs")
	os.MkdirAll(filepath.Join(docs, "deep"), 0o755)
	refusedWith([]string{inDocs + "/.."}, nil, `".." follows a symlink`, "on the host it is "+docs)
	os.MkdirAll(filepath.Join(ssh, "d"), 0o755)
	refusedWith([]string{link(filepath.Join(ssh, "d"), "notes/sshd") + "/.."}, nil, `".." follows a symlink`)
	// An explicit mount of the directory does not cover a symlink in it
	// that leads elsewhere.
	refusedWith([]string{keys}, []sandbox.Mount{{Source: notes, Destination: notes}}, "holds credentials")
	// A symlink to a grantable directory: bound from its target at the
	// path the server was given.
	toDocs := link(docs, "notes/docs")
	ok([]string{toDocs}, "ro", nil, sandbox.Mount{Source: docs, Destination: toDocs, ReadOnly: true})
	ok([]string{filepath.Join(hop, "docs")}, "ro", nil, sandbox.Mount{Source: docs, Destination: filepath.Join(hop, "docs"), ReadOnly: true})
}
