package profiles

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// loadBytes loads data as a profile file (extends resolved in c).
func loadBytes(t *testing.T, c *Catalog, data []byte) *Profile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := c.LoadFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return p
}

// TestYAMLRoundTrip renders effective profiles and loads them back.
func TestYAMLRoundTrip(t *testing.T) {
	c := NewCatalog("")
	var profiles []*Profile
	for _, name := range builtinNames(t) {
		p, err := c.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, p)
	}
	// Strings that need quoting, changed by a caller after loading.
	odd, err := c.Get("memory")
	if err != nil {
		t.Fatal(err)
	}
	odd.Description = "true"
	odd.Network.Allow = []string{"*.example.com", "cidr:10.0.0.0/8:5432", "1.2.3.4", "host:", "null", "a #b", "ä.example"}
	odd.Env = []string{"yes", "NO"}
	odd.Setenv = map[string]string{"A": "line\nbreak", "B": "123", "C": "", "D": "'q' \"dq\" \\", "E": "~"}
	odd.Mounts = append(odd.Mounts, Mount{Host: "~/my notes", Path: "/notes", Mode: AccessRO})
	odd.Tools.Deny = []string{"- x", "[y]", "{z}", "@w", "%v", "!t", "&a", "*b", "|c", ">d"}
	odd.Limits = Limits{Memory: 1000, PIDs: 7, CPUs: 1.25, Tmp: 3 << 40}
	profiles = append(profiles, odd)

	for _, p := range profiles {
		out, err := p.YAML()
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		back := loadBytes(t, c, out)
		if got, want := policy(back), policy(p); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: loading YAML() gives\n%+v\nwant\n%+v\n%s", p.Name, got, want, out)
		}
		if back.Name != p.Name || back.Description != p.Description || !reflect.DeepEqual(back.Match, p.Match) {
			t.Errorf("%s: name, description or match changed: %q %q %v", p.Name, back.Name, back.Description, back.Match)
		}
	}
}

func TestYAMLRefusesWhatDoesNotLoad(t *testing.T) {
	p, err := NewCatalog("").Get("time")
	if err != nil {
		t.Fatal(err)
	}
	p.Limits.PIDs = 0
	if _, err := p.YAML(); err == nil || !strings.Contains(err.Error(), "limits.pids") {
		t.Errorf("YAML() of a profile with pids 0 = %v, want an error naming limits.pids", err)
	}
}

func TestStarter(t *testing.T) {
	c := NewCatalog("")
	untrusted, err := c.Get("untrusted")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		eco, pkg string
		args     []string
		name     string
		hints    []string
		noMatch  bool
	}{
		{eco: NPM, pkg: "@modelcontextprotocol/server-filesystem", args: []string{"/home/u/notes", "~/src"},
			name: "filesystem", hints: []string{`look like paths; set ro or rw if the server must reach them: "/home/u/notes", "~/src"`}},
		{eco: PyPI, pkg: "mcp-server-fetch", name: "fetch"},
		{eco: NPM, pkg: "@acme/postgres-mcp-server", args: []string{"postgresql://user:secret@db.internal:5432/app"},
			name: "postgres", hints: []string{`name these hosts; allow the ones it must reach: "db.internal:5432"`}},
		// A service on this machine is reached through localhost:PORT; an
		// address through cidr:. Neither is a host entry.
		{eco: NPM, pkg: "@acme/local-postgres-mcp", args: []string{"postgresql://localhost/app", "redis://127.0.0.1", "http://[::1]:8080/", "mysql://10.0.0.5/db", "http://[fd00::5]/"},
			name: "local-postgres", hints: []string{`allow the ones it must reach: "localhost:5432", "localhost:6379", "localhost:8080", "cidr:10.0.0.5/32:3306", "cidr:[fd00::5/128]:80"`}},
		{eco: NPM, pkg: "Weird_Name.js", name: "weird-name-js"},
		{eco: "", pkg: "/usr/local/bin/my server\n# injected: yes", args: []string{"a\nb: c"}, name: "my-server-injected-yes"},
		{eco: NPM, pkg: "@x/mcp", name: "mcp"},
		{eco: NPM, pkg: "___", name: "server", noMatch: true, hints: []string{`"___" is not a valid npm package name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Starter(tt.eco, tt.pkg, tt.args)
			p := loadBytes(t, c, out)
			if p.Name != tt.name {
				t.Errorf("name = %q, want %q", p.Name, tt.name)
			}
			if tt.eco != "" && !tt.noMatch && !p.Matches(tt.eco, tt.pkg) {
				t.Errorf("starter does not match %s %s", tt.eco, tt.pkg)
			}
			if (tt.eco == "" || tt.noMatch) && len(p.Match) != 0 {
				t.Errorf("Match = %v for a host command", p.Match)
			}
			if got, want := policy(p), policy(untrusted); !reflect.DeepEqual(got, want) {
				t.Errorf("starter is not at the strictest defaults:\n%+v\nwant\n%+v", got, want)
			}
			for _, h := range tt.hints {
				if !strings.Contains(string(out), h) {
					t.Errorf("no hint %q in\n%s", h, out)
				}
			}
			if strings.Contains(string(out), "secret") {
				t.Errorf("the starter copies a password from the arguments:\n%s", out)
			}
			// Every field is explained by a comment above it.
			lines := strings.Split(string(out), "\n")
			for i, l := range lines {
				if i > 0 && l != "" && l[0] != ' ' && l[0] != '#' && !strings.HasPrefix(lines[i-1], "#") {
					t.Errorf("line %d %q has no comment above it", i+1, l)
				}
			}
		})
	}
}

func TestExpandHost(t *testing.T) {
	for host, want := range map[string]string{
		"~":                "/home/u",
		"~/notes":          "/home/u/notes",
		"${STATE}":         "/state/srv",
		"${STATE}/db/x":    "/state/srv/db/x",
		"/srv/data":        "/srv/data",
		"/srv/${STATE}":    "/srv/${STATE}",
		"${STATE}x/../etc": "${STATE}x/../etc",
	} {
		if got := (Mount{Host: host}).ExpandHost("/home/u", "/state/srv"); got != want {
			t.Errorf("ExpandHost(%q) = %q, want %q", host, got, want)
		}
	}
}
