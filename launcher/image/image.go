// Package image keeps the container images of `rootfs: image` profiles in
// mcpbox's containerd namespace: it builds a minimal image of the host's
// runtime, lists and removes images, and makes sure the image a session
// needs is there (pulled, pin-checked, unpacked).
//
// It works on a containerd client its caller has connected and does not
// run containers or mount image roots (the session does). It must not
// import launcher (the session package) or cmd, which sit above it.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Runtimes mcpbox can build an image of (Build).
const (
	Node   = "node"
	Python = "python"
)

// Labels on the images mcpbox builds.
const (
	labelRuntime = "io.mcpbox.runtime"
	labelVersion = "io.mcpbox.runtime.version"
)

// Options say where the images are and where progress goes.
type Options struct {
	// Client is connected to containerd; its default namespace holds the
	// images.
	Client *containerd.Client
	// Progress gets the lines a user waits on ("pulling..."); nil
	// discards them.
	Progress io.Writer
	Logger   *slog.Logger // nil discards
}

func (o Options) progress() io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// ArgError is an argument that is wrong before anything was done: a tag
// that is no image name, a runtime that is not installed, an image that is
// not there to remove. Arg names the argument ("tag", "runtime", "ref").
type ArgError struct {
	Arg string
	Err error
}

func (e *ArgError) Error() string { return e.Arg + ": " + e.Err.Error() }
func (e *ArgError) Unwrap() error { return e.Err }

// Info is one image in mcpbox's containerd namespace.
type Info struct {
	Ref      string
	Digest   digest.Digest
	Size     int64 // compressed, of the content in the store
	Created  time.Time
	Runtime  string // "node 20.1.0" for an image mcpbox built, "" otherwise
	Unpacked bool
}

// List returns the images in the namespace, sorted by name.
func List(ctx context.Context, o Options) ([]Info, error) {
	imgs, err := o.Client.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("launcher: list images: %w", err)
	}
	var out []Info
	for _, img := range imgs {
		meta := img.Metadata()
		info := Info{Ref: img.Name(), Digest: img.Target().Digest, Created: meta.CreatedAt}
		if rt := meta.Labels[labelRuntime]; rt != "" {
			info.Runtime = rt + " " + meta.Labels[labelVersion]
		}
		info.Size, _ = img.Size(ctx)
		info.Unpacked, _ = img.IsUnpacked(ctx, containerd.DefaultSnapshotter)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}

// Remove removes the image ref from the namespace, and with it (when no
// other image shares them) its content and unpacked snapshots. An image
// that is not there is an *ArgError.
func Remove(ctx context.Context, o Options, ref string) error {
	name := ref
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		name = reference.TagNameOnly(named).String()
		if _, ok := named.(reference.Canonical); ok {
			name = named.String()
		}
	}
	is := o.Client.ImageService()
	if _, err := is.Get(ctx, name); errdefs.IsNotFound(err) && name != ref {
		name = ref
	}
	if err := is.Delete(ctx, name, images.SynchronousDelete()); err != nil {
		if errdefs.IsNotFound(err) {
			return &ArgError{Arg: "ref", Err: fmt.Errorf("image %s is not in containerd namespace %s: `mcpbox image ls` lists what is", ref, o.Client.DefaultNamespace())}
		}
		return fmt.Errorf("launcher: remove image %s: %w", ref, err)
	}
	return nil
}

// ErrMissing is wrapped by Ensure when an image is neither in the
// namespace nor pullable.
var ErrMissing = errors.New("image not available")

