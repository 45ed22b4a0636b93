#!/usr/bin/env bash
# Runs the real @modelcontextprotocol/server-filesystem from npm inside an
# mcpbox sandbox and talks MCP to it over stdio, the way a client would.
set -euo pipefail
cd "$(dirname "$0")/.."
mcpbox=$PWD/bin/mcpbox
server=$PWD/testdata/servers/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js
# MCPBOX_DEMO_ROOTLESS=1 (set by scripts/demo-user.sh): run as this user on
# the rootless runtime, never through sudo.
rootless=${MCPBOX_DEMO_ROOTLESS:-}
run_flags=()
if [ "$rootless" = 1 ]; then
  sudo=
  run_flags=(--runtime rootless)
  echo "As $(id -un) (uid $(id -u)), on the rootless runtime:"
else
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
fi

work=$(mktemp -d /tmp/mcpbox-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/notes" "$work/private"
echo "hello from the granted folder" > "$work/notes/hello.txt"
echo "this must stay on the host" > "$work/private/secret.txt"
# The notes belong to a regular user, as ~/notes would; mcpbox runs the server
# as the owner of its read-write grant (never as root). Rootless, that user
# made them.
[ "$rootless" = 1 ] || chown -R "${SUDO_UID:-65534}:${SUDO_GID:-65534}" "$work/notes"
chmod 0755 "$work"

req() { printf '{"jsonrpc":"2.0","id":%s,"method":"%s","params":%s}\n' "$1" "$2" "$3"; }
{
  req 1 initialize '{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpbox-demo","version":"1"}}'
  echo '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  req 2 tools/list '{}'
  req 3 tools/call "{\"name\":\"read_text_file\",\"arguments\":{\"path\":\"$work/notes/hello.txt\"}}"
  req 4 tools/call "{\"name\":\"write_file\",\"arguments\":{\"path\":\"$work/notes/from-sandbox.txt\",\"content\":\"written inside the sandbox\"}}"
  req 5 tools/call '{"name":"list_allowed_directories","arguments":{}}'
  sleep 2
} | $sudo "$mcpbox" "${run_flags[@]}" run --stop-timeout 2s --mount "$work/notes:rw" -- node "$server" "$work/notes" \
  | node -e '
const lines = require("fs").readFileSync(0, "utf8").trim().split("\n");
for (const l of lines) {
  const m = JSON.parse(l);
  if (m.id === 1) console.log(`initialize -> ${m.result.serverInfo.name} ${m.result.serverInfo.version}, protocol ${m.result.protocolVersion}`);
  else if (m.id === 2) console.log(`tools/list -> ${m.result.tools.length} tools: ${m.result.tools.map(t => t.name).join(", ")}`);
  else if (m.result && m.result.content) console.log(`tools/call #${m.id} -> ${m.result.isError ? "ERROR " : ""}${m.result.content.map(c => c.text).join(" ").slice(0, 200)}`);
  else console.log(JSON.stringify(m).slice(0, 200));
}'
echo "on the host, the file the sandbox wrote: $(cat "$work/notes/from-sandbox.txt")"
echo
echo "Now the same server with its whole allowed directory set to /, asked for a file that was not granted:"
req 9 tools/call "{\"name\":\"read_text_file\",\"arguments\":{\"path\":\"$work/private/secret.txt\"}}" > "$work/req"
{
  req 1 initialize '{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpbox-demo","version":"1"}}'
  echo '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  cat "$work/req"
  sleep 2
} | $sudo "$mcpbox" "${run_flags[@]}" run --stop-timeout 2s -- node "$server" / \
  | node -e '
for (const l of require("fs").readFileSync(0, "utf8").trim().split("\n")) {
  const m = JSON.parse(l);
  if (m.id === 9) console.log(`tools/call read ${process.argv[1]} -> ${m.result.isError ? "ERROR " : "READ "}${m.result.content.map(c => c.text).join(" ").slice(0, 200)}`);
}' "$work/private/secret.txt"
