#!/usr/bin/env bash
# Reactive vs predictive worker scaling on a day-shaped load trace (discrete-event simulation of
# sadomap-supervisor's ScalingManager). Writes bench/scaling/results.md; exits non-zero if
# predictive scaling does not beat reactive on p95 wait for no more worker-seconds.
# Usage: bench/scaling/run.sh [--seed N] [--util F] [--lead-secs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release -p sadomap-supervisor --example scaling_sim
bin="${CARGO_TARGET_DIR:-target}/release/examples/scaling_sim"
{
  echo '```'
  "$bin" "$@"
  echo '```'
} | tee bench/scaling/results.md
