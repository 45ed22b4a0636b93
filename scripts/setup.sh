#!/usr/bin/env bash
# Installs what mcpbox's build, tests and demo need on Debian 12, starts
# containerd if it is not running, and prepares the unprivileged user that the
# rootless tests and demo run as (see ci_user below). Safe to run again: it
# only adds what is missing. Without root it installs nothing and says what
# is missing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)

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
# The rootless runtime: newuidmap/newgidmap map the caller's /etc/subuid
# range into its user namespace; crun is the other OCI runtime it can drive;
# apparmor_parser checks the profile that lets mcpbox create user namespaces
# where Ubuntu restricts them (sbin is not on every user's PATH).
have newuidmap && have newgidmap || need_pkgs+=(uidmap)
have crun || need_pkgs+=(crun)
have apparmor_parser || [ -x /usr/sbin/apparmor_parser ] || [ -x /sbin/apparmor_parser ] || need_pkgs+=(apparmor)

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

[ "$(id -u)" -eq 0 ] || exit 0

# The unprivileged user that the rootless tests and `make demo` run mcpbox as
# (setpriv --reuid/--regid/--init-groups or runuser): no group that may open
# the containerd socket, and a subordinate id range of its own for
# newuidmap/newgidmap. Its password stays locked; bash only makes
# `runuser -l` usable when debugging.
ci_user=mcpbox-ci
ids=65536
if ! id -u "$ci_user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --user-group "$ci_user"
  echo "setup: created user $ci_user ($(id "$ci_user"))" >&2
fi
as_ci() { setpriv --reuid="$ci_user" --regid="$ci_user" --init-groups -- "$@"; }
# Its $XDG_RUNTIME_DIR, where the rootless runtime keeps its state, as
# pam_systemd would make it at login (no login, no systemd here; /run is
# emptied at boot).
ci_run=/run/user/$(id -u "$ci_user")
if [ ! -d "$ci_run" ]; then
  install -d -m 0755 /run/user
  install -d -m 0700 -o "$ci_user" -g "$ci_user" "$ci_run"
  echo "setup: made $ci_run, $ci_user's XDG_RUNTIME_DIR" >&2
fi

# next_subid_start prints the first id past every range in /etc/subuid and
# /etc/subgid (at least 100000, login.defs' SUB_UID_MIN), so that the new
# range overlaps no one's, in either file.
next_subid_start() {
  cat /etc/subuid /etc/subgid 2>/dev/null |
    awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ { e = $2 + $3; if (e > m) m = e } END { print m }'
}
# useradd allocates ranges itself where /etc/subuid exists; add only what is
# missing, in each file separately, so a second run adds nothing.
for f in subuid subgid; do
  if ! grep -q "^$ci_user:" "/etc/$f" 2>/dev/null; then
    start=$(next_subid_start)
    usermod "--add-${f}s" "$start-$((start + ids - 1))" "$ci_user"
    echo "setup: gave $ci_user the subordinate ${f#sub}s $start-$((start + ids - 1)) in /etc/$f" >&2
  fi
  range=$(grep "^$ci_user:" "/etc/$f" | head -n 1 | cut -d: -f2-)
  if [ "${range#*:}" -lt "$ids" ]; then
    echo "setup: $ci_user has only ${range#*:} subordinate ${f#sub}s in /etc/$f (${range%:*}...); the rootless tests want $ids: fix that line by hand" >&2
    exit 1
  fi
done

# The point of the rootless tests is that this user cannot reach containerd.
if [ -S "$sock" ] && as_ci test -w "$sock"; then
  echo "setup: $ci_user can open $sock (groups: $(id -Gn "$ci_user")): take it out of the socket's group $(stat -c %G "$sock")" >&2
  exit 1
fi

# The tests run bin/mcpbox and the fixtures under testdata as $ci_user, so
# every directory above the repository must let it through (a clone under
# /root, 0700, would not). Grant it search permission alone, through an ACL
# entry for this user, rather than opening the directory to everyone.
dir=$(dirname "$repo")
blocked=()
while :; do
  as_ci test -x "$dir" || blocked=("$dir" "${blocked[@]}")
  [ "$dir" = / ] && break
  dir=$(dirname "$dir")
done
if [ ${#blocked[@]} -gt 0 ]; then
  if ! have setfacl; then
    echo "setup: installing acl (setfacl)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends acl >/dev/null
  fi
  for d in "${blocked[@]}"; do
    setfacl -m "u:$ci_user:x" "$d"
    echo "setup: let $ci_user through $d (ACL u:$ci_user:--x)" >&2
  done
fi
# What exists of the repository now must be readable by that user; files
# made later (bin/, testdata/servers/node_modules) follow the umask, 022 here.
if ! as_ci test -r "$repo" -a -x "$repo"; then
  chmod a+rx "$repo"
  echo "setup: made $repo readable by $ci_user (chmod a+rx)" >&2
fi
unreadable() { find "$1" \( -type d ! -perm -0005 -o -type f ! -perm -0004 \) -print -quit; }
for p in "$repo/testdata" "$repo/bin"; do
  if [ -e "$p" ] && [ -n "$(unreadable "$p")" ]; then
    chmod -R a+rX "$p"
    echo "setup: made $p readable by $ci_user (chmod -R a+rX)" >&2
  fi
done

# The AppArmor profile's tests need a parser that knows AppArmor 4's policy
# (Debian 12's is 3.0); scripts/apparmor4.sh builds one, once.
"$repo/scripts/apparmor4.sh"
