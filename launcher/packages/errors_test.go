package packages

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The installers' output for failures the tests cannot provoke offline,
// in the formats of npm 6–11 and pip 23.
func TestDiagnose(t *testing.T) {
	reg := &url.URL{Scheme: "https", Host: "npm.mirror.invalid", Path: "/"}
	npmPlan := func(name, version, install string) *Plan {
		return &Plan{spec: Spec{Ecosystem: NPM, Name: name, Version: version}, install: install, opts: PlanOptions{Registry: reg}}
	}
	pipPlan := func(name, version string, links string) *Plan {
		p := &Plan{spec: Spec{Ecosystem: PyPI, Name: name, Version: version}, install: version, opts: PlanOptions{FindLinks: links}}
		if links == "" {
			p.opts.Registry = &url.URL{Scheme: "https", Host: "pypi.mirror.invalid", Path: "/simple/"}
		}
		return p
	}
	tests := []struct {
		name   string
		plan   *Plan
		output string
		reason string
		hint   string
	}{
		{"npm 6 ETARGET", npmPlan("@x/y", "9.9.9", "9.9.9"),
			"npm ERR! code ETARGET\nnpm ERR! notarget No matching version found for @x/y@9.9.9.\n",
			"npm has no version 9.9.9 of @x/y", "check the version, or drop @9.9.9 to run the latest"},
		{"ETARGET of a pinned version", npmPlan("@x/y", "", "1.0.0"),
			"npm error code ETARGET\nnpm error notarget No matching version found for @x/y@1.0.0.\n",
			"npm has no version 1.0.0 of @x/y", `the cache pins @x/y@1.0.0 for ""; update the package to re-resolve it`},
		{"npm 6 E404", npmPlan("@x/nope", "", ""),
			"npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://npm.mirror.invalid/@x%2fnope - Not found\nnpm ERR! 404  '@x/nope@latest' is not in this registry.\n",
			"npm has no package @x/nope at https://npm.mirror.invalid/", "check the package name"},
		{"DNS failure", npmPlan("a", "", ""),
			"npm error code ENOTFOUND\nnpm error syscall getaddrinfo\nnpm error errno ENOTFOUND\nnpm error network request to https://npm.mirror.invalid/a failed, reason: getaddrinfo ENOTFOUND npm.mirror.invalid\n",
			"could not reach the npm registry https://npm.mirror.invalid/", "check the network or npm's registry setting"},
		{"egress denied by the sandbox", npmPlan("a", "", ""),
			"npm error code ECONNRESET\nnpm error network aborted\n",
			"could not reach the npm registry https://npm.mirror.invalid/", "check the network"},
		{"timeout", npmPlan("a", "", ""),
			"npm ERR! code ETIMEDOUT\nnpm ERR! errno ETIMEDOUT\n",
			"could not reach the npm registry https://npm.mirror.invalid/", "check the network"},
		{"private package", npmPlan("@corp/x", "", ""),
			"npm error code E401\nnpm error 401 Unauthorized - GET https://npm.mirror.invalid/@corp%2fx\n",
			"the npm registry https://npm.mirror.invalid/ refused to serve @corp/x (E401)", "mcpbox installs without your npm credentials"},
		{"integrity", npmPlan("a", "", ""),
			"npm error code EINTEGRITY\nnpm error sha512-abc integrity checksum failed when using sha512: wanted sha512-abc but got sha512-def.\n",
			"a downloaded package did not match the integrity hash the registry gave for it", "try again"},
		{"something else", npmPlan("a", "", ""),
			"npm error code EBADENGINE\nnpm error engine Unsupported engine\nnpm error notsup Required: {\"node\":\">=99\"}\n",
			`npm install failed: npm error code EBADENGINE; npm error engine Unsupported engine; npm error notsup Required: {"node":">=99"}`, "try `npm install --ignore-scripts a`"},
		{"pip: no such version", pipPlan("mcp-server-git", "9.9", ""),
			"ERROR: Could not find a version that satisfies the requirement mcp-server-git==9.9 (from versions: 0.5.0, 0.6.2)\nERROR: No matching distribution found for mcp-server-git==9.9\n",
			`the Python package index https://pypi.mirror.invalid/simple/ has no wheel of mcp-server-git matching "9.9" (it has: 0.5.0, 0.6.2)`, "check the version"},
		{"pip: sources only or unknown", pipPlan("sdist-only", "", ""),
			"ERROR: Could not find a version that satisfies the requirement sdist-only (from versions: none)\nERROR: No matching distribution found for sdist-only\n",
			"the Python package index https://pypi.mirror.invalid/simple/ has no wheel of sdist-only", "check the package name; mcpbox installs wheels only"},
		{"pip: unreachable", pipPlan("x", "", ""),
			"WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/x/\nERROR: Could not find a version that satisfies the requirement x (from versions: none)\nERROR: No matching distribution found for x\n",
			"could not reach the Python package index https://pypi.mirror.invalid/simple/", "check the network, PIP_INDEX_URL"},
		{"pip: hashes", pipPlan("x", "", ""),
			"ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.\n",
			"a downloaded wheel did not match its hash", "try again"},
		{"pip: local directory", pipPlan("x", "2.0", "/wheels"),
			"ERROR: Could not find a version that satisfies the requirement x==2.0 (from versions: 1.0)\nERROR: No matching distribution found for x==2.0\n",
			`/wheels has no wheel of x matching "2.0" (it has: 1.0)`, "check the version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.plan.Diagnose([]byte(tt.output))
			if e.Reason != tt.reason || !strings.HasPrefix(e.Hint, tt.hint) {
				t.Errorf("Diagnose =\n {%q, %q}\nwant\n {%q, %q…}", e.Reason, e.Hint, tt.reason, tt.hint)
			}
			if !strings.HasPrefix(e.Error(), "install "+tt.plan.spec.String()+": "+e.Reason+"; ") {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}
}

// Credentials in a registry URL never reach a message or the cache.
func TestRegistryCredentialsStayOut(t *testing.T) {
	needTool(t, "node")
	reg, _ := url.Parse("https://user:s3cret@npm.mirror.invalid/")
	p := &Plan{spec: Spec{Ecosystem: NPM, Name: "a"}, opts: PlanOptions{Registry: reg}}
	e := p.Diagnose([]byte("npm error code ECONNREFUSED\n"))
	if strings.Contains(e.Error(), "s3cret") {
		t.Errorf("the error shows the password: %s", e)
	}
	c := newCache(t)
	spec := &Spec{Ecosystem: NPM, Name: "a"}
	p, err := c.prepare(spec, PlanOptions{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFakeTree(p.WorkDir, "a", "1.0.0", demoBins); err != nil {
		t.Fatal(err)
	}
	entry, err := c.Commit(spec, p, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(entry.Dir, metaFile))
	if strings.Contains(string(b), "s3cret") || entry.Meta.Registry != "https://npm.mirror.invalid/" {
		t.Errorf("the cache records the password: registry %q", entry.Meta.Registry)
	}
}
