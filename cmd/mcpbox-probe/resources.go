//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const resCat = "resources"

// Bounds that keep the resource probes from doing harm where a limit is
// missing.
const (
	forkBombMaxForks = 10000
	forkBombMaxTime  = 5 * time.Second
	memHogStep       = 16 << 20
	maxFDs           = 1 << 20
	fillChunk        = 1 << 20
	fillFileMax      = 16 << 20
	fsizeMaxWrite    = 4 << 30
)

func resourceProbes() []probe {
	return []probe{
		{name: "resources/fd-exhaustion", category: resCat, timeout: 30 * time.Second,
			tried: "in a child: dup fds until EMFILE (at most 1<<20) and report RLIMIT_NOFILE", run: probeFDs},
		{name: "resources/file-size", category: resCat, timeout: 30 * time.Second,
			tried: "in a child: write a file in /tmp past RLIMIT_FSIZE; must get EFBIG or SIGXFSZ", run: probeFsize},
		{name: "resources/tmp-fill", category: resCat, timeout: 60 * time.Second,
			tried: "in a child: fill /tmp (at most 2× -tmpfs-limit, removed afterwards); must stop with ENOSPC at about the limit", run: probeTmpFill},
		{name: "resources/memory-hog", category: resCat, timeout: 60 * time.Second,
			tried: "in a child: map and touch memory in 16 MiB steps up to 4× -memory-limit; must be OOM-killed or refused before 2×", run: probeMemHog},
		{name: "resources/fork-bomb", category: resCat, timeout: 20 * time.Second,
			tried: "fork children that only wait (at most 10000 or 5 s, all killed afterwards); fork must fail with EAGAIN before 2× -pids-limit", run: probeForkBomb},
	}
}

func resourceChildren() map[string]childFunc {
	return map[string]childFunc{
		"resources/fds":     childFDs,
		"resources/fsize":   childFsize,
		"resources/tmpfill": childTmpFill,
		"resources/memhog":  childMemHog,
	}
}

// progress writes one "progress N" line to stdout for the parent, unbuffered
// so that it survives a SIGKILL.
func progress(n int64) {
	_, _ = os.Stdout.WriteString("progress " + strconv.FormatInt(n, 10) + "\n")
}

// lastProgress returns the last "progress N" a child wrote.
func lastProgress(stdout []byte) (int64, bool) {
	var n int64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "progress "); ok {
			if x, err := strconv.ParseInt(v, 10, 64); err == nil {
				n, found = x, true
			}
		}
	}
	return n, found
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func rlimitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// fd exhaustion

func probeFDs(e *env) result {
	return childResult(e, "resources/fds")
}

func childFDs([]string) result {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return errored(fmt.Sprintf("getrlimit(RLIMIT_NOFILE): %v", err))
	}
	// The Go runtime raises the soft limit to the hard one at start.
	desc := fmt.Sprintf("RLIMIT_NOFILE soft %s hard %s", rlimitString(lim.Cur), rlimitString(lim.Max))
	n := 0
	for n < maxFDs {
		if _, err := unix.Dup(2); err != nil {
			if errnoIs(err, unix.EMFILE) {
				r := denied(err, fmt.Sprintf("EMFILE after %d more fds; %s", n, desc))
				if lim.Cur == unix.RLIM_INFINITY || lim.Cur > maxFDs {
					r.Pass = false
					r.Detail += "; the limit is above 1<<20"
				}
				return r
			}
			r := errored(fmt.Sprintf("dup failed after %d fds with %v; %s", n, err, desc))
			r.Errno = errnoName(err)
			return r
		}
		n++
	}
	return allowed(fmt.Sprintf("opened %d fds without EMFILE; %s", n, desc))
}

// RLIMIT_FSIZE

