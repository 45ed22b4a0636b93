// Package e2e holds mcpbox's end-to-end tests and nothing else: they build
// cmd/mcpbox, cmd/mcpbox-init and cmd/mcpbox-probe, and drive that binary as
// an MCP client would (sessions through containerd, the CLI's commands,
// faults, egress, trial, the session benchmarks), or drive containerd itself.
// It owns no code: nothing may import it, and its tests see mcpbox only from
// outside (the built binary, containerd, exported APIs), never through
// internal hooks of the packages they test.
//
// mcpbox's tests come in three tiers:
//
//   - tier 1, pure: no root, no containerd (they may run node, npm or python
//     on the host, or build a helper program); next to the code.
//   - tier 2, root and kernel features: network namespaces, nftables,
//     seccomp, user namespaces, a container run by runc straight from a
//     spec; no containerd, no built mcpbox binary. Next to the code; without
//     root they skip (under CI=true they fail).
//   - tier 3, end to end: root, containerd and the built binary; this
//     package.
//
// `go test -short ./...` (make test-unit) runs tiers 1 and 2: with -short,
// this package's TestMain says it skipped the end-to-end tier and exits 0.
// Without -short nothing here skips, and under CI=true a missing root,
// containerd, node or npm fixture fails the test (see internal/testutil).
// make test runs all three tiers.
package e2e
