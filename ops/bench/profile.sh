#!/usr/bin/env bash
# Where switchboard's CPU goes in the steady-chat scenario: runs `switchboard serve` under
# valgrind's callgrind (instruction counts; perf has no hardware counters on this machine)
# while the bench drives steady chat at a rate callgrind keeps up with, then prints the
# functions by inclusive and by exclusive instruction count.
#
#   ops/bench/profile.sh [durability: always|never] [messages/s] [seconds]
set -euo pipefail

durability=${1:-always}
rate=${2:-20}
seconds=${3:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --quiet -p switchboard --bin switchboard
cargo build --release --quiet -p switchboard-edge --example bench

out=$(mktemp -d)
cat >"$out/switchboard" <<WRAP
#!/usr/bin/env bash
exec valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.out \
    "$target_dir/release/switchboard" "\$@"
WRAP
chmod +x "$out/switchboard"

target=switchboard
[ "$durability" = never ] && target=switchboard-never
"$target_dir/release/examples/bench" --switchboard "$out/switchboard" \
    --peers "$root/ops/bench/peers" --targets "$target" --steady-only \
    --rates "$rate" --seconds "$seconds" --rooms 20

echo "profile: $out/callgrind.out" >&2
callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null | head -60
callgrind_annotate "$out/callgrind.out" 2>/dev/null | head -50
