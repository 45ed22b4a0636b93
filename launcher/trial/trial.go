package trial

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/launcher/observe"
	"github.com/mcpbox/mcpbox/sandbox"
	"github.com/mcpbox/mcpbox/sandbox/egress"
)

// Call is one tool call a trial makes (--call TOOL=JSON).
type CallSpec struct {
	Tool      string
	Arguments json.RawMessage
}

// ParseCall reads TOOL=JSON (JSON defaults to {}).
func ParseCall(s string) (CallSpec, error) {
	tool, args, _ := strings.Cut(s, "=")
	if tool == "" {
		return CallSpec{}, fmt.Errorf("--call %q: use TOOL=JSON, e.g. --call 'echo={\"message\":\"hi\"}'", s)
	}
	if args == "" {
		args = "{}"
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(args), &obj); err != nil {
		return CallSpec{}, fmt.Errorf("--call %s: the arguments are not a JSON object: %v", tool, err)
	}
	return CallSpec{Tool: tool, Arguments: json.RawMessage(args)}, nil
}

// Options configure a trial.
type Options struct {
	// Run runs the sandboxed session; cmd/mcpbox gives it launcher.Run.
	Run Runner
	// Command is the server's command line as the client would give it.
	Command []string
	// Profile is the base profile's name or file; "" means untrusted.
	Profile string
	// Stderr receives the trial's own messages; nil discards them.
	Stderr io.Writer
	Calls  []CallSpec
	// Duration is how long the trial watches in all, calls included;
	// the server is then shut down. Zero means 20 s.
	Duration time.Duration
	// Enforce denies syscalls outside the profile (EPERM) instead of
	// letting them run while they are recorded.
	Enforce bool
	// Client, when set, is a real MCP client's stdio (--client): the
	// trial does not drive the session, it records while the client
	// talks to the server, until the client hangs up. Calls and Duration
	// are ignored.
	Client *ClientIO
}

// Runner is all a trial needs of mcpbox's launcher: run one sandboxed
// session as s asks, until the server exits or s.Stdin ends. It returns
// the server's exit code when the server ran and ended (0 for a clean
// exit, 128+n when killed by signal n), or an error when the session
// itself failed.
type Runner func(ctx context.Context, s Session) (exitCode int, err error)

// Session is the session a trial asks its Runner for.
type Session struct {
	Command []string
	Profile string // the base profile's name or file, never ""
	// Stdin and Stdout are the client's side of the server's stdio: the
	// trial's own client, or with --client the real client's, teed.
	Stdin  io.Reader
	Stdout io.Writer
	// Hooks are the trial's watchers.
	Hooks *observe.Hooks
	// Audit asks for the session's audit log too; a trial's record is
	// its report, so Run asks for none.
	Audit bool
}

// ClientIO is a real client's side of the session.
type ClientIO struct {
	In  io.Reader
	Out io.Writer
}

// recorder collects what the watchers saw; its methods run on several
// goroutines.
type recorder struct {
	mu      sync.Mutex
	network map[string]*NetEvent
	usage   Usage
}

func (r *recorder) egress(ev egress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	verdict := "denied"
	if ev.Verdict == egress.VerdictAllow {
		verdict = "allowed"
	}
	key := ev.Kind + "\x00" + ev.Host + "\x00" + fmt.Sprint(ev.Port) + "\x00" + verdict
	n := r.network[key]
	if n == nil {
		n = &NetEvent{Kind: ev.Kind, Host: ev.Host, Port: ev.Port, Verdict: verdict, Reason: ev.Reason}
		r.network[key] = n
	}
	n.Count++
}

func (r *recorder) sample(u observe.Usage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.usage.PeakMemoryBytes = max(r.usage.PeakMemoryBytes, int64(u.PeakMemory))
	r.usage.PeakPIDs = max(r.usage.PeakPIDs, int64(u.Pids))
	r.usage.CPUSeconds = max(r.usage.CPUSeconds, u.CPU.Seconds())
}

