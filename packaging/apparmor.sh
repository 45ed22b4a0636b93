#!/bin/sh
# Puts mcpbox's AppArmor profile where AppArmor loads it and loads it, or
# takes it away. `make install` and `make uninstall` run it from the source
# tree; the Debian package installs it as /usr/share/mcpbox/apparmor.sh for
# its maintainer scripts.
#
#   apparmor.sh install PROFILE DEST   copy PROFILE to DEST and load it
#   apparmor.sh remove DEST            unload DEST's profile, delete DEST
#
# It installs the profile only where this host's apparmor_parser accepts it.
# The profile's `userns,` rule needs AppArmor 4.0, which is what restricts
# user namespaces (Ubuntu 23.10 and later); an older AppArmor, such as
# Debian 12's 3.0, refuses the rule, restricts nothing and needs no profile,
# and a profile it cannot parse left in /etc/apparmor.d would make
# apparmor.service fail at every boot. It loads the profile only where
# AppArmor is enabled, and not with MCPBOX_APPARMOR_NOLOAD=1 (a staged
# install under DESTDIR). APPARMOR_PARSER names another parser.
#
# Skipping is not a failure: mcpbox runs without the profile wherever user
# namespaces are not restricted, and `mcpbox doctor` says when they are. It
# fails only when it cannot write or delete DEST.
set -eu

say() { echo "mcpbox apparmor: $*" >&2; }

parser() {
  if [ -n "${APPARMOR_PARSER:-}" ]; then
    echo "$APPARMOR_PARSER"
    return
  fi
  for p in "$(command -v apparmor_parser 2>/dev/null || true)" /usr/sbin/apparmor_parser /sbin/apparmor_parser; do
    if [ -n "$p" ] && [ -x "$p" ]; then
      echo "$p"
      return
    fi
  done
}

enabled() {
  [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || true)" = Y ]
}

case "${1:-}" in
install)
  [ $# -eq 3 ] || { say "usage: apparmor.sh install PROFILE DEST"; exit 2; }
  src=$2 dest=$3
  p=$(parser)
  if [ -z "$p" ] || ! command -v "$p" >/dev/null 2>&1; then
    say "no apparmor_parser ${p:+at $p }on this host: $dest not installed (AppArmor cannot restrict mcpbox here)"
    exit 0
  fi
  if ! "$p" --skip-kernel-load --skip-cache --quiet "$src" >/dev/null 2>&1; then
    say "$p ($("$p" --version 2>/dev/null | head -n 1)) does not accept the profile's userns rule: $dest not installed (an AppArmor before 4.0 does not restrict user namespaces and needs none)"
    exit 0
  fi
  # Never replace another program's profile (or an admin's): only one
  # whose first line is mcpbox's for the same binary.
  if [ -e "$dest" ] || [ -L "$dest" ]; then
    if [ -L "$dest" ] || [ "$(head -n 1 "$dest")" != "$(head -n 1 "$src")" ]; then
      say "$dest exists and is not mcpbox's profile for this binary: left as it is, profile not installed"
      exit 0
    fi
  fi
  install -D -m 0644 "$src" "$dest"
  say "installed $dest"
  if [ "${MCPBOX_APPARMOR_NOLOAD:-}" = 1 ]; then
    exit 0
  fi
  if ! enabled; then
    say "AppArmor is not enabled: $dest loads at the next boot that enables it"
    exit 0
  fi
  if "$p" --replace --skip-read-cache --write-cache "$dest"; then
    say "loaded $dest"
  else
    say "could not load $dest (above: why); load it with: sudo $p -r $dest"
  fi
  ;;
remove)
  [ $# -eq 2 ] || { say "usage: apparmor.sh remove DEST"; exit 2; }
  dest=$2
  [ -e "$dest" ] || exit 0
  p=$(parser)
  if [ "${MCPBOX_APPARMOR_NOLOAD:-}" != 1 ] && [ -n "$p" ] && enabled; then
    "$p" --remove "$dest" >/dev/null 2>&1 || true
  fi
  rm -f "$dest"
  say "removed $dest"
  ;;
*)
  say "usage: apparmor.sh install PROFILE DEST | remove DEST"
  exit 2
  ;;
esac
