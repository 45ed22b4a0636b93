package launcher

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	ctrd "github.com/mcpbox/mcpbox/launcher/runtime/containerd"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/mcpbox/mcpbox/sandbox"
)

// Runtimes mcpbox can build an image of (BuildImage).
const (
	RuntimeNode   = "node"
	RuntimePython = "python"
)

// Labels on the images mcpbox builds.
const (
	labelImageRuntime = "io.mcpbox.runtime"
	labelImageVersion = "io.mcpbox.runtime.version"
)

// hostCABundle is the CA bundle a runtime image carries: TLS clients in the
// sandbox need it, and it holds certificates, not secrets.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// BuiltImage is an image BuildImage made.
type BuiltImage struct {
	Ref    string        // the image's name in containerd
	Digest digest.Digest // its manifest's digest: pin it with Ref@Digest
	Files  int           // files in its single layer
	Size   int64         // compressed size of the layer
}

// ImageInfo is one image in mcpbox's containerd namespace.
type ImageInfo struct {
	Ref      string
	Digest   digest.Digest
	Size     int64 // compressed, of the content in the store
	Created  time.Time
	Runtime  string // "node 20.1.0" for an image mcpbox built, "" otherwise
	Unpacked bool
}

// BuildImage builds a minimal OCI image of the host's runtime (rt is
// RuntimeNode or RuntimePython): the interpreter, the shared libraries it
// loads, for Python its standard library, and the CA bundle; nothing else
// of the host. Every file keeps its host path, so a command resolved on the
// host runs unchanged in the image. The layer is deterministic (sorted
// entries, mtime 0, owner 0:0): the same host gives the same digest. The
// image is stored in containerd as tag ("" means
// mcpbox.local/runtime/RT:VERSION) in opts.Namespace and unpacked for the
// overlayfs snapshotter.
func BuildImage(ctx context.Context, opts Options, rt, tag string) (*BuiltImage, error) {
	opts.setDefaults()
	exes, trees, version, err := hostRuntimeOf(ctx, rt)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		tag = "mcpbox.local/runtime/" + rt + ":" + version
	}
	named, err := reference.ParseNormalizedNamed(tag)
	if err != nil || strings.Contains(tag, "@") {
		return nil, &UsageError{Flag: "tag", Err: fmt.Errorf("%q is not an image name[:tag] (%v)", tag, err)}
	}
	ref := reference.TagNameOnly(named).String()

	files, err := sandbox.RuntimeFiles(exes...)
	if err != nil {
		return nil, fmt.Errorf("launcher: image of %s: %w", rt, err)
	}
	files = append(files, trees...)
	if _, err := os.Stat(hostCABundle); err == nil {
		files = append(files, hostCABundle)
	}
	fmt.Fprintf(opts.Stderr, "mcpbox: building %s from the host's %s %s...\n", ref, rt, version)
	layer, err := buildLayer(files)
	if err != nil {
		return nil, fmt.Errorf("launcher: image of %s: %w", rt, err)
	}

	config, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ocispec.ImageConfig{
			Env:    []string{"PATH=" + sandbox.DefaultPath},
			Cmd:    []string{exes[0]},
			Labels: map[string]string{labelImageRuntime: rt, labelImageVersion: version},
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.diffID}},
	})
	if err != nil {
		return nil, err
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer.gz), Size: int64(len(layer.gz))}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: ocispecs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return nil, err
	}
	manifestDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}

	client, err := ctrd.Connect(opts.Address, opts.Namespace)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	// Nothing references the blobs until the image does: the lease keeps
	// containerd's garbage collector off them meanwhile.
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("launcher: lease: %w", err)
	}
	defer done(context.Background())
	cs := client.ContentStore()
	for _, b := range []struct {
		desc   ocispec.Descriptor
		data   []byte
		labels map[string]string
	}{
		{layerDesc, layer.gz, nil},
		{configDesc, config, nil},
		{manifestDesc, manifest, map[string]string{
			"containerd.io/gc.ref.content.config": configDesc.Digest.String(),
			"containerd.io/gc.ref.content.l.0":    layerDesc.Digest.String(),
		}},
	} {
		// Hidden behind a plain Reader, the data is sent in chunks: in one
		// write it would exceed gRPC's message limit.
		if err := content.WriteBlob(ctx, cs, "mcpbox-build-"+b.desc.Digest.String(), struct{ io.Reader }{bytes.NewReader(b.data)}, b.desc, content.WithLabels(b.labels)); err != nil {
			return nil, fmt.Errorf("launcher: store %s: %w", b.desc.Digest, err)
		}
	}
	img := images.Image{Name: ref, Target: manifestDesc, Labels: map[string]string{labelImageRuntime: rt, labelImageVersion: version}}
	is := client.ImageService()
	if _, err := is.Create(ctx, img); errdefs.IsAlreadyExists(err) {
		_, err = is.Update(ctx, img, "target", "labels")
		if err != nil {
			return nil, fmt.Errorf("launcher: update image %s: %w", ref, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("launcher: create image %s: %w", ref, err)
	}
	if err := containerd.NewImage(client, img).Unpack(ctx, containerd.DefaultSnapshotter); err != nil {
		return nil, fmt.Errorf("launcher: unpack image %s: %w", ref, err)
	}
	return &BuiltImage{Ref: ref, Digest: manifestDesc.Digest, Files: layer.files, Size: layerDesc.Size}, nil
}

// hostRuntimeOf finds a runtime on the host: the programs to collect with
// their libraries, whole directories to add (Python's standard library),
// and its version.
func hostRuntimeOf(ctx context.Context, rt string) (exes, trees []string, version string, err error) {
	switch rt {
	case RuntimeNode:
		path, err := exec.LookPath("node")
		if err != nil {
			return nil, nil, "", &UsageError{Flag: "runtime", Err: fmt.Errorf("node is not installed on this host: %w", err)}
		}
		out, err := exec.CommandContext(ctx, path, "-e", "process.stdout.write(process.execPath + '\\n' + process.versions.node)").Output()
		if err != nil {
			return nil, nil, "", fmt.Errorf("launcher: run %s: %w", path, err)
		}
		execPath, version, _ := strings.Cut(string(out), "\n")
		exes = []string{execPath}
		if abs, err := filepath.Abs(path); err == nil && abs != execPath {
			exes = append(exes, abs) // the name commands use, as a symlink
		}
		return exes, nil, version, nil
	case RuntimePython:
		path, err := exec.LookPath("python3")
		if err != nil {
			return nil, nil, "", &UsageError{Flag: "runtime", Err: fmt.Errorf("python3 is not installed on this host: %w", err)}
		}
		out, err := exec.CommandContext(ctx, path, "-c",
			"import sys, sysconfig; print(sys.executable); print(sysconfig.get_paths()['stdlib']); print('%d.%d.%d' % sys.version_info[:3])").Output()
		if err != nil {
			return nil, nil, "", fmt.Errorf("launcher: run %s: %w", path, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 3 {
			return nil, nil, "", fmt.Errorf("launcher: %s: unexpected output %q", path, out)
		}
		exes = []string{lines[0]}
		stdlib, version := lines[1], lines[2]
		// The standard library, without what a server never imports
		// (its own test suite) and what is no standard library at all.
		err = filepath.WalkDir(stdlib, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && p != stdlib && (d.Name() == "site-packages" || d.Name() == "dist-packages" || p == filepath.Join(stdlib, "test") || p == filepath.Join(stdlib, "idlelib")) {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
				trees = append(trees, p)
				// Extension modules need their shared libraries too.
				if strings.HasSuffix(p, ".so") && d.Type().IsRegular() {
					exes = append(exes, p)
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, "", fmt.Errorf("launcher: python standard library %s: %w", stdlib, err)
		}
		return exes, trees, version, nil
	}
	return nil, nil, "", &UsageError{Flag: "runtime", Err: fmt.Errorf("%q: use node or python", rt)}
}

type layer struct {
	gz     []byte
	diffID digest.Digest
	files  int
}

// buildLayer writes the files, the directories above them and the
// symlinks on the way to them as a gzipped tar, in a fixed order with
// fixed times and owners.
func buildLayer(files []string) (*layer, error) {
	type entry struct {
		hdr  *tar.Header
		path string // host file to copy, for regular files
	}
	entries := map[string]entry{}
	var add func(p string, depth int) error
	add = func(p string, depth int) error {
		if depth > 40 {
			return fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		p = filepath.Clean(p)
		comps := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i := range comps {
			cur := "/" + strings.Join(comps[:i+1], "/")
			name := strings.TrimPrefix(cur, "/")
			fi, err := os.Lstat(cur)
			if err != nil {
				return err
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(cur)
				if err != nil {
					return err
				}
				entries[name] = entry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
				// Follow it: what it points at, then the rest of the path.
				next := target
				if !filepath.IsAbs(next) {
					next = filepath.Join(filepath.Dir(cur), target)
				}
				return add(filepath.Join(append([]string{next}, comps[i+1:]...)...), depth+1)
			case fi.IsDir():
				// Readable by the sandbox's user, whatever the host's
				// modes (a runtime under /root).
				entries[name+"/"] = entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755}}
			case fi.Mode().IsRegular() && i == len(comps)-1:
				mode := int64(0o644)
				if fi.Mode()&0o111 != 0 {
					mode = 0o755
				}
				entries[name] = entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: fi.Size()}, path: cur}
			default:
				return fmt.Errorf("%s: not a directory, regular file or symlink", cur)
			}
		}
		return nil
	}
	for _, f := range files {
		if err := add(f, 0); err != nil {
			return nil, err
		}
	}

	var gz bytes.Buffer
	diff := sha256.New()
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	nfiles := 0
	for _, n := range names {
		e := entries[n]
		e.hdr.Format = tar.FormatPAX
		e.hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, err
		}
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		nfiles++
		f, err := os.Open(e.path)
		if err != nil {
			return nil, err
		}
		n, err := io.Copy(tw, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.path, err)
		}
		if n != e.hdr.Size {
			return nil, fmt.Errorf("%s: changed while it was read", e.path)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &layer{gz: gz.Bytes(), diffID: digest.NewDigestFromBytes(digest.SHA256, diff.Sum(nil)), files: nfiles}, nil
}

// ListImages returns the images in opts.Namespace, sorted by name.
func ListImages(ctx context.Context, opts Options) ([]ImageInfo, error) {
	opts.setDefaults()
	client, err := ctrd.Connect(opts.Address, opts.Namespace)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	imgs, err := client.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("launcher: list images: %w", err)
	}
	var out []ImageInfo
	for _, img := range imgs {
		meta := img.Metadata()
		info := ImageInfo{Ref: img.Name(), Digest: img.Target().Digest, Created: meta.CreatedAt}
		if rt := meta.Labels[labelImageRuntime]; rt != "" {
			info.Runtime = rt + " " + meta.Labels[labelImageVersion]
		}
		info.Size, _ = img.Size(ctx)
		info.Unpacked, _ = img.IsUnpacked(ctx, containerd.DefaultSnapshotter)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b ImageInfo) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}

// RemoveImage removes the image ref from opts.Namespace, and with it (when
// no other image shares them) its content and unpacked snapshots.
func RemoveImage(ctx context.Context, opts Options, ref string) error {
	opts.setDefaults()
	client, err := ctrd.Connect(opts.Address, opts.Namespace)
	if err != nil {
		return err
	}
	defer client.Close()
	name := ref
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		name = reference.TagNameOnly(named).String()
		if _, ok := named.(reference.Canonical); ok {
			name = named.String()
		}
	}
	is := client.ImageService()
	if _, err := is.Get(ctx, name); errdefs.IsNotFound(err) && name != ref {
		name = ref
	}
	if err := is.Delete(ctx, name, images.SynchronousDelete()); err != nil {
		if errdefs.IsNotFound(err) {
			return &UsageError{Err: fmt.Errorf("image %s is not in containerd namespace %s: `mcpbox image ls` lists what is", ref, opts.Namespace)}
		}
		return fmt.Errorf("launcher: remove image %s: %w", ref, err)
	}
	return nil
}

