package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/broker"
	"github.com/mcpbox/mcpbox/launcher/pins"
)

// TestPinsUsage: a server name that picks no pin record, or none at all, is
// a usage error (exit 2) whose message lists what exists.
func TestPinsUsage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, args := range [][]string{{"diff"}, {"approve"}, {"reset"}} {
		_, _, err := runApp(t, ctx, append([]string{"pins"}, append(args, "--dir", dir, "nope")...)...)
		var usage *launcher.UsageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "no pins recorded in "+dir+" yet") {
			t.Errorf("pins %s in an empty store: %v, want a usage error", args[0], err)
		}
	}
	id := broker.Identity{Server: "server-memory", Key: "npm:@modelcontextprotocol/server-memory"}
	set := &broker.PinSet{Format: broker.PinFormat, Server: id.Server, Identity: id.Key, Lists: map[string]*broker.PinList{}}
	if err := pins.For(dir, id).Save(set); err != nil {
		t.Fatal(err)
	}
	_, _, err := runApp(t, ctx, "pins", "reset", "--dir", dir, "nope")
	var usage *launcher.UsageError
	if !errors.As(err, &usage) || err.Error() != `no pins for "nope"; pinned servers: server-memory` {
		t.Errorf("pins reset of an unknown server: %v, want a usage error", err)
	}
	if _, stderr, err := runApp(t, ctx, "pins", "reset", "--dir", dir, "server-memory"); err != nil || !strings.Contains(stderr, "removed the pins of server-memory") {
		t.Errorf("pins reset: %v\n%s", err, stderr)
	}
}
