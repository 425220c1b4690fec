#!/usr/bin/env bash
# Installs the tansu Kafka-protocol broker that the switchboard-log Kafka tests start.
# Idempotent: does nothing when tansu at the pinned version is already in ~/.cargo/bin.
set -euo pipefail

version="0.6.0"
bin="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"

if [[ -x "$bin" ]] && cargo install --list | grep -q "^tansu v${version}:"; then
  echo "install-tansu: tansu ${version} already installed at ${bin}"
  exit 0
fi

echo "install-tansu: installing tansu ${version} (features: dynostore) into ${bin%/tansu}"
cargo install tansu --locked --version "${version}" --features dynostore
echo "install-tansu: done: $("$bin" --version 2>/dev/null || echo "$bin")"
