package image

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBuildLayerDeterministic: the same files give the same layer.
func TestBuildLayerDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a", "x"), filepath.Join(dir, "b", "y")
	for _, f := range []string{a, b} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l1, err := buildLayer([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	now := filepath.Join(dir, "a")
	if err := os.Chtimes(now, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	l2, err := buildLayer([]string{b, a})
	if err != nil {
		t.Fatal(err)
	}
	if l1.diffID != l2.diffID || string(l1.gz) != string(l2.gz) || l1.files != 2 {
		t.Errorf("layers differ (%s, %s) or hold %d files", l1.diffID, l2.diffID, l1.files)
	}
}
