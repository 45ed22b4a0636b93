package launcher

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/profiles"
)

// A grant that could only mean the sandbox's own loopback is a usage error
// that says what to write instead; localhost:PORT is the grant of the
// host's.
func TestNetworkPolicyLoopback(t *testing.T) {
	for entry, want := range map[string]string{
		"127.0.0.1:5432":             "--allow-host: egress: allowlist entry \"127.0.0.1:5432\": 127.0.0.1 in the sandbox is the sandbox's own loopback, not this machine's; to reach a service on this machine's loopback write localhost:5432",
		"cidr:127.0.0.1/32:5432":     "write localhost:5432",
		"[::1]:6379":                 "write localhost:6379",
		"localhost":                  "localhost needs a port",
		"host.docker.internal:11434": "write localhost:11434",
	} {
		_, err := networkPolicy(Options{AllowHosts: []string{entry}})
		var usage *UsageError
		if !errors.As(err, &usage) || usage.Flag != "allow-host" || !strings.Contains(err.Error(), want) {
			t.Errorf("networkPolicy(%s) = %v, want a usage error of --allow-host saying %q", entry, err, want)
		}
	}
	allow, err := networkPolicy(Options{AllowHosts: []string{"localhost:5432", "api.example.com"}})
	if err != nil || !slices.Equal(allow.HostLoopbackPorts(), []uint16{5432}) {
		t.Errorf("networkPolicy(localhost:5432) = %v, %v", allow, err)
	}
}

// In a profile, the same errors name the file, line and field.
func TestCheckProfileLoopback(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db.yaml")
	writeProfile(t, path, "name: db\nnetwork:\n  allow:\n    - api.example.com\n    - 127.0.0.1:5432\n")
	p, err := profiles.NewCatalog(dir).LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	err = checkProfile(p)
	var ve *profiles.ValidationError
	if !errors.As(err, &ve) || ve.File != path || ve.Line != 5 || ve.Field != "network.allow[1]" || !strings.Contains(ve.Reason, "write localhost:5432") {
		t.Errorf("checkProfile = %#v (%v), want %s:5 network.allow[1] saying to write localhost:5432", ve, err, path)
	}
}

// A name that the hosts file maps to loopback is refused before the
// server starts, from a profile (with its position) or a flag.
func TestCheckHostsFileProfileAndFlags(t *testing.T) {
	hosts := []byte("127.0.0.1 localhost\n127.0.0.1 db.test\n10.0.0.5 nas.test\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "db.yaml")
	writeProfile(t, path, "name: db\nnetwork:\n  allow: [nas.test:445, db.test:5432]\n")
	p, err := profiles.NewCatalog(dir).LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	err = checkHostsFile(p, nil, hosts)
	var ve *profiles.ValidationError
	if !errors.As(err, &ve) || ve.File != path || ve.Line != 3 || ve.Field != "network.allow[1]" ||
		!strings.Contains(ve.Reason, "db.test is 127.0.0.1 in /etc/hosts") || !strings.Contains(ve.Reason, "write localhost:5432") {
		t.Errorf("profile: %v", err)
	}
	clean := &profiles.Profile{Name: "x"}
	err = checkHostsFile(clean, []string{"nas.test:445", "db.test:5432"}, hosts)
	var usage *UsageError
	if !errors.As(err, &usage) || usage.Flag != "allow-host" || !strings.Contains(err.Error(), "write localhost:5432") {
		t.Errorf("flags: %v", err)
	}
	if err := checkHostsFile(clean, []string{"nas.test:445", "localhost:5432"}, hosts); err != nil {
		t.Errorf("usable entries: %v", err)
	}
}

// The install step's registry on this machine's loopback, named by address
// or as localhost, is reached through a localhost:PORT grant; another
// address gets a cidr: grant. Neither needs a lookup.
func TestRegistryGrantsLiterals(t *testing.T) {
	entries, trusted := registryGrants(context.Background(),
		[]string{"localhost:4873", "LOCALHOST.:4874", "127.0.0.1:4875", "[::1]:4876", "10.0.0.5:4877", "[fd00::5]:4878"},
		slog.New(slog.DiscardHandler))
	want := []string{"localhost:4873", "localhost:4874", "localhost:4875", "localhost:4876", "cidr:10.0.0.5/32:4877", "cidr:fd00::5/128:4878"}
	if !slices.Equal(entries, want) || len(trusted) != 0 {
		t.Errorf("registryGrants = %q, %v; want %q", entries, trusted, want)
	}
}

func writeProfile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
