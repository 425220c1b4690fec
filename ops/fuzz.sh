#!/usr/bin/env bash
# Runs every fuzz target of tests/fuzz for FUZZ_SECONDS each (default 30) and exits non-zero
# if any of them finds a crash, a hang (-timeout) or a run past its memory limit
# (-rss_limit_mb, -malloc_limit_mb). Installs cargo-fuzz when it is missing. Builds on the
# stable toolchain: without a sanitizer (`-s none`) cargo-fuzz needs no nightly flag, and the
# workspace forbids `unsafe`, which is what a sanitizer would watch. Builds go to
# FUZZ_TARGET_DIR (default ~/.cargo/switchboard-fuzz-target, beside the registry, so a cache
# of ~/.cargo keeps them); findings land in tests/fuzz/artifacts/<target>/, the corpus grows
# in tests/fuzz/corpus/<target>/ (neither is committed).
#
#   FUZZ_SECONDS=300 ops/fuzz.sh              # the long run of docs/reliability.md
#   ops/fuzz.sh log_recovery                  # only some targets
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(avro_decoder ws_client_frame http_bodies log_recovery)
fi
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
target_dir="${FUZZ_TARGET_DIR:-$cargo_home/switchboard-fuzz-target}"
export PATH="$cargo_home/bin:$PATH"

if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "ops/fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# 16 codegen units rather than cargo-fuzz's 1 in release builds: the build is most of a short
# run's cost, and the targets still run millions of inputs a minute.
build=(--fuzz-dir tests/fuzz -s none --codegen-units 16 --target-dir "$target_dir")
started=$SECONDS
cargo fuzz build "${build[@]}"
echo "fuzz: built in $((SECONDS - started))s"

failed=()
for target in "${targets[@]}"; do
    mkdir -p "tests/fuzz/corpus/$target" "tests/fuzz/artifacts/$target"
    echo "fuzz: $target for ${seconds}s"
    log="$(mktemp)"
    if cargo fuzz run "${build[@]}" "$target" \
        -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | sed "s/^/  $target /" || true
    else
        tail -40 "$log"
        failed+=("$target")
    fi
    rm -f "$log"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]} (see tests/fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no findings"
