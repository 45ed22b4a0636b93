package pins

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpbox/mcpbox/launcher/broker"
)

// pin returns a pin whose hash matches its definition.
func pin(def string) broker.Pin {
	sum := sha256.Sum256([]byte(def))
	return broker.Pin{SHA256: hex.EncodeToString(sum[:]), Definition: def}
}

func set(id broker.Identity, tools ...string) *broker.PinSet {
	l := &broker.PinList{Pinned: map[string]broker.Pin{}}
	for _, t := range tools {
		l.Pinned[t] = pin(`{"name":"` + t + `"}`)
	}
	return &broker.PinSet{Format: broker.PinFormat, Server: id.Server, Identity: id.Key, Package: id.Package,
		Lists: map[string]*broker.PinList{"tools": l}}
}

var (
	everything = broker.Identity{Server: "server-everything", Key: "npm:@modelcontextprotocol/server-everything", Package: "@modelcontextprotocol/server-everything"}
	memory     = broker.Identity{Server: "server-memory", Key: "npm:@modelcontextprotocol/server-memory", Package: "@modelcontextprotocol/server-memory"}
)

// TestStoreRoundTrip: what Save writes, Load reads back; the file is the
// owner's alone; no file is no record.
func TestStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pins")
	s := For(dir, everything)
	if got, want := s.Where(), filepath.Join(dir, "npm:@modelcontextprotocol%2Fserver-everything.json"); got != want {
		t.Errorf("Where = %s, want %s", got, want)
	}
	if got, err := s.Load(); got != nil || err != nil {
		t.Fatalf("Load of no file = %v, %v; want no record, no error", got, err)
	}
	if err := s.Save(set(everything, "echo", "add")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(s.Path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("pin file mode %v, %v; want 0600", st.Mode(), err)
	}
	got, err := s.Load()
	if err != nil || got.Server != "server-everything" || got.PinnedCount() != 2 {
		t.Fatalf("Load = %+v, %v", got, err)
	}
}

// TestLoadCorrupt: every way a file can be untrustworthy is ErrCorrupt,
// and the message says which.
func TestLoadCorrupt(t *testing.T) {
	good := pin(`{"name":"echo"}`)
	for _, tc := range []struct{ name, body, why string }{
		{"truncated", `{"format":1,"server":`, "unexpected EOF"},
		{"unknown field", `{"format":1,"server":"x","identity":"k","lists":{},"extra":true}`, `json: unknown field "extra"`},
		{"other format", `{"format":2,"server":"x","identity":"k","lists":{}}`, "format 2, this mcpbox reads 1"},
		{"null list", `{"format":1,"server":"x","identity":"k","lists":{"tools":null}}`, "list tools is null"},
		{"pinned hash", `{"format":1,"server":"x","identity":"k","lists":{"tools":{"pinned":{"echo":{"sha256":"` + good.SHA256 + `","definition":"{\"name\":\"evil\"}","time":"0001-01-01T00:00:00Z"}}}}}`, "the hash of tools/echo does not match"},
		{"pending hash", `{"format":1,"server":"x","identity":"k","lists":{"tools":{"pinned":{},"pending":{"echo":{"sha256":"00","definition":"{}","time":"0001-01-01T00:00:00Z"}}}}}`, "the hash of tools/echo does not match"},
	} {
		p := filepath.Join(t.TempDir(), "x.json")
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := (Store{Path: p}).Load()
		if got != nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p+": pin file is corrupt: "+tc.why) {
			t.Errorf("%s: Load = %v, %v; want ErrCorrupt: %s", tc.name, got, err, tc.why)
		}
	}
}

// TestListFindReset: List names every file, readable or not, sorted; Find
// picks one by any of its names and says which names exist when it
// cannot; Reset removes a corrupt file too.
func TestListFindReset(t *testing.T) {
	dir := t.TempDir()
	if recs, err := List(filepath.Join(dir, "none")); recs != nil || err != nil {
		t.Errorf("List of no directory = %v, %v", recs, err)
	}
	var fe *FindError
	if _, err := Find(dir, "anything"); !errors.As(err, &fe) || !strings.Contains(err.Error(), "no pins recorded in "+dir+" yet") {
		t.Errorf("Find in an empty store: %v", err)
	}
	for _, id := range []broker.Identity{memory, everything} {
		if err := For(dir, id).Save(set(id, "echo")); err != nil {
			t.Fatal(err)
		}
	}
	cmd := CommandIdentity("server.py", []string{"python3", "server.py"})
	if err := os.WriteFile(For(dir, cmd).Path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, junk := range []string{".hidden.json", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, junk), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	if want := []string{"server-everything", "server-memory", "server.py"}; !slices.Equal(names, want) {
		t.Fatalf("List names %v, want %v", names, want)
	}
	if recs[2].Set != nil || !errors.Is(recs[2].Err, ErrCorrupt) {
		t.Errorf("the corrupt file's record: %+v", recs[2])
	}

	for _, name := range []string{"server-memory", memory.Key, memory.Package, "npm:@modelcontextprotocol%2Fserver-memory", For(dir, memory).Path} {
		if r, err := Find(dir, name); err != nil || r.Name != "server-memory" {
			t.Errorf("Find(%q) = %s, %v", name, r.Name, err)
		}
	}
	if _, err := Find(dir, "nope"); !errors.As(err, &fe) || err.Error() != `no pins for "nope"; pinned servers: server-everything, server-memory, server.py` {
		t.Errorf("Find of an unknown name: %v", err)
	}
	// A second file for the same server name: the user must pick by key.
	twin := broker.Identity{Server: "server-memory", Key: "pypi:server-memory"}
	if err := For(dir, twin).Save(set(twin, "echo")); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(dir, "server-memory"); !errors.As(err, &fe) || !slices.Equal(fe.Matches, []string{memory.Key, twin.Key}) ||
		!strings.Contains(err.Error(), `"server-memory" names more than one pinned server; use one of: `+memory.Key+", "+twin.Key) {
		t.Errorf("Find of an ambiguous name: %v", err)
	}

	r, err := Find(dir, "server.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := Reset(r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.File.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reset left %s: %v", r.File.Path, err)
	}
	if err := Reset(r); err != nil {
		t.Errorf("a second Reset: %v", err)
	}
}

// TestOtherTools: the tools of every other readable server, sorted.
func TestOtherTools(t *testing.T) {
	dir := t.TempDir()
	if err := For(dir, everything).Save(set(everything, "echo", "add")); err != nil {
		t.Fatal(err)
	}
	if err := For(dir, memory).Save(set(memory, "read_graph", "create_entities")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := OtherTools(dir, everything), []string{"create_entities", "read_graph"}; !slices.Equal(got, want) {
		t.Errorf("OtherTools = %v, want %v", got, want)
	}
}

// TestServerFromKey: an unreadable file is still listed under a name the
// user recognizes.
func TestServerFromKey(t *testing.T) {
	for key, want := range map[string]string{
		CommandIdentity("my-server", []string{"/usr/bin/my-server", "--stdio"}).Key: "my-server",
		"npm:@modelcontextprotocol/server-memory":                                   "server-memory",
		"pypi:mcp-server-fetch":                                                     "mcp-server-fetch",
		"cmd:short-abc":                                                             "short-abc",
		"npm:@scope/":                                                               "npm:@scope/",
	} {
		if got := serverFromKey(key); got != want {
			t.Errorf("serverFromKey(%q) = %q, want %q", key, got, want)
		}
	}
}
