#!/usr/bin/env bash
# Where switchboard's CPU goes in the steady-chat scenario: runs `switchboard serve` under a
# profiler while the bench drives steady chat, then prints the hottest functions.
#
#   ops/bench/profile.sh [durability: always|never] [messages/s] [seconds]
#
# PROFILER=callgrind (the default): valgrind's instruction counts, by inclusive and by
# exclusive count; callgrind slows the server some 50-fold, so keep the rate low (20/s).
# PROFILER=perf: `perf record` sampling the CPU clock (no hardware counters on this machine)
# with DWARF call graphs, at the real rate (5000/s); prints the report by children (inclusive)
# and by self time.
set -euo pipefail

durability=${1:-always}
profiler=${PROFILER:-callgrind}
default_rate=20
[ "$profiler" = perf ] && default_rate=5000
rate=${2:-$default_rate}
seconds=${3:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --quiet -p switchboard --bin switchboard
cargo build --release --quiet -p switchboard-edge --example bench

out=$(mktemp -d)
case "$profiler" in
    callgrind) run="valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.out" ;;
    perf) run="perf record -q -e cpu-clock -F 250 --call-graph dwarf,16384 -o $out/perf.data --" ;;
    *) echo "PROFILER is callgrind or perf" >&2; exit 2 ;;
esac
cat >"$out/switchboard" <<WRAP
#!/usr/bin/env bash
exec $run "$target_dir/release/switchboard" "\$@"
WRAP
chmod +x "$out/switchboard"

target=switchboard
[ "$durability" = never ] && target=switchboard-never
ulimit -n "$(ulimit -Hn)"
"$target_dir/release/examples/bench" --switchboard "$out/switchboard" \
    --peers "$root/ops/bench/peers" --targets "$target" --steady-only \
    --rates "$rate" --seconds "$seconds" --rooms "$(( rate >= 1000 ? 1000 : 20 ))" \
    --set edge.connection_rate.per_second=1000000 --set edge.connection_rate.burst=1000000 \
    --set edge.tenant_rate.per_second=1000000 --set edge.tenant_rate.burst=1000000

if [ "$profiler" = perf ]; then
    echo "profile: $out/perf.data" >&2
    perf report -i "$out/perf.data" --children --stdio --percent-limit 2 \
        -g none 2>/dev/null | grep -v '^$' | head -80
    perf report -i "$out/perf.data" --no-children --stdio --percent-limit 0.7 \
        -g none 2>/dev/null | grep -v '^$' | head -60
else
    echo "profile: $out/callgrind.out" >&2
    callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null | head -60
    callgrind_annotate "$out/callgrind.out" 2>/dev/null | head -50
fi
