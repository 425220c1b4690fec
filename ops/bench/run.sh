#!/usr/bin/env bash
# The side-by-side benchmark: builds the load generator and switchboard (release), installs
# the Node peers, then runs every server in turn under the same load and prints one markdown
# table with the ratios switchboard ÷ peer (see crates/edge/examples/bench.rs).
#
#   ops/bench/run.sh [--quick] [--targets switchboard,switchboard-never,ws,socketio]
#
# --quick: a few seconds per server (a smoke run, under a minute once built).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}

cargo build --release --quiet -p switchboard --bin switchboard
cargo build --release --quiet -p switchboard-edge --example bench
switchboard=$target_dir/release/switchboard

peers=$root/ops/bench/peers
if [ ! -d "$peers/node_modules" ] || [ "$peers/package-lock.json" -nt "$peers/node_modules" ]; then
    npm ci --prefix "$peers" --no-audit --no-fund --silent
    touch "$peers/node_modules"
fi

# Thousands of connections: the servers inherit this limit.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# The edge's rate limits, where the binary lets them be set: the figures then measure the
# server, not its limiter. Older binaries refuse the keys; the load is spread over enough
# connections and tenants to stay under the default limits either way.
sets=()
limits=(--set edge.connection_rate.per_second=1000000 --set edge.connection_rate.burst=1000000
        --set edge.tenant_rate.per_second=1000000 --set edge.tenant_rate.burst=1000000)
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
if "$switchboard" token --data-dir "$probe" --tenant t --role agent --subject s "${limits[@]}" \
    >/dev/null 2>&1; then
    sets=("${limits[@]}")
    echo "edge rate limits raised for the run" >&2
else
    echo "edge rate limits are not settable in this binary: default limits, load spread" >&2
fi

"$target_dir/release/examples/bench" --switchboard "$switchboard" --peers "$peers" \
    "${sets[@]}" "$@"
