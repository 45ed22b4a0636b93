package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/launcher/grant"
	"github.com/mcpbox/mcpbox/launcher/packages"
	"github.com/mcpbox/mcpbox/launcher/pins"
	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox"
	"github.com/mcpbox/mcpbox/sandbox/egress"
)

// resolveJob turns a server session's options into a job: it recognises
// npx/uvx commands (installing the package in a sandbox on first use),
// picks the profile, and merges it with the flags. It fails, before any
// server starts, on bad input: a command that does not exist, a broken
// profile (never replaced by a weaker one), a path argument that may not
// be granted.
func resolveJob(ctx context.Context, opts Options) (*job, error) {
	u := currentUser(opts.Dirs)
	spec, isPkg, err := packages.Parse(opts.Command)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	eco, pkg := "", ""
	if isPkg {
		eco, pkg = spec.Ecosystem, spec.Name
	}
	catalog := profiles.NewCatalog(filepath.Join(opts.Dirs.Config, "profiles"))
	prof, why, err := catalog.Resolve(opts.Profile, eco, pkg)
	if err != nil {
		return nil, &UsageError{Flag: "profile", Err: err}
	}
	opts.Logger.Info("profile", "name", prof.Name, "why", why)
	if err := checkProfile(prof); err != nil {
		return nil, &UsageError{Flag: "profile", Err: err}
	}

	var cmd *command
	var ident broker.Identity
	if isPkg {
		entry, err := ensurePackage(ctx, opts, spec, prof)
		if err != nil {
			return nil, err
		}
		if cmd, err = packageCommand(entry, spec, u, opts.Logger); err != nil {
			return nil, err
		}
		ident = broker.Identity{Server: cmd.name, Key: entry.Meta.Ecosystem + ":" + entry.Meta.Name,
			Package: entry.Meta.Name, Version: entry.Meta.Version}
	} else if cmd, err = resolveCommand(opts.Command, u); err != nil {
		return nil, err
	} else {
		ident = pins.CommandIdentity(cmd.name, opts.Command)
	}

	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	names := append(slices.Clone(prof.Env), opts.Env...)
	env, err := resolveEnv(names, environ)
	if err != nil {
		return nil, err
	}
	for _, k := range sortedStrings(prof.Setenv) {
		env = append(env, k+"="+prof.Setenv[k])
	}

	j := &job{
		cmd:           cmd,
		user:          u,
		env:           env,
		limits:        mergeLimits(prof.Limits, opts.Limits),
		requireLimits: opts.RequireLimits || prof.Limits.Required,
		workdir:       opts.Workdir,
		label:         fmt.Sprint(opts.Command),
		seccompAllow:  prof.Seccomp.Allow,
		toolAllow:     prof.Tools.Allow,
		toolDeny:      prof.Tools.Deny,
	}
	if prof.RootFS == profiles.RootFSImage {
		j.image = prof.Image
	}
	if err := (broker.Options{ToolAllow: j.toolAllow, ToolDeny: j.toolDeny}).Validate(); err != nil {
		return nil, &UsageError{Flag: "profile", Err: prof.Errorf("tools", "%v", err)}
	}
	j.policy = brokerPolicy(opts, prof, ident, env)
	hosts := append(slices.Clone(prof.Network.Allow), opts.AllowHosts...)
	netOpts := opts
	netOpts.AllowHosts = hosts
	if opts.Network == NetworkNone {
		netOpts.AllowHosts = opts.AllowHosts // the flag's none beats the profile's hosts
	}
	if j.allow, err = networkPolicy(netOpts); err != nil {
		return nil, err
	}
	if j.allow != nil {
		hosts, _ := os.ReadFile(hostsPath) // none: no name to check
		if err := checkHostsFile(prof, opts.AllowHosts, hosts); err != nil {
			return nil, err
		}
	}

	if j.mounts, j.uid, j.gid, err = grantMounts(opts, prof, cmd, u); err != nil {
		return nil, err
	}
	return j, nil
}

// currentUser is the user running mcpbox, with mcpbox's own directories
// among the paths never granted unless the user names them.
func currentUser(dirs Dirs) grant.User {
	return grant.CurrentUser(dirs.Config, dirs.State, dirs.Cache)
}