// Ensure returns the image ref names in the namespace. A missing image is
// pulled (progress on o.Progress); an image whose manifest digest differs
// from ref's pin (name[:tag]@sha256:...) is refused; the image is unpacked
// for the overlayfs snapshotter if it is not yet. A ref that does not
// parse is an *ArgError.
func Ensure(ctx context.Context, o Options, ref string) (containerd.Image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, &ArgError{Arg: "ref", Err: fmt.Errorf("image %q: %w", ref, err)}
	}
	repo := reference.TrimNamed(named)
	var pin digest.Digest
	if c, ok := named.(reference.Canonical); ok {
		pin = c.Digest()
	}
	// The pinned name first: an image pulled by digest is stored under it.
	var names []string
	pullRef := reference.TagNameOnly(named).String()
	if pin != "" {
		c, _ := reference.WithDigest(repo, pin)
		names = append(names, c.String())
		pullRef = c.String()
	}
	if t, ok := named.(reference.Tagged); ok {
		tagged, _ := reference.WithTag(repo, t.Tag())
		names = append(names, tagged.String())
	} else if pin == "" {
		names = append(names, pullRef)
	}
	img, err := find(ctx, o.Client, names, repo.Name(), pin)
	if errdefs.IsNotFound(err) {
		img, err = pull(ctx, o, pullRef)
	}
	if err != nil {
		return nil, err
	}
	if got := img.Target().Digest; pin != "" && got != pin {
		return nil, fmt.Errorf("launcher: image %s in containerd namespace %s is %s, but the profile pins %s: refusing to run anything else; build or pull the pinned image, or put the new digest in the profile", img.Name(), o.Client.DefaultNamespace(), got, pin)
	}
	unpacked, err := img.IsUnpacked(ctx, containerd.DefaultSnapshotter)
	if err != nil {
		return nil, fmt.Errorf("launcher: image %s: %w", img.Name(), err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, containerd.DefaultSnapshotter); err != nil {
			return nil, fmt.Errorf("launcher: unpack image %s: %w", img.Name(), err)
		}
	}
	return img, nil
}

// find looks the image up by each of names, and for a pin without a tag
// also among the images of repo whose digest is the pin.
func find(ctx context.Context, client *containerd.Client, names []string, repo string, pin digest.Digest) (containerd.Image, error) {
	for _, n := range names {
		img, err := client.GetImage(ctx, n)
		if err == nil {
			return img, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("launcher: image %s: %w", n, err)
		}
	}
	if pin != "" {
		imgs, err := client.ListImages(ctx)
		if err != nil {
			return nil, fmt.Errorf("launcher: list images: %w", err)
		}
		for _, img := range imgs {
			if n, err := reference.ParseNormalizedNamed(img.Name()); err == nil && n.Name() == repo && img.Target().Digest == pin {
				return img, nil
			}
		}
	}
	return nil, fmt.Errorf("image %s: %w", names[0], errdefs.ErrNotFound)
}

// pull pulls ref through containerd and records what it got by digest.
// Names under .local are never pulled: no registry serves them.
func pull(ctx context.Context, o Options, ref string) (containerd.Image, error) {
	ns := o.Client.DefaultNamespace()
	missing := func(why string) error {
		return fmt.Errorf("launcher: %w: %s is not in containerd namespace %s and %s: build it from the host's runtime with `mcpbox --namespace %s image build --runtime node --tag NAME:TAG` (and pin the digest it prints), or import it with `ctr -n %s images import`",
			ErrMissing, ref, ns, why, ns, ns)
	}
	if n, err := reference.ParseNormalizedNamed(ref); err == nil && strings.HasSuffix(reference.Domain(n), ".local") {
		return nil, missing("no registry serves " + reference.Domain(n))
	}
	fmt.Fprintf(o.progress(), "mcpbox: pulling %s...\n", ref)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	img, err := o.Client.Pull(pctx, ref, containerd.WithPullUnpack, containerd.WithPullSnapshotter(containerd.DefaultSnapshotter))
	if err != nil {
		return nil, missing(fmt.Sprintf("pulling it failed (%v)", err))
	}
	fmt.Fprintf(o.progress(), "mcpbox: pulled %s as %s@%s\n", ref, img.Name(), img.Target().Digest)
	o.logger().Info("pulled image", "ref", ref, "name", img.Name(), "digest", img.Target().Digest)
	return img, nil
}
