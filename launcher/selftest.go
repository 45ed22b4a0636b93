package launcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpbox/mcpbox/sandbox/egress"
)

// ProbeResult is one probe's line from mcpbox-probe.
type ProbeResult struct {
	Name     string `json:"name"`
	Category string `json:"category"`
	Tried    string `json:"tried"`
	Outcome  string `json:"outcome"`
	Errno    string `json:"errno,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Pass     bool   `json:"pass"`
	Detail   string `json:"detail,omitempty"`
}

// SelftestReport is what a selftest found.
type SelftestReport struct {
	Profile string        `json:"profile"`
	Results []ProbeResult `json:"results"`
	Passed  int           `json:"passed"`
	Failed  int           `json:"failed"`
	// Summary is the probe's own count; a mismatch with Results means
	// lines were lost.
	Summary struct {
		Total  int `json:"total"`
		Passed int `json:"passed"`
		Failed int `json:"failed"`
	} `json:"summary"`
}

// OK reports whether every probe ran and passed.
func (r *SelftestReport) OK() bool {
	return r.Failed == 0 && len(r.Results) > 0 && r.Summary.Total == len(r.Results) && r.Summary.Failed == 0
}

// SelftestOptions configure Selftest beyond the session's Options.
type SelftestOptions struct {
	// ProbePath is mcpbox-probe; "" means the one next to mcpbox.
	ProbePath string
	// Run limits the probes to those whose name matches this regexp.
	Run string
}

// Selftest runs mcpbox-probe in a sandbox built from opts.Profile (default
// untrusted), as a server of that profile would run, and returns every
// probe's result. The probe's other output (and mcpbox's) goes to
// opts.Stderr. An error means the probe could not run or its output could
// not be read, not that a probe failed: see SelftestReport.OK.
func Selftest(ctx context.Context, opts Options, st SelftestOptions) (*SelftestReport, error) {
	opts.setDefaults()
	if opts.Profile == "" {
		opts.Profile = "untrusted"
	}
	probe, err := findProbe(st.ProbePath)
	if err != nil {
		return nil, err
	}
	opts.Command = []string{probe}
	opts.Env = append(opts.Env, "MCPBOX_SANDBOX=1")
	opts.Audit = AuditNone
	j, err := resolveJob(ctx, opts)
	if err != nil {
		return nil, err
	}
	j.batch = true
	j.policy = sessionPolicy{}
	// The probe knows PATH and HOME; the rest of the sandbox's own
	// variables, and what the profile passes, are expected too.
	var names []string
	if j.allow != nil {
		names = append(names, egress.EnvNames()...)
	}
	for _, kv := range append(baseEnv(), j.env...) {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "MCPBOX_SANDBOX" && k != "PATH" && k != "HOME" {
			names = append(names, k)
		}
	}
	l := j.limits
	args := []string{"-memory-limit", strconv.FormatInt(l.Memory, 10), "-pids-limit", strconv.FormatInt(l.Pids, 10),
		"-tmpfs-limit", strconv.FormatInt(l.Tmp, 10)}
	args = append(args, "-expect-env", strings.Join(names, ","))
	if st.Run != "" {
		args = append(args, "-run", st.Run)
	}
	j.cmd.args = append(j.cmd.args, args...)

	rep := &SelftestReport{Profile: opts.Profile}
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	var readErr error
	// Read before the goroutine starts: opts.Stderr becomes pw below, and
	// a report that wrote its other lines into its own pipe would hang.
	stderr := opts.Stderr
	go func() {
		defer wg.Done()
		readErr = rep.read(pr, stderr)
	}()
	opts.Stderr = pw
	opts.Stdin = bytes.NewReader(nil)
	err = execute(ctx, opts, j)
	pw.Close()
	wg.Wait()
	var exit *ExitError
	if errors.As(err, &exit) && (exit.Code == 126 || exit.Code == 127) && len(rep.Results) == 0 {
		return rep, fmt.Errorf("launcher: %s could not be started inside the sandbox (exit %d): the sandbox's user (uid %d) must be able to reach and run it", probe, exit.Code, j.uid)
	}
	if errors.As(err, &exit) && (exit.Code == 0 || exit.Code == 1) {
		// 1: some probe failed, the report says which. An out-of-memory
		// kill is expected too: the memory probe provokes one.
		err = nil
	}
	if err != nil {
		return rep, err
	}
	if readErr != nil {
		return rep, readErr
	}
	if len(rep.Results) == 0 {
		return rep, fmt.Errorf("launcher: mcpbox-probe reported nothing (see its output above)")
	}
	return rep, nil
}

// read collects the probe's JSON lines from r; other lines go to other.
func (r *SelftestReport) read(rd io.Reader, other io.Writer) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 && line[0] == '{' {
			var probe ProbeResult
			var summary struct {
				Summary bool `json:"summary"`
				Total   int  `json:"total"`
				Passed  int  `json:"passed"`
				Failed  int  `json:"failed"`
			}
			if json.Unmarshal(line, &summary) == nil && summary.Summary {
				r.Summary.Total, r.Summary.Passed, r.Summary.Failed = summary.Total, summary.Passed, summary.Failed
				continue
			}
			if json.Unmarshal(line, &probe) == nil && probe.Name != "" {
				r.Results = append(r.Results, probe)
				if probe.Pass {
					r.Passed++
				} else {
					r.Failed++
				}
				continue
			}
		}
		fmt.Fprintf(other, "%s\n", line)
	}
	io.Copy(io.Discard, rd)
	return sc.Err()
}
