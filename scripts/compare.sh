#!/usr/bin/env bash
# make compare: run bin/mcpbox-probe under (a) no sandbox, (b) containerd's
# default spec with its default seccomp profile, (c) srt
# (@anthropic-ai/sandbox-runtime, bubblewrap), (d) mcpbox on the containerd
# runtime and (e) mcpbox on the rootless runtime, as an unprivileged user,
# and print the results side by side as a Markdown table on stdout. It fails
# if a probe that passes in (d) does not pass in (e), but for the limits the
# host does not delegate to the user, which it names. With --write-doc the
# table also replaces the generated part of docs/security.md.
#
# Everything runs inside a network namespace with only loopback up: the
# probe connects to 169.254.169.254, 1.1.1.1 and 10.0.0.1, and nothing may
# leave this machine. srt and bubblewrap are installed here for the run and
# never committed. Needs root, containerd, `make build`, and for (e) the
# user MCPBOX_COMPARE_USER (default mcpbox-ci, which `make setup` creates
# with a subordinate id range).
set -euo pipefail
cd "$(dirname "$0")/.."

write_doc=0
case "${1:-}" in
"") ;;
--write-doc) write_doc=1 ;;
*) echo "usage: scripts/compare.sh [--write-doc]" >&2; exit 2 ;;
esac

