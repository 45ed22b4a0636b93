//go:build tools

package tools

import (
	_ "github.com/containerd/containerd"
	_ "github.com/containerd/containerd/cio"
	_ "github.com/containerd/containerd/namespaces"
	_ "github.com/moby/profiles/seccomp"
	_ "github.com/modelcontextprotocol/go-sdk/mcp"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "github.com/seccomp/libseccomp-golang"
	_ "github.com/urfave/cli/v2"
	_ "golang.org/x/sys/unix"
)