// errImageMissing is wrapped by ensureImage when an image is neither in the
// namespace nor pullable.
var errImageMissing = errors.New("image not available")

// ensureImage returns the image ref names in the client's namespace. A
// missing image is pulled (progress on opts.Stderr); an image whose
// manifest digest differs from ref's pin (name[:tag]@sha256:...) is
// refused; the image is unpacked for the overlayfs snapshotter if it is
// not yet.
func ensureImage(ctx context.Context, client *containerd.Client, opts Options, ref string) (containerd.Image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, &UsageError{Flag: "profile", Err: fmt.Errorf("image %q: %w", ref, err)}
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
	img, err := findImage(ctx, client, names, repo.Name(), pin)
	if errdefs.IsNotFound(err) {
		img, err = pullImage(ctx, client, opts, pullRef)
	}
	if err != nil {
		return nil, err
	}
	if got := img.Target().Digest; pin != "" && got != pin {
		return nil, fmt.Errorf("launcher: image %s in containerd namespace %s is %s, but the profile pins %s: refusing to run anything else; build or pull the pinned image, or put the new digest in the profile", img.Name(), opts.Namespace, got, pin)
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

// findImage looks the image up by each of names, and for a pin without a
// tag also among the images of repo whose digest is the pin.
func findImage(ctx context.Context, client *containerd.Client, names []string, repo string, pin digest.Digest) (containerd.Image, error) {
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

// pullImage pulls ref through containerd and records what it got by
// digest. Names under .local are never pulled: no registry serves them.
func pullImage(ctx context.Context, client *containerd.Client, opts Options, ref string) (containerd.Image, error) {
	missing := func(why string) error {
		return fmt.Errorf("launcher: %w: %s is not in containerd namespace %s and %s: build it from the host's runtime with `mcpbox --namespace %s image build --runtime node --tag NAME:TAG` (and pin the digest it prints), or import it with `ctr -n %s images import`",
			errImageMissing, ref, opts.Namespace, why, opts.Namespace, opts.Namespace)
	}
	if n, err := reference.ParseNormalizedNamed(ref); err == nil && strings.HasSuffix(reference.Domain(n), ".local") {
		return nil, missing("no registry serves " + reference.Domain(n))
	}
	fmt.Fprintf(opts.Stderr, "mcpbox: pulling %s...\n", ref)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	img, err := client.Pull(pctx, ref, containerd.WithPullUnpack, containerd.WithPullSnapshotter(containerd.DefaultSnapshotter))
	if err != nil {
		return nil, missing(fmt.Sprintf("pulling it failed (%v)", err))
	}
	fmt.Fprintf(opts.Stderr, "mcpbox: pulled %s as %s@%s\n", ref, img.Name(), img.Target().Digest)
	opts.Logger.Info("pulled image", "ref", ref, "name", img.Name(), "digest", img.Target().Digest)
	return img, nil
}

// imageLink is a symlink of the image that is made in the session's root
// rather than bound: a bind would follow it on the host.
type imageLink struct{ path, target string }

// imageBinds returns the read-only binds that show the image mounted at
// dir in the session's root, and the symlinks to create there. An entry
// of the image is bound whole unless something else is mounted at or
// below its path (taken: the synthetic /etc files, grants, the package
// cache, the sandbox's own mounts); then its children are, except the
// taken paths themselves.
func imageBinds(dir string, taken []string) ([]sandbox.Mount, []imageLink, error) {
	var mounts []sandbox.Mount
	var links []imageLink
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := filepath.Join("/", rel, e.Name())
			exact, below := false, false
			for _, t := range taken {
				exact = exact || t == p
				below = below || strings.HasPrefix(t, p+"/")
			}
			switch {
			case exact:
			case e.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(filepath.Join(dir, p))
				if err != nil {
					return err
				}
				links = append(links, imageLink{path: p, target: target})
			case !below:
				mounts = append(mounts, sandbox.Mount{Source: filepath.Join(dir, p), Destination: p, ReadOnly: true})
			case e.IsDir():
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("/"); err != nil {
		return nil, nil, fmt.Errorf("launcher: image root: %w", err)
	}
	return mounts, links, nil
}

// inImage reports whether p resolves to a file in the image mounted at dir,
// following its symlinks inside the image.
func inImage(dir, p string) bool {
	full, err := securejoin.SecureJoin(dir, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(full)
	return err == nil && fi.Mode().IsRegular()
}
