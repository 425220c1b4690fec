#!/usr/bin/env bash
# The long crash loop: `switchboard serve` killed with SIGKILL under chat load and restarted on
# the same data directory ROUNDS times (50 by default) while an agent follows the
# conversation; every acknowledged message must be delivered and stored once, in order.
# The test suite runs the same scenario with 3 rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-50}"
SWITCHBOARD_TEST_CRASH_ROUNDS="$rounds" cargo nextest run -p switchboard --test crash --no-capture
