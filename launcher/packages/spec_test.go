package packages

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		argv []string
		want *Spec // nil: a host command
	}{
		// Command lines as they appear in MCP client configs.
		{[]string{"npx", "-y", "@modelcontextprotocol/server-filesystem", "/a", "/b"},
			&Spec{Ecosystem: NPM, Name: "@modelcontextprotocol/server-filesystem", Args: []string{"/a", "/b"}}},
		{[]string{"npx", "@scope/pkg@1.2.3", "--flag"},
			&Spec{Ecosystem: NPM, Name: "@scope/pkg", Version: "1.2.3", Args: []string{"--flag"}}},
		{[]string{"npx", "-y", "@modelcontextprotocol/server-memory@latest"},
			&Spec{Ecosystem: NPM, Name: "@modelcontextprotocol/server-memory", Version: "latest"}},
		{[]string{"npx", "--yes", "mcp-remote@^0.1", "https://example.invalid/sse", "--header", "A: b"},
			&Spec{Ecosystem: NPM, Name: "mcp-remote", Version: "^0.1", Args: []string{"https://example.invalid/sse", "--header", "A: b"}}},
		{[]string{"npx", "-p", "pkg", "bin", "args"},
			&Spec{Ecosystem: NPM, Name: "pkg", Bin: "bin", Args: []string{"args"}}},
		{[]string{"npx", "-y", "--package=@scope/tools@2.0.0", "tool-a", "-v"},
			&Spec{Ecosystem: NPM, Name: "@scope/tools", Version: "2.0.0", Bin: "tool-a", Args: []string{"-v"}}},
		{[]string{"npx", "--package", "pkg@>=1.0.0 <2", "cli"},
			&Spec{Ecosystem: NPM, Name: "pkg", Version: ">=1.0.0 <2", Bin: "cli"}},
		{[]string{"npx", "--no-install", "-q", "server-x"},
			&Spec{Ecosystem: NPM, Name: "server-x"}},
		{[]string{"npx", "-y", "--", "server-x", "--port", "3"},
			&Spec{Ecosystem: NPM, Name: "server-x", Args: []string{"--port", "3"}}},
		{[]string{"/usr/local/bin/npx", "-y", "server-x"},
			&Spec{Ecosystem: NPM, Name: "server-x"}},
		{[]string{`C:\Program Files\nodejs\npx.cmd`, "-y", "server-x"},
			&Spec{Ecosystem: NPM, Name: "server-x"}},
		{[]string{"npm", "exec", "--yes", "--", "pkg", "--opt", "x"},
			&Spec{Ecosystem: NPM, Name: "pkg", Args: []string{"--opt", "x"}}},
		{[]string{"npm", "exec", "-y", "pkg@1.0.0", "/dir"},
			&Spec{Ecosystem: NPM, Name: "pkg", Version: "1.0.0", Args: []string{"/dir"}}},
		{[]string{"npm", "exec", "-y", "pkg", "/dir", "--", "--opt", "--", "x"},
			&Spec{Ecosystem: NPM, Name: "pkg", Args: []string{"/dir", "--opt", "--", "x"}}},
		{[]string{"npx", "-y", "-p=pkg@1", "cli"},
			&Spec{Ecosystem: NPM, Name: "pkg", Version: "1", Bin: "cli"}},
		{[]string{"npm", "x", "-p", "@a/b", "--", "b-cli", "--x"},
			&Spec{Ecosystem: NPM, Name: "@a/b", Bin: "b-cli", Args: []string{"--x"}}},
		{[]string{"uvx", "mcp-server-fetch"},
			&Spec{Ecosystem: PyPI, Name: "mcp-server-fetch"}},
		{[]string{"uvx", "mcp-server-time", "--local-timezone=Europe/Paris"},
			&Spec{Ecosystem: PyPI, Name: "mcp-server-time", Args: []string{"--local-timezone=Europe/Paris"}}},
		{[]string{"uvx", "--from", "mcp-server-git==0.6.2", "mcp-server-git", "--repository", "/r"},
			&Spec{Ecosystem: PyPI, Name: "mcp-server-git", Version: "0.6.2", Args: []string{"--repository", "/r"}}},
		{[]string{"uvx", "--from=mcp-tools>=1.0,<2", "tool-b"},
			&Spec{Ecosystem: PyPI, Name: "mcp-tools", Version: ">=1.0,<2", Bin: "tool-b"}},
		{[]string{"uvx", "mcp-server-git@0.6.2", "-r", "/r"},
			&Spec{Ecosystem: PyPI, Name: "mcp-server-git", Version: "0.6.2", Args: []string{"-r", "/r"}}},
		{[]string{"uvx", "mcp-server-fetch@latest"},
			&Spec{Ecosystem: PyPI, Name: "mcp-server-fetch", Version: "latest"}},
		{[]string{"uvx", "mcp-server-git==0.6.2"},
			&Spec{Ecosystem: PyPI, Name: "mcp-server-git", Version: "0.6.2"}},
		{[]string{"uv", "tool", "run", "-q", "mcp-server-fetch"},
			&Spec{Ecosystem: PyPI, Name: "mcp-server-fetch"}},
		{[]string{"pipx", "run", "mcp-server-time"},
			&Spec{Ecosystem: PyPI, Name: "mcp-server-time"}},
		{[]string{"pipx", "run", "--spec", "Demo_MCP==0.1.0", "demo-mcp", "x"},
			&Spec{Ecosystem: PyPI, Name: "Demo_MCP", Version: "0.1.0", Args: []string{"x"}}},
		// Host commands.
		{[]string{"node", "x.js"}, nil},
		{[]string{"python3", "server.py"}, nil},
		{[]string{"docker", "run", "-i", "mcp/fetch"}, nil},
		{[]string{"npm", "run", "start"}, nil},
		{[]string{"uv", "run", "server.py"}, nil},
		{[]string{"pipx", "install", "x"}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			got, ok, err := Parse(tt.argv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ok != (tt.want != nil) {
				t.Fatalf("Parse ok = %v, want %v", ok, tt.want != nil)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		argv []string
		want string // in the error
	}{
		{[]string{"npx"}, "no package"},
		{[]string{"npx", "-y"}, "no package"},
		{[]string{"npx", "--registry", "http://x", "pkg"}, "unknown option --registry"},
		{[]string{"npx", "--prefer-offline", "pkg"}, "unknown option --prefer-offline"},
		{[]string{"npx", "-c", "echo hi"}, "option -c runs a shell"},
		{[]string{"npx", "-p"}, "option -p needs a value"},
		{[]string{"npx", "-p", "a", "-p", "b", "cmd"}, "2 --package options"},
		{[]string{"npx", "-p", "a", "./script.js"}, "not a command name"},
		{[]string{"npx", "-y", "github:user/repo"}, "not a registry package"},
		{[]string{"npx", "-y", "user/repo"}, "not a registry package"},
		{[]string{"npx", "./local"}, "not a registry package"},
		{[]string{"npx", "alias@npm:real@1"}, "not a registry package"},
		{[]string{"npx", "pkg@file:../x"}, "not a registry package"},
		{[]string{"npx", "pkg@"}, "empty version"},
		{[]string{"npx", "Not Valid"}, "not a valid npm package name"},
		{[]string{"npx", "--yes=true", "pkg"}, "takes no value"},
		{[]string{"npm", "exec", "pkg", "--flag"}, "option --flag after the package goes to npm"},
		{[]string{"npm", "exec", "--workspace", "a", "pkg"}, "unknown option --workspace"},
		{[]string{"uvx"}, "no package"},
		{[]string{"uvx", "--with", "x", "pkg"}, "option --with adds packages"},
		{[]string{"uvx", "--python", "3.12", "pkg"}, "option --python picks an interpreter"},
		{[]string{"uvx", "--index-url", "http://x", "pkg"}, "option --index-url sets the package index"},
		{[]string{"uvx", "--refresh", "pkg"}, "unknown option --refresh"},
		{[]string{"uvx", "--spec", "a", "pkg"}, "unknown option --spec"},
		{[]string{"uvx", "--from"}, "option --from needs a value"},
		{[]string{"uvx", "pkg[cli]"}, "extras are not supported"},
		{[]string{"uvx", "--from", "git+https://example.invalid/x.git", "x"}, "not a registry package"},
		{[]string{"uvx", "pkg=="}, "empty version"},
		{[]string{"pipx", "run", "--from", "a", "b"}, "unknown option --from"},
		{[]string{"pipx", "run", "pkg@1.0"}, "write NAME==VERSION"},
		{[]string{"pipx", "run", "--spec", "a", "b/c"}, "not a command name"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			_, ok, err := Parse(tt.argv)
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", tt.want)
			}
			if !ok {
				t.Errorf("Parse ok = false with an error: a package command with a bad option must not fall back to a host command")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSpecString(t *testing.T) {
	for _, tt := range []struct {
		s    Spec
		want string
	}{
		{Spec{Ecosystem: NPM, Name: "@a/b"}, "@a/b"},
		{Spec{Ecosystem: NPM, Name: "@a/b", Version: "^1"}, "@a/b@^1"},
		{Spec{Ecosystem: PyPI, Name: "x", Version: "1.0"}, "x==1.0"},
		{Spec{Ecosystem: PyPI, Name: "x", Version: ">=1"}, "x>=1"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestRequirement(t *testing.T) {
	for _, tt := range []struct{ v, want string }{
		{"", "p"}, {"latest", "p"}, {"1.0", "p==1.0"}, {">=1,<2", "p>=1,<2"}, {"==1.*", "p==1.*"},
	} {
		if got := requirement("p", tt.v); got != tt.want {
			t.Errorf("requirement(p, %q) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
