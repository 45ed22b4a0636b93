// Command toolcorpus records what popular MCP servers from npm list — tools,
// prompts, resources, resource templates and their instructions — into
// testdata/toolcorpus, the clean corpus the broker's poisoning scan is
// tested against (launcher/broker/scan_test.go). Tests read the committed
// files only; this program is how they were made, and how to remake them:
//
//	make build && sudo go run ./scripts/toolcorpus [-only PKG,PKG] [-out DIR]
//
// Every server runs through mcpbox, never on the host: `mcpbox pull`
// installs the pinned version in mcpbox's sandboxed install step (registry
// egress only, install scripts off), then `mcpbox run -- npx -y PKG@VERSION`
// runs it with no network, and the official MCP Go SDK client lists
// everything the server offers, following pagination. Servers that insist
// on a token at start get an obviously fake one; none is ever asked to do
// anything with it.
//
// It needs root and containerd (as mcpbox run does) and the npm registry,
// reached through npm's own configuration. mcpbox's cache goes to a
// directory of its own (-state), kept between runs so that a second run does
// not install again; its pins start empty on every run, so that a pin of an
// earlier run never withholds a tool from this one. The server's redaction
// is off (--no-redact) so that the lists are recorded as the server sent
// them. The broker's own scan (tools.scan: warn) still runs and prints what
// it finds on stderr; as each server's tools are pinned, the later servers
// are scanned with them as the user's other servers.
// Each server's file holds the package, the version asked for and the one
// installed, the integrity npm's lockfile gave the package, the capture
// date, the exact command line and the lists; README.md in the same folder
// indexes them and says which servers were skipped and why.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// server is one npm MCP server of the corpus.
type server struct {
	pkg, version string
	downloads    int      // a month, from the npm download counts when the corpus was chosen
	run          []string // mcpbox run flags before "--" (--env NAME=VALUE, --memory ...)
	args         []string // the server's own arguments after PKG@VERSION
	note         string   // what the lists lack without a real account or project
	skip         string   // why the server is not captured; "" captures it
}

// dummy is the value given to variables and flags a server insists on at
// start. Its shape matches no real provider's token.
const dummy = "mcpbox-corpus-dummy"

