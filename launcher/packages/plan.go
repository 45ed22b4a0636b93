package packages

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// staleWork is how old an abandoned work directory (a crashed install) must
// be before Plan deletes it.
const staleWork = 24 * time.Hour

// PlanOptions says how to install.
type PlanOptions struct {
	// Scripts lets npm run the packages' install scripts (preinstall,
	// install, postinstall). Off, npm runs with --ignore-scripts. pip cannot
	// skip build scripts, so PyPI installs take wheels only and never build.
	Scripts bool
	// Registry is the npm registry or Python index to install from, as
	// NPMRegistry or PyPIIndex return it.
	Registry *url.URL
	// CA is the certificate configuration that reaches Registry, from
	// NPMCA or PyPICA: needed where a proxy re-signs TLS.
	CA CA
	// FindLinks is a local directory of wheels to install from instead of
	// an index (Python only): pip runs with --no-index and no network.
	FindLinks string
	// Update installs the spec as requested even when pins.json already
	// names a version for it; otherwise the pinned version is reinstalled
	// (after a Remove, or when its entry was damaged).
	Update bool
}

// Plan is one install, for the launcher to run in a sandbox: run Argv in
// Dir with exactly Env, WorkDir bound read-write at the same path, ReadOnly
// bound read-only at the same paths, and egress allowed to Allow only. Then
// Commit it, or Discard it if the install failed.
type Plan struct {
	WorkDir  string   // a fresh directory under the cache root
	Dir      string   // working directory for Argv (WorkDir: npm finds its project there)
	Argv     []string // absolute program path first
	Env      []string // the whole environment: no secrets, nothing inherited
	ReadOnly []string // host paths the install reads, beyond the system's runtime directories
	Allow    []string // egress allowlist entries ("host:port"); empty = no network

	spec    Spec
	install string // the version (npm) or requirement (pip) handed to the installer
	opts    PlanOptions
	python  *pythonInfo
}

// Plan prepares the install of spec: it creates the work directory, writes
// what the installer needs there (npm: a package.json depending on the one
// package) and returns the command to run. It runs nothing but, for PyPI,
// a query of the python3 on PATH for its real path.
func (c *Cache) Plan(spec *Spec, opts PlanOptions) (*Plan, error) {
	switch spec.Ecosystem {
	case NPM:
		if opts.Registry == nil {
			return nil, errors.New("install plan: no npm registry given (NPMRegistry reads npm's)")
		}
		if opts.FindLinks != "" {
			return nil, errors.New("install plan: --find-links is for Python packages; npm installs from its registry")
		}
		node, npm, roots, err := findNPM()
		if err != nil {
			return nil, err
		}
		p, err := c.prepare(spec, opts)
		if err != nil {
			return nil, err
		}
		npmPlan(p, node, npm, roots)
		return p, nil
	case PyPI:
		if opts.Registry == nil && opts.FindLinks == "" {
			return nil, ErrNoIndex
		}
		var links string
		if opts.FindLinks != "" {
			abs, err := filepath.Abs(opts.FindLinks)
			if err != nil {
				return nil, fmt.Errorf("--find-links %s: %w", opts.FindLinks, err)
			}
			if st, err := os.Stat(abs); err != nil || !st.IsDir() {
				return nil, fmt.Errorf("--find-links %s: not a directory of wheels", opts.FindLinks)
			}
			links = abs
		}
		opts.FindLinks = links
		py, err := findPython()
		if err != nil {
			return nil, err
		}
		p, err := c.prepare(spec, opts)
		if err != nil {
			return nil, err
		}
		p.python = py
		pythonPlan(p)
		return p, nil
	}
	return nil, fmt.Errorf("unknown package ecosystem %q", spec.Ecosystem)
}

// prepare makes the work directory and decides what version to install;
// the ecosystem's plan function fills in the command.
func (c *Cache) prepare(spec *Spec, opts PlanOptions) (*Plan, error) {
	pkg, err := c.pkgDir(spec)
	if err != nil {
		return nil, err
	}
	p := &Plan{spec: *spec, opts: opts, install: spec.Version}
	p.spec.Args = nil
	if !opts.Update {
		pins, err := readPins(pkg)
		if err != nil {
			return nil, err
		}
		if v, ok := pins[spec.Version]; ok {
			p.install = v
		}
	}
	work, err := c.workRoot()
	if err != nil {
		return nil, err
	}
	c.cleanStale(work)
	dir, err := os.MkdirTemp(work, spec.Ecosystem+"-"+c.escape(spec.Ecosystem, spec.Name)+"-")
	if err != nil {
		return nil, fmt.Errorf("install plan: %w", err)
	}
	// The installer may run as another user than mcpbox; it only needs to
	// write here, and the launcher decides whose the directory is.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("install plan: %w", err)
	}
	p.WorkDir, p.Dir = dir, dir
	if spec.Ecosystem == NPM {
		if err := writeNPMRoot(dir, spec.Name, p.install); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	return p, nil
}

