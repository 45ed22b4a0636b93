package image

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestBuildArgs: a runtime mcpbox cannot build and a tag that is no image
// name are *ArgErrors naming the argument, found before any work.
func TestBuildArgs(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	var arg *ArgError
	if _, err := Build(ctx, "ruby", "", nil); !errors.As(err, &arg) || arg.Arg != "runtime" || arg.Err.Error() != `"ruby": use node or python` {
		t.Errorf("Build of ruby: %v, want an ArgError for the runtime", err)
	}
	testutil.RequiresCommand(t, "node")
	for _, tag := range []string{"Not A Name", "mcpbox.local/x/node@sha256:" + strings.Repeat("0", 64)} {
		if _, err := Build(ctx, Node, tag, nil); !errors.As(err, &arg) || arg.Arg != "tag" || !strings.Contains(err.Error(), "is not an image name[:tag]") {
			t.Errorf("Build with tag %q: %v, want an ArgError for the tag", tag, err)
		}
	}
}