func probeFsize(e *env) result {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		return errored(fmt.Sprintf("getrlimit(RLIMIT_FSIZE): %v", err))
	}
	if lim.Cur == unix.RLIM_INFINITY {
		return fail(outcomeAllowed, "RLIMIT_FSIZE is unlimited")
	}
	dir, err := os.MkdirTemp("/tmp", "mcpbox-probe-fsize-")
	if err != nil {
		return errored(fmt.Sprintf("could not make a directory in /tmp: %v", err))
	}
	defer os.RemoveAll(dir)
	cr := runChild(e.ctx, nil, "resources/fsize", dir)
	if cr.signal == unix.SIGXFSZ {
		r := pass(outcomeDenied, fmt.Sprintf("killed by SIGXFSZ; RLIMIT_FSIZE %d", lim.Cur))
		r.Signal = "SIGXFSZ"
		return r
	}
	return cr.asResult()
}

func childFsize(args []string) result {
	if len(args) != 1 {
		return errored("usage: resources/fsize DIR")
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		return errored(err.Error())
	}
	// The Go runtime catches SIGXFSZ and ignores it, so the write past the
	// limit returns EFBIG; the parent also accepts a death by SIGXFSZ.
	f, err := os.Create(filepath.Join(args[0], "big"))
	if err != nil {
		return errored(err.Error())
	}
	defer f.Close()
	buf := make([]byte, fillChunk)
	var total int64
	stop := int64(fsizeMaxWrite)
	if lim.Cur < uint64(stop)-fillChunk {
		stop = int64(lim.Cur) + fillChunk
	}
	for total < stop {
		n, err := f.Write(buf)
		total += int64(n)
		if err != nil {
			switch {
			case errnoIs(err, unix.EFBIG):
				return denied(err, fmt.Sprintf("EFBIG after %d bytes; RLIMIT_FSIZE %d", total, lim.Cur))
			case errnoIs(err, unix.ENOSPC):
				return denied(err, fmt.Sprintf("the tmpfs filled (ENOSPC after %d bytes) before RLIMIT_FSIZE %d was reached; the limit could not be checked", total, lim.Cur))
			default:
				r := errored(fmt.Sprintf("write failed after %d bytes: %v", total, err))
				r.Errno = errnoName(err)
				return r
			}
		}
	}
	return allowed(fmt.Sprintf("wrote %d bytes, past RLIMIT_FSIZE %d", total, lim.Cur))
}

// /tmp fill

func probeTmpFill(e *env) result {
	if e.tmpfsLimit == 0 {
		return skipped("no limit given")
	}
	dir, err := os.MkdirTemp("/tmp", "mcpbox-probe-fill-")
	if err != nil {
		return errored(fmt.Sprintf("could not make a directory in /tmp: %v", err))
	}
	defer os.RemoveAll(dir)
	cr := runChild(e.ctx, nil, "resources/tmpfill", dir, strconv.FormatInt(e.tmpfsLimit, 10))
	written, _ := lastProgress(cr.stdout)
	limit := e.tmpfsLimit
	switch {
	case cr.res != nil && cr.res.Errno == "ENOSPC":
		r := *cr.res
		if written > limit+limit/10+fillFileMax {
			r.Pass = false
			r.Detail += fmt.Sprintf("; that is well past the limit of %s", mib(limit))
		}
		return r
	case cr.res != nil:
		return *cr.res
	case cr.signal == unix.SIGKILL && written < 2*limit:
		r := pass(outcomeDenied, fmt.Sprintf("the child was killed (OOM: tmpfs pages count against the memory limit) after %s of the %s tmpfs limit", mib(written), mib(limit)))
		r.Signal = "SIGKILL"
		return r
	}
	return cr.asResult()
}

func childTmpFill(args []string) result {
	if len(args) != 2 {
		return errored("usage: resources/tmpfill DIR LIMIT")
	}
	limit, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || limit <= 0 {
		return errored("bad limit " + args[1])
	}
	setOOMScoreAdj()
	fileMax := int64(fillFileMax)
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_FSIZE, &lim) == nil && lim.Cur != unix.RLIM_INFINITY && int64(lim.Cur) < fileMax {
		fileMax = int64(lim.Cur)
	}
	buf := make([]byte, fillChunk)
	var total int64
	for i := 0; total < 2*limit; i++ {
		f, err := os.Create(filepath.Join(args[0], fmt.Sprintf("fill-%d", i)))
		if err != nil {
			return fillResult(err, total, limit)
		}
		var size int64
		for size < fileMax && total < 2*limit {
			chunk := buf
			if rest := fileMax - size; rest < int64(len(chunk)) {
				chunk = chunk[:rest]
			}
			n, err := f.Write(chunk)
			size += int64(n)
			total += int64(n)
			progress(total)
			if err != nil {
				f.Close()
				return fillResult(err, total, limit)
			}
		}
		f.Close()
	}
	return allowed(fmt.Sprintf("wrote %s, twice the %s tmpfs limit, without ENOSPC", mib(total), mib(limit)))
}

