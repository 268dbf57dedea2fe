#!/usr/bin/env bash
# Whole-pipeline import benchmark: parse → normalise → validate → district → store → index for
# N demo places (default 1,000,000) into an empty embedded (SQLite) store, three runs.
# Prints the stage timings the binary reports, the wall time and the peak RSS of each run.
#   bench/import.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
cargo build --release -q -p sadomap
bin=${CARGO_TARGET_DIR:-target}/release/sadomap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" demo --count "$count" --seed 1 --out "$work/demo.jsonl" >/dev/null
echo "input: $count demo places, $(du -m "$work/demo.jsonl" | cut -f1) MB of JSON lines; $(nproc) cores"
for run in 1 2 3; do
  rm -rf "$work/data"
  start=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%M" -o "$work/rss" "$bin" --data-dir "$work/data" import "$work/demo.jsonl" --json > "$work/out.json"
    rss_mb=$(( $(cat "$work/rss") / 1024 ))
  else
    "$bin" --data-dir "$work/data" import "$work/demo.jsonl" --json > "$work/out.json"
    rss_mb="?"
  fi
  end=$(date +%s.%N)
  wall=$(echo "$end - $start" | bc -l)
  python3 - "$work/out.json" "$wall" "$rss_mb" "$run" "$count" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
wall, rss, run, n = float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
t = r["timings_s"]
print(f"run {run}: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items())
      + f"; pipeline {r['total_s']:.2f}s = {r['places_per_s']:,.0f} places/s;"
      + f" wall (process, incl. start) {wall:.2f}s = {n / wall:,.0f} places/s; peak RSS {rss} MB;"
      + f" inserted {r['inserted']}, indexed {r['indexed']}")
PY
done
echo "store file: $(du -m "$work/data" | tail -n1 | cut -f1) MB"
# RSS of a process that loads every place and builds the index (what `serve` will hold).
/usr/bin/time -f "%M" -o "$work/rss" "$bin" --data-dir "$work/data" stats --json > "$work/stats.json"
echo "load + index of $count places (sadomap stats): peak RSS $(( $(cat "$work/rss") / 1024 )) MB"