// cleanStale removes work directories left by installs that crashed long
// ago. Recent ones may belong to an install that is still running.
func (c *Cache) cleanStale(work string) {
	ents, err := os.ReadDir(work)
	if err != nil {
		return
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleWork {
			os.RemoveAll(filepath.Join(work, e.Name()))
		}
	}
}

// Discard removes the work directory of an install that failed or was
// abandoned. It is safe to call after Commit.
func (c *Cache) Discard(plan *Plan) {
	if plan == nil || plan.WorkDir == "" {
		return
	}
	if rel, err := filepath.Rel(filepath.Join(c.Root, ".work"), plan.WorkDir); err != nil || strings.HasPrefix(rel, "..") || rel == "." {
		return // not ours: never delete outside the cache
	}
	os.RemoveAll(plan.WorkDir)
}

// Commit turns a finished install into a cache entry, after the sandboxed
// install exited 0. It reads what was installed (npm's package-lock.json,
// pip's install report), records the integrity map and a manifest of every
// file in mcpbox.json, renames the work directory into place and pins the
// resolved version for spec.Version. If that version is already in the
// cache, the existing entry is kept. Without update, a pin that already
// names a version present in the cache wins over the new install. Hold the
// package's Lock. The work directory is gone when Commit returns, whether it
// succeeded or not.
func (c *Cache) Commit(spec *Spec, plan *Plan, update bool) (*Entry, error) {
	if plan == nil || plan.WorkDir == "" {
		return nil, errors.New("commit: no install plan")
	}
	defer c.Discard(plan)
	if plan.spec.Ecosystem != spec.Ecosystem || c.escape(spec.Ecosystem, plan.spec.Name) != c.escape(spec.Ecosystem, spec.Name) {
		return nil, fmt.Errorf("commit %s: the plan installed %s", spec, &plan.spec)
	}
	pkg, err := c.pkgDir(spec)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(plan.WorkDir); err != nil {
		return nil, fmt.Errorf("commit %s: %w", spec, err)
	}
	meta := Meta{
		Ecosystem:   spec.Ecosystem,
		Name:        spec.Name,
		Requested:   spec.Version,
		InstalledAt: time.Now().UTC().Truncate(time.Second),
		Scripts:     plan.opts.Scripts && spec.Ecosystem == NPM,
		FindLinks:   plan.opts.FindLinks,
	}
	if r := plan.opts.Registry; r != nil && plan.opts.FindLinks == "" {
		u := *r
		u.User = nil
		meta.Registry = u.String()
	}
	switch spec.Ecosystem {
	case NPM:
		err = resolveNPM(plan.WorkDir, &meta)
	case PyPI:
		err = resolvePython(plan.WorkDir, plan.python, &meta)
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", spec, err)
	}
	if meta.Files, err = seal(plan.WorkDir); err != nil {
		return nil, fmt.Errorf("commit %s: %w", spec, err)
	}
	if meta.Stamp, err = manifestStamp(meta.Files); err != nil {
		return nil, fmt.Errorf("commit %s: %w", spec, err)
	}
	b, err := jsonIndent(meta)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(plan.WorkDir, metaFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("commit %s: %w", spec, err)
	}
	final, err := versionDir(pkg, meta.Version)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", spec, err)
	}
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		return nil, fmt.Errorf("commit %s: %w", spec, err)
	}
	pins, err := readPins(pkg)
	if err != nil {
		return nil, err
	}
	if v, ok := pins[spec.Version]; ok && !update && v != meta.Version {
		if dir, err := versionDir(pkg, v); err == nil {
			if old, err := quickCheck(dir); err == nil {
				return newEntry(dir, old, spec.Bin)
			}
		}
	}
	switch old, err := quickCheck(final); {
	case err == nil:
		meta = old // keep the entry that is there: running servers may use it
	default:
		if _, err := os.Lstat(final); err == nil {
			if err := c.trash(final); err != nil {
				return nil, fmt.Errorf("commit %s: replace damaged %s: %w", spec, final, err)
			}
		}
		if err := os.Rename(plan.WorkDir, final); err != nil {
			return nil, fmt.Errorf("commit %s: %w", spec, err)
		}
	}
	if pins[spec.Version] != meta.Version {
		pins[spec.Version] = meta.Version
		if err := writePins(pkg, pins); err != nil {
			return nil, fmt.Errorf("commit %s: %w", spec, err)
		}
	}
	return newEntry(final, meta, spec.Bin)
}

// pathEnv is the PATH installers get: the runtime's own directory first.
func pathEnv(dirs ...string) string {
	var list []string
	list = appendUnique(list, dirs...)
	list = appendUnique(list, "/usr/local/bin", "/usr/bin", "/bin")
	return "PATH=" + strings.Join(list, ":")
}

// relInside reports whether rel (a cleaned relative path) stays inside its
// base directory.
func relInside(rel string) bool {
	return rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}
