#!/usr/bin/env bash
# Installs the tansu Kafka-protocol broker that the Kafka tests start.
# Features: dynostore (memory:// storage, what most tests use) and libsql (sqlite:// storage:
# a broker that keeps its log in a file, so tests/faults.rs can kill it and restart it on the
# same storage). Idempotent: does nothing when tansu at the pinned version with those features
# is already in ~/.cargo/bin.
set -euo pipefail

version="0.6.0"
features="dynostore,libsql"
home="${CARGO_HOME:-$HOME/.cargo}"
bin="$home/bin/tansu"

installed_features() {
    # cargo records each installed package's features in .crates2.json.
    python3 - "$home/.crates2.json" "$version" <<'EOF' 2>/dev/null || true
import json, sys
installs = json.load(open(sys.argv[1]))["installs"]
for key, value in installs.items():
    if key.startswith("tansu " + sys.argv[2] + " "):
        print(",".join(sorted(value.get("features", []))))
EOF
}

if [[ -x "$bin" ]] && [[ "$(installed_features)" == "$features" ]]; then
    echo "install-tansu: tansu ${version} (${features}) already installed at ${bin}"
    exit 0
fi

echo "install-tansu: installing tansu ${version} (features: ${features}) into ${bin%/tansu}"
cargo install tansu --locked --version "${version}" --features "${features}"
echo "install-tansu: done: $("$bin" --version 2>/dev/null || echo "$bin")"