// Run runs one trial and returns its report (ranked). An error means the
// trial itself failed (bad options, no sandbox); what the server did
// wrong is in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Run == nil {
		return nil, errors.New("trial: no Runner in Options.Run to run the session with")
	}
	if opts.Duration <= 0 {
		opts.Duration = 20 * time.Second
	}
	if opts.Profile == "" {
		opts.Profile = "untrusted"
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	rec := &recorder{network: map[string]*NetEvent{}}
	sys := newSyscallRecorder(opts.Enforce)
	s := Session{Command: opts.Command, Profile: opts.Profile, Hooks: &observe.Hooks{
		OnEgress: rec.egress, OnUsage: rec.sample, UsageEvery: 20 * time.Millisecond,
		Syscalls: sys.decide, OnSyscall: sys.record, Exec: true, Files: true, Reads: true,
	}}
	rep := rep0(opts)
	s.Hooks.OnIdentity = rep.identity
	if opts.Client != nil {
		return runWithClient(ctx, s, opts, rep, rec, sys)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s.Stdin, s.Stdout = inR, outW

	type ended struct {
		code int
		err  error
	}
	runEnd := make(chan ended, 1)
	go func() {
		code, err := opts.Run(ctx, s)
		outW.Close()
		inR.Close()
		runEnd <- ended{code, err}
	}()

	deadline := time.Now().Add(opts.Duration)
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c := newClient(inW, outR)
	drive(cctx, c, opts.Calls, rep)
	// Watch the rest of the time: servers do things in the background.
	select {
	case <-cctx.Done():
	case <-c.done:
	}
	inW.Close() // the client hangs up: the server is stopped
	end := <-runEnd
	return finish(rep, end.code, end.err, opts, rec, sys)
}

// rep0 is a trial's report before anything was seen.
func rep0(opts Options) *Report {
	return &Report{Schema: SchemaVersion, Started: time.Now().UTC(), Command: opts.Command, BaseProfile: opts.Profile, Enforce: opts.Enforce,
		Home: sandbox.DefaultHome}
}

func (rep *Report) identity(id broker.Identity) {
	if id.Package != "" {
		eco, _, _ := strings.Cut(id.Key, ":")
		rep.Package = &Package{Ecosystem: eco, Name: id.Package, Version: id.Version}
	}
}

// runWithClient records a session a real client drives: the server's
// tools/list answers are read off the stream on their way to the client.
func runWithClient(ctx context.Context, s Session, opts Options, rep *Report, rec *recorder, sys *syscallRecorder) (*Report, error) {
	s.Stdin = opts.Client.In
	s.Stdout = &toolsTee{w: opts.Client.Out, rep: rep}
	code, err := opts.Run(ctx, s)
	return finish(rep, code, err, opts, rec, sys)
}

// toolsTee passes the server's messages to the client and takes the
// tools inventory from tools/list results it sees.
type toolsTee struct {
	w   io.Writer
	rep *Report
	mu  sync.Mutex
}

func (t *toolsTee) Write(p []byte) (int, error) {
	var m struct {
		Result struct {
			Tools []json.RawMessage `json:"tools"`
		} `json:"result"`
	}
	if json.Unmarshal(p, &m) == nil && len(m.Result.Tools) > 0 {
		t.mu.Lock()
		for _, tool := range m.Result.Tools {
			addTool(t.rep, tool)
		}
		t.mu.Unlock()
	}
	return t.w.Write(p)
}

// addTool records a listed tool, once per name and definition.
func addTool(rep *Report, tool json.RawMessage) {
	name, _ := nameOf(tool, "name")
	_, sum, _ := broker.Definition("tools", tool)
	for _, t := range rep.Tools {
		if t.Name == name && t.SHA256 == sum {
			return
		}
	}
	var desc struct {
		Description string `json:"description"`
	}
	json.Unmarshal(tool, &desc)
	rep.Tools = append(rep.Tools, Tool{Name: name, SHA256: sum, Description: desc.Description, DescriptionBytes: len(desc.Description),
		Findings: broker.ScanTool(tool, len(rep.Tools))})
}

// finish fills the report from what the watchers saw and ranks it.
func finish(rep *Report, code int, err error, opts Options, rec *recorder, sys *syscallRecorder) (*Report, error) {
	rep.DurationS = time.Since(rep.Started).Seconds()
	switch {
	case err == nil:
		rep.ExitCode = &code
	case rep.Tools == nil && len(sys.events()) == 0:
		return nil, err
	default:
		fmt.Fprintf(opts.Stderr, "mcpbox: trial: the session ended with an error: %v\n", err)
	}

	rec.mu.Lock()
	for _, n := range rec.network {
		rep.Network = append(rep.Network, *n)
	}
	rep.Usage = rec.usage
	rec.mu.Unlock()
	var execs []Process
	rep.Syscalls, rep.Files, execs, rep.Reads = sys.summary(rep.Home)
	rep.Processes = execs
	rep.PathArgs = pathArgs(opts.Command)
	rep.Rank()
	return rep, nil
}

// drive runs the MCP session: initialize, the lists, the calls.
func drive(ctx context.Context, c *client, calls []CallSpec, rep *Report) {
	init, err := c.call(ctx, "initialize", map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "mcpbox-trial", "version": "1"},
	})
	if err != nil {
		return
	}
	var ir struct {
		Instructions string `json:"instructions"`
	}
	if json.Unmarshal(init, &ir) == nil && ir.Instructions != "" {
		rep.Instructions = broker.ScanInstructions(ir.Instructions)
	}
	c.notify("notifications/initialized")

	for _, tool := range list(ctx, c, "tools/list", "tools") {
		addTool(rep, tool)
	}
	for _, p := range list(ctx, c, "prompts/list", "prompts") {
		name, _ := nameOf(p, "name")
		_, sum, _ := broker.Definition("prompts", p)
		rep.Prompts = append(rep.Prompts, Item{Name: name, SHA256: sum})
	}
	for _, r := range list(ctx, c, "resources/list", "resources") {
		name, _ := nameOf(r, "uri")
		_, sum, _ := broker.Definition("resources", r)
		rep.Resources = append(rep.Resources, Item{Name: name, SHA256: sum})
	}
	for _, call := range calls {
		start := time.Now()
		res, err := c.call(ctx, "tools/call", map[string]any{"name": call.Tool, "arguments": call.Arguments})
		rc := Call{Tool: call.Tool, Arguments: call.Arguments, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			rc.Error = err.Error()
		} else {
			var r struct {
				IsError bool `json:"isError"`
			}
			json.Unmarshal(res, &r)
			rc.OK = !r.IsError
			if r.IsError {
				rc.Error = "the tool reported an error"
			}
		}
		rep.Calls = append(rep.Calls, rc)
	}
}