say() { echo "compare: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespace, containerd): run \`sudo make compare\`"
[ -x bin/mcpbox-probe ] && [ -x bin/mcpbox ] || die "bin/mcpbox or bin/mcpbox-probe is missing: run \`make build\`"
ctr version >/dev/null 2>&1 || die "containerd is not reachable: run \`make setup\`"

netns=mcpbox-compare
ctrns=mcpbox-compare
cid=mcpbox-compare-$$
tmp=$(mktemp -d /tmp/mcpbox-compare.XXXXXX)
chmod 755 "$tmp" # nobody must reach the probe and its home below

cleanup() {
	ctr -n "$ctrns" task kill -s SIGKILL "$cid" >/dev/null 2>&1 || true
	ctr -n "$ctrns" task rm -f "$cid" >/dev/null 2>&1 || true
	ctr -n "$ctrns" container rm "$cid" >/dev/null 2>&1 || true
	ctr namespaces rm "$ctrns" >/dev/null 2>&1 || true
	ip netns del "$netns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# The network namespace every run happens in: loopback only, no route out.
ip netns del "$netns" 2>/dev/null || true
ip netns add "$netns"
ip -n "$netns" link set lo up
if [ -n "$(ip -n "$netns" route show)" ]; then
	die "network namespace $netns has a route; refusing to run the network probes"
fi
in_netns=(ip netns exec "$netns")
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)

# The probe, readable and runnable by nobody; a home nobody may write to.
mkdir -p "$tmp/bin" "$tmp/home" "$tmp/out"
install -m 0755 bin/mcpbox-probe "$tmp/bin/mcpbox-probe"
chown 65534:65534 "$tmp/home"
probe_env=(env -i PATH=/usr/bin:/bin HOME="$tmp/home" MCPBOX_COMPARE=1)

# finish FILE WHAT RC: keep FILE if it holds a summary, else replace it with
# the reason the column is empty.
finish() {
	local file=$1 what=$2 rc=$3
	if ! grep -q '"summary":true' "$file" 2>/dev/null; then
		local last
		last=$(grep -v '^{' "$file" 2>/dev/null | tail -n 1 | cut -c1-160 || true)
		echo "not available: $what exited with status $rc${last:+: $last}" >"$file"
	fi
}

# (a) no sandbox: the probe as nobody, straight on the host.
say "(a) no sandbox, as nobody"
rc=0
(cd "$tmp/home" && "${in_netns[@]}" "${as_nobody[@]}" "${probe_env[@]}" \
	timeout 600 "$tmp/bin/mcpbox-probe" -compare) </dev/null >/dev/null 2>"$tmp/out/a" || rc=$?
finish "$tmp/out/a" "the probe" "$rc"

# (b) containerd's default spec: no --privileged, default capabilities, the
# default seccomp profile, masked paths, its own (empty) network namespace.
# The rootfs is the host's /usr, read-only, and the probe; it runs as root
# and as pid 1 of the container, which -compare allows.
say "(b) containerd default spec (ctr run --seccomp)"
rootfs=$tmp/rootfs
mkdir -p "$rootfs/usr" "$rootfs/tmp" "$rootfs/root" "$rootfs/etc"
for d in bin sbin lib lib64; do
	if [ -L "/$d" ]; then
		ln -s "$(readlink "/$d")" "$rootfs/$d"
	elif [ -d "/$d" ]; then
		mkdir -p "$rootfs/$d"
	fi
done
mounts=(--mount "type=bind,src=/usr,dst=/usr,options=rbind:ro")
for d in bin sbin lib lib64; do
	if [ -d "/$d" ] && [ ! -L "/$d" ]; then
		mounts+=(--mount "type=bind,src=/$d,dst=/$d,options=rbind:ro")
	fi
done
install -m 0755 bin/mcpbox-probe "$rootfs/probe"
rc=0
"${in_netns[@]}" timeout 600 ctr -n "$ctrns" run --rm --rootfs --seccomp "${mounts[@]}" \
	--env MCPBOX_COMPARE=1 --env HOME=/root --cwd /root \
	"$rootfs" "$cid" /probe -compare </dev/null >/dev/null 2>"$tmp/out/b" || rc=$?
finish "$tmp/out/b" "ctr run" "$rc"

# (c) srt, installed for this run with npm and apt. It runs as nobody: as
# root it needs CAP_SETFCAP and keeps a full capability set inside its
# namespaces (see its README), and nobody is how it is meant to be used.
# Its settings are the README's MCP server example: no network, writes to
# the working directory, here nobody's home, and /tmp.
say "(c) srt (@anthropic-ai/sandbox-runtime)"
srt_version=""
srt_col() {
	local missing=()
	command -v bwrap >/dev/null || missing+=(bubblewrap)
	command -v socat >/dev/null || missing+=(socat)
	command -v rg >/dev/null || missing+=(ripgrep)
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$tmp/apt.log" 2>&1 ||
			{ echo "not available: apt-get install ${missing[*]} failed: $(tail -n 1 "$tmp/apt.log")"; return; }
	fi
	command -v node >/dev/null && command -v npm >/dev/null ||
		{ echo "not available: node and npm are not installed"; return; }
	npm install --prefix "$tmp/srt" --no-audit --no-fund --loglevel=error \
		@anthropic-ai/sandbox-runtime >"$tmp/npm.log" 2>&1 ||
		{ echo "not available: npm install @anthropic-ai/sandbox-runtime failed: $(tail -n 1 "$tmp/npm.log")"; return; }
	chmod -R a+rX "$tmp/srt"
	local pkg=$tmp/srt/node_modules/@anthropic-ai/sandbox-runtime
	srt_version=$(node -p "require('$pkg/package.json').version")
	cat >"$tmp/srt-settings.json" <<-'EOF'
		{
		  "network": {"allowedDomains": [], "deniedDomains": []},
		  "filesystem": {"denyRead": [], "allowWrite": [".", "/tmp"], "denyWrite": []}
		}
	EOF
	chmod 644 "$tmp/srt-settings.json"
	local rc=0
	(cd "$tmp/home" && "${in_netns[@]}" "${as_nobody[@]}" "${probe_env[@]}" timeout 600 \
		node "$pkg/dist/cli.js" --settings "$tmp/srt-settings.json" -- "$tmp/bin/mcpbox-probe" -compare) \
		</dev/null >/dev/null 2>"$tmp/out/c.raw" || rc=$?
	cp "$tmp/out/c.raw" "$tmp/out/c.tmp"
	finish "$tmp/out/c.tmp" "srt" "$rc"
	cat "$tmp/out/c.tmp"
}
srt_col >"$tmp/out/c"

# (d) mcpbox, its untrusted profile.
say "(d) mcpbox selftest --profile untrusted"
rc=0
"${in_netns[@]}" timeout 600 bin/mcpbox selftest --json --profile untrusted </dev/null >"$tmp/out/d" 2>"$tmp/d.err" || rc=$?
if ! grep -q '"results"' "$tmp/out/d"; then
	echo "not available: mcpbox selftest exited with status $rc: $(tail -n 1 "$tmp/d.err")" >"$tmp/out/d"
fi

# (e) mcpbox, its untrusted profile, as an unprivileged user: the rootless
# runtime. The cgroup subtree is delegated first, as the user's
# administrator would, so that the limits hold; where that fails, mcpbox
# says on its stderr which limits it ran without, and the comparison below
# names them. mcpbox is copied where the user can run it.
user=${MCPBOX_COMPARE_USER:-mcpbox-ci}
rootless_title="mcpbox untrusted, rootless ($user)"
say "(e) mcpbox selftest --profile untrusted as $user (rootless runtime)"
rootless_col() {
	if ! id -u "$user" >/dev/null 2>&1; then
		echo "not available: no user $user (\`make setup\` creates it)"
		return
	fi
	if ! bin/mcpbox setup rootless --user "$user" >"$tmp/setup-rootless.log" 2>&1; then
		say "mcpbox setup rootless --user $user failed, limits may not hold: $(tail -n 1 "$tmp/setup-rootless.log")"
	fi
	install -d -m 0755 "$tmp/rootless-bin"
	install -m 0755 bin/mcpbox bin/mcpbox-init bin/mcpbox-probe "$tmp/rootless-bin/"
	local uhome urun uid gid rc=0
	uid=$(id -u "$user")
	gid=$(id -g "$user")
	uhome=$(mktemp -d "$tmp/rootless-home.XXXXXX")
	urun=$(mktemp -d "$tmp/rootless-run.XXXXXX")
	chown "$uid:$gid" "$uhome" "$urun"
	chmod 0700 "$uhome" "$urun"
	# nsenter rather than `ip netns exec`: that one also mounts a new /sys,
	# without the cgroup mounts runc needs to place the sandbox's limits.
	(cd "$uhome" && nsenter --net="/run/netns/$netns" setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all \
		env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin HOME="$uhome" USER="$user" LOGNAME="$user" \
		XDG_RUNTIME_DIR="$urun" timeout 600 "$tmp/rootless-bin/mcpbox" selftest --json --profile untrusted) \
		</dev/null >"$tmp/out/e.json" 2>"$tmp/e.err" || rc=$?
	(cd / && setpriv --reuid="$uid" --regid="$gid" --clear-groups env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin \
		HOME="$uhome" XDG_RUNTIME_DIR="$urun" "$tmp/rootless-bin/mcpbox" gc) >/dev/null 2>&1 || true
	if grep -q '"results"' "$tmp/out/e.json"; then
		cat "$tmp/out/e.json"
	else
		echo "not available: mcpbox selftest as $user exited with status $rc: $(tail -n 1 "$tmp/e.err")"
	fi
}
touch "$tmp/e.err"
rootless_col >"$tmp/out/e"

# The generated part of docs/security.md: when, where, the table.
{
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`make compare\` at mcpbox $(git describe --always --dirty 2>/dev/null || echo dev)."
	echo
	echo "| machine | |"
	echo "| --- | --- |"
	echo "| kernel | $(uname -r) ($(uname -m)) |"
	echo "| Debian | $(cat /etc/debian_version 2>/dev/null || echo unknown) |"
	echo "| CPUs | $(nproc) |"
	echo "| containerd (server) | $(ctr version 2>/dev/null | awk '/^Server:/{s=1} s && /Version:/{print $2; exit}') |"
	echo "| runc | $(runc --version 2>/dev/null | awk 'NR==1{print $3}') |"
	echo "| bubblewrap | $(bwrap --version 2>/dev/null | awk '{print $2}' || true) |"
	echo "| srt | ${srt_version:-not installed} |"
	echo
	echo "Network rows were measured with no route out: every column ran inside a network"
	echo "namespace with only loopback up, so for no sandbox, containerd and srt they show what"
	echo "that namespace does, not what the sandbox would do on a connected host (containerd"
	echo "without CNI and srt also give the process its own empty network namespace). mcpbox"
	echo "applies its own network namespace in any case."
	echo
	go run ./scripts/compare \
		-col "no sandbox (nobody)=$tmp/out/a" \
		-col "containerd default (root)=$tmp/out/b" \
		-col "srt (nobody)=$tmp/out/c" \
		-col "mcpbox untrusted=$tmp/out/d" \
		-col "$rootless_title=$tmp/out/e" \
		-stderr "$rootless_title=$tmp/e.err" \
		-keep "mcpbox untrusted=$rootless_title" || compared=$?
} >"$tmp/section.md"

cat "$tmp/section.md"
if [ "${compared:-0}" != 0 ]; then
	die "the rootless runtime lost probes the containerd runtime passes (above); docs/security.md was not written"
fi

if [ "$write_doc" = 1 ]; then
	doc=docs/security.md
	grep -q '^<!-- compare:begin -->$' "$doc" && grep -q '^<!-- compare:end -->$' "$doc" ||
		die "$doc has no <!-- compare:begin --> / <!-- compare:end --> lines to write between"
	awk -v section="$tmp/section.md" '
		/^<!-- compare:begin -->$/ { print; while ((getline line < section) > 0) print line; skip = 1; next }
		/^<!-- compare:end -->$/ { skip = 0 }
		!skip { print }
	' "$doc" >"$tmp/doc.md"
	cat "$tmp/doc.md" >"$doc"
	say "wrote the table into $doc"
fi
