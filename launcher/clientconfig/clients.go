// Package clientconfig reads and rewrites the MCP server entries of client
// configuration files (Claude Desktop, Claude Code, Cursor, VS Code,
// Windsurf, Gemini CLI, Codex, Zed), so that `mcpbox wrap` can put each
// stdio server behind `mcpbox run` and `mcpbox unwrap` can take it out
// again, one entry for one, keeping everything else of the file as it was:
// comments, key order, spacing.
//
// It edits JSON and JSONC through github.com/tailscale/hujson's syntax tree,
// which keeps every byte it is not told to change, and TOML (Codex) by
// splicing the values of an entry's table, since no Go TOML library keeps
// comments.
//
// Detect finds the files of this machine; Plan works out what wrap or
// unwrap would change in them, and Change.Apply writes one file. It takes
// paths and a profile catalog, never the session's directories: it must
// not import launcher (the session package) or cmd, which sit above it.
package clientconfig

import (
	"path/filepath"
	"strings"
)

// OS names the path tables.
const (
	Linux   = "linux"
	Darwin  = "darwin"
	Windows = "windows"
)

// Format is how a config file is written.
type Format int

const (
	JSON  Format = iota // plain JSON (comments refused by the client)
	JSONC               // JSON with comments and trailing commas
	TOML
)

// Client is an MCP client and where it keeps its servers.
type Client struct {
	Name    string // for --client: "claude-desktop", "cursor", ...
	Display string
	Files   []FileSpec
}

// FileSpec is one config file of a client.
type FileSpec struct {
	// Paths per OS, "~" for the home directory, "%APPDATA%" for the
	// roaming application data directory, "$XDG_CONFIG_HOME" (which
	// defaults to ~/.config), "./" for the project directory.
	Paths  map[string][]string
	Format Format
	// Sections are the paths to the objects (tables) that hold server
	// entries, e.g. ["mcpServers"]. A "*" step matches every member (Claude
	// Code's projects.*.mcpServers).
	Sections [][]string
	Scope    string // "user" or "project"
}

// Clients is where each client keeps its MCP servers, from each client's
// own documentation (read 2026-11):
//   - Claude Desktop: modelcontextprotocol.io "Connect to local MCP servers":
//     claude_desktop_config.json in ~/Library/Application Support/Claude
//     (macOS) and %APPDATA%\Claude (Windows), key mcpServers; Linux builds
//     use ~/.config/Claude.
//   - Claude Code: docs.anthropic.com "Connect Claude Code to tools via
//     MCP": user and local scopes in ~/.claude.json (mcpServers, and
//     projects.<path>.mcpServers), project scope in .mcp.json.
//   - Cursor: docs.cursor.com "Model Context Protocol": ~/.cursor/mcp.json
//     and .cursor/mcp.json, key mcpServers.
//   - VS Code: code.visualstudio.com "Use MCP servers in VS Code":
//     .vscode/mcp.json and the user profile's mcp.json (JSON with
//     comments), key servers.
//   - Windsurf: docs.windsurf.com "Cascade MCP":
//     ~/.codeium/windsurf/mcp_config.json, key mcpServers.
//   - Gemini CLI: google-gemini/gemini-cli docs/tools/mcp-server.md:
//     ~/.gemini/settings.json and .gemini/settings.json, key mcpServers.
//   - Codex: openai/codex docs/config.md: ~/.codex/config.toml, tables
//     [mcp_servers.NAME] with command, args, env.
//   - Zed: zed.dev/docs/ai/mcp: settings.json (~/.config/zed, or
//     %APPDATA%\Zed on Windows), key context_servers, JSON with comments.
var Clients = []Client{
	{Name: "claude-desktop", Display: "Claude Desktop", Files: []FileSpec{{
		Paths: map[string][]string{
			Darwin:  {"~/Library/Application Support/Claude/claude_desktop_config.json"},
			Windows: {"%APPDATA%/Claude/claude_desktop_config.json"},
			Linux:   {"$XDG_CONFIG_HOME/Claude/claude_desktop_config.json"},
		},
		Format: JSON, Sections: [][]string{{"mcpServers"}}, Scope: "user",
	}}},
	{Name: "claude-code", Display: "Claude Code", Files: []FileSpec{
		{Paths: allOS("~/.claude.json"), Format: JSON, Sections: [][]string{{"mcpServers"}, {"projects", "*", "mcpServers"}}, Scope: "user"},
		{Paths: allOS("./.mcp.json"), Format: JSON, Sections: [][]string{{"mcpServers"}}, Scope: "project"},
	}},
	{Name: "cursor", Display: "Cursor", Files: []FileSpec{
		{Paths: allOS("~/.cursor/mcp.json"), Format: JSON, Sections: [][]string{{"mcpServers"}}, Scope: "user"},
		{Paths: allOS("./.cursor/mcp.json"), Format: JSON, Sections: [][]string{{"mcpServers"}}, Scope: "project"},
	}},
	{Name: "vscode", Display: "VS Code", Files: []FileSpec{
		{Paths: map[string][]string{
			Darwin:  {"~/Library/Application Support/Code/User/mcp.json"},
			Windows: {"%APPDATA%/Code/User/mcp.json"},
			Linux:   {"$XDG_CONFIG_HOME/Code/User/mcp.json"},
		}, Format: JSONC, Sections: [][]string{{"servers"}}, Scope: "user"},
		{Paths: allOS("./.vscode/mcp.json"), Format: JSONC, Sections: [][]string{{"servers"}}, Scope: "project"},
	}},
	{Name: "windsurf", Display: "Windsurf", Files: []FileSpec{
		{Paths: allOS("~/.codeium/windsurf/mcp_config.json"), Format: JSON, Sections: [][]string{{"mcpServers"}}, Scope: "user"},
	}},
	{Name: "gemini", Display: "Gemini CLI", Files: []FileSpec{
		{Paths: allOS("~/.gemini/settings.json"), Format: JSONC, Sections: [][]string{{"mcpServers"}}, Scope: "user"},
		{Paths: allOS("./.gemini/settings.json"), Format: JSONC, Sections: [][]string{{"mcpServers"}}, Scope: "project"},
	}},
	{Name: "codex", Display: "Codex", Files: []FileSpec{
		{Paths: allOS("~/.codex/config.toml"), Format: TOML, Sections: [][]string{{"mcp_servers"}}, Scope: "user"},
	}},
	{Name: "zed", Display: "Zed", Files: []FileSpec{
		{Paths: map[string][]string{
			Darwin:  {"~/.config/zed/settings.json"},
			Windows: {"%APPDATA%/Zed/settings.json"},
			Linux:   {"$XDG_CONFIG_HOME/zed/settings.json"},
		}, Format: JSONC, Sections: [][]string{{"context_servers"}}, Scope: "user"},
	}},
}

