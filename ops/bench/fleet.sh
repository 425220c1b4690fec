#!/usr/bin/env bash
# Idle connections in the distributed shape: one `ingest,router` and several
# `switchboard run --roles edge` processes on a tansu broker, the connections opened by
# several generator processes (no process here may hold more than 20,000 open files), held
# past the edge's idle timeout; prints the edges' RSS per connection as a markdown table
# (crates/edge/examples/bench/fleet.rs).
#
#   ops/bench/fleet.sh [connections (100000)] [edges (6)] [generators (6)] [hold seconds (90)]
set -euo pipefail

connections=${1:-100000}
edges=${2:-6}
clients=${3:-6}
hold=${4:-90}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
[ -x "$HOME/.cargo/bin/tansu" ] || command -v tansu >/dev/null || bash ops/install-tansu.sh

cargo build --release --quiet -p switchboard --bin switchboard
cargo build --release --quiet -p switchboard-edge --example bench

# Every process takes the most open files it may.
ulimit -n "$(ulimit -Hn)"
"$target_dir/release/examples/bench" --switchboard "$target_dir/release/switchboard" \
    --peers "$root/ops/bench/peers" --fleet "$connections" --edges "$edges" \
    --clients "$clients" --hold-seconds "$hold"
