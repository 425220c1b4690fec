#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs every test of
# the workspace and fuzzes each target briefly. Works on a fresh machine with nothing but the
# Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "ops/test.sh: installing cargo-nextest" >&2
    cargo install cargo-nextest --locked
fi

# The Kafka backend's tests start a real Kafka-protocol broker (tansu) on loopback.
bash ops/install-tansu.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

cargo nextest run --workspace --locked --no-fail-fast "$@"

# Then a short run of every fuzz target (its cost: docs/reliability.md). FUZZ_SECONDS=0 skips it.
fuzz_seconds="${FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" != 0 ]; then
    FUZZ_SECONDS="$fuzz_seconds" bash ops/fuzz.sh
fi