// grantMounts works out the host paths the server is given beyond its
// own files (--mount, the profile's mounts, its path arguments), each
// checked and bound with its symlinks resolved, and the uid and gid it runs
// as (see grant.SessionUser). The order is --mount, path arguments, then the
// profile's mounts: at one destination the later wins (dedupeMounts).
func grantMounts(opts Options, prof *profiles.Profile, cmd *command, u grant.User) (mounts []sandbox.Mount, uid, gid uint32, err error) {
	var explicit []grant.Grant
	for _, m := range opts.Mounts {
		g, err := u.ExplicitGrant(m.Source, m.Destination, m.ReadOnly)
		if err != nil {
			return nil, 0, 0, &UsageError{Flag: "mount", Err: err}
		}
		explicit = append(explicit, grant.Grant{Mount: g, What: "--mount " + m.Source})
	}
	// A server's state directory is mcpbox's own: it is made here and
	// handed to whichever user the server runs as, so it plays no part in
	// choosing that user.
	state := filepath.Join(opts.Dirs.State, "servers", prof.Name)
	var fromProfile []grant.Grant
	isState := map[int]bool{}
	for i, m := range prof.Mounts {
		src := m.ExpandHost(u.Home(), state)
		field := fmt.Sprintf("mounts[%d].host", i)
		ro := m.Mode != profiles.AccessRW
		if strings.HasPrefix(m.Host, profiles.StateVar) {
			if err := os.MkdirAll(src, 0o700); err != nil {
				return nil, 0, 0, fmt.Errorf("launcher: state dir: %w", err)
			}
			real, err := filepath.EvalSymlinks(src)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("launcher: state dir: %w", err)
			}
			isState[len(fromProfile)] = true
			fromProfile = append(fromProfile, grant.Grant{Mount: sandbox.Mount{Source: real, Destination: m.Path, ReadOnly: ro}, What: "the server's state directory " + real})
			continue
		}
		g, err := u.ExplicitGrant(src, m.Path, ro)
		if err != nil {
			return nil, 0, 0, &UsageError{Flag: "profile", Err: prof.Errorf(field, "%v", err)}
		}
		fromProfile = append(fromProfile, grant.Grant{Mount: g, What: fmt.Sprintf("profile %s %s (%s)", prof.Name, field, m.Host)})
	}

	// The command's own files (a script's package tree) are no path
	// arguments: they are granted read-only already.
	shown := slices.Clone(cmd.mounts)
	for _, g := range append(slices.Clone(explicit), fromProfile...) {
		shown = append(shown, g.Mount)
	}
	pathMounts, err := u.PathArgMounts(cmd.args[1:], string(prof.PathArgs), shown)
	if err != nil {
		return nil, 0, 0, grantUsage(err)
	}
	grants := explicit
	for _, m := range pathMounts {
		grants = append(grants, grant.Grant{Mount: m, What: "path argument " + m.Destination})
	}
	for i, g := range fromProfile {
		if !isState[i] {
			grants = append(grants, g)
		}
	}
	users := slices.Clone(grants)
	for _, m := range cmd.mounts {
		users = append(users, grant.Grant{Mount: m, What: "the server's own files " + m.Source})
	}
	sessionUser := grant.SessionUser
	if opts.isRootless() {
		sessionUser = grant.RootlessSessionUser
	}
	if uid, gid, err = sessionUser(users, opts.Logger); err != nil {
		return nil, 0, 0, grantUsage(err)
	}
	for i, g := range fromProfile {
		if isState[i] {
			if err := ensureStateDir(opts, g.Source, uid, gid); err != nil {
				return nil, 0, 0, err
			}
		}
	}
	for _, g := range explicit {
		mounts = append(mounts, g.Mount)
	}
	mounts = append(mounts, pathMounts...)
	for _, g := range fromProfile {
		mounts = append(mounts, g.Mount)
	}
	return mounts, uid, gid, nil
}

// grantUsage reports a grant refused for what the user asked
// (*grant.Error) as bad input, before anything starts.
func grantUsage(err error) error {
	var refusal *grant.Error
	if errors.As(err, &refusal) {
		return &UsageError{Err: err}
	}
	return err
}

