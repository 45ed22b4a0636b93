package launcher

import (
	"os"
	"path/filepath"
)

// Dirs are where mcpbox keeps its files, after the XDG base directory
// spec: profiles in Config, pins, audit logs and per-server state in State,
// installed packages in Cache.
type Dirs struct {
	Config string // $XDG_CONFIG_HOME/mcpbox
	State  string // $XDG_STATE_HOME/mcpbox
	Cache  string // $XDG_CACHE_HOME/mcpbox
}

// DefaultDirs reads the XDG variables, falling back to ~/.config,
// ~/.local/state and ~/.cache.
func DefaultDirs() Dirs {
	home, _ := os.UserHomeDir()
	dir := func(env, fallback string) string {
		if v := os.Getenv(env); filepath.IsAbs(v) {
			return filepath.Join(v, "mcpbox")
		}
		return filepath.Join(home, fallback, "mcpbox")
	}
	return Dirs{
		Config: dir("XDG_CONFIG_HOME", ".config"),
		State:  dir("XDG_STATE_HOME", ".local/state"),
		Cache:  dir("XDG_CACHE_HOME", ".cache"),
	}
}

// PinsDir is where pin files live.
func (d Dirs) PinsDir() string { return filepath.Join(d.State, "pins") }

// AuditDir is where audit logs live.
func (d Dirs) AuditDir() string { return filepath.Join(d.State, "audit") }
