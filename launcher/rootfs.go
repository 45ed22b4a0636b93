package launcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/mcpbox/mcpbox/launcher/grant"
	"github.com/mcpbox/mcpbox/launcher/runtime"
	"github.com/mcpbox/mcpbox/sandbox"
)

// Where mcpbox-init and the stdio FIFOs appear inside the sandbox.
const (
	sandboxInit = "/.mcpbox/init"
	sandboxIO   = "/.mcpbox/io"
)

// prepare makes the session directory (empty root, synthetic /etc files,
// FIFOs), the image's view in image mode, and the OCI spec.
func (s *session) prepare(ctx context.Context, rt runtime.Runtime, runtimeMounts []sandbox.Mount, filter *specs.LinuxSeccomp) error {
	s.dir = filepath.Join(s.opts.RunDir, s.id)
	root := filepath.Join(s.dir, "rootfs")
	if err := s.makeDir(root); err != nil {
		return err
	}
	mounts := append([]sandbox.Mount{}, runtimeMounts...)
	etcMounts, err := s.writeEtc()
	if err != nil {
		return err
	}
	mounts = append(mounts, etcMounts...)
	mounts = append(mounts, s.job.cmd.mounts...)
	mounts = append(mounts, s.job.mounts...)
	ioMounts, err := s.makeFifos()
	if err != nil {
		return err
	}
	mounts = append(mounts, ioMounts...)
	// Every bind's source is a path without symlinks (the grants and the
	// runtime were resolved when they were checked, mcpbox's own files
	// here), held open until runc has mounted it: run compares the two.
	mounts = dedupeMounts(mounts)
	if s.pins, err = grant.PinMounts(mounts); err != nil {
		return err
	}
	cmdArgs := s.job.cmd.args
	if s.job.image != "" {
		if s.image, err = rt.ImageRoot(ctx, s.job.image, s.id, s.dir); err != nil {
			return fmt.Errorf("launcher: %w", err)
		}
		imageMounts, argv0, err := s.imageRootMounts(root, mounts)
		if err != nil {
			return err
		}
		mounts = append(mounts, imageMounts...)
		cmdArgs = append([]string{argv0}, cmdArgs[1:]...)
	}
	spec, err := s.spec(root, mounts, cmdArgs, filter)
	if err != nil {
		return err
	}
	s.ociSpec = spec
	return nil
}

// makeDir creates the session directory with its owner file. gc reads the
// owner file to tell a live session from a dead one; it must never see it
// half written.
func (s *session) makeDir(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("launcher: session dir: %w", err)
	}
	owner := filepath.Join(s.dir, "owner")
	if err := os.WriteFile(owner+".tmp", []byte(ownerLabel()), 0o644); err != nil {
		return fmt.Errorf("launcher: session dir: %w", err)
	}
	if err := os.Rename(owner+".tmp", owner); err != nil {
		return fmt.Errorf("launcher: session dir: %w", err)
	}
	return nil
}

// writeEtc writes the sandbox's synthetic /etc files into the session
// directory and returns their binds.
func (s *session) writeEtc() ([]sandbox.Mount, error) {
	etc := filepath.Join(s.dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return nil, fmt.Errorf("launcher: session dir: %w", err)
	}
	files := sandbox.SyntheticEtc(s.job.uid, s.job.gid, sandbox.DefaultHome, sandbox.DefaultHostname)
	if s.net != nil {
		files["/etc/resolv.conf"] = s.net.ResolvConf()
	}
	// The run directory may be reached through a symlink.
	etc, err := filepath.EvalSymlinks(etc)
	if err != nil {
		return nil, fmt.Errorf("launcher: session dir: %w", err)
	}
	var mounts []sandbox.Mount
	for _, name := range sortedKeys(files) {
		host := filepath.Join(etc, filepath.Base(name))
		if err := os.WriteFile(host, files[name], 0o644); err != nil {
			return nil, fmt.Errorf("launcher: write %s: %w", host, err)
		}
		mounts = append(mounts, sandbox.Mount{Source: host, Destination: name, ReadOnly: true})
	}
	return mounts, nil
}

