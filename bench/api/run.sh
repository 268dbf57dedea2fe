#!/usr/bin/env bash
# Issue 4's figures for the HTTP API, in one go: nearest-20 queries (k = 20, distance sort) at
# random points over Sado Island against `sadomap serve`, and the same queries against Redis
# GEOSEARCH, both driven by bench/api/loadgen (one generator, same connections, same points).
#
#   bench/api/run.sh                       # everything (about 6 minutes after the data exist)
#   RATES="5000 10000" CMP_SETS=20000 bench/api/run.sh
#
# 1. Sado-sized set (1,000 places): open loop at each of RATES over CONNS keep-alive
#    connections (latency from the intended send time), the highest rate held (p99 <= 10 ms, no
#    errors, nothing left unanswered), the closed-loop maximum with the same generator and with
#    wrk (near.lua), and the server's peak RSS (VmHWM).
# 2. 1,000,000 places: open loop at each of BIG_RATES, closed loop, peak RSS.
# 3. For each set in CMP_SETS and radius in RADII (km): Redis `GEOSEARCH key FROMLONLAT lng lat
#    BYRADIUS r km ASC COUNT 20` and `GET /v1/places?near=lat,lng&radius=r&sort=distance&limit=20`
#    on the same points, closed loop over CMP_CONNS connections (throughput), then both open
#    loop at half the slower one's maximum (latency at equal load); the throughput ratio.
#
# Demo data (`sadomap demo --count N --out`, imported into a store; Redis is loaded from the same
# file) are kept in DATA between runs. The load generator shares the two cores with the server,
# as the issue's goal states; the 1-minute load average is printed with every figure, since other
# work on the machine moves them.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONNS=${CONNS:-1000}
CMP_CONNS=${CMP_CONNS:-$CONNS}
RATES=${RATES:-"2000 5000 10000 12500 15000 20000"}
BIG_RATES=${BIG_RATES:-"2000 5000 10000"}
CMP_SETS=${CMP_SETS:-"20000 1000000"}
RADII=${RADII:-"1 5"}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
GEN_THREADS=${GEN_THREADS:-1}
PORT=${PORT:-18280}
RPORT=${RPORT:-16390}
DATA=${DATA:-/var/tmp/sadomap-bench-api}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

for tool in wrk redis-server redis-cli python3 curl; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p sadomap
  cargo build --release -q --manifest-path bench/api/loadgen/Cargo.toml
fi
BIN="$CARGO_TARGET_DIR/release/sadomap"
GEN="$CARGO_TARGET_DIR/release/sadomap-loadgen"
mkdir -p "$DATA"
OUT=$(mktemp)
PID=
RPID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ -n "$RPID" ]; then kill "$RPID" 2>/dev/null || true; wait "$RPID" 2>/dev/null || true; fi
  rm -f "$OUT"
}
trap cleanup EXIT

load1() { cut -d' ' -f1 /proc/loadavg; }

# dataset N: a store of N demo places and the JSON lines it was imported from.
dataset() {
  local n=$1
  if [ ! -s "$DATA/demo-$n.jsonl" ] || [ ! -d "$DATA/store-$n" ]; then
    rm -rf "$DATA/store-$n"
    "$BIN" demo --count "$n" --out "$DATA/demo-$n.jsonl" >/dev/null 2>&1
    "$BIN" --data-dir "$DATA/store-$n" import "$DATA/demo-$n.jsonl" >/dev/null 2>&1
  fi
}

start_server() {
  local n=$1
  dataset "$n"
  "$BIN" --data-dir "$DATA/store-$n" serve --listen "127.0.0.1:$PORT" --rate-limit 0 \
    >"$DATA/serve-$n.log" 2>&1 &
  PID=$!
  for _ in $(seq 1800); do
    curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$DATA/serve-$n.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null
}

