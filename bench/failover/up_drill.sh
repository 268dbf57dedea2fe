#!/usr/bin/env bash
# Failover drill through `sadomap up` with the real serve/worker/scheduler processes: time from
# fault to detection, replacement and healthy replacement, and failed client requests.
# Writes bench/failover/up_results.md.
# Usage: bench/failover/up_drill.sh [--rounds N] [--interval-ms N]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release -p sadomap --bin sadomap --example up_drill
dir="${CARGO_TARGET_DIR:-target}/release"
"$dir/examples/up_drill" --bin "$dir/sadomap" --out bench/failover/up_results.md "$@"
