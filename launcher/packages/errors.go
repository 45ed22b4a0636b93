package packages

import (
	"fmt"
	"regexp"
	"strings"
)

// InstallError is an install that failed for a reason the user can act on.
type InstallError struct {
	Spec   *Spec
	Reason string // what went wrong, e.g. "npm has no version 9.9.9 of @x/y"
	Hint   string // what to do about it
}

func (e *InstallError) Error() string {
	msg := fmt.Sprintf("install %s: %s", e.Spec, e.Reason)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// The installers' messages for a registry that cannot be reached: npm
// reports Node's error codes, pip urllib3's exceptions.
var (
	npmNetwork = regexp.MustCompile(`\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ESOCKETTIMEDOUT|ERR_SOCKET_TIMEOUT|EPROXY|socket hang up)\b`)
	pipNetwork = regexp.MustCompile(`NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|Name or service not known|Connection refused|Network is unreachable|ConnectTimeoutError|ReadTimeoutError|Max retries exceeded|ProxyError`)
	npmCode    = regexp.MustCompile(`(?m)^npm (?:error|ERR!) code (\S+)`)
	pipNone    = regexp.MustCompile(`\(from versions: ([^)]*)\)`)
)

// Diagnose explains a failed install from its combined output: a package
// or version the registry does not have, a registry that cannot be reached,
// a download that failed its integrity check. Anything else is reported
// with the output's last lines.
func (p *Plan) Diagnose(output []byte) *InstallError {
	out := string(output)
	spec := p.spec
	e := &InstallError{Spec: &spec}
	where := "its index"
	if p.opts.Registry != nil {
		where = p.opts.Registry.Redacted()
	}
	if spec.Ecosystem == NPM {
		code := ""
		if m := npmCode.FindStringSubmatch(out); m != nil {
			code = m[1]
		}
		version := p.install
		if version == "" {
			version = "latest"
		}
		switch {
		case code == "ETARGET" || strings.Contains(out, "No matching version found for"):
			e.Reason = fmt.Sprintf("npm has no version %s of %s", version, spec.Name)
			e.Hint = "check the version, or drop @" + version + " to run the latest"
			if version != spec.Version {
				e.Hint = fmt.Sprintf("the cache pins %s@%s for %q; update the package to re-resolve it", spec.Name, version, spec.Version)
			}
		case code == "E404" || strings.Contains(out, "is not in this registry"):
			e.Reason = fmt.Sprintf("npm has no package %s at %s", spec.Name, where)
			e.Hint = "check the package name (and the registry in npm's configuration)"
		case code == "E401" || code == "E403" || code == "ENEEDAUTH":
			e.Reason = fmt.Sprintf("the npm registry %s refused to serve %s (%s)", where, spec.Name, code)
			e.Hint = "mcpbox installs without your npm credentials; it can install public packages only"
		case code == "EINTEGRITY":
			e.Reason = "a downloaded package did not match the integrity hash the registry gave for it"
			e.Hint = "try again; if it persists, a proxy or the registry is serving altered files"
		case npmNetwork.MatchString(out):
			e.Reason = "could not reach the npm registry " + where
			e.Hint = "check the network or npm's registry setting (`npm config get registry`)"
		case code == "ENOSPC":
			e.Reason = "no space left on the device holding the package cache"
			e.Hint = "free some space"
		default:
			e.Reason = "npm install failed: " + lastLines(out, 3)
			e.Hint = fmt.Sprintf("try `npm install --ignore-scripts %s` in an empty directory to see npm's full output", spec.String())
		}
		return e
	}
	what := "the Python package index " + where
	if p.opts.FindLinks != "" {
		what = p.opts.FindLinks
	}
	switch {
	case strings.Contains(out, "DO NOT MATCH THE HASHES"):
		e.Reason = "a downloaded wheel did not match its hash"
		e.Hint = "try again; if it persists, a proxy or the index is serving altered files"
	case p.opts.FindLinks == "" && pipNetwork.MatchString(out):
		e.Reason = "could not reach " + what
		e.Hint = "check the network, PIP_INDEX_URL / UV_INDEX_URL or pip's index-url setting"
	case strings.Contains(out, "No matching distribution found"):
		versions := ""
		if m := pipNone.FindStringSubmatch(out); m != nil {
			versions = strings.TrimSpace(m[1])
		}
		switch {
		case versions == "" || versions == "none":
			e.Reason = fmt.Sprintf("%s has no wheel of %s", what, spec.Name)
			e.Hint = "check the package name; mcpbox installs wheels only and never builds from source, so a package that publishes only source archives cannot be installed"
		default:
			e.Reason = fmt.Sprintf("%s has no wheel of %s matching %q (it has: %s)", what, spec.Name, p.install, versions)
			e.Hint = "check the version, or drop it to run the latest"
		}
	default:
		e.Reason = "pip install failed: " + lastLines(out, 3)
		e.Hint = "mcpbox installs wheels only (--only-binary=:all:); pip's output above says more"
	}
	return e
}
