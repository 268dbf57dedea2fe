#!/usr/bin/env bash
# Embedded (SQLite) queue benchmark with the release binary, one worker process per core:
#  1. drain:      N no-op jobs enqueued first, then workers start; jobs/s until all are done.
#  2. concurrent: workers running, N no-op jobs enqueued while they run; jobs/s end to end
#                 (from the first enqueue to the last acknowledgement).
#  3. latency:    no-op jobs offered at RATE/s for SECONDS; enqueue-to-start p50/p99 as the
#                 workers measure it (the p99 reported is the worst worker's).
#  4. recovery:   a worker running two long jobs is SIGKILLed; time until another worker runs
#                 them, with a supervisor releasing the dead worker's leases at once, and
#                 without one (the 10 s leases run out).
#   bench/queue/sqlite.sh [N=100000] [RATE=1000] [SECONDS=10]
# With REDIS_URL set (bench/queue/redis.sh does that) the same steps run on the Redis backend;
# the URL's database is flushed before each step.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100000}
rate=${2:-1000}
secs=${3:-10}
cores=$(nproc)
cargo build --release -q -p sadomap
bin=${CARGO_TARGET_DIR:-target}/release/sadomap
backend=SQLite
if [ -n "${REDIS_URL:-}" ]; then
  backend="Redis ($REDIS_URL)"
  real_bin=$bin
  # Every call goes to Redis; --data-dir still names a fresh directory per step.
  bin=$(mktemp)
  printf '#!/bin/sh\nexec "%s" --redis "%s" "$@"\n' "$real_bin" "$REDIS_URL" >"$bin"
  chmod +x "$bin"
fi
fresh() {
  if [ -n "${REDIS_URL:-}" ]; then
    port=$(echo "$REDIS_URL" | sed -n 's#.*:\([0-9]*\)/\{0,1\}.*#\1#p')
    db=$(echo "$REDIS_URL" | sed -n 's#.*/\([0-9]*\)$#\1#p')
    redis-cli -p "${port:-6379}" -n "${db:-0}" flushdb >/dev/null
  fi
}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
  if [ -n "${REDIS_URL:-}" ]; then rm -f "$bin"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }

# Waits until no job is ready, scheduled or running (polling the stats every 20 ms).
wait_done() {
  local data=$1
  while true; do
    left=$("$bin" --data-dir "$data" --json queue stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(q["ready"] + q["scheduled"] + q["running"] for q in s["queues"]))')
    [ "$left" = 0 ] && break
    sleep 0.02
  done
}

start_workers() {
  local data=$1
  pids=()
  for i in $(seq "$cores"); do
    "$bin" --data-dir "$data" --json worker --concurrency "${CONCURRENCY:-2}" \
      ${PREFETCH:+--prefetch "$PREFETCH"} >"$work/report-$i.json" 2>/dev/null &
    pids+=($!)
  done
}

stop_workers() {
  for p in "${pids[@]}"; do kill -TERM "$p"; done
  for p in "${pids[@]}"; do wait "$p" || true; done
  pids=()
}

echo "$backend queue, $cores worker processes (one per core), concurrency ${CONCURRENCY:-2} each; $(nproc) cores"

# 1. drain
data=$work/drain
fresh
t0=$(now)
"$bin" --data-dir "$data" --json queue enqueue noop --count "$n" >/dev/null
t1=$(now)
start_workers "$data"
wait_done "$data"
t2=$(now)
stop_workers
python3 -c "
n, t0, t1, t2 = $n, $t0, $t1, $t2
print(f'drain: enqueue {n} in {t1-t0:.2f}s = {n/(t1-t0):,.0f} jobs/s (one producer); '
      f'run+ack {n} in {t2-t1:.2f}s = {n/(t2-t1):,.0f} jobs/s')"

# 2. concurrent
data=$work/concurrent
fresh
"$bin" --data-dir "$data" queue stats >/dev/null
start_workers "$data"
sleep 0.5
t0=$(now)
"$bin" --data-dir "$data" --json queue enqueue noop --count "$n" >/dev/null
t1=$(now)
wait_done "$data"
t2=$(now)
stop_workers
python3 -c "
n, t0, t1, t2 = $n, $t0, $t1, $t2
print(f'concurrent: enqueue+run+ack {n} in {t2-t0:.2f}s = {n/(t2-t0):,.0f} jobs/s end to end '
      f'(enqueue alone took {t1-t0:.2f}s)')"

# 3. latency at a fixed offered rate
data=$work/latency
fresh
"$bin" --data-dir "$data" queue stats >/dev/null
start_workers "$data"
sleep 0.5
count=$((rate * secs))
"$bin" --data-dir "$data" --json queue enqueue noop --count "$count" --rate "$rate" >/dev/null
wait_done "$data"
stop_workers
python3 - "$rate" "$count" "$work"/report-*.json <<'PY'
import json, sys
rate, count, files = sys.argv[1], sys.argv[2], sys.argv[3:]
reps = [json.load(open(f)) for f in files]
lat = [r["latency"] for r in reps]
print(f"latency: {count} jobs offered at {rate}/s: enqueue-to-start p50 "
      f"{max(l['p50_ms'] for l in lat)} ms, p99 {max(l['p99_ms'] for l in lat)} ms, "
      f"max {max(l['max_ms'] for l in lat)} ms (worst of {len(reps)} workers; "
      f"jobs per worker {[l['count'] for l in lat]})")
PY

# 4. recovery after SIGKILL
running_by() {
  "$bin" --data-dir "$1" --json queue list --state running | python3 -c '
import json, sys
print(sum(1 for j in json.load(sys.stdin) if j["worker"] == sys.argv[1]))' "$2"
}
for mode in supervisor lease-expiry; do
  data=$work/kill-$mode
  fresh
  "$bin" --data-dir "$data" --json queue enqueue sleep --payload '{"ms": 600000}' --count 2 >/dev/null
  "$bin" --data-dir "$data" worker --id victim --concurrency 2 >/dev/null 2>&1 &
  victim=$!
  disown "$victim" # no "Killed" notice from the shell
  pids=("$victim")
  until [ "$(running_by "$data" victim)" = 2 ]; do sleep 0.02; done
  "$bin" --data-dir "$data" worker --id rescuer --concurrency 2 >/dev/null 2>&1 &
  pids+=($!)
  disown $!
  sleep 0.5
  t0=$(now)
  kill -9 "$victim"
  if [ "$mode" = supervisor ]; then
    "$bin" --data-dir "$data" queue release-worker victim >/dev/null
  fi
  until [ "$(running_by "$data" rescuer)" = 2 ]; do sleep 0.01; done
  t1=$(now)
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  pids=()
  python3 -c "print(f'recovery ($mode): SIGKILL to both jobs running again {$t1 - $t0:.2f}s (lease 10 s)')"
done
