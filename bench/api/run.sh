#!/usr/bin/env bash
# Closed-loop throughput of `sadomap serve` for nearest-20 queries (k = 20, distance sort) at
# random points over the island, measured with wrk against a demo store on the loopback.
#
#   bench/api/run.sh                      # 1,000 places, 64 connections, 15 s
#   COUNT=1000000 CONNS=256 bench/api/run.sh
#
# Prints wrk's latency distribution and one JSON line (requests, rps, p50/p99/max in ms, errors).
# The load generator shares the machine's cores with the server, as the issue's goal states.
set -euo pipefail
cd "$(dirname "$0")/../.."

COUNT=${COUNT:-1000}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-15s}
PORT=${PORT:-18280}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p sadomap
BIN="$CARGO_TARGET_DIR/release/sadomap"
DIR=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

"$BIN" --data-dir "$DIR" demo --count "$COUNT" >/dev/null
"$BIN" --data-dir "$DIR" serve --listen "127.0.0.1:$PORT" --rate-limit 0 >"$DIR/serve.log" 2>&1 &
PID=$!
for _ in $(seq 600); do
  curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null

echo "places=$COUNT connections=$CONNS threads=$THREADS duration=$DURATION"
# Warm up (page cache, allocator), then measure.
wrk -t"$THREADS" -c"$CONNS" -d2s -s bench/api/near.lua "http://127.0.0.1:$PORT" >/dev/null
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/api/near.lua "http://127.0.0.1:$PORT"
echo "server RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$PID/status")"
