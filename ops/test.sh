#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs every test of
# the workspace. Works on a fresh machine with nothing but the Rust toolchain.
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