func fillResult(err error, total, limit int64) result {
	if errnoIs(err, unix.ENOSPC) {
		return denied(err, fmt.Sprintf("ENOSPC after %s; tmpfs limit %s", mib(total), mib(limit)))
	}
	r := errored(fmt.Sprintf("stopped after %s by %v", mib(total), err))
	r.Errno = errnoName(err)
	return r
}

// setOOMScoreAdj makes this child the OOM killer's first choice, so that
// the probe process survives the child's excess.
func setOOMScoreAdj() {
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
}

// memory

func probeMemHog(e *env) result {
	if e.memLimit == 0 {
		return skipped("no limit given")
	}
	limit := e.memLimit
	cr := runChild(e.ctx, nil, "resources/memhog", strconv.FormatInt(limit, 10))
	got, _ := lastProgress(cr.stdout)
	switch {
	case cr.signal == unix.SIGKILL:
		r := pass(outcomeDenied, fmt.Sprintf("the child was killed (OOM) after touching %s; limit %s", mib(got), mib(limit)))
		r.Signal = "SIGKILL"
		if got >= 2*limit {
			r.Pass = false
			r.Outcome = outcomeAllowed
			r.Detail += "; that is more than twice the limit"
		}
		return r
	case cr.res != nil && cr.res.Outcome == outcomeDenied:
		r := *cr.res
		if got >= 2*limit {
			r.Pass = false
			r.Outcome = outcomeAllowed
			r.Detail += "; only after more than twice the limit"
		}
		return r
	}
	return cr.asResult()
}

func childMemHog(args []string) result {
	if len(args) != 1 {
		return errored("usage: resources/memhog LIMIT")
	}
	limit, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || limit <= 0 {
		return errored("bad limit " + args[0])
	}
	setOOMScoreAdj()
	page := os.Getpagesize()
	var total int64
	for total < 4*limit {
		b, err := unix.Mmap(-1, 0, memHogStep, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return denied(err, fmt.Sprintf("mmap refused after %s; limit %s", mib(total), mib(limit)))
		}
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		total += memHogStep
		progress(total)
	}
	return allowed(fmt.Sprintf("touched %s, four times the %s limit, without being stopped", mib(total), mib(limit)))
}

// fork bomb

func probeForkBomb(e *env) result {
	if e.pidsLimit == 0 {
		return skipped("no limit given")
	}
	var pids []int
	defer func() {
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		for _, p := range pids {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(p, &ws, 0, nil)
		}
	}()
	deadline := time.Now().Add(forkBombMaxTime)
	var ferr error
	for len(pids) < forkBombMaxForks && time.Now().Before(deadline) && e.ctx.Err() == nil {
		pid, err := forkHolder()
		if err != nil {
			ferr = err
			break
		}
		pids = append(pids, pid)
	}
	n := int64(len(pids))
	desc := fmt.Sprintf("%d children forked; pids limit %d", n, e.pidsLimit)
	switch {
	case ferr == nil:
		return allowed(desc + "; fork never failed")
	case !errnoIs(ferr, unix.EAGAIN):
		r := errored(fmt.Sprintf("fork failed with %v; %s", ferr, desc))
		r.Errno = errnoName(ferr)
		return r
	case n >= 2*e.pidsLimit:
		r := fail(outcomeAllowed, "EAGAIN only after twice the limit; "+desc)
		r.Errno = "EAGAIN"
		return r
	}
	return denied(ferr, "EAGAIN after "+desc)
}
