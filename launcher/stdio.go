package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/launcher/runtime"
	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox"
)

// stopReason says why mcpbox stopped the server; stopNone: it exited by
// itself.
type stopReason int

const (
	stopNone         stopReason = iota
	stopInterrupted             // mcpbox's context was canceled (SIGINT, SIGTERM)
	stopClientClosed            // the client closed its stdin
	stopBroker                  // the server's stream broke the broker's rules
)

// streams are the session's stdio pumps, each reporting once when it ends.
type streams struct {
	toClient   chan error // server → client (or → stderr for a batch job)
	clientGone chan error // client → server; never reports for a batch job
	stderrDone chan struct{}
}

// run creates and starts the container, brokers stdio until the server
// exits, and maps how it ended.
func (s *session) run(ctx context.Context, rt runtime.Runtime, phase func(string)) error {
	if err := s.openFifos(); err != nil {
		return err
	}
	var audit io.WriteCloser
	var err error
	if !s.job.batch {
		if audit, err = s.job.policy.openAudit(s.opts); err != nil {
			return err
		}
		if audit != nil {
			defer audit.Close()
		}
	}
	if s.notify {
		// runc hands over the notification fd while it creates the task.
		agent, err := s.startAgent(audit)
		if err != nil {
			return err
		}
		defer agent.Close()
	}
	if err := s.create(context.Background(), rt); err != nil {
		return err
	}
	// The runtime has made the mounts; the server has not run yet.
	if err := s.pins.Verify(s.container.Pid()); err != nil {
		return err
	}
	phase("create")
	if err := s.container.Start(context.Background()); err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	phase("start")
	if s.job.batch {
		s.settled() // nobody waits for its first byte
	}
	if o, cg := s.opts.Observe, s.usageCgroup(); o != nil && o.OnUsage != nil && !s.job.batch && cg != "" {
		stopWatch, watchDone := make(chan struct{}), make(chan struct{})
		go o.WatchUsage(cg, stopWatch, watchDone)
		defer func() { close(stopWatch); <-watchDone }()
	}
	st := s.pump(s.brokerFor(audit), phase)
	exit, reason, brokerErr := s.wait(ctx, st)
	close(s.exited)
	brokerErr = s.drain(st, brokerErr)
	return s.result(exit, reason, brokerErr)
}

// openFifos opens mcpbox's ends of the server's stdio FIFOs. mcpbox holds
// the server's stdin open read-write: that never blocks, lets
// mcpbox-init's read-only open return at once, and the server sees EOF
// when mcpbox closes it, as the only writer.
func (s *session) openFifos() error {
	ioDir := filepath.Join(s.dir, "io")
	in, err := os.OpenFile(filepath.Join(ioDir, "stdin"), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("launcher: open stdin fifo: %w", err)
	}
	s.stdin = in
	s.stdout = openFifoReader(filepath.Join(ioDir, "stdout"))
	s.stderr = openFifoReader(filepath.Join(ioDir, "stderr"))
	return nil
}

// brokerFor is the broker of this session: the job's policies, or for a
// batch job none but the message size limit.
func (s *session) brokerFor(audit io.Writer) *broker.Broker {
	if s.job.batch {
		return broker.New(broker.Options{MaxMessage: s.opts.MaxMessage, Diag: s.opts.Stderr, Logger: s.opts.Logger})
	}
	bopts := s.job.policy.broker
	bopts.MaxMessage, bopts.Diag, bopts.Logger = s.opts.MaxMessage, s.opts.Stderr, s.opts.Logger
	bopts.ToolAllow, bopts.ToolDeny = s.job.toolAllow, s.job.toolDeny
	if audit != nil {
		bopts.Audit = audit
	}
	return broker.New(bopts)
}

// pump starts copying the server's stderr to mcpbox's, and the MCP stream
// through the broker both ways. A batch job's output is progress for the
// user: it goes to stderr, it has no input, and it ends when it exits.
func (s *session) pump(b *broker.Broker, phase func(string)) *streams {
	st := &streams{toClient: make(chan error, 1), clientGone: make(chan error, 1), stderrDone: make(chan struct{})}
	go func() {
		defer close(st.stderrDone)
		io.Copy(s.opts.Stderr, s.stderr)
	}()
	if s.job.batch {
		go func() {
			_, err := io.Copy(s.opts.Stderr, s.stdout)
			st.toClient <- err
		}()
		go s.closeStdin()
		return st
	}
	go func() {
		out := &firstWrite{w: s.opts.Stdout, first: func() { phase("first byte"); s.settled() }}
		st.toClient <- b.ServerToClient(out, s.stdout)
	}()
	go func() {
		err := b.ClientToServer(s.stdin, s.opts.Stdin)
		s.closeStdin()
		st.clientGone <- err
	}()
	return st
}

