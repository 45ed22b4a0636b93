package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/snapshots"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher/image"
)

// TestImageStore builds an image of the host's node, stores it in a
// containerd namespace of its own, and drives launcher/image's List, Ensure
// and Remove on it: a pinned and a tagged reference find it, a pin to
// another digest and an image that is not there are refused with what to
// do, and Remove takes its snapshots too.
func TestImageStore(t *testing.T) {
	addr := testutil.RequiresContainerd(t)
	testutil.RequiresCommand(t, "node")
	ctx := testutil.Context(t, 5*time.Minute)
	sum := sha256.Sum256([]byte(t.Name()))
	ns := "mcpbox-test-" + hex.EncodeToString(sum[:5])
	client, err := containerd.New(addr, containerd.WithDefaultNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanImageNamespace(t, client, ns) })
	o := image.Options{Client: client}

	tag := "mcpbox.local/test/node:" + ns
	var progress strings.Builder
	b, err := image.Build(ctx, image.Node, tag, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if b.Ref != tag || b.Files < 2 || b.Size == 0 || !strings.HasPrefix(progress.String(), "mcpbox: building "+tag+" from the host's node ") {
		t.Errorf("Build: %+v, progress %q", b, progress.String())
	}
	if err := b.Store(ctx, client); err != nil {
		t.Fatal(err)
	}
	// A rebuild under the same name replaces the image.
	if err := b.Store(ctx, client); err != nil {
		t.Errorf("storing the same image again: %v", err)
	}

	version, err := exec.Command("node", "-e", "process.stdout.write(process.versions.node)").Output()
	if err != nil {
		t.Fatal(err)
	}
	infos, err := image.List(ctx, o)
	if err != nil || len(infos) != 1 {
		t.Fatalf("List: %v, %+v", err, infos)
	}
	if i := infos[0]; i.Ref != tag || i.Digest != b.Digest || i.Runtime != "node "+string(version) || !i.Unpacked || i.Size == 0 {
		t.Errorf("List: %+v", i)
	}

	for _, ref := range []string{tag + "@" + b.Digest.String(), tag} {
		img, err := image.Ensure(ctx, o, ref)
		if err != nil || img.Target().Digest != b.Digest {
			t.Errorf("Ensure(%s): %v", ref, err)
		}
	}
	wrong := "sha256:" + strings.Repeat("0", 64)
	if _, err := image.Ensure(ctx, o, tag+"@"+wrong); err == nil || !strings.Contains(err.Error(), "in containerd namespace "+ns+" is "+b.Digest.String()+", but the profile pins "+wrong) {
		t.Errorf("Ensure of another pin: %v", err)
	}
	if _, err := image.Ensure(ctx, o, "mcpbox.local/test/none:1"); !errors.Is(err, image.ErrMissing) || !strings.Contains(err.Error(), "mcpbox --namespace "+ns+" image build") {
		t.Errorf("Ensure of a missing .local image: %v", err)
	}
	var arg *image.ArgError
	if _, err := image.Ensure(ctx, o, "Not A Ref"); !errors.As(err, &arg) || arg.Arg != "ref" {
		t.Errorf("Ensure of a bad reference: %v", err)
	}

	if err := image.Remove(ctx, o, tag); err != nil {
		t.Fatal(err)
	}
	if infos, err := image.List(ctx, o); err != nil || len(infos) != 0 {
		t.Errorf("List after Remove: %v, %+v", err, infos)
	}
	if n := countImageSnapshots(ctx, client); n != 0 {
		t.Errorf("%d snapshots left after Remove", n)
	}
	if err := image.Remove(ctx, o, tag); !errors.As(err, &arg) || !strings.Contains(err.Error(), "image "+tag+" is not in containerd namespace "+ns) {
		t.Errorf("Remove of a removed image: %v, want an ArgError", err)
	}
}

func countImageSnapshots(ctx context.Context, client *containerd.Client) int {
	n := 0
	client.SnapshotService(containerd.DefaultSnapshotter).Walk(ctx, func(context.Context, snapshots.Info) error { n++; return nil })
	return n
}

// cleanImageNamespace removes what a failed test left in ns, then ns itself.
func cleanImageNamespace(t *testing.T, client *containerd.Client, ns string) {
	ctx := context.Background()
	imgs, _ := client.ListImages(ctx)
	for _, img := range imgs {
		t.Errorf("image %s left behind in namespace %s", img.Name(), ns)
		image.Remove(ctx, image.Options{Client: client}, img.Name())
	}
	if err := client.NamespaceService().Delete(ctx, ns); err != nil {
		t.Logf("delete namespace %s: %v", ns, err)
	}
	client.Close()
}
