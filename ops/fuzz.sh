#!/usr/bin/env bash
# Runs every fuzz target of tests/fuzz for FUZZ_SECONDS each (default 30) and exits non-zero
# if any of them finds a crash, a hang (-timeout) or a run past its memory limit
# (-rss_limit_mb, -malloc_limit_mb). Installs what it needs when it is missing: the nightly
# toolchain (rustup) and cargo-fuzz. Findings land in tests/fuzz/artifacts/<target>/;
# the corpus grows in tests/fuzz/corpus/<target>/ (neither is committed).
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
target_dir="${CARGO_TARGET_DIR:-target}/fuzz"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "ops/fuzz.sh: installing the nightly toolchain" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "ops/fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build --fuzz-dir tests/fuzz -s none --target-dir "$target_dir"

failed=()
for target in "${targets[@]}"; do
    mkdir -p "tests/fuzz/corpus/$target" "tests/fuzz/artifacts/$target"
    echo "fuzz: $target for ${seconds}s"
    log="$(mktemp)"
    if cargo +nightly fuzz run --fuzz-dir tests/fuzz -s none --target-dir "$target_dir" "$target" \
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
