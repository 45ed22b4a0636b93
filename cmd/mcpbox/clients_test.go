package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/launcher"
)

// TestWrapUsage: what stops a wrap plan is a usage error (exit 2) naming
// the flag at fault, and says what to do.
func TestWrapUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		flag string
		want string
	}{
		{[]string{"wrap", "--client", "emacs"}, "client", `--client: unknown client "emacs"; clients: claude-desktop`},
		{[]string{"unwrap", "--config", filepath.Join(dir, "none.json")}, "config", "--config: open " + filepath.Join(dir, "none.json")},
	} {
		_, _, err := runApp(t, context.Background(), tc.args...)
		var usage *launcher.UsageError
		if !errors.As(err, &usage) || usage.Flag != tc.flag || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("mcpbox %v: %v, want a usage error for --%s saying %q", tc.args, err, tc.flag, tc.want)
		}
	}
}