// checkProfile checks what the profiles package leaves to its users: the
// allowlist entries' syntax, with the profile's file and line.
func checkProfile(p *profiles.Profile) error {
	for i, e := range p.Network.Allow {
		if _, err := egress.ParseAllowlist([]string{e}); err != nil {
			return p.Errorf(fmt.Sprintf("network.allow[%d]", i), "%v", err)
		}
	}
	return nil
}

// checkHostsFile refuses an exact allowlist entry, from the profile or a
// flag, that the host's hosts file maps to loopback: the proxy would refuse
// every connection to it, so it is an error now, naming the entry and what
// to write instead.
func checkHostsFile(p *profiles.Profile, flags []string, hosts []byte) error {
	for i, e := range p.Network.Allow {
		a, err := egress.ParseAllowlist([]string{e})
		if err == nil {
			err = a.CheckHostsFile(hostsPath, hosts)
		}
		if err != nil {
			return &UsageError{Flag: "profile", Err: p.Errorf(fmt.Sprintf("network.allow[%d]", i), "%v", err)}
		}
	}
	a, err := egress.ParseAllowlist(flags)
	if err == nil {
		err = a.CheckHostsFile(hostsPath, hosts)
	}
	if err != nil {
		return &UsageError{Flag: "allow-host", Err: err}
	}
	return nil
}

// mergeLimits takes the profile's limits, overridden by flags that were set.
func mergeLimits(p profiles.Limits, flags sandbox.Limits) sandbox.Limits {
	l := sandbox.Limits{Memory: p.Memory, Pids: p.PIDs, CPUs: p.CPUs, Tmp: p.Tmp}
	if flags.Memory != 0 {
		l.Memory = flags.Memory
	}
	if flags.Pids != 0 {
		l.Pids = flags.Pids
	}
	if flags.CPUs != 0 {
		l.CPUs = flags.CPUs
	}
	if flags.Tmp != 0 {
		l.Tmp = flags.Tmp
	}
	l.NoFile, l.FSize = flags.NoFile, flags.FSize
	return l
}

// ensureStateDir creates a server's state directory, owned by the user the
// server runs as.
func ensureStateDir(opts Options, dir string, uid, gid uint32) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("launcher: state dir: %w", err)
	}
	if err := opts.chownForSandbox(dir, uid, gid); err != nil {
		return fmt.Errorf("launcher: state dir: %w", err)
	}
	return nil
}