// wait waits for the server to exit, stopping it when the client goes,
// mcpbox is interrupted, or the broker gives up on the server's stream.
// It returns the exit, why mcpbox stopped the server, and the broker's
// error on the server's stream if that is what ended it.
func (s *session) wait(ctx context.Context, st *streams) (runtime.Exit, stopReason, error) {
	reason := stopNone
	stop := func(r stopReason, grace bool) {
		if reason == stopNone {
			reason = r
			go s.stop(grace)
		}
	}
	var brokerErr error
	clientGone := st.clientGone
	for {
		select {
		case exit := <-s.container.Exited():
			return exit, reason, brokerErr
		case <-ctx.Done():
			stop(stopInterrupted, true)
			ctx = context.Background() // fire once
		case err := <-clientGone:
			if err != nil {
				s.log.Debug("client stream ended", "err", err)
			}
			clientGone = nil
			stop(stopClientClosed, true)
		case err := <-st.toClient:
			st.toClient = nil
			if err != nil {
				brokerErr = err
				s.log.Debug("stopping the server", "reason", err)
				stop(stopBroker, !errors.Is(err, broker.ErrMessageTooLarge))
			}
		}
	}
}

// drain waits for what the server wrote before it exited. Its FIFO ends
// when the last writer in the sandbox is gone, which the exit of pid 1
// ensures; if mcpbox-init never opened it, closing our end ends the read.
func (s *session) drain(st *streams, brokerErr error) error {
	if st.toClient != nil {
		select {
		case err := <-st.toClient:
			if err != nil && brokerErr == nil {
				brokerErr = err
			}
		case <-time.After(2 * time.Second):
			s.stdout.Close()
			if err := <-st.toClient; err != nil && brokerErr == nil && !errors.Is(err, os.ErrClosed) {
				brokerErr = err
			}
		}
	}
	select {
	case <-st.stderrDone:
	case <-time.After(2 * time.Second):
		s.stderr.Close()
		<-st.stderrDone
	}
	return brokerErr
}

// result maps how the session ended to Run's error.
func (s *session) result(exit runtime.Exit, reason stopReason, brokerErr error) error {
	if exit.Err != nil {
		return fmt.Errorf("launcher: %w", exit.Err)
	}
	s.log.Debug("server exited", "id", s.id, "code", exit.Code)
	switch {
	case errors.Is(brokerErr, broker.ErrMessageTooLarge):
		return &ExitError{Code: 1, Reason: brokerErr.Error()}
	case s.container.OOMKilled():
		mem := s.job.limits.Memory
		if mem == 0 {
			mem = sandbox.DefaultLimits().Memory
		}
		return &ExitError{Code: exit.Code, Reason: fmt.Sprintf("killed by the kernel: out of memory at the sandbox's limit of %s; raise it with --memory", profiles.FormatSize(mem))}
	case reason == stopInterrupted:
		return fmt.Errorf("launcher: session %s: %w", s.id, context.Canceled)
	case reason == stopClientClosed && s.signaled.Load():
		return nil // the client ended the session and mcpbox had to stop the server
	case exit.Code != 0:
		return &ExitError{Code: exit.Code}
	}
	return nil
}

// closeStdin ends the server's stdin: mcpbox holds the only writing end of
// its FIFO. It waits until mcpbox-init has opened its end (it opens stdin
// before stdout): closing the last open end earlier would drop what the
// client already sent. Safe to call more than once.
func (s *session) closeStdin() {
	select {
	case <-s.stdout.Opened():
	case <-s.exited:
	}
	s.stdin.Close()
}

// stop ends the server: optionally a grace period after stdin was closed,
// then SIGTERM, then SIGKILL, each after StopTimeout.
func (s *session) stop(grace bool) {
	wait := func() bool {
		select {
		case <-s.exited:
			return true
		case <-time.After(s.opts.StopTimeout):
			return false
		}
	}
	s.closeStdin()
	if grace && wait() {
		return
	}
	s.signaled.Store(true)
	if grace {
		if err := s.container.Signal(context.Background(), syscall.SIGTERM, false); err != nil {
			s.log.Debug("sigterm", "err", err)
		}
		if wait() {
			return
		}
	}
	if err := s.container.Signal(context.Background(), syscall.SIGKILL, true); err != nil {
		s.log.Debug("sigkill", "err", err)
	}
}