# stop_server SET: records the server's peak RSS.
stop_server() {
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
  echo "{\"label\": \"rss\", \"set\": $1, \"vmhwm_kb\": $hwm, \"load\": $(load1)}" >>"$OUT"
  echo "  server peak RSS (VmHWM) with $1 places: $((hwm / 1024)) MB"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  PID=
}

# gen LABEL SET ARGS...: one load generator run, recorded with the set and the load average.
gen() {
  local label=$1 set=$2 line
  shift 2
  line=$("$GEN" "$@" --conns "${G_CONNS:-$CONNS}" --duration "$DURATION" --warmup "$WARMUP" \
    --threads "$GEN_THREADS" --label "$label")
  echo "$line" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read()); r['set'] = $set; r['load'] = $(load1)
print(json.dumps(r))" >>"$OUT"
  tail -1 "$OUT" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
print(f\"  {r['label']:<22} {r['target']:<8} offered {str(r['offered_rps']):>7} achieved {r['achieved_rps']:>8.0f}/s p50 {r['p50_ms']:8.2f} ms p99 {r['p99_ms']:8.2f} ms errors {r['errors'] + r['non_200']} unfinished {r['unfinished']} items {r['mean_items']} load {r['load']}\")"
}

redis_idle() { timeout 600 redis-cli -p "$RPORT" ping >/dev/null; }

max_of() { # max_of LABEL: achieved rate of the last run with that label
  python3 -c "
import json
rs = [json.loads(l) for l in open('$OUT')]
print(int([r for r in rs if r['label'] == '$1'][-1]['achieved_rps']))"
}

echo "machine: $(nproc) cores, $(uname -r), $(date -u +%FT%TZ), load $(cat /proc/loadavg)"

SECTIONS=${SECTIONS:-"sado big cmp"}
has() { echo " $SECTIONS " | grep -q " $1 "; }

if has sado; then
echo "== 1. Sado-sized set: 1,000 places, $CONNS connections"
start_server 1000
G_CONNS=$CONNS gen warmup 1000 http "127.0.0.1:$PORT" --rate 2000 >/dev/null
for r in $RATES; do gen "open-$r" 1000 http "127.0.0.1:$PORT" --rate "$r"; done
gen closed 1000 http "127.0.0.1:$PORT" --rate 0
line=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/api/near.lua "http://127.0.0.1:$PORT" | grep '^{')
echo "$line" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read()); r.update(label='wrk', set=1000, load=$(load1))
print(json.dumps(r))" >>"$OUT"
echo "  wrk closed loop: $line"
stop_server 1000
fi

echo "== 2. 1,000,000 places, $CONNS connections; then the Redis comparison"
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --maxclients 10100 \
  >"$DATA/redis.log" 2>&1 &
RPID=$!
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
for n in $CMP_SETS; do
  dataset "$n"
  echo "  redis: loaded $("$GEN" redis-load "127.0.0.1:$RPORT" --key "geo$n" --from "$DATA/demo-$n.jsonl") points into geo$n"
done
sets="$CMP_SETS"; has big && sets="$sets 1000000"
for n in $(echo "$sets" | tr ' ' '\n' | sort -un); do
  start_server "$n"
  if [ "$n" = 1000000 ] && has big; then
    for r in $BIG_RATES; do gen "open-$r" "$n" http "127.0.0.1:$PORT" --rate "$r"; done
    gen closed "$n" http "127.0.0.1:$PORT" --rate 0
  fi
  if echo " $CMP_SETS " | grep -q " $n " && has cmp; then
    for km in $RADII; do
      export G_CONNS=$CMP_CONNS
      # Ours first; after each Redis run wait until Redis has worked off what the closed
      # connections left queued (PING answers only then), so no run shares the CPU with it.
      gen "cmp-sadomap-$km" "$n" http "127.0.0.1:$PORT" --radius-km "$km" --rate 0
      gen "cmp-redis-$km" "$n" redis "127.0.0.1:$RPORT" --key "geo$n" --radius-km "$km" --rate 0
      redis_idle
      half=$(( $(max_of "cmp-redis-$km") / 2 ))
      [ "$half" -lt 1 ] && half=1
      gen "lat-sadomap-$km" "$n" http "127.0.0.1:$PORT" --radius-km "$km" --rate "$half"
      gen "lat-redis-$km" "$n" redis "127.0.0.1:$RPORT" --key "geo$n" --radius-km "$km" --rate "$half"
      redis_idle
      unset G_CONNS
    done
  fi
  stop_server "$n"
