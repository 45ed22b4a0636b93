#!/usr/bin/env bash
# Builds an AppArmor 4 apparmor_parser for the tests of mcpbox's AppArmor
# profile, on a Debian 12 host whose own parser (AppArmor 3.0) does not know
# the profile's `userns,` rule. It takes the apparmor source package of
# Debian 13 (trixie) from the mirror this host's apt already uses, builds
# libapparmor and the parser, and installs them under $dest, away from the
# system's AppArmor: nothing on PATH or in /etc/apparmor.d changes.
#
# $dest/apparmor_parser runs the built parser with $dest/apparmor.d (the
# 4.x abi and tunables files) on its include path. Run by scripts/setup.sh as
# root; it does nothing when the host's parser is of version 4 or later, or
# when $dest is already there. The build takes about two minutes on two
# cores.
set -euo pipefail

dest=${1:-/opt/mcpbox-ci/apparmor4}
suite=trixie

if [ -x "$dest/apparmor_parser" ]; then
  exit 0
fi
major() { "$1" --version 2>/dev/null | awk 'NR == 1 { split($NF, v, "."); print v[1] + 0 }'; }
for p in "$(command -v apparmor_parser || true)" /usr/sbin/apparmor_parser /sbin/apparmor_parser; do
  if [ -n "$p" ] && [ -x "$p" ] && [ "$(major "$p")" -ge 4 ]; then
    exit 0 # the host's own parser knows AppArmor 4's policy
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "apparmor4: run as root" >&2
  exit 1
fi

. /etc/os-release
mirror() { apt-cache policy | awk -v s="$VERSION_CODENAME/main" '$3 == s { print $2; exit }'; }
uri=$(mirror)
if [ -z "$uri" ]; then
  apt-get update -qq
  uri=$(mirror)
fi
if [ -z "$uri" ]; then
  echo "apparmor4: found no Debian mirror for $VERSION_CODENAME/main in apt's sources" >&2
  exit 1
fi

echo "apparmor4: building AppArmor 4's apparmor_parser from $suite's source package into $dest (a few minutes)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends \
  bison flex autoconf automake libtool autoconf-archive gettext g++ make pkg-config >/dev/null

work=$(mktemp -d /tmp/mcpbox-apparmor4.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A private sources list and index: the host's apt configuration stays as it
# was. The archive keyring of Debian 12 signs Debian 13's index too.
mkdir -p "$work/lists/partial" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" >"$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/none"
  -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" update -qq
(cd "$work/src" && apt-get "${apt_opts[@]}" -qq --download-only source apparmor >/dev/null)
tar -xzf "$work"/src/apparmor_*.orig.tar.gz -C "$work/src"
src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'apparmor-*' | head -n 1)

log=$work/build.log
if ! {
  (cd "$src/libraries/libapparmor" && sh ./autogen.sh &&
    ./configure --disable-man-pages --without-python --without-perl --without-ruby &&
    make -j"$(nproc)") &&
    make -C "$src/parser" -j"$(nproc)" apparmor_parser
} >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "apparmor4: the build failed (above: the end of its log)" >&2
  exit 1
fi

version=$("$src/parser/apparmor_parser" --version | awk 'NR == 1 { print $NF }')
case $version in
  [4-9].* | [1-9][0-9]*) ;;
  *)
    echo "apparmor4: $suite's source built apparmor_parser $version, not 4 or later" >&2
    exit 1
    ;;
esac

rm -rf "$dest.new"
mkdir -p "$dest.new/libexec" "$dest.new/apparmor.d"
install -m 0755 "$src/parser/apparmor_parser" "$dest.new/libexec/apparmor_parser"
cp -r "$src/profiles/apparmor.d/abi" "$src/profiles/apparmor.d/tunables" "$dest.new/apparmor.d/"
cat >"$dest.new/apparmor_parser" <<EOF
#!/bin/sh
# AppArmor $version's parser, built by mcpbox's scripts/apparmor4.sh for tests.
exec "$dest/libexec/apparmor_parser" --Include "$dest/apparmor.d" "\$@"
EOF
chmod 0755 "$dest.new/apparmor_parser"
chmod -R a+rX "$dest.new"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "apparmor4: installed apparmor_parser $version at $dest/apparmor_parser" >&2
