package trial_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/launcher/observe"
	"github.com/mcpbox/mcpbox/launcher/trial"
	"github.com/mcpbox/mcpbox/sandbox/egress"
	"github.com/mcpbox/mcpbox/sandbox/seccomp"
)

// fakeSession is a Runner that plays the sandboxed server without a
// sandbox: it reports to the hooks what a session would have seen and
// answers the trial's MCP requests, then exits with code 3 after the
// first tool call.
func fakeSession(got *trial.Session) trial.Runner {
	return func(ctx context.Context, s trial.Session) (int, error) {
		*got = s
		h := s.Hooks
		h.OnIdentity(broker.Identity{Key: "npm:@acme/notes", Package: "@acme/notes", Version: "1.2.3"})
		h.OnEgress(egress.Event{Kind: egress.KindDNS, Host: "exfil.example.com", Verdict: egress.VerdictDeny, Reason: "not in allowlist"})
		h.OnUsage(observe.Usage{PeakMemory: 70 << 20, Pids: 9, CPU: time.Second})
		ev := seccomp.Event{Syscall: "unshare", Detail: "CLONE_NEWUSER"}
		if h.Syscalls(ev) != seccomp.Deny {
			return 0, errors.New("unshare was let through")
		}
		h.OnSyscall(ev)

		sc := bufio.NewScanner(s.Stdin)
		for sc.Scan() {
			var req struct {
				ID     *int   `json:"id"`
				Method string `json:"method"`
			}
			if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
				return 0, err
			}
			if req.ID == nil {
				continue
			}
			var result any = map[string]any{}
			switch req.Method {
			case "tools/list":
				result = map[string]any{"tools": []any{map[string]any{"name": "echo", "description": "Echo the input back.", "inputSchema": map[string]any{"type": "object"}}}}
			case "tools/call":
				result = map[string]any{"content": []any{map[string]any{"type": "text", "text": "hi"}}}
			}
			b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": *req.ID, "result": result})
			if _, err := s.Stdout.Write(append(b, '\n')); err != nil {
				return 0, err
			}
			if req.Method == "tools/call" {
				return 3, nil
			}
		}
		return 0, sc.Err()
	}
}

// TestRunThroughRunner: a trial asks its Runner for the session it needs
// (the base profile, no audit log, every watcher set) and builds its
// report from what the hooks and the server's answers showed.
func TestRunThroughRunner(t *testing.T) {
	var s trial.Session
	call, err := trial.ParseCall(`echo={"message":"hi"}`)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := trial.Run(context.Background(), trial.Options{Run: fakeSession(&s), Command: []string{"npx", "-y", "@acme/notes"},
		Calls: []trial.CallSpec{call}, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if s.Profile != "untrusted" || s.Audit || strings.Join(s.Command, " ") != "npx -y @acme/notes" {
		t.Errorf("session asked for: profile %q, audit %v, command %q; want untrusted, no audit, the command", s.Profile, s.Audit, s.Command)
	}
	if h := s.Hooks; !h.Exec || !h.Files || !h.Reads || h.OnUsage == nil || h.OnEgress == nil {
		t.Errorf("hooks %+v: want every watcher set", h)
	}
	if rep.ExitCode == nil || *rep.ExitCode != 3 {
		t.Errorf("exit code %v, want 3", rep.ExitCode)
	}
	if rep.Package == nil || rep.Package.Name != "@acme/notes" || rep.Package.Version != "1.2.3" {
		t.Errorf("package %+v", rep.Package)
	}
	if len(rep.Tools) != 1 || rep.Tools[0].Name != "echo" || len(rep.Calls) != 1 || !rep.Calls[0].OK {
		t.Errorf("tools %+v, calls %+v", rep.Tools, rep.Calls)
	}
	if len(rep.Network) != 1 || rep.Network[0].Host != "exfil.example.com" || rep.Network[0].Verdict != trial.VerdictDenied {
		t.Errorf("network %+v", rep.Network)
	}
	if len(rep.Syscalls) != 1 || rep.Syscalls[0].Name != "unshare" || rep.Syscalls[0].Verdict != trial.VerdictDenied {
		t.Errorf("syscalls %+v", rep.Syscalls)
	}
	if rep.Usage.PeakMemoryBytes != 70<<20 || rep.Usage.PeakPIDs != 9 || rep.Usage.CPUSeconds != 1 {
		t.Errorf("usage %+v", rep.Usage)
	}
}

// TestRunSessionFails: a session that fails before the server shows
// anything fails the trial with the Runner's error; one that fails after
// still gives a report, without an exit code, and says so on Stderr.
func TestRunSessionFails(t *testing.T) {
	errNoSandbox := errors.New("no sandbox")
	_, err := trial.Run(context.Background(), trial.Options{Command: []string{"srv"}, Duration: time.Hour,
		Run: func(ctx context.Context, s trial.Session) (int, error) { return 0, errNoSandbox }})
	if !errors.Is(err, errNoSandbox) {
		t.Errorf("Run = %v, want the Runner's error", err)
	}

	var stderr strings.Builder
	rep, err := trial.Run(context.Background(), trial.Options{Command: []string{"srv"}, Duration: time.Hour, Stderr: &stderr,
		Run: func(ctx context.Context, s trial.Session) (int, error) {
			s.Hooks.OnSyscall(seccomp.Event{Syscall: "ptrace"})
			io.Copy(io.Discard, s.Stdin)
			return 0, errNoSandbox
		},
		Client: &trial.ClientIO{In: strings.NewReader(""), Out: io.Discard}})
	if err != nil || rep.ExitCode != nil {
		t.Fatalf("Run = %+v, %v; want a report without an exit code", rep, err)
	}
	if !strings.Contains(stderr.String(), "the session ended with an error: no sandbox") {
		t.Errorf("stderr: %q", stderr.String())
	}
	if _, err := trial.Run(context.Background(), trial.Options{Command: []string{"srv"}}); err == nil {
		t.Error("Run without a Runner: no error")
	}
}
