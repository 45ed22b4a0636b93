package main

import (
	"os"
	"testing"

	"github.com/mcpbox/mcpbox/launcher/doctor"
)

// TestMain: doctor's user namespaces check starts /proc/self/exe with
// doctor.ProbeCommand, which in these tests is the test binary; it does
// what mcpbox does, through the same app.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == doctor.ProbeCommand {
		os.Exit(run(os.Args))
	}
	os.Exit(m.Run())
}
