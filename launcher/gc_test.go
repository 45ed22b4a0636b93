package launcher

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/mcpbox/mcpbox/launcher/runtime"
)

// fakeRuntime lists fixed leftovers and records what gc removes.
type fakeRuntime struct {
	runtime.Runtime // the session's half: not used by gc
	leftovers       []runtime.Leftover
	listErr         error
	removed         []string
}

func (f *fakeRuntime) Leftovers(context.Context) ([]runtime.Leftover, error) {
	return f.leftovers, f.listErr
}

func (f *fakeRuntime) Remove(_ context.Context, l runtime.Leftover) error {
	f.removed = append(f.removed, l.ID)
	return nil
}

// sessionDir makes a session directory under runDir with an owner file.
func sessionDir(t *testing.T, runDir, id, owner string) string {
	t.Helper()
	dir := filepath.Join(runDir, id)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(owner), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestCollect: gc through the runtime seam removes what dead sessions left
// (their containers, directories and image views) and nothing of a live
// one's, and a listing that failed half way still sweeps directories.
func TestCollect(t *testing.T) {
	pid, start := ownerIdentity()
	const deadPID, deadStart = "999999999", "1"
	for _, tc := range []struct {
		name    string
		listErr error
	}{{"listing ok", nil}, {"snapshot listing failed", errors.New("list snapshots: unavailable")}} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := t.TempDir()
			live := sessionDir(t, runDir, "mcpbox-live-1", pid+" "+start+"\n")
			dead := sessionDir(t, runDir, "mcpbox-dead-2", deadPID+" "+deadStart+"\n")
			orphan := sessionDir(t, runDir, "mcpbox-orphan-3", deadPID+" "+deadStart+"\n") // its container never made
			unread := sessionDir(t, runDir, "mcpbox-unread-6", deadPID+" "+deadStart+"\n") // its container's labels unreadable
			rt := &fakeRuntime{listErr: tc.listErr, leftovers: []runtime.Leftover{
				{ID: "mcpbox-live-1", Owner: runtime.Owner{PID: pid, Start: start, SessionDir: live}},
				{ID: "mcpbox-dead-2", Owner: runtime.Owner{PID: deadPID, Start: deadStart, SessionDir: dead}},
				{ID: "mcpbox-live-1", View: true, Owner: runtime.Owner{SessionDir: live}},
				{ID: "mcpbox-gone-4", View: true, Owner: runtime.Owner{SessionDir: filepath.Join(runDir, "mcpbox-gone-4")}},
				{ID: "mcpbox-else-5", View: true, Owner: runtime.Owner{SessionDir: "/elsewhere/mcpbox-else-5"}},
				{ID: "mcpbox-unread-6"},
			}}
			removed, err := collect(context.Background(), rt, runDir, slog.New(slog.DiscardHandler))
			if tc.listErr != nil {
				if err == nil || !errors.Is(err, tc.listErr) {
					t.Errorf("collect error = %v, want the listing's error", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			slices.Sort(removed)
			if want := []string{"mcpbox-dead-2", "mcpbox-gone-4", "mcpbox-orphan-3"}; !slices.Equal(removed, want) {
				t.Errorf("removed %v, want %v", removed, want)
			}
			if want := []string{"mcpbox-dead-2", "mcpbox-gone-4"}; !slices.Equal(rt.removed, want) {
				t.Errorf("runtime asked to remove %v, want %v", rt.removed, want)
			}
			if !exists(live) || !exists(unread) || exists(dead) || exists(orphan) {
				t.Errorf("dirs after gc: live %v, unread %v (want true), dead %v, orphan %v (want false)", exists(live), exists(unread), exists(dead), exists(orphan))
			}
		})
	}
	t.Run("nothing listed", func(t *testing.T) {
		runDir := t.TempDir()
		rt := &fakeRuntime{listErr: errors.New("list containers: unavailable")}
		if _, err := collect(context.Background(), rt, runDir, slog.New(slog.DiscardHandler)); err == nil {
			t.Error("collect with nothing listed: no error")
		}
	})
}

// listCounter is a fakeRuntime that counts its listings.
type listCounter struct {
	fakeRuntime
	lists int
}

func (l *listCounter) Leftovers(ctx context.Context) ([]runtime.Leftover, error) {
	l.lists++
	return l.fakeRuntime.Leftovers(ctx)
}

// TestSweepBesideWaits: the sweep of dead sessions' leftovers does not
// touch the runtime until the session lets it (once its server has
// answered), so that its runtime calls never compete with the start; then
// it runs, and wait returns when it is done.
func TestSweepBesideWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &listCounter{}
		after := make(chan struct{})
		wait := sweepBeside(rt, t.TempDir(), slog.New(slog.DiscardHandler), after)
		synctest.Wait()
		if rt.lists != 0 {
			t.Fatalf("the sweep listed leftovers %d times before the session let it", rt.lists)
		}
		close(after)
		wait()
		if rt.lists != 1 {
			t.Errorf("the sweep listed leftovers %d times once let, want 1", rt.lists)
		}
	})
}
