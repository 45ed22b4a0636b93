package packages

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

func TestAllowEntry(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://npm.mirror.invalid/", "npm.mirror.invalid:443"},
		{"https://npm.mirror.invalid:8443/repo/", "npm.mirror.invalid:8443"},
		{"http://npm.mirror.invalid/", "npm.mirror.invalid:80"},
		{"https://user:secret@npm.mirror.invalid/", "npm.mirror.invalid:443"},
		{"https://[2001:db8::1]/simple/", "[2001:db8::1]:443"},
	} {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := AllowEntry(u); got != tt.want {
			t.Errorf("AllowEntry(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// fakeTool puts an executable shell script called name first on PATH.
func fakeTool(t *testing.T, name, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestNPMRegistry(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	t.Run("real npm", func(t *testing.T) {
		needTool(t, "npm")
		u, err := NPMRegistry(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			t.Errorf("NPMRegistry = %s", u)
		}
	})
	t.Run("configured", func(t *testing.T) {
		fakeTool(t, "npm", `[ "$*" = "config get registry" ] && echo "https://npm.mirror.invalid/repo/" && exit 0; exit 2`)
		u, err := NPMRegistry(ctx)
		if err != nil || u.String() != "https://npm.mirror.invalid/repo/" {
			t.Errorf("NPMRegistry = %v, %v", u, err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		fakeTool(t, "npm", `echo "not a url"`)
		if _, err := NPMRegistry(ctx); err == nil || !strings.Contains(err.Error(), "is not an http(s) URL") {
			t.Errorf("NPMRegistry: %v", err)
		}
	})
	t.Run("npm fails", func(t *testing.T) {
		fakeTool(t, "npm", `echo "npm error config broken" >&2; exit 1`)
		if _, err := NPMRegistry(ctx); err == nil || !strings.Contains(err.Error(), "npm error config broken") {
			t.Errorf("NPMRegistry: %v", err)
		}
	})
	t.Run("no npm", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if _, err := NPMRegistry(ctx); err == nil || !strings.Contains(err.Error(), "npm is not installed") {
			t.Errorf("NPMRegistry: %v", err)
		}
	})
}

func TestPyPIIndex(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	clear := func(t *testing.T) {
		for _, v := range []string{"PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX"} {
			t.Setenv(v, "")
		}
	}
	t.Run("PIP_INDEX_URL first", func(t *testing.T) {
		clear(t)
		t.Setenv("PIP_INDEX_URL", "https://pip.mirror.invalid/simple/")
		t.Setenv("UV_INDEX_URL", "https://uv.mirror.invalid/simple/")
		if u, err := PyPIIndex(ctx); err != nil || u.Host != "pip.mirror.invalid" {
			t.Errorf("PyPIIndex = %v, %v", u, err)
		}
	})
	t.Run("UV_INDEX_URL", func(t *testing.T) {
		clear(t)
		t.Setenv("UV_INDEX_URL", "https://uv.mirror.invalid/simple/")
		if u, err := PyPIIndex(ctx); err != nil || u.Host != "uv.mirror.invalid" {
			t.Errorf("PyPIIndex = %v, %v", u, err)
		}
	})
	t.Run("bad variable", func(t *testing.T) {
		clear(t)
		t.Setenv("PIP_INDEX_URL", "/local/dir")
		if _, err := PyPIIndex(ctx); err == nil || !strings.Contains(err.Error(), "PIP_INDEX_URL") {
			t.Errorf("PyPIIndex: %v", err)
		}
	})
	t.Run("pip config", func(t *testing.T) {
		clear(t)
		fakeTool(t, "python3", `[ "$*" = "-m pip config get global.index-url" ] && echo "https://cfg.mirror.invalid/simple" && exit 0; exit 1`)
		if u, err := PyPIIndex(ctx); err != nil || u.String() != "https://cfg.mirror.invalid/simple" {
			t.Errorf("PyPIIndex = %v, %v", u, err)
		}
	})
	t.Run("nothing configured", func(t *testing.T) {
		clear(t)
		fakeTool(t, "python3", `echo "ERROR: No such key - global.index-url" >&2; exit 1`)
		_, err := PyPIIndex(ctx)
		if !errors.Is(err, ErrNoIndex) || err.Error() != "no Python package index is configured; set PIP_INDEX_URL or use --find-links" {
			t.Errorf("PyPIIndex: %v", err)
		}
	})
}

func TestCA(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	os.WriteFile(bundle, []byte("x"), 0o644)
	t.Run("npm defaults", func(t *testing.T) {
		fakeTool(t, "npm", `echo null`)
		t.Setenv("NODE_EXTRA_CA_CERTS", "")
		if ca, err := NPMCA(ctx); err != nil || ca != (CA{}) {
			t.Errorf("NPMCA = %+v, %v", ca, err)
		}
	})
	t.Run("npm cafile and extra", func(t *testing.T) {
		fakeTool(t, "npm", `echo `+bundle)
		t.Setenv("NODE_EXTRA_CA_CERTS", bundle)
		if ca, err := NPMCA(ctx); err != nil || ca != (CA{File: bundle, Extra: bundle}) {
			t.Errorf("NPMCA = %+v, %v", ca, err)
		}
	})
	t.Run("npm cafile missing", func(t *testing.T) {
		fakeTool(t, "npm", `echo /nonexistent/ca.pem`)
		t.Setenv("NODE_EXTRA_CA_CERTS", "")
		if _, err := NPMCA(ctx); err == nil || !strings.Contains(err.Error(), "npm's cafile is set to /nonexistent/ca.pem") {
			t.Errorf("NPMCA: %v", err)
		}
	})
	t.Run("PIP_CERT", func(t *testing.T) {
		t.Setenv("PIP_CERT", bundle)
		if ca, err := PyPICA(ctx); err != nil || ca.File != bundle {
			t.Errorf("PyPICA = %+v, %v", ca, err)
		}
	})
	t.Run("pip config cert", func(t *testing.T) {
		t.Setenv("PIP_CERT", "")
		fakeTool(t, "python3", `[ "$*" = "-m pip config get global.cert" ] && echo `+bundle+` && exit 0; exit 1`)
		if ca, err := PyPICA(ctx); err != nil || ca.File != bundle {
			t.Errorf("PyPICA = %+v, %v", ca, err)
		}
	})
	t.Run("pip default", func(t *testing.T) {
		t.Setenv("PIP_CERT", "")
		fakeTool(t, "python3", `exit 1`)
		if ca, err := PyPICA(ctx); err != nil || ca != (CA{}) {
			t.Errorf("PyPICA = %+v, %v", ca, err)
		}
	})
}
