#!/usr/bin/env bash
# Runs every fuzz target in the repository, one after the other, for
# FUZZTIME each (go test -fuzz takes one target of one package at a time).
# The targets are found with `go test -list`, so a new Fuzz function is
# fuzzed without anyone remembering to add it here.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
gotest=(env CGO_ENABLED=1 "${GO:-go}" test -tags "${TAGS:-seccomp}")
log=$(mktemp /tmp/mcpbox-fuzz.XXXXXX)
trap 'rm -f "$log"' EXIT

# Packages that declare a fuzz target, by their source rather than by
# running every test binary.
mapfile -t pkgs < <(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
count=0
for pkg in "${pkgs[@]}"; do
	mapfile -t targets < <("${gotest[@]}" -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	if [ ${#targets[@]} -eq 0 ]; then
		echo "fuzz: $pkg declares a fuzz target but go test -list finds none (build tags?)" >&2
		exit 1
	fi
	for f in "${targets[@]}"; do
		echo "fuzz $pkg $f for $fuzztime"
		if ! "${gotest[@]}" -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
			cat "$log"
			exit 1
		fi
		grep -E 'execs: [0-9]+ ' "$log" | tail -n 1
		count=$((count + 1))
	done
done
echo "fuzz: $count targets, $fuzztime each"