func allOS(p string) map[string][]string {
	return map[string][]string{Linux: {p}, Darwin: {p}, Windows: {p}}
}

// Env is what a path template needs.
type Env struct {
	OS        string
	Home      string
	AppData   string // Windows %APPDATA%
	XDGConfig string // $XDG_CONFIG_HOME; "" means ~/.config
	Project   string // the project directory (usually the working directory)
}

// Resolve turns a path template into a path for env. Windows paths keep
// forward slashes replaced by backslashes.
func (e Env) Resolve(tmpl string) string {
	var p string
	switch {
	case strings.HasPrefix(tmpl, "~/"):
		p = e.join(e.Home, tmpl[2:])
	case strings.HasPrefix(tmpl, "%APPDATA%/"):
		p = e.join(e.AppData, tmpl[len("%APPDATA%/"):])
	case strings.HasPrefix(tmpl, "$XDG_CONFIG_HOME/"):
		base := e.XDGConfig
		if base == "" {
			base = e.join(e.Home, ".config")
		}
		p = e.join(base, tmpl[len("$XDG_CONFIG_HOME/"):])
	case strings.HasPrefix(tmpl, "./"):
		p = e.join(e.Project, tmpl[2:])
	default:
		p = tmpl
	}
	return p
}

func (e Env) join(base, rel string) string {
	if e.OS == Windows {
		return strings.TrimRight(base, `\/`) + `\` + strings.ReplaceAll(rel, "/", `\`)
	}
	return filepath.Join(base, rel)
}

// Candidate is a config file a client may have.
type Candidate struct {
	Client *Client
	Spec   *FileSpec
	Path   string
}

// Candidates lists every config file path of every client for env, in
// table order. Which exist is the caller's to check.
func Candidates(env Env) []Candidate {
	var out []Candidate
	for i := range Clients {
		c := &Clients[i]
		for j := range c.Files {
			f := &c.Files[j]
			for _, t := range f.Paths[env.OS] {
				if strings.HasPrefix(t, "./") && env.Project == "" {
					continue
				}
				out = append(out, Candidate{Client: c, Spec: f, Path: env.Resolve(t)})
			}
		}
	}
	return out
}

// Find returns the client named name.
func Find(name string) *Client {
	for i := range Clients {
		if Clients[i].Name == name {
			return &Clients[i]
		}
	}
	return nil
}
