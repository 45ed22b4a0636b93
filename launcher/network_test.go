package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/profiles"
	"github.com/mcpbox/mcpbox/sandbox/egress"
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

// The egress log gets one JSON line per decision, as it always has, and
// the observer the same decision as a value (its time keeps its location,
// which a trip through JSON would not).
func TestEgressEvents(t *testing.T) {
	if egressEvents(nil, nil) != nil {
		t.Error("egressEvents(nil, nil) is not nil: the proxy would marshal events for nobody")
	}
	loc := time.FixedZone("test", 3600)
	ev := egress.Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, loc), Kind: egress.KindConnect, Via: "transparent",
		Host: "api.example.com", Port: 443, Addr: "203.0.113.7:443", Verdict: egress.VerdictAllow,
		BytesUp: 10, BytesDown: 20, Duration: 1500 * time.Millisecond}
	const line = `{"time":"2026-01-02T03:04:05.000000006+01:00","kind":"connect","via":"transparent","host":"api.example.com",` +
		`"port":443,"addr":"203.0.113.7:443","verdict":"allow","bytes_up":10,"bytes_down":20,"duration_ns":1500000000}` + "\n"
	var log bytes.Buffer
	var seen []egress.Event
	egressEvents(&log, func(e egress.Event) { seen = append(seen, e) })(ev)
	if log.String() != line {
		t.Errorf("egress log line\n%s\nwant\n%s", log.String(), line)
	}
	if len(seen) != 1 || seen[0] != ev || seen[0].Time.Location() != loc {
		t.Errorf("observer got %+v, want %+v", seen, ev)
	}
	log.Reset()
	egressEvents(&log, nil)(ev)
	if log.String() != line {
		t.Errorf("egress log line without an observer\n%s\nwant\n%s", log.String(), line)
	}
	seen = nil
	egressEvents(nil, func(e egress.Event) { seen = append(seen, e) })(ev)
	if len(seen) != 1 || seen[0] != ev {
		t.Errorf("observer without a log got %+v, want %+v", seen, ev)
	}
}

// The proxy reports from many goroutines at once; the consumers still get
// one event at a time, in the same order, and every log line whole.
func TestEgressEventsConcurrent(t *testing.T) {
	var log bytes.Buffer
	var seen []int
	events := egressEvents(&log, func(e egress.Event) { seen = append(seen, e.Port) })
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				events(egress.Event{Kind: egress.KindDNS, Host: strings.Repeat("a", 200), Port: g*50 + i, Verdict: egress.VerdictDeny})
			}
		}()
	}
	wg.Wait()
	var logged []int
	for _, l := range strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n") {
		var e egress.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		logged = append(logged, e.Port)
	}
	if len(seen) != 1000 || !slices.Equal(logged, seen) {
		t.Errorf("observer saw %d events, log has %d lines; same order: %v", len(seen), len(logged), slices.Equal(logged, seen))
	}
}
