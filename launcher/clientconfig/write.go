package clientconfig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrChanged is returned by Write when the file changed after it was read.
var ErrChanged = errors.New("the file changed since it was read")

// Write replaces path's content, which was orig when read, with data: it
// refuses if the file no longer holds orig (another program wrote it in
// between), keeps a timestamped backup next to it, keeps its mode, and
// replaces it atomically (a temporary file renamed over it). It returns
// the backup's path.
func Write(path string, orig, data []byte, now time.Time) (backup string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(cur, orig) {
		return "", fmt.Errorf("%s: %w; run the command again", path, ErrChanged)
	}
	backup = path + ".mcpbox-backup-" + now.UTC().Format("20060102T150405Z")
	if err := writeNew(backup, orig, st.Mode().Perm()); err != nil {
		return "", fmt.Errorf("%s: backup: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".mcpbox-*")
	if err != nil {
		return backup, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return backup, err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return backup, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return backup, err
	}
	if err := tmp.Close(); err != nil {
		return backup, err
	}
	// The last look: a write in the meantime must not be lost.
	if cur, err := os.ReadFile(path); err != nil || !bytes.Equal(cur, orig) {
		return backup, fmt.Errorf("%s: %w; nothing was written", path, ErrChanged)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return backup, err
	}
	return backup, nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Diff returns a unified diff of a and b (3 lines of context), or "" when
// they are equal.
func Diff(name string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	// Common prefix and suffix, then an LCS on the middle.
	p := 0
	for p < len(x) && p < len(y) && x[p] == y[p] {
		p++
	}
	s := 0
	for s < len(x)-p && s < len(y)-p && x[len(x)-1-s] == y[len(y)-1-s] {
		s++
	}
	mx, my := x[p:len(x)-s], y[p:len(y)-s]
	ops := lcsOps(mx, my) // ' ', '-', '+' per line of the middle
	type line struct {
		op   byte
		text string
	}
	var all []line
	for _, l := range x[:p] {
		all = append(all, line{' ', l})
	}
	i, j := 0, 0
	for _, op := range ops {
		switch op {
		case ' ':
			all = append(all, line{' ', mx[i]})
			i++
			j++
		case '-':
			all = append(all, line{'-', mx[i]})
			i++
		case '+':
			all = append(all, line{'+', my[j]})
			j++
		}
	}
	for _, l := range x[len(x)-s:] {
		all = append(all, line{' ', l})
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s (wrapped)\n", name, name)
	const ctx = 3
	for k := 0; k < len(all); {
		if all[k].op == ' ' {
			k++
			continue
		}
		start := max(0, k-ctx)
		end := k
		for end < len(all) {
			if all[end].op != ' ' {
				end++
				continue
			}
			n := 0
			for end+n < len(all) && all[end+n].op == ' ' && n <= 2*ctx {
				n++
			}
			if end+n >= len(all) || n > 2*ctx {
				end = min(len(all), end+ctx)
				break
			}
			end += n
		}
		aLine, bLine, aN, bN := 1, 1, 0, 0
		for _, l := range all[:start] {
			if l.op != '+' {
				aLine++
			}
			if l.op != '-' {
				bLine++
			}
		}
		for _, l := range all[start:end] {
			if l.op != '+' {
				aN++
			}
			if l.op != '-' {
				bN++
			}
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", aLine, aN, bLine, bN)
		for _, l := range all[start:end] {
			out.WriteByte(l.op)
			out.WriteString(l.text)
			out.WriteByte('\n')
		}
		k = end
	}
	return out.String()
}

func splitLines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func lcsOps(a, b []string) []byte {
	if len(a)*len(b) > 4<<20 {
		var ops []byte
		for range a {
			ops = append(ops, '-')
		}
		for range b {
			ops = append(ops, '+')
		}
		return ops
	}
	t := make([][]int, len(a)+1)
	for i := range t {
		t[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var ops []byte
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			ops = append(ops, ' ')
			i++
			j++
		case i < len(a) && (j == len(b) || t[i+1][j] >= t[i][j+1]):
			ops = append(ops, '-')
			i++
		default:
			ops = append(ops, '+')
			j++
		}
	}
	return ops
}
