#!/usr/bin/env bash
# The long reconnect storm (docs/reliability.md, "Reconnect storm"): the load generator of
# ops/bench starts `switchboard serve` on a fresh data directory, opens CLIENTS WebSocket
# clients (a customer and an agent per conversation), chats, drops every client at once,
# resumes each with since_seq, chats again, and checks that each client ends with exactly its
# conversation's events. It samples serve's RSS before the clients, at the peak and after all
# have left, and prints one markdown table. Exits non-zero when any client ended wrong.
#
#   ops/reconnect-storm.sh [CLIENTS] [MESSAGES]     (10000 and 5 by default)
#
# PROFILE=release builds optimised binaries (the figures in docs/ are from the dev profile).
# The CI version is `storm` in tests/faults.rs (500 clients).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
clients=${1:-10000}
messages=${2:-5}
profile=${PROFILE:-dev}
target_dir=${CARGO_TARGET_DIR:-$root/target}
out=$([ "$profile" = dev ] && echo debug || echo "$profile")

cargo build --quiet --profile "$profile" -p switchboard --bin switchboard
cargo build --quiet --profile "$profile" -p switchboard-edge --example bench

# Twice as many sockets as clients, on both sides: serve inherits this limit.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Raise the edge's per-tenant frame rate for the run: ten thousand clients resubscribing at
# once is the point, not the limiter.
"$target_dir/$out/examples/bench" --switchboard "$target_dir/$out/switchboard" \
    --peers "$root/ops/bench/peers" \
    --set edge.tenant_rate.per_second=1000000 --set edge.tenant_rate.burst=1000000 \
    --storm "$clients" --storm-messages "$messages"
