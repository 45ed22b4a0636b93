package packages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// configTimeout bounds one configuration query (npm starts in ~0.2 s).
const configTimeout = 15 * time.Second

// ErrNoIndex means no Python package index is configured. mcpbox has no
// default index: it uses the one the user's tools are set up with.
var ErrNoIndex = errors.New("no Python package index is configured; set PIP_INDEX_URL or use --find-links")

// NPMRegistry returns the registry npm is configured to use, from
// `npm config get registry` (which honours .npmrc files and npm_config_*
// variables the way npx would).
func NPMRegistry(ctx context.Context) (*url.URL, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return nil, fmt.Errorf("npm is not installed: mcpbox asks npm which registry to use (%w)", err)
	}
	out, err := query(ctx, npm, "config", "get", "registry")
	if err != nil {
		return nil, fmt.Errorf("npm config get registry: %w", err)
	}
	u, err := parseRegistry(out)
	if err != nil {
		return nil, fmt.Errorf("npm config get registry: %w", err)
	}
	return u, nil
}

// PyPIIndex returns the Python package index from PIP_INDEX_URL,
// UV_INDEX_URL, UV_DEFAULT_INDEX or pip's global.index-url setting, in that
// order, and ErrNoIndex when none is set.
func PyPIIndex(ctx context.Context) (*url.URL, error) {
	for _, v := range []string{"PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX"} {
		if s := os.Getenv(v); s != "" {
			u, err := parseRegistry(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v, err)
			}
			return u, nil
		}
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, ErrNoIndex
	}
	// pip exits 1 when the key is not set; an unset key is the common case.
	out, err := query(ctx, python, "-m", "pip", "config", "get", "global.index-url")
	if err != nil || strings.TrimSpace(out) == "" {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrNoIndex
	}
	u, err := parseRegistry(out)
	if err != nil {
		return nil, fmt.Errorf("pip config global.index-url: %w", err)
	}
	return u, nil
}

// CA is where an installer finds the certificates its registry's TLS
// certificate chains to, when that is not the system default: a proxy that
// re-signs TLS, a private registry. Both are host paths, bound read-only
// into the install sandbox.
type CA struct {
	File  string // a bundle that replaces the default roots (npm's cafile, pip's cert)
	Extra string // a bundle added to node's default roots (NODE_EXTRA_CA_CERTS)
}

// NPMCA returns npm's certificate configuration: `npm config get cafile`
// and NODE_EXTRA_CA_CERTS. The zero CA means the defaults.
func NPMCA(ctx context.Context) (CA, error) {
	var ca CA
	npm, err := exec.LookPath("npm")
	if err != nil {
		return ca, fmt.Errorf("npm is not installed (%w)", err)
	}
	out, err := query(ctx, npm, "config", "get", "cafile")
	if err != nil {
		return ca, fmt.Errorf("npm config get cafile: %w", err)
	}
	if ca.File, err = caPath("npm's cafile", out); err != nil {
		return ca, err
	}
	if ca.Extra, err = caPath("NODE_EXTRA_CA_CERTS", os.Getenv("NODE_EXTRA_CA_CERTS")); err != nil {
		return ca, err
	}
	return ca, nil
}

// PyPICA returns pip's certificate bundle: PIP_CERT, else pip's global.cert
// setting. The zero CA means pip's own bundle.
func PyPICA(ctx context.Context) (CA, error) {
	var ca CA
	s := os.Getenv("PIP_CERT")
	if s == "" {
		python, err := exec.LookPath("python3")
		if err != nil {
			return ca, nil
		}
		s, _ = query(ctx, python, "-m", "pip", "config", "get", "global.cert") // unset: exit 1
		if ctx.Err() != nil {
			return ca, ctx.Err()
		}
	}
	var err error
	ca.File, err = caPath("pip's cert", s)
	return ca, err
}

// caPath checks a configured certificate file: absolute and present.
func caPath(what, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" || s == "undefined" {
		return "", nil
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, s, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("%s is set to %s, which cannot be read: %w", what, s, err)
	}
	return abs, nil
}

// AllowEntry returns the egress allowlist entry for a registry URL:
// "host:port", with the scheme's default port when the URL has none.
func AllowEntry(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func parseRegistry(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", s)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", u.Redacted())
	}
	return u, nil
}

// query runs a configuration command and returns its standard output.
func query(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, configTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("%w: %s", err, lastLines(msg, 3))
		}
		return "", err
	}
	return stdout.String(), nil
}

// lastLines returns at most n last lines of s, joined with "; ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
