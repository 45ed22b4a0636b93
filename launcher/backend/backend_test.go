package backend

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestChooseSettings: explicit settings are taken as they are (containerd
// without a probe), rootless is refused to root, and auto is containerd
// for root without a probe, else whatever the probe says.
func TestChooseSettings(t *testing.T) {
	const addr = "/run/containerd/containerd.sock"
	for _, tc := range []struct {
		name    string
		setting string
		uid     int
		probeOK bool
		kind    string
		why     string
		probed  bool
		err     error
	}{
		{"auto as root", Auto, 0, false, Containerd, "uid 0 is root: sessions run through containerd at " + addr, false, nil},
		{"empty as root", "", 0, false, Containerd, "uid 0 is root", false, nil},
		{"auto, socket usable", Auto, 1000, true, Containerd, "probe says yes", true, nil},
		{"auto, socket unusable", Auto, 1000, false, Rootless, "probe says no", true, nil},
		{"empty, socket unusable", "", 1000, false, Rootless, "probe says no", true, nil},
		{"containerd as user", Containerd, 1000, false, Containerd, "asked for", false, nil},
		{"containerd as root", Containerd, 0, false, Containerd, "asked for", false, nil},
		{"rootless as user", Rootless, 1000, true, Rootless, "asked for", false, nil},
		{"rootless as root", Rootless, 0, true, "", "", false, ErrRootlessAsRoot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probed := false
			probe := func() (bool, string) {
				probed = true
				if tc.probeOK {
					return true, "probe says yes"
				}
				return false, "probe says no"
			}
			c, err := choose(tc.setting, tc.uid, probe, addr)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if c.Kind != tc.kind || !strings.Contains(c.Why, tc.why) || probed != tc.probed {
				t.Errorf("choice %+v (probed %v), want kind %q, why with %q, probed %v", c, probed, tc.kind, tc.why, tc.probed)
			}
		})
	}
}

func TestCheckSetting(t *testing.T) {
	for _, s := range []string{"", Auto, Containerd, Rootless} {
		if err := CheckSetting(s); err != nil {
			t.Errorf("CheckSetting(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"Rootless", "docker", " auto", "runc"} {
		err := CheckSetting(s)
		if err == nil || !strings.Contains(err.Error(), "use auto, containerd or rootless") {
			t.Errorf("CheckSetting(%q) = %v, want an error that lists the settings", s, err)
		}
		if _, err := Choose(context.Background(), s, "/nonexistent.sock"); err == nil {
			t.Errorf("Choose(%q) accepted it", s)
		}
	}
}

// TestProbeSockets: what the probe says of sockets a session cannot use.
func TestProbeSockets(t *testing.T) {
	dir := t.TempDir()
	ctx := testutil.Context(t, 60e9)

	missing := filepath.Join(dir, "missing.sock")
	if ok, why := probe(ctx, missing, 1000); ok || why != "no containerd socket at "+missing {
		t.Errorf("missing socket: %v %q", ok, why)
	}

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if ok, why := probe(ctx, stale, 1000); ok || !strings.Contains(why, "nothing answers at "+stale) {
		t.Errorf("stale socket: %v %q", ok, why)
	}

	// Something that accepts connections and closes them is not
	// containerd: connect(2) alone does not make the socket usable.
	other := filepath.Join(dir, "other.sock")
	l, err = net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if ok, why := probe(ctx, other, 1000); ok || !strings.Contains(why, "containerd does not answer there") {
		t.Errorf("a socket that is not containerd's: %v %q", ok, why)
	}
}

// TestProbeContainerd: as root, with this host's containerd, auto is
// containerd, and the probe itself finds the daemon answering.
func TestProbeContainerd(t *testing.T) {
	addr := testutil.RequiresContainerd(t)
	ctx := testutil.Context(t, 60e9)
	c, err := Choose(ctx, Auto, addr)
	if err != nil || c.Kind != Containerd {
		t.Errorf("Choose(auto) as root = %+v, %v; want containerd", c, err)
	}
	if ok, why := probe(ctx, addr, 0); !ok || !strings.Contains(why, "uid 0 may open "+addr+" and containerd ") {
		t.Errorf("probe of %s: %v %q", addr, ok, why)
	}
}

func TestMapOut(t *testing.T) {
	for _, tc := range []struct {
		m      string
		id     int
		out    int
		mapped bool
	}{
		{"         0          0 4294967295\n", 0, 0, true},
		{"         0          0 4294967295\n", 1000, 1000, true},
		{"0 1000 1\n1 100000 1\n", 0, 1000, true},
		{"0 1000 1\n1 100000 1\n", 1, 100000, true},
		{"0 1000 1\n1 100000 1\n", 2, 0, false},
		{"0 1000 1\n1 100000 65536\n", 65534, 165533, true},
		{"", 0, 0, false},
	} {
		out, ok := mapOut(strings.NewReader(tc.m), tc.id)
		if out != tc.out || ok != tc.mapped {
			t.Errorf("mapOut(%q, %d) = %d, %v; want %d, %v", tc.m, tc.id, out, ok, tc.out, tc.mapped)
		}
	}
}