// servers: the most-downloaded npm MCP servers (and the reference servers)
// that list their tools without a real account. "{files}" in args stands
// for an empty directory the script creates.
var servers = []server{
	{pkg: "@playwright/mcp", version: "0.0.83", downloads: 6293363, run: []string{"--memory", "1Gi"}},
	{pkg: "chrome-devtools-mcp", version: "1.11.0", downloads: 1848520, run: []string{"--memory", "1Gi"}},
	{pkg: "@upstash/context7-mcp", version: "4.1.1", downloads: 1425541},
	{pkg: "@modelcontextprotocol/server-filesystem", version: "2026.8.31", downloads: 1133453, run: []string{"--mount", "{files}:rw"}, args: []string{"{files}"}},
	{pkg: "@modelcontextprotocol/server-sequential-thinking", version: "2026.8.31", downloads: 297027},
	{pkg: "@azure-devops/mcp", version: "2.10.0", downloads: 286048, args: []string{"contoso"},
		skip: "does not start: its dependency keytar is a native module built only by an install script, and mcpbox installs with scripts off (Cannot find module '../build/Release/keytar.node')"},
	{pkg: "@supabase/mcp-server-supabase", version: "0.13.0", downloads: 283780, args: []string{"--access-token", dummy},
		skip: "tools/list asks the Supabase API what the account may use, so listing needs the network and a real account (fetch failed)"},
	{pkg: "@modelcontextprotocol/server-github", version: "2025.4.8", downloads: 280864, run: []string{"--env", "GITHUB_PERSONAL_ACCESS_TOKEN=" + dummy}},
	{pkg: "@modelcontextprotocol/server-memory", version: "2026.8.31", downloads: 261331, run: []string{"--env", "MEMORY_FILE_PATH=/tmp/memory.jsonl"}},
	{pkg: "@modelcontextprotocol/server-postgres", version: "0.6.2", downloads: 251900, args: []string{"postgresql://127.0.0.1/corpus"}},
	{pkg: "@modelcontextprotocol/server-everything", version: "2026.8.31", downloads: 244826, args: []string{"stdio"}},
	{pkg: "@notionhq/notion-mcp-server", version: "2.5.2", downloads: 239565, run: []string{"--env", "NOTION_TOKEN=" + dummy}},
	{pkg: "@modelcontextprotocol/server-google-maps", version: "0.6.2", downloads: 207113, run: []string{"--env", "GOOGLE_MAPS_API_KEY=" + dummy}},
	{pkg: "nx-mcp", version: "0.25.0", downloads: 198174, run: []string{"--memory", "1Gi"},
		note: "outside an Nx workspace it lists its documentation tool only"},
	{pkg: "@circleci/mcp-server-circleci", version: "0.20.0", downloads: 195454, run: []string{"--env", "CIRCLECI_TOKEN=" + dummy}},
	{pkg: "n8n-mcp", version: "2.87.0", downloads: 186136, run: []string{"--memory", "1Gi", "--env", "MCP_MODE=stdio"},
		note: "without N8N_API_URL it lists its documentation and validation tools only, not the workflow-management ones"},
	{pkg: "next-devtools-mcp", version: "0.4.0", downloads: 181159},
	{pkg: "mongodb-mcp-server", version: "3.0.4", downloads: 162003, run: []string{"--memory", "1Gi"}},
	{pkg: "@stripe/mcp", version: "0.3.3", downloads: 144352, args: []string{"--tools=all", "--api-key=sk_test_" + dummy},
		skip: "a stdio front for Stripe's remote MCP server: it forwards every request, initialize included, over the network"},
	{pkg: "tavily-mcp", version: "0.2.22", downloads: 138725, run: []string{"--env", "TAVILY_API_KEY=" + dummy}},
	{pkg: "@modelcontextprotocol/server-slack", version: "2025.4.25", downloads: 136678, run: []string{"--env", "SLACK_BOT_TOKEN=" + dummy, "--env", "SLACK_TEAM_ID=" + dummy}},
	{pkg: "@zereight/mcp-gitlab", version: "2.1.64", downloads: 135248, run: []string{"--env", "GITLAB_PERSONAL_ACCESS_TOKEN=" + dummy}},
	{pkg: "firecrawl-mcp", version: "3.26.0", downloads: 128690, run: []string{"--env", "FIRECRAWL_API_KEY=" + dummy}},
	{pkg: "@wonderwhy-er/desktop-commander", version: "0.2.52", downloads: 104957},
	{pkg: "@modelcontextprotocol/server-brave-search", version: "0.6.2", downloads: 102411, run: []string{"--env", "BRAVE_API_KEY=" + dummy}},
	{pkg: "@sentry/mcp-server", version: "0.39.0", downloads: 94958, args: []string{"--access-token=" + dummy}},
	{pkg: "@modelcontextprotocol/server-puppeteer", version: "2025.5.12", downloads: 94702},
	{pkg: "figma-developer-mcp", version: "0.13.2", downloads: 83826, args: []string{"--figma-api-key=" + dummy, "--stdio"}},
	{pkg: "@executeautomation/playwright-mcp-server", version: "1.0.12", downloads: 77326, run: []string{"--memory", "1Gi"}},
	{pkg: "@eslint/mcp", version: "0.3.13", downloads: 77255},
	{pkg: "@antv/mcp-server-chart", version: "0.9.10", downloads: 67547},
	{pkg: "exa-mcp-server", version: "3.4.1", downloads: 32174, run: []string{"--env", "EXA_API_KEY=" + dummy}},
}