done

echo
python3 - "$OUT" "$CONNS" "$CMP_CONNS" <<'EOF'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
conns, cmp_conns = sys.argv[2], sys.argv[3]
def f(x, d=2):
    return "-" if x is None else f"{x:,.{d}f}"
def held(r):
    return (r["errors"] + r["non_200"] + r["unfinished"] == 0 and r["p99_ms"] <= 10
            and r["achieved_rps"] >= 0.99 * float(r["offered_rps"]))
for s in (1000, 1000000):
    opens = [r for r in rs if r.get("set") == s and r["label"].startswith("open-")]
    if not opens:
        continue
    print(f"### sadomap, {s:,} places, open loop over {conns} connections (near, k = 20)\n")
    print("| offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | errors | unfinished | held (p99 <= 10 ms) | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in opens:
        print(f"| {int(r['offered_rps']):,} | {r['achieved_rps']:,.0f} | {f(r['p50_ms'])} | {f(r['p99_ms'])} | {f(r['p999_ms'])} | {r['errors'] + r['non_200']} | {r['unfinished']} | {'yes' if held(r) else 'no'} | {r['load']} |")
    ok = [int(r["offered_rps"]) for r in opens if held(r)]
    print(f"\nHighest rate held: {max(ok):,} req/s" if ok else "\nHighest rate held: none of those tried")
    for r in rs:
        if r.get("set") == s and r["label"] in ("closed", "wrk"):
            tool = "wrk (near.lua)" if r["label"] == "wrk" else "loadgen"
            print(f"Closed-loop maximum, {tool}: {r['rps' if 'rps' in r and r['label'] == 'wrk' else 'achieved_rps']:,.0f} req/s (p50 {f(r['p50_ms'])} ms, p99 {f(r['p99_ms'])} ms, errors {r['errors'] + r.get('non_200', 0)}, load {r['load']})")
    print()
print(f"### Redis GEOSEARCH vs sadomap, same points, closed loop over {cmp_conns} connections\n")
print("| points | radius | Redis req/s | sadomap req/s | ratio | items/answer (Redis, sadomap) | at half Redis's max: Redis p50/p99 ms | sadomap p50/p99 ms | load |")
print("|---|---|---|---|---|---|---|---|---|")
for s in sorted({r["set"] for r in rs if r["label"].startswith("cmp-")}):
    for km in sorted({r["radius_km"] for r in rs if r["label"].startswith("cmp-") and r["set"] == s}):
        g = lambda lab: [r for r in rs if r["set"] == s and r["label"] == f"{lab}-{km:g}"][-1]
        a, b, la, lb = g("cmp-redis"), g("cmp-sadomap"), g("lat-redis"), g("lat-sadomap")
        ratio = b["achieved_rps"] / a["achieved_rps"] if a["achieved_rps"] else float("inf")
        print(f"| {s:,} | {km:g} km | {a['achieved_rps']:,.0f} | {b['achieved_rps']:,.0f} | {ratio:,.1f}x | {a['mean_items']}, {b['mean_items']} | {la['offered_rps']}/s: {f(la['p50_ms'])} / {f(la['p99_ms'])} (errors {la['errors'] + la['unfinished']}) | {f(lb['p50_ms'])} / {f(lb['p99_ms'])} (errors {lb['errors'] + lb['non_200'] + lb['unfinished']}) | {a['load']}, {b['load']} |")
print()
for r in rs:
    if r["label"] == "rss":
        print(f"Server peak RSS (VmHWM), {r['set']:,} places, after its runs: {r['vmhwm_kb'] / 1024:,.1f} MB")
EOF
