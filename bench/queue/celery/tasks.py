"""The Celery peer of sadomap's `noop` task, on the same Redis (env SADOMAP_BENCH_REDIS_URL)."""
import os

from celery import Celery

BROKER = os.environ.get("SADOMAP_BENCH_REDIS_URL", "redis://127.0.0.1:6390/0")

app = Celery("sadomap_bench", broker=BROKER)
app.conf.update(
    task_ignore_result=True,  # sadomap's figure does not read results either
    task_default_queue="bench",
    worker_prefetch_multiplier=int(os.environ.get("CELERY_PREFETCH", "4")),
    task_acks_late=os.environ.get("CELERY_ACKS_LATE", "0") == "1",
    broker_connection_retry_on_startup=True,
)


@app.task(name="noop")
def noop():
    """Does nothing, like sadomap's built-in `noop`."""
    return None