// capture is one server's file in the corpus.
type capture struct {
	Package      string              `json:"package"`
	Version      string              `json:"version"`                    // asked for
	Resolved     string              `json:"resolved_version,omitempty"` // what mcpbox's install recorded
	Integrity    string              `json:"integrity,omitempty"`        // npm lockfile integrity of the package
	Downloads    int                 `json:"downloads_a_month"`
	Note         string              `json:"note,omitempty"`
	Captured     string              `json:"captured"` // UTC date
	Command      []string            `json:"command"`
	Protocol     string              `json:"protocol_version"`
	ServerInfo   *mcp.Implementation `json:"server_info,omitempty"`
	Instructions string              `json:"instructions,omitempty"`
	Tools        []json.RawMessage   `json:"tools"`
	Prompts      []json.RawMessage   `json:"prompts,omitempty"`
	Resources    []json.RawMessage   `json:"resources,omitempty"`
	Templates    []json.RawMessage   `json:"resource_templates,omitempty"`
	ListErrors   map[string]string   `json:"list_errors,omitempty"` // list method -> what the server answered instead
}

type config struct {
	mcpbox string // absolute path
	out    string
	state  string
	only   []string
}

func main() {
	var c config
	var only string
	flag.StringVar(&c.mcpbox, "mcpbox", "bin/mcpbox", "the mcpbox binary (make build)")
	flag.StringVar(&c.out, "out", "testdata/toolcorpus", "where the corpus goes")
	flag.StringVar(&c.state, "state", filepath.Join(os.TempDir(), "mcpbox-toolcorpus"), "mcpbox's cache, pins and audit for the capture (kept between runs)")
	flag.StringVar(&only, "only", "", "comma-separated packages to capture (default: all); the index is rewritten from every file in -out")
	flag.Parse()
	if only != "" {
		c.only = strings.Split(only, ",")
	}
	if err := c.main(); err != nil {
		fmt.Fprintln(os.Stderr, "toolcorpus:", err)
		os.Exit(1)
	}
}

