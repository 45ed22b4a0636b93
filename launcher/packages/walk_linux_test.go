package packages

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// The install runs as nobody; the entry must not stay writable by nobody.
func TestCommitTakesOwnership(t *testing.T) {
	testutil.RequiresRoot(t)
	needTool(t, "node")
	c := newCache(t)
	spec := &Spec{Ecosystem: NPM, Name: "owned"}
	p, err := c.prepare(spec, PlanOptions{Registry: fakeRegistry})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFakeTree(p.WorkDir, spec.Name, "1.0.0", demoBins); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(p.WorkDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, 65534, 65534)
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Commit(spec, p, false)
	if err != nil {
		t.Fatal(err)
	}
	wantUID, wantGID, _ := owner(c.Root)
	filepath.WalkDir(e.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if uid, gid, _ := lowner(path); uid != wantUID || gid != wantGID {
			t.Errorf("%s is owned by %d:%d, want %d:%d", path, uid, gid, wantUID, wantGID)
		}
		return nil
	})
	if _, err := c.Lookup(spec); err != nil {
		t.Errorf("Lookup: %v", err)
	}
}

func lowner(path string) (uid, gid int, ok bool) {
	info, err := os.Lstat(path)
	if err != nil {
		return 0, 0, false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
