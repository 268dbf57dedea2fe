#!/usr/bin/env bash
# Failover drill of sadomap-supervisor on local processes: time from fault to detection and to a
# healthy replacement for each failure type. Writes bench/failover/results.md.
# Usage: bench/failover/run.sh [--rounds N] [--interval-ms N]
#        bench/failover/run.sh --docker [--rounds N] [--interval-ms N]
# --docker: the same faults on containers (Docker runtime), and Docker's own `restart: always`
# on the same container for comparison; replaces the Docker part of results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--docker" ]; then
  shift
  docker/build-images.sh
  cargo build -q --release -p sadomap-supervisor --example docker_drill
  exec "${CARGO_TARGET_DIR:-target}/release/examples/docker_drill" --out bench/failover/results.md "$@"
fi
cargo build -q -p sadomap-supervisor --bin sadomap-supervisor-testchild --example failover_drill
dir="${CARGO_TARGET_DIR:-target}/debug"
"$dir/examples/failover_drill" --child "$dir/sadomap-supervisor-testchild" --out bench/failover/results.md "$@"
