#!/usr/bin/env bash
# Failover drill of sadomap-supervisor on local processes: time from fault to detection and to a
# healthy replacement for each failure type. Writes bench/failover/results.md.
# Usage: bench/failover/run.sh [--rounds N] [--interval-ms N]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p sadomap-supervisor --bin sadomap-supervisor-testchild --example failover_drill
dir="${CARGO_TARGET_DIR:-target}/debug"
"$dir/examples/failover_drill" --child "$dir/sadomap-supervisor-testchild" --out bench/failover/results.md "$@"
