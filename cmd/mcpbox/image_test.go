package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/image"
)

// TestImageUsage: a runtime mcpbox cannot build is a usage error of
// --runtime (exit 2), found before containerd is asked (here it is not
// even reachable).
func TestImageUsage(t *testing.T) {
	none := filepath.Join(t.TempDir(), "containerd.sock")
	_, _, err := runApp(t, context.Background(), "--containerd-address", none, "image", "build", "--runtime", "ruby")
	var usage *launcher.UsageError
	if !errors.As(err, &usage) || usage.Flag != "runtime" || err.Error() != `--runtime: "ruby": use node or python` {
		t.Errorf("image build --runtime ruby: %v, want a usage error of --runtime", err)
	}
	_, _, err = runApp(t, context.Background(), "--containerd-address", none, "image", "ls")
	if !errors.Is(err, launcher.ErrContainerdUnreachable) {
		t.Errorf("image ls without containerd: %v", err)
	}
}

// TestImageUsageMapping: image's argument errors are usage errors of the
// flag they came from (build) or of the command line (rm); others pass.
func TestImageUsageMapping(t *testing.T) {
	arg := &image.ArgError{Arg: "ref", Err: errors.New("image x is not in containerd namespace mcpbox: `mcpbox image ls` lists what is")}
	var usage *launcher.UsageError
	if err := imageUsage(arg, false); !errors.As(err, &usage) || usage.Flag != "" || err.Error() != arg.Err.Error() {
		t.Errorf("rm's ArgError became %v", err)
	}
	if err := imageUsage(&image.ArgError{Arg: "tag", Err: errors.New("bad")}, true); !errors.As(err, &usage) || err.Error() != "--tag: bad" {
		t.Errorf("build's ArgError became %v", err)
	}
	other := errors.New("launcher: store: boom")
	if err := imageUsage(other, true); err != other {
		t.Errorf("another error became %v", err)
	}
}