// ensurePackage returns the cached install of spec, installing it first
// in a sandbox that can reach only the registry. Concurrent first runs
// install once; a damaged entry is reinstalled.
func ensurePackage(ctx context.Context, opts Options, spec *packages.Spec, prof *profiles.Profile) (*packages.Entry, error) {
	cache := &packages.Cache{Root: filepath.Join(opts.Dirs.Cache, "packages")}
	lookup := func() (*packages.Entry, error) {
		if opts.Update {
			return nil, packages.ErrNotCached
		}
		e, err := cache.Lookup(spec)
		var corrupt *packages.CorruptError
		if errors.As(err, &corrupt) {
			opts.Logger.Warn("cached package is damaged; installing it again", "package", spec.String(), "err", err)
			return nil, packages.ErrNotCached
		}
		return e, err
	}
	if e, err := lookup(); !errors.Is(err, packages.ErrNotCached) {
		return e, err
	}
	if err := os.MkdirAll(cache.Root, 0o755); err != nil {
		return nil, fmt.Errorf("launcher: package cache: %w", err)
	}
	unlock, err := cache.Lock(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if e, err := lookup(); !errors.Is(err, packages.ErrNotCached) {
		return e, err // another mcpbox installed it while we waited
	}

	popts := packages.PlanOptions{Scripts: prof.Install.Scripts, FindLinks: opts.FindLinks, Update: opts.Update}
	if opts.FindLinks == "" {
		switch spec.Ecosystem {
		case packages.NPM:
			popts.Registry, err = packages.NPMRegistry(ctx)
			if err == nil {
				popts.CA, err = packages.NPMCA(ctx)
			}
		case packages.PyPI:
			popts.Registry, err = packages.PyPIIndex(ctx)
			if err == nil {
				popts.CA, err = packages.PyPICA(ctx)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	plan, err := cache.Plan(spec, popts)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Stderr, "mcpbox: installing %s in a sandbox (only on first use)...\n", spec)
	if err := installInSandbox(ctx, opts, spec, plan); err != nil {
		cache.Discard(plan)
		return nil, err
	}
	e, err := cache.Commit(spec, plan, opts.Update)
	if err != nil {
		cache.Discard(plan)
		return nil, err
	}
	fmt.Fprintf(opts.Stderr, "mcpbox: installed %s %s\n", e.Meta.Name, e.Meta.Version)
	return e, nil
}

// installLimits are the install step's: npm needs more than a server.
var installLimits = sandbox.Limits{Memory: 2 << 30, Pids: 512, CPUs: 2, Tmp: 1 << 30}

// installInSandbox runs an install plan in its own sandbox: the work
// directory read-write, egress to the registry only, no secrets.
func installInSandbox(ctx context.Context, opts Options, spec *packages.Spec, plan *packages.Plan) error {
	u := currentUser(opts.Dirs)
	cmd, err := resolveCommand(plan.Argv, u)
	if err != nil {
		return err
	}
	cmd.name = "install-" + cmd.name
	entries, trusted := registryGrants(ctx, plan.Allow, opts.Logger)
	allow, err := egress.ParseAllowlist(entries)
	if err == nil {
		allow, err = allow.Trusting(trusted...)
	}
	if err != nil {
		return fmt.Errorf("launcher: install allowlist: %w", err)
	}
	if len(entries) == 0 {
		allow = nil
	}
	// The install runs as nobody, who owns its work directory.
	if err := opts.chownForSandbox(plan.WorkDir, sandbox.DefaultUID, sandbox.DefaultGID); err != nil {
		return fmt.Errorf("launcher: install dir: %w", err)
	}
	// The work directory stays executable although writable: install
	// scripts run programs from the node_modules they are installing.
	j := &job{
		cmd:           cmd,
		user:          u,
		mounts:        []sandbox.Mount{{Source: plan.WorkDir, Destination: plan.WorkDir, WritableExec: true}},
		env:           plan.Env,
		allow:         allow,
		limits:        installLimits,
		requireLimits: opts.RequireLimits,
		workdir:       plan.Dir,
		label:         "install " + spec.String(),
		uid:           sandbox.DefaultUID,
		gid:           sandbox.DefaultGID,
		batch:         true,
	}
	runtime, err := u.RuntimeMounts(plan.ReadOnly, opts.Logger)
	if err != nil {
		return err
	}
	j.mounts = append(j.mounts, runtime...)
	if spec.Ecosystem == packages.NPM {
		// npm's default retries wait over a minute before an unreachable
		// registry is reported; one quick retry is enough.
		j.env = append(slices.Clone(j.env), "npm_config_fetch_retries=1", "npm_config_fetch_retry_mintimeout=1000", "npm_config_fetch_retry_maxtimeout=3000")
	}
	trust, trustMounts := trustSettings(opts.Environ)
	j.env = append(j.env, trust...)
	j.mounts = append(j.mounts, trustMounts...)
	// Bound from where their symlinks lead, as every bind is (see
	// grant.PinMounts).
	for i, m := range j.mounts {
		real, err := filepath.EvalSymlinks(m.Source)
		if err != nil {
			return fmt.Errorf("launcher: install %s: %w", spec, err)
		}
		j.mounts[i].Source = real
	}
	out := &tailBuffer{max: 64 << 10}
	// The first connection mcpbox's egress policy refused, if any.
	var mu sync.Mutex
	var refused *egress.Event
	j.onEgress = func(ev egress.Event) {
		mu.Lock()
		defer mu.Unlock()
		if refused == nil && ev.Verdict == egress.VerdictDeny && ev.Kind == egress.KindConnect {
			refused = &ev
		}
	}
	iopts := opts
	iopts.Stderr = io.MultiWriter(opts.Stderr, out)
	iopts.Stdin = bytes.NewReader(nil)
	iopts.EgressLog = nil
	if err := execute(ctx, iopts, j); err != nil {
		var exit *ExitError
		if !errors.As(err, &exit) {
			return fmt.Errorf("launcher: install %s: %w", spec, err)
		}
		// A refusal by mcpbox's own egress policy explains the failure
		// better than the installer's view of it (npm shows a 403).
		mu.Lock()
		ev := refused
		mu.Unlock()
		if ev != nil {
			return &packages.InstallError{Spec: spec, Reason: "mcpbox's egress policy refused the install's connection to " + ev.Host + ": " + ev.Reason,
				Hint: "the install step may reach only the registry in npm's or pip's configuration"}
		}
		if ie := plan.Diagnose(out.Bytes()); ie != nil {
			return ie
		}
		return fmt.Errorf("launcher: install %s: %w", spec, err)
	}
	return nil
}

// registryGrants turns the install step's registry entries ("host:port")
// into an allowlist. The registry comes from the package manager's own
// configuration, which the user controls, so its addresses are trusted;
// the grants hold for the install step only. A registry named by a
// loopback address or localhost (a local mirror) becomes localhost:PORT,
// one by another address a cidr: grant for it. A registry name that
// resolves on the host to addresses the proxy refuses by default gets them
// granted: a private one as a cidr: entry, a loopback one (a name in
// /etc/hosts, a local forwarder) as a trusted address of that name's
// lookup, which no entry can express.
func registryGrants(ctx context.Context, allow []string, log *slog.Logger) (entries []string, trusted []netip.AddrPort) {
	for _, e := range allow {
		host, portStr, err := net.SplitHostPort(e)
		if err != nil {
			entries = append(entries, e) // the parser says what is wrong with it
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			entries = append(entries, e)
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			ip = ip.Unmap().WithZone("")
			if ip.IsLoopback() || ip.IsUnspecified() {
				entries = append(entries, "localhost:"+portStr)
			} else {
				entries = append(entries, "cidr:"+netip.PrefixFrom(ip, ip.BitLen()).String()+":"+portStr)
			}
			continue
		}
		if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
			entries = append(entries, "localhost:"+portStr)
			continue
		}
		entries = append(entries, e)
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			continue // the proxy resolves again and reports the failure
		}
		for _, a := range addrs {
			a = a.Unmap().WithZone("")
			bad, why := egress.Forbidden(a)
			if !bad {
				continue
			}
			log.Info("the registry resolves to a reserved address; granting it to the install step", "host", host, "addr", a, "range", why)
			if a.IsLoopback() || a.IsUnspecified() {
				trusted = append(trusted, netip.AddrPortFrom(a, uint16(port)))
			} else {
				entries = append(entries, "cidr:"+netip.PrefixFrom(a, a.BitLen()).String()+":"+portStr)
			}
		}
	}
	return entries, trusted
}

// packageCommand is the command that runs an installed package.
func packageCommand(e *packages.Entry, spec *packages.Spec, u grant.User, log *slog.Logger) (*command, error) {
	if len(e.Exec) == 0 {
		return nil, &UsageError{Err: fmt.Errorf("%s %s has no program to run: name one with npx -p %s BIN", e.Meta.Name, e.Meta.Version, e.Meta.Name)}
	}
	exe, err := filepath.EvalSymlinks(e.Exec[0])
	if err != nil {
		return nil, fmt.Errorf("launcher: runtime for %s: %w (is it installed?)", e.Meta.Name, err)
	}
	c := &command{
		args: append(slices.Clone(e.Exec), spec.Args...),
		exe:  exe,
		name: serverName([]string{e.Exec[0]}, filepath.Join(e.Dir, "node_modules", e.Meta.Name, "x")),
	}
	c.mounts, err = u.RuntimeMounts(e.ReadOnly, log)
	if err != nil {
		return nil, fmt.Errorf("launcher: runtime for %s: %w", e.Meta.Name, err)
	}
	return c, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.b)
}

func sortedStrings(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// trustVars name the CA bundles that the host's TLS clients are told to
// trust (a corporate or mirror CA). The install step gets the same trust,
// read-only; they hold certificates, not secrets.
var trustVars = []string{"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE"}

func trustSettings(environ []string) (env []string, mounts []sandbox.Mount) {
	if environ == nil {
		environ = os.Environ()
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if !slices.Contains(trustVars, k) || !filepath.IsAbs(v) {
			continue
		}
		if _, err := os.Stat(v); err != nil {
			continue
		}
		env = append(env, kv)
		if !strings.HasPrefix(v, "/etc/ssl/") && !strings.HasPrefix(v, "/usr/") {
			mounts = append(mounts, sandbox.Mount{Source: v, Destination: v, ReadOnly: true})
		}
	}
	return env, mounts
}
