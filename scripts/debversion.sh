#!/bin/sh
# Prints the Debian package version of this checkout, which must start with
# a digit and sort in release order: a tag vX.Y.Z gives X.Y.Z, commits after
# it X.Y.Z+N.gHASH, a release candidate vX.Y.Z-rc1 X.Y.Z~rc1 (before X.Y.Z);
# with no tag, 0.0.0+gitN.gHASH, N counting commits. A modified work tree
# adds .dirty.
set -eu
cd "$(dirname "$0")/.."
if d=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
  echo "${d#v}" | sed -e 's/-rc/~rc/' -e 's/-/+/' -e 's/-/./g'
elif n=$(git rev-list --count HEAD 2>/dev/null); then
  dirty=
  git diff --quiet HEAD 2>/dev/null || dirty=.dirty
  echo "0.0.0+git$n.g$(git rev-parse --short HEAD)$dirty"
else
  echo 0.0.0+unknown
fi