func (c *config) main() error {
	bin, err := filepath.Abs(c.mcpbox)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("mcpbox binary: %w (run make build)", err)
	}
	c.mcpbox = bin
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(c.state, "state")); err != nil {
		return err
	}
	// The directory granted to server-filesystem. mcpbox runs a server as
	// the owner of its read-write grant and never as root: nobody owns it.
	files := filepath.Join(c.state, "files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(files, 65534, 65534); err != nil {
			return err
		}
	}
	var failed []string
	for _, s := range servers {
		if s.skip != "" || (c.only != nil && !slices.Contains(c.only, s.pkg)) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s@%s\n", s.pkg, s.version)
		if err := c.capture(s); err != nil {
			fmt.Fprintf(os.Stderr, "toolcorpus: %s@%s: %v\n", s.pkg, s.version, err)
			failed = append(failed, s.pkg)
		}
	}
	if err := c.index(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d servers failed: %s (add a skip reason, or fix their flags)", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// env is the environment of every mcpbox the script starts: mcpbox's state
// in -state, so the user's own pins, profiles and cache are not touched.
func (c *config) env() []string {
	env := os.Environ()
	for _, d := range []string{"cache", "state", "config"} {
		env = append(env, "XDG_"+strings.ToUpper(d)+"_HOME="+filepath.Join(c.state, d))
	}
	return env
}

// capture lists what one server offers, through mcpbox, into its file in
// c.out.
func (c *config) capture(s server) error {
	spec := s.pkg + "@" + s.version
	resolved, integrity, err := c.pull(spec)
	if err != nil {
		return err
	}
	args := []string{"run", "--no-redact", "--audit", "none"}
	args = append(args, s.run...)
	args = append(args, "--", "npx", "-y", spec)
	args = append(args, s.args...)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "{files}", filepath.Join(c.state, "files"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cs, err := c.connect(ctx, args, &stderr)
	if err != nil {
		return err
	}
	defer cs.Close()

	init := cs.InitializeResult()
	out := capture{
		Package: s.pkg, Version: s.version, Resolved: resolved, Integrity: integrity, Downloads: s.downloads, Note: s.note,
		Captured: time.Now().UTC().Format(time.DateOnly),
		Command:  append([]string{"mcpbox"}, args...),
		Protocol: init.ProtocolVersion, ServerInfo: init.ServerInfo, Instructions: init.Instructions,
		ListErrors: map[string]string{},
	}
	if init.Capabilities.Tools == nil {
		return errors.New("the server offers no tools")
	}
	if err := listAll(ctx, cs, init.Capabilities, &out, &stderr); err != nil {
		return err
	}
	return c.write(s.pkg, &out, stderr.String())
}

// connect starts mcpbox with args and initializes an MCP session with the
// server it runs. mcpbox's stderr goes to stderr.
func (c *config) connect(ctx context.Context, args []string, stderr *bytes.Buffer) (*mcp.ClientSession, error) {
	cmd := exec.Command(c.mcpbox, args...)
	cmd.Env = c.env()
	cmd.Stderr = stderr
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpbox-toolcorpus", Version: "1"}, &mcp.ClientOptions{Logger: logger})
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect through mcpbox: %w\n%s", err, tail(stderr.String()))
	}
	return cs, nil
}

// lister is one list method of the server and where its items go.
type lister struct {
	method string
	ok     bool // the server advertises it
	into   *[]json.RawMessage
	list   func(cursor string) (any, string, error)
}

// listers are the list methods, each appending to its list in out.
func listers(ctx context.Context, cs *mcp.ClientSession, caps *mcp.ServerCapabilities, out *capture) []lister {
	return []lister{
		{"tools/list", true, &out.Tools, func(cur string) (any, string, error) {
			r, err := cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: cur})
			if err != nil {
				return nil, "", err
			}
			return r.Tools, r.NextCursor, nil
		}},
		{"prompts/list", caps.Prompts != nil, &out.Prompts, func(cur string) (any, string, error) {
			r, err := cs.ListPrompts(ctx, &mcp.ListPromptsParams{Cursor: cur})
			if err != nil {
				return nil, "", err
			}
			return r.Prompts, r.NextCursor, nil
		}},
		{"resources/list", caps.Resources != nil, &out.Resources, func(cur string) (any, string, error) {
			r, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: cur})
			if err != nil {
				return nil, "", err
			}
			return r.Resources, r.NextCursor, nil
		}},
		{"resources/templates/list", caps.Resources != nil, &out.Templates, func(cur string) (any, string, error) {
			r, err := cs.ListResourceTemplates(ctx, &mcp.ListResourceTemplatesParams{Cursor: cur})
			if err != nil {
				return nil, "", err
			}
			return r.ResourceTemplates, r.NextCursor, nil
		}},
	}
}

// listAll fills out with every page of every list the server advertises.
// Only a failing tools/list is an error; another list's error is recorded.
func listAll(ctx context.Context, cs *mcp.ClientSession, caps *mcp.ServerCapabilities, out *capture, stderr *bytes.Buffer) error {
	for _, l := range listers(ctx, cs, caps, out) {
		if !l.ok {
			continue
		}
		cursor := ""
		for page := 0; ; page++ {
			items, next, err := l.list(cursor)
			if err != nil {
				if l.method == "tools/list" {
					return fmt.Errorf("%s: %w\n%s", l.method, err, tail(stderr.String()))
				}
				// A server may advertise a list and fail it without its
				// backend (a database it cannot reach): keep the reason.
				out.ListErrors[l.method] = err.Error()
				break
			}
			raw, err := rawItems(items)
			if err != nil {
				return fmt.Errorf("%s: %w", l.method, err)
			}
			*l.into = append(*l.into, raw...)
			if next == "" || next == cursor || page > 1000 {
				break
			}
			cursor = next
		}
	}
	return nil
}

