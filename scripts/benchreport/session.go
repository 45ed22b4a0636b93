package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// callTimeout bounds each request: a server or sandbox that hangs is killed
// and the measurement fails with its stderr, instead of hanging the run.
const callTimeout = 120 * time.Second

const initializeParams = `{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"benchreport","version":"1"}}`

// session is one started stdio MCP server (bare, through mcpbox or srt),
// spoken to with raw JSON-RPC lines so the client costs every variant the
// same.
type session struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr *tail
	// logs are mcpbox's log lines on stderr, each with when it arrived.
	logs   *logLines
	began  time.Time // the spawn
	nextID int
	done   chan struct{}
}

// live holds the sessions not yet stopped, so an interrupted run can kill
// them before it cleans up.
var live = struct {
	sync.Mutex
	m map[*session]bool
}{m: map[*session]bool{}}

func start(cmd *exec.Cmd) (*session, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &session{cmd: cmd, stdin: stdin, out: bufio.NewReaderSize(out, 1<<20), stderr: &tail{}, logs: &logLines{}, nextID: 1, done: make(chan struct{})}
	cmd.Stderr = io.MultiWriter(s.stderr, s.logs)
	s.began = time.Now()
	s.logs.begin = s.began
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	live.Lock()
	live.m[s] = true
	live.Unlock()
	return s, nil
}

// call sends one request and reads lines until its response; it returns
// the response line and the time from write to the response's last byte.
func (s *session) call(method, params string) (string, time.Duration, error) {
	id := strconv.Itoa(s.nextID)
	s.nextID++
	line := `{"jsonrpc":"2.0","id":` + id + `,"method":"` + method + `","params":` + params + "}\n"
	watchdog := time.AfterFunc(callTimeout, func() { s.cmd.Process.Kill() })
	defer watchdog.Stop()
	begin := time.Now()
	if _, err := io.WriteString(s.stdin, line); err != nil {
		return "", 0, s.failed(method, err)
	}
	suffix, infix := `"id":`+id+`}`, `"id":`+id+`,`
	for {
		resp, err := s.out.ReadString('\n')
		if err != nil {
			return "", 0, s.failed(method, err)
		}
		trimmed := strings.TrimSpace(resp)
		if strings.HasSuffix(trimmed, suffix) || strings.Contains(resp, infix) {
			d := time.Since(begin)
			if strings.Contains(resp, `"error":{`) && !strings.Contains(resp, `"result":`) {
				return resp, d, fmt.Errorf("%s: error response: %.200s", method, trimmed)
			}
			return resp, d, nil
		}
	}
}

func (s *session) failed(method string, err error) error {
	if last := s.stderr.lastLine(); last != "" {
		return fmt.Errorf("%s: %w (stderr: %s)", method, err, last)
	}
	return fmt.Errorf("%s: %w", method, err)
}

// initialize does the MCP handshake and returns the time to the initialize
// response.
func (s *session) initialize() (time.Duration, error) {
	_, d, err := s.call("initialize", initializeParams)
	if err != nil {
		return 0, err
	}
	if _, err := io.WriteString(s.stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		return 0, s.failed("notifications/initialized", err)
	}
	return d, nil
}

// echo calls server-everything's echo tool with msg.
func (s *session) echo(msg string) (string, time.Duration, error) {
	return s.call("tools/call", `{"name":"echo","arguments":{"message":"`+msg+`"}}`)
}

// stop hangs up like a client does (closes stdin) and waits for the exit,
// killing the process after a grace period.
func (s *session) stop() {
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	live.Lock()
	delete(live.m, s)
	live.Unlock()
}

func killLive() {
	live.Lock()
	defer live.Unlock()
	for s := range live.m {
		s.cmd.Process.Kill()
	}
}

// tail keeps the last few KiB written to it: a failed session's stderr.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8<<10 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-4<<10:]...)
	}
	return len(p), nil
}

func (t *tail) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := bytes.Split(bytes.TrimSpace(t.buf), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(string(lines[i])); l != "" && !strings.HasPrefix(l, "Starting default") {
			if len(l) > 240 {
				l = l[:240] + "…"
			}
			return l
		}
	}
	return ""
}

// stamped is one log line and when it arrived, since the spawn.
type stamped struct {
	at   time.Duration
	line string
}

// logLines keeps the lines of mcpbox's log (slog's text format, "… msg=…")
// with the time each one reached the bench: what mcpbox logs then sits on
// the client's clock, whichever of its processes logged it.
type logLines struct {
	mu    sync.Mutex
	begin time.Time
	part  []byte
	lines []stamped
}

func (l *logLines) Write(p []byte) (int, error) {
	now := time.Since(l.begin)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		if line := string(l.part[:i]); strings.Contains(line, " msg=") && len(l.lines) < 1000 {
			l.lines = append(l.lines, stamped{now, line})
		}
		l.part = l.part[i+1:]
	}
	if len(l.part) > 64<<10 {
		l.part = nil // no log line is this long
	}
	return len(p), nil
}

func (l *logLines) all() []stamped {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]stamped(nil), l.lines...)
}
