#!/usr/bin/env bash
# Runs scripts/demo.sh as an unprivileged user on the rootless runtime (issue
# 16): as the user who started it, or, when started as root, as mcpbox-ci,
# the user `make setup` prepares (no group that opens containerd's socket, a
# subordinate id range in /etc/subuid and /etc/subgid, /run/user/UID). Run
# by `make demo-user`; `make demo` runs it once the rootless runtime is in.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
if [ "$(id -u)" -ne 0 ]; then
  exec env MCPBOX_DEMO_ROOTLESS=1 "$repo/scripts/demo.sh"
fi

user=mcpbox-ci
if ! uid=$(id -u "$user" 2>/dev/null); then
  echo "demo-user: there is no user $user: run 'make setup' (as root) first" >&2
  exit 1
fi
as_user() { setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"; }
sock=${MCPBOX_CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}
if [ -S "$sock" ] && as_user test -w "$sock"; then
  echo "demo-user: $user can open $sock, so this would not show the rootless path: run 'make setup'" >&2
  exit 1
fi
for p in "$repo/bin/mcpbox" "$repo/testdata/servers/node_modules"; do
  if ! as_user test -r "$p"; then
    echo "demo-user: $user cannot read $p: make the directories above it searchable ('make setup' does, for the repository)" >&2
    exit 1
  fi
done

# A login's environment, not root's: its home, its runtime directory, and
# a PATH with the sbin directories, where Debian puts runc.
home=$(getent passwd "$user" | cut -d: -f6)
exec setpriv --reuid="$user" --regid="$user" --init-groups -- env -i \
  HOME="$home" USER="$user" LOGNAME="$user" SHELL=/bin/bash LANG=C.UTF-8 \
  PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
  XDG_RUNTIME_DIR="/run/user/$uid" MCPBOX_DEMO_ROOTLESS=1 \
  "$repo/scripts/demo.sh"