// write writes out as pkg's file in c.out, and says so with mcpbox's
// stderr.
func (c *config) write(pkg string, out *capture, stderr string) error {
	if len(out.ListErrors) == 0 {
		out.ListErrors = nil
	}
	if out.Tools == nil {
		out.Tools = []json.RawMessage{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	file := filepath.Join(c.out, fileName(pkg))
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d tools, %d prompts, %d resources, %d templates\n%s", file,
		len(out.Tools), len(out.Prompts), len(out.Resources), len(out.Templates), indent(stderr))
	return nil
}

// rawItems re-encodes the SDK's typed list items one by one.
func rawItems(items any) ([]json.RawMessage, error) {
	b, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// pull installs spec with `mcpbox pull` and reads back what the install
// recorded: the resolved version and the package's lockfile integrity.
func (c *config) pull(spec string) (resolved, integrity string, err error) {
	cmd := exec.Command(c.mcpbox, "pull", "--", "npx", "-y", spec)
	cmd.Env = c.env()
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("mcpbox pull %s: %w", spec, err)
	}
	// "NAME VERSION<TAB>DIR"
	line, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), "\n")
	_, dir, ok := strings.Cut(line, "\t")
	if !ok {
		return "", "", fmt.Errorf("mcpbox pull %s: unexpected output %q", spec, stdout.String())
	}
	f, err := os.Open(filepath.Join(dir, "mcpbox.json"))
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	var meta struct {
		Name      string            `json:"name"`
		Version   string            `json:"version"`
		Integrity map[string]string `json:"integrity"`
	}
	if err := json.NewDecoder(bufio.NewReader(f)).Decode(&meta); err != nil {
		return "", "", fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return meta.Version, meta.Integrity[meta.Name+"@"+meta.Version], nil
}

func fileName(pkg string) string {
	return strings.NewReplacer("@", "", "/", "+").Replace(pkg) + ".json"
}

// index writes README.md from every capture in -out and the skip reasons.
func (c *config) index() error {
	files, err := filepath.Glob(filepath.Join(c.out, "*.json"))
	if err != nil {
		return err
	}
	var caps []capture
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var cp capture
		if err := json.Unmarshal(b, &cp); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		caps = append(caps, cp)
	}
	sort.Slice(caps, func(i, j int) bool { return caps[i].Downloads > caps[j].Downloads })
	var b strings.Builder
	b.WriteString("# Clean tool corpus\n\n")
	b.WriteString("What popular MCP servers from npm list (tools, prompts, resources, resource templates,\n")
	b.WriteString("instructions), each recorded through `mcpbox run` with no network by\n")
	b.WriteString("`go run ./scripts/toolcorpus` (see its header comment). The poisoning scan must find\n")
	b.WriteString("nothing here (launcher/broker/scan_test.go). Downloads are a month's, from npm's counts\n")
	b.WriteString("when the corpus was chosen. Each file records the exact command and the integrity of\n")
	b.WriteString("the package mcpbox installed.\n\n")
	b.WriteString("| package | version | downloads/month | tools | prompts | resources | templates | captured | note |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---|---|\n")
	for _, cp := range caps {
		fmt.Fprintf(&b, "| `%s` | %s | %d | %d | %d | %d | %d | %s | %s |\n", cp.Package, cp.Resolved, cp.Downloads,
			len(cp.Tools), len(cp.Prompts), len(cp.Resources), len(cp.Templates), cp.Captured, cp.Note)
	}
	var skipped []server
	for _, s := range servers {
		if s.skip != "" {
			skipped = append(skipped, s)
		}
	}
	if len(skipped) > 0 {
		b.WriteString("\nSkipped:\n\n")
		for _, s := range skipped {
			fmt.Fprintf(&b, "- `%s@%s` (%d downloads/month): %s\n", s.pkg, s.version, s.downloads, s.skip)
		}
	}
	return os.WriteFile(filepath.Join(c.out, "README.md"), []byte(b.String()), 0o644)
}

func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return indent(strings.Join(lines, "\n"))
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
