package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
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

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/mcpbox/mcpbox/sandbox"
)

// hostCABundle is the CA bundle a runtime image carries: TLS clients in the
// sandbox need it, and it holds certificates, not secrets.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// Built is an image of the host's runtime that Build made: in memory
// until Store puts it into containerd.
type Built struct {
	Ref    string        // the image's name in containerd
	Digest digest.Digest // its manifest's digest: pin it with Ref@Digest
	Files  int           // files in its single layer
	Size   int64         // compressed size of the layer

	rt, version             string
	layer, config, manifest blob
}

// blob is one piece of content of an image and its descriptor.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

// Build builds a minimal OCI image of the host's runtime (rt is Node or
// Python): the interpreter, the shared libraries it loads, for Python its
// standard library, and the CA bundle; nothing else of the host. Every
// file keeps its host path, so a command resolved on the host runs
// unchanged in the image. The layer is deterministic (sorted entries,
// mtime 0, owner 0:0): the same host gives the same digest. Its name is
// tag ("" means mcpbox.local/runtime/RT:VERSION). A bad tag or runtime is
// an *ArgError. It needs no containerd: Store does.
func Build(ctx context.Context, rt, tag string, progress io.Writer) (*Built, error) {
	exes, trees, version, err := hostRuntimeOf(ctx, rt)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		tag = "mcpbox.local/runtime/" + rt + ":" + version
	}
	named, err := reference.ParseNormalizedNamed(tag)
	if err != nil || strings.Contains(tag, "@") {
		return nil, &ArgError{Arg: "tag", Err: fmt.Errorf("%q is not an image name[:tag] (%v)", tag, err)}
	}
	b := &Built{Ref: reference.TagNameOnly(named).String(), rt: rt, version: version}

	files, err := sandbox.RuntimeFiles(exes...)
	if err != nil {
		return nil, fmt.Errorf("launcher: image of %s: %w", rt, err)
	}
	files = append(files, trees...)
	if _, err := os.Stat(hostCABundle); err == nil {
		files = append(files, hostCABundle)
	}
	if progress != nil {
		fmt.Fprintf(progress, "mcpbox: building %s from the host's %s %s...\n", b.Ref, rt, version)
	}
	l, err := buildLayer(files)
	if err != nil {
		return nil, fmt.Errorf("launcher: image of %s: %w", rt, err)
	}
	b.layer = newBlob(ocispec.MediaTypeImageLayerGzip, l.gz)
	b.Files, b.Size = l.files, b.layer.desc.Size
	if err := b.describe(exes[0], l.diffID); err != nil {
		return nil, err
	}
	return b, nil
}

// describe makes the image's config and manifest.
func (b *Built) describe(cmd string, diffID digest.Digest) error {
	config, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ocispec.ImageConfig{
			Env:    []string{"PATH=" + sandbox.DefaultPath},
			Cmd:    []string{cmd},
			Labels: b.labels(),
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	})
	if err != nil {
		return err
	}
	b.config = newBlob(ocispec.MediaTypeImageConfig, config)
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: ocispecs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    b.config.desc,
		Layers:    []ocispec.Descriptor{b.layer.desc},
	})
	if err != nil {
		return err
	}
	b.manifest = newBlob(ocispec.MediaTypeImageManifest, manifest)
	b.Digest = b.manifest.desc.Digest
	return nil
}

func (b *Built) labels() map[string]string {
	return map[string]string{labelRuntime: b.rt, labelVersion: b.version}
}

// Store writes the image's content into the client's namespace, names it
// Ref (replacing what had that name), and unpacks it for the overlayfs
// snapshotter.
func (b *Built) Store(ctx context.Context, client *containerd.Client) error {
	// Nothing references the blobs until the image does: the lease keeps
	// containerd's garbage collector off them meanwhile.
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return fmt.Errorf("launcher: lease: %w", err)
	}
	defer done(context.Background())
	cs := client.ContentStore()
	for _, w := range []struct {
		blob
		labels map[string]string
	}{
		{b.layer, nil},
		{b.config, nil},
		{b.manifest, map[string]string{
			"containerd.io/gc.ref.content.config": b.config.desc.Digest.String(),
			"containerd.io/gc.ref.content.l.0":    b.layer.desc.Digest.String(),
		}},
	} {
		// Hidden behind a plain Reader, the data is sent in chunks: in one
		// write it would exceed gRPC's message limit.
		if err := content.WriteBlob(ctx, cs, "mcpbox-build-"+w.desc.Digest.String(), struct{ io.Reader }{bytes.NewReader(w.data)}, w.desc, content.WithLabels(w.labels)); err != nil {
			return fmt.Errorf("launcher: store %s: %w", w.desc.Digest, err)
		}
	}
	img := images.Image{Name: b.Ref, Target: b.manifest.desc, Labels: b.labels()}
	is := client.ImageService()
	if _, err := is.Create(ctx, img); errdefs.IsAlreadyExists(err) {
		_, err = is.Update(ctx, img, "target", "labels")
		if err != nil {
			return fmt.Errorf("launcher: update image %s: %w", b.Ref, err)
		}
	} else if err != nil {
		return fmt.Errorf("launcher: create image %s: %w", b.Ref, err)
	}
	if err := containerd.NewImage(client, img).Unpack(ctx, containerd.DefaultSnapshotter); err != nil {
		return fmt.Errorf("launcher: unpack image %s: %w", b.Ref, err)
	}
	return nil
}

