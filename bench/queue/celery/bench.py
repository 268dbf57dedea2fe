"""Celery 5 no-op throughput on Redis: enqueue rate of one producer, then end to end.

    python bench.py --jobs 20000 --procs 2

End to end: worker processes are started first (prefork, one process per core), then one
producer enqueues N no-op tasks, and the clock stops when Redis holds no message of the queue,
neither waiting (the `bench` list) nor delivered and unacknowledged (`unacked`): every task
has then been taken and acknowledged. Prints one line per figure, machine-readable after '='.
"""
import argparse
import os
import subprocess
import sys
import time

import redis

from tasks import BROKER, app, noop

HERE = os.path.dirname(os.path.abspath(__file__))


def drained(r):
    return r.llen("bench") == 0 and r.hlen("unacked") == 0


def clear(r):
    r.delete("bench", "unacked", "unacked_index")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--pool", default="prefork")
    a = ap.parse_args()
    r = redis.Redis.from_url(BROKER)
    clear(r)

    # Enqueue rate alone, one producer, no worker running.
    t = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for _ in range(a.jobs):
            noop.apply_async(producer=producer)
    enqueue = time.perf_counter() - t
    clear(r)

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", a.pool,
         "--concurrency", str(a.procs), "-Q", "bench", "--loglevel", "WARNING",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=HERE,
    )
    try:
        time.sleep(5)  # let the pool start before the clock runs
        t = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(a.jobs):
                noop.apply_async(producer=producer)
        deadline = time.time() + 900
        while not drained(r) and time.time() < deadline:
            time.sleep(0.005)
        e2e = time.perf_counter() - t
        ok = drained(r)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    clear(r)
    print(f"celery enqueue jobs/s = {a.jobs / enqueue:.0f}")
    print(f"celery end-to-end jobs/s = {a.jobs / e2e:.0f}" + ("" if ok else " (timed out)"))
    print(f"celery setup: {a.jobs} jobs, {a.pool} pool, concurrency {a.procs}, Celery {__import__('celery').__version__}")


if __name__ == "__main__":
    main()