// makeFifos creates the server's stdio FIFOs. The server runs under
// mcpbox-init, with its stdin and stdout on FIFOs that mcpbox holds the
// other ends of (see cmd/mcpbox-init). It returns the binds of the init
// and of the FIFOs' directory.
func (s *session) makeFifos() ([]sandbox.Mount, error) {
	ioDir := filepath.Join(s.dir, "io")
	if err := os.Mkdir(ioDir, 0o755); err != nil {
		return nil, fmt.Errorf("launcher: session dir: %w", err)
	}
	for _, name := range []string{"stdin", "stdout", "stderr"} {
		p := filepath.Join(ioDir, name)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return nil, fmt.Errorf("launcher: fifo %s: %w", p, err)
		}
		if err := s.opts.chownForSandbox(p, s.job.uid, s.job.gid); err != nil {
			return nil, fmt.Errorf("launcher: fifo %s: %w", p, err)
		}
	}
	initPath, err := filepath.EvalSymlinks(s.initPath)
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	if ioDir, err = filepath.EvalSymlinks(ioDir); err != nil {
		return nil, fmt.Errorf("launcher: session dir: %w", err)
	}
	return []sandbox.Mount{
		{Source: initPath, Destination: sandboxInit, ReadOnly: true},
		{Source: ioDir, Destination: sandboxIO, ReadOnly: true},
	}, nil
}

// spec asks package sandbox for the OCI spec of this session.
func (s *session) spec(root string, mounts []sandbox.Mount, cmdArgs []string, filter *specs.LinuxSeccomp) (*specs.Spec, error) {
	args := append([]string{sandboxInit, sandboxIO, "--"}, cmdArgs...)
	env := append(baseEnv(), s.job.env...)
	netns := ""
	if s.net != nil {
		env = append(env, s.net.Env()...)
		netns = s.net.NetNSPath()
	}
	spec, err := sandbox.Spec(sandbox.Policy{
		Args:        args,
		Env:         env,
		Cwd:         s.job.workdir,
		Root:        root,
		Mounts:      dedupeMounts(mounts),
		UID:         s.job.uid,
		GID:         s.job.gid,
		Home:        sandbox.DefaultHome,
		Hostname:    sandbox.DefaultHostname,
		NetNS:       netns,
		CgroupsPath: s.cgroupsPath(),
		Limits:      s.job.limits,
		Seccomp:     filter,
		Memfd:       s.memfd,
	})
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	return spec, nil
}

// create has the runtime create the container from the session's spec.
func (s *session) create(ctx context.Context, rt runtime.Runtime) error {
	pid, start := ownerIdentity()
	c, err := rt.Create(ctx, runtime.Config{
		ID:   s.id,
		Spec: s.ociSpec,
		Owner: runtime.Owner{PID: pid, Start: start, Started: time.Now(),
			Command: s.job.label, SessionDir: s.dir},
		Image: s.image,
	})
	if err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	s.container = c
	return nil
}

// imageRootMounts binds the image's view read-only into the empty root,
// entry by entry around the mounts the session has already (taken). It
// returns those binds and the program's path inside: the command
// resolved on the host, which the image holds at the same path when it
// was built from the host's runtime; a program the image lacks (a static
// helper such as mcpbox-probe) is bound alone.
func (s *session) imageRootMounts(root string, taken []sandbox.Mount) ([]sandbox.Mount, string, error) {
	dir := s.image.Dir()
	cmd := s.job.cmd
	argv0 := cmd.args[0]
	var own []sandbox.Mount
	switch {
	case inImage(dir, argv0):
	case inImage(dir, cmd.exe):
		argv0 = cmd.exe
	default:
		s.log.Info("the program is not in the image; binding it alone", "program", cmd.exe, "image", s.image.Name())
		argv0 = cmd.exe
		own = append(own, sandbox.Mount{Source: cmd.exe, Destination: cmd.exe, ReadOnly: true})
	}
	taken = append(slices.Clone(taken), own...)
	dests := []string{"/proc", "/sys", "/dev", "/tmp", sandbox.DefaultHome}
	for _, m := range taken {
		dests = append(dests, filepath.Clean(m.Destination))
	}
	binds, links, err := imageBinds(dir, dests)
	if err != nil {
		return nil, "", err
	}
	for _, l := range links {
		p := filepath.Join(root, l.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, "", fmt.Errorf("launcher: session root: %w", err)
		}
		if err := os.Symlink(l.target, p); err != nil {
			return nil, "", fmt.Errorf("launcher: session root: %w", err)
		}
	}
	return append(binds, own...), argv0, nil
}
