#!/usr/bin/env bash
# Installs what mcpbox's build, tests and demo need on Debian 12 and starts
# containerd if it is not running. Safe to run again: it only adds what is
# missing. Without root it installs nothing and says what is missing.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have containerd || need_pkgs+=(containerd)
have runc || need_pkgs+=(runc)
have nft || need_pkgs+=(nftables)
have ip || need_pkgs+=(iproute2)
have nsenter || need_pkgs+=(util-linux)
# The trial tests' misbehaving fixture server runs strace (ptrace), unshare
# and mount inside the sandbox to be caught doing it.
have strace || need_pkgs+=(strace)
have mount || need_pkgs+=(mount)
# The cgroups tests ask a fake systemd for a delegated scope over a private
# bus of their own.
have dbus-daemon || need_pkgs+=(dbus-daemon)
[ -e /usr/include/seccomp.h ] || need_pkgs+=(libseccomp-dev)
have gcc || need_pkgs+=(gcc)
have pkg-config || need_pkgs+=(pkg-config)
# Node may come from elsewhere (e.g. NodeSource, which bundles npm and
# conflicts with Debian's npm package): install only what is absent.
have node || need_pkgs+=(nodejs)
have npm || need_pkgs+=(npm)
have python3 || need_pkgs+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_pkgs+=(python3-pip)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need_pkgs[*]}; run 'sudo make setup' to install them" >&2
    exit 0
  fi
  echo "setup: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

sock=${MCPBOX_CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}
answers() { ctr --address "$sock" version >/dev/null 2>&1; }
if [ "$(id -u)" -eq 0 ] && ! answers; then
  if have systemctl && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start containerd
  else
    # A socket left by a containerd that was killed answers nothing.
    rm -f "$sock"
    logdir=$(mktemp -d /tmp/mcpbox-containerd.XXXXXX)
    echo "setup: starting containerd (log: $logdir/containerd.log)" >&2
    nohup containerd --address "$sock" >"$logdir/containerd.log" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 100); do answers && break; sleep 0.1; done
  answers || { echo "setup: containerd did not start; see ${logdir:-its log}/containerd.log" >&2; exit 1; }
fi
