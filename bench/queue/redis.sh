#!/usr/bin/env bash
# The steps of bench/queue/sqlite.sh (drain, concurrent, latency at a fixed rate, recovery after
# SIGKILL) on the Redis backend. REDIS_URL defaults to database 6 of the Redis on port 6390,
# which is flushed before each step.
#   bench/queue/redis.sh [N=100000] [RATE=1000] [SECONDS=10]
set -euo pipefail
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6390/6}
exec "$(dirname "$0")/sqlite.sh" "$@"