// list pages through a list method and returns its items; a server without
// the capability gives none.
func list(ctx context.Context, c *client, method, key string) []json.RawMessage {
	var items []json.RawMessage
	cursor := ""
	for page := 0; page < 100; page++ {
		var params any
		if cursor != "" {
			params = map[string]any{"cursor": cursor}
		}
		res, err := c.call(ctx, method, params)
		if err != nil {
			return items
		}
		var r map[string]json.RawMessage
		if json.Unmarshal(res, &r) != nil {
			return items
		}
		var got []json.RawMessage
		json.Unmarshal(r[key], &got)
		items = append(items, got...)
		cursor = ""
		json.Unmarshal(r["nextCursor"], &cursor)
		if cursor == "" {
			return items
		}
	}
	return items
}

func nameOf(item json.RawMessage, key string) (string, bool) {
	var m map[string]any
	if json.Unmarshal(item, &m) != nil {
		return "", false
	}
	s, ok := m[key].(string)
	return s, ok
}

// pathArgs are the command's arguments that name existing host paths.
func pathArgs(cmd []string) []string {
	var out []string
	for _, a := range cmd[min(1, len(cmd)):] {
		if filepath.IsAbs(a) {
			if _, err := os.Stat(a); err == nil && !strings.Contains(a, "/node_modules/") {
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out
}