// hostRuntimeOf finds a runtime on the host: the programs to collect with
// their libraries, whole directories to add (Python's standard library),
// and its version.
func hostRuntimeOf(ctx context.Context, rt string) (exes, trees []string, version string, err error) {
	switch rt {
	case Node:
		exes, version, err = hostNode(ctx)
		return exes, nil, version, err
	case Python:
		return hostPython(ctx)
	}
	return nil, nil, "", &ArgError{Arg: "runtime", Err: fmt.Errorf("%q: use node or python", rt)}
}

func hostNode(ctx context.Context) (exes []string, version string, err error) {
	path, err := exec.LookPath("node")
	if err != nil {
		return nil, "", &ArgError{Arg: "runtime", Err: fmt.Errorf("node is not installed on this host: %w", err)}
	}
	out, err := exec.CommandContext(ctx, path, "-e", "process.stdout.write(process.execPath + '\\n' + process.versions.node)").Output()
	if err != nil {
		return nil, "", fmt.Errorf("launcher: run %s: %w", path, err)
	}
	execPath, version, _ := strings.Cut(string(out), "\n")
	exes = []string{execPath}
	if abs, err := filepath.Abs(path); err == nil && abs != execPath {
		exes = append(exes, abs) // the name commands use, as a symlink
	}
	return exes, version, nil
}

func hostPython(ctx context.Context) (exes, trees []string, version string, err error) {
	path, err := exec.LookPath("python3")
	if err != nil {
		return nil, nil, "", &ArgError{Arg: "runtime", Err: fmt.Errorf("python3 is not installed on this host: %w", err)}
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
	// The standard library, without what a server never imports (its own
	// test suite) and what is no standard library at all.
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

type layer struct {
	gz     []byte
	diffID digest.Digest
	files  int
}

// layerEntry is one entry of a layer's tar.
type layerEntry struct {
	hdr  *tar.Header
	path string // host file to copy, for regular files
}

// buildLayer writes the files, the directories above them and the
// symlinks on the way to them as a gzipped tar, in a fixed order with
// fixed times and owners.
func buildLayer(files []string) (*layer, error) {
	entries := map[string]layerEntry{}
	for _, f := range files {
		if err := addPath(entries, f, 0); err != nil {
			return nil, err
		}
	}
	return writeLayer(entries)
}

// addPath adds p to entries: each directory on the way, each symlink and
// what it points at, and p itself, which must be a regular file (or a
// directory, or a symlink to one of those).
func addPath(entries map[string]layerEntry, p string, depth int) error {
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
			entries[name] = layerEntry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
			// Follow it: what it points at, then the rest of the path.
			next := target
			if !filepath.IsAbs(next) {
				next = filepath.Join(filepath.Dir(cur), target)
			}
			return addPath(entries, filepath.Join(append([]string{next}, comps[i+1:]...)...), depth+1)
		case fi.IsDir():
			// Readable by the sandbox's user, whatever the host's modes (a
			// runtime under /root).
			entries[name+"/"] = layerEntry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755}}
		case fi.Mode().IsRegular() && i == len(comps)-1:
			mode := int64(0o644)
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
			entries[name] = layerEntry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: fi.Size()}, path: cur}
		default:
			return fmt.Errorf("%s: not a directory, regular file or symlink", cur)
		}
	}
	return nil
}

// writeLayer writes entries as a gzipped tar, sorted by name, with mtime 0,
// and computes its diff ID (the digest of the uncompressed tar).
func writeLayer(entries map[string]layerEntry) (*layer, error) {
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
		if err := copyFile(tw, e); err != nil {
			return nil, err
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

// copyFile writes a regular file's content after its header, refusing a
// file whose size changed since its header was made.
func copyFile(w io.Writer, e layerEntry) error {
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	n, err := io.Copy(w, f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", e.path, err)
	}
	if n != e.hdr.Size {
		return fmt.Errorf("%s: changed while it was read", e.path)
	}
	return nil
}
