package audit_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mcpbox/mcpbox/launcher/audit"
)

func TestFileRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "audit")
	path := filepath.Join(dir, "srv.jsonl")
	const keep = 3
	a, err := audit.Open(path, 100, keep)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	line := func(i int) string { return fmt.Sprintf("{\"n\":%02d,\"pad\":\"%s\"}\n", i, strings.Repeat("x", 22)) }
	if len(line(0)) != 40 {
		t.Fatalf("test line is %d bytes, want 40", len(line(0)))
	}
	for i := 1; i <= 20; i++ { // two lines fit in 100 bytes, the third rotates
		if _, err := a.Write([]byte(line(i))); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		path:        line(19) + line(20),
		path + ".1": line(17) + line(18),
		path + ".2": line(15) + line(16),
		path + ".3": line(13) + line(14),
	}
	for p, w := range want {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != w {
			t.Errorf("%s = %q, want %q", p, b, w)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Errorf("%s.4 exists; keep is %d", path, keep)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s mode %v, want 0700", dir, fi.Mode().Perm())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte(line(21))); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// Two Files on one path stand for two mcpbox processes: their locks
// are separate open files, as across processes.
func TestFileConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "srv.jsonl")
	const (
		maxSize  = 16 << 10
		keep     = 200 // enough that nothing is dropped
		perProc  = 2000
		writers  = 2 // goroutines per File
		files    = 2
		expected = perProc * writers * files
	)
	var wg sync.WaitGroup
	for f := range files {
		a, err := audit.Open(path, maxSize, keep)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perProc {
					l := fmt.Sprintf(`{"w":"%d-%d","i":%d,"pad":"%s"}`+"\n", f, g, i, strings.Repeat("p", i%50))
					if _, err := a.Write([]byte(l)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()

	seen := map[string]bool{}
	all := []string{path}
	for i := 1; i <= keep; i++ {
		all = append(all, fmt.Sprintf("%s.%d", path, i))
	}
	nfiles := 0
	for _, p := range all {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		nfiles++
		if len(b) > maxSize {
			t.Errorf("%s is %d bytes, over the %d limit", p, len(b), maxSize)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s does not end with a newline", p)
		}
		for n, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var v struct {
				W string
				I int
			}
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("%s:%d: %q: %v", p, n+1, l, err)
			}
			k := fmt.Sprintf("%s/%d", v.W, v.I)
			if seen[k] {
				t.Errorf("line %s written twice", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != expected {
		t.Errorf("found %d lines in %d files, want %d", len(seen), nfiles, expected)
	}
	if nfiles < 3 {
		t.Errorf("only %d files: the test did not rotate", nfiles)
	}
}
