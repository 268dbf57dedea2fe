#!/usr/bin/env bash
# No-op jobs end to end (enqueue, run, acknowledge) with one worker process per core, and the
# enqueue rate of one producer: Celery 5 (PyPI) on Redis, sadomap on the same Redis, and
# sadomap on its embedded SQLite queue, all in this one run so the ratios are fair.
#   bench/queue/compare.sh            # JOBS=100000 sadomap jobs, CELERY_JOBS=20000
# Env: JOBS, CELERY_JOBS, PROCS (default: cores), REDIS_PORT (6390; started here when nothing
# answers), BENCH_REDIS_DB (5, flushed), CELERY_VENV (/var/tmp/sadomap-celery-venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=${JOBS:-100000}
CELERY_JOBS=${CELERY_JOBS:-20000}
PROCS=${PROCS:-$(nproc)}
REDIS_PORT=${REDIS_PORT:-6390}
DB=${BENCH_REDIS_DB:-5}
URL="redis://127.0.0.1:$REDIS_PORT/$DB"
VENV=${CELERY_VENV:-/var/tmp/sadomap-celery-venv}

if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
cargo build --release -q -p sadomap
bin=${CARGO_TARGET_DIR:-target}/release/sadomap
if [ ! -x "$VENV/bin/celery" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r bench/queue/celery/requirements.txt
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

now() { date +%s.%N; }
# Succeeded runs of queue `bench`, from `sadomap queue stats --json`.
succeeded() {
  "$bin" "$@" --json queue stats | python3 -c '
import json, sys
c = [q for q in json.load(sys.stdin).get("counters", []) if q["queue"] == "bench"]
print(c[0]["succeeded"] if c else 0)'
}

# sadomap_run NAME BACKEND-ARGS...: prints "NAME enqueue/s end-to-end/s".
sadomap_run() {
  local name=$1; shift
  redis-cli -p "$REDIS_PORT" -n "$DB" flushdb >/dev/null
  rm -rf "$work/data"
  local t0 t1 e2e_start e2e_end
  t0=$(now)
  "$bin" "$@" queue enqueue noop --count "$JOBS" --queue bench >/dev/null
  t1=$(now)
  "$bin" "$@" queue purge --state ready --queue bench >/dev/null
  local base; base=$(succeeded "$@")
  pids=()
  for _ in $(seq "$PROCS"); do
    "$bin" "$@" worker --queues bench >"$work/worker.log" 2>&1 &
    pids+=($!)
  done
  sleep 1
  e2e_start=$(now)
  "$bin" "$@" queue enqueue noop --count "$JOBS" --queue bench >/dev/null
  local deadline=$((SECONDS + 600))
  # Polled every 100 ms: each poll is a process start, which must not slow the workers much.
  while [ "$(succeeded "$@")" -lt $((base + JOBS)) ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  e2e_end=$(now)
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  python3 -c "import sys; j=$JOBS; print('$name', round(j/($t1-$t0)), round(j/($e2e_end-$e2e_start)))"
}

echo "machine: $(nproc) cores; $PROCS worker processes; sadomap $JOBS jobs, Celery $CELERY_JOBS jobs"
redis_line=$(sadomap_run sadomap-redis --redis "$URL")
sqlite_line=$(sadomap_run sadomap-sqlite --data-dir "$work/data")
redis-cli -p "$REDIS_PORT" -n "$DB" flushdb >/dev/null
celery_out=$(cd bench/queue/celery && SADOMAP_BENCH_REDIS_URL="$URL" "$VENV/bin/python" bench.py --jobs "$CELERY_JOBS" --procs "$PROCS" 2>/dev/null)
celery_enq=$(echo "$celery_out" | sed -n 's/^celery enqueue jobs\/s = \([0-9]*\).*/\1/p')
celery_e2e=$(echo "$celery_out" | sed -n 's/^celery end-to-end jobs\/s = \([0-9]*\).*/\1/p')
echo "$celery_out" | grep '^celery setup'
python3 - "$redis_line" "$sqlite_line" "$celery_enq" "$celery_e2e" <<'PY'
import sys
rows = [l.split() for l in sys.argv[1:3]]
ce, c2 = float(sys.argv[3]), float(sys.argv[4])
print(f"{'system':<16}{'enqueue/s':>12}{'end-to-end/s':>14}{'x Celery (e2e)':>16}")
print(f"{'celery-redis':<16}{ce:>12,.0f}{c2:>14,.0f}{1:>16.1f}")
for name, enq, e2e in rows:
    print(f"{name:<16}{float(enq):>12,.0f}{float(e2e):>14,.0f}{float(e2e) / c2:>16.1f}")
PY
