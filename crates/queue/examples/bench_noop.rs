//! End-to-end no-op throughput of the Redis backend: worker processes lease and finish no-op
//! jobs while one producer enqueues N of them; prints enqueue rate and end-to-end jobs/s.
//!
//! ```text
//! cargo run --release -p sadomap-queue --example bench_noop -- \
//!     --redis redis://127.0.0.1:6390 --jobs 200000 --procs 2 --threads 2 --batch 256
//! ```
//! Workers are this same binary started with `--worker`; the parent times from the first
//! enqueue until the queue counted every job as succeeded, then stops them.

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sadomap_queue::{
    Broker, Finished, LeaseRequest, NewJob, Outcome, QueueName, QueueWeight, RedisBroker,
    SystemClock, TaskName, WorkerId,
};

struct Args {
    redis: String,
    prefix: String,
    jobs: usize,
    procs: usize,
    threads: usize,
    batch: usize,
    worker: bool,
}

fn args() -> Args {
    let mut a = Args {
        redis: "redis://127.0.0.1:6390".into(),
        prefix: format!("bench:{}", std::process::id()),
        jobs: 100_000,
        procs: 2,
        threads: 2,
        batch: 256,
        worker: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--redis" => a.redis = value(),
            "--prefix" => a.prefix = value(),
            "--jobs" => a.jobs = value().parse().unwrap_or(a.jobs),
            "--procs" => a.procs = value().parse().unwrap_or(a.procs),
            "--threads" => a.threads = value().parse().unwrap_or(a.threads),
            "--batch" => a.batch = value().parse().unwrap_or(a.batch),
            "--worker" => a.worker = true,
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    a
}

fn broker(a: &Args) -> RedisBroker {
    RedisBroker::open_with_prefix(&a.redis, &a.prefix, Arc::new(SystemClock)).expect("open Redis")
}

fn queue() -> QueueName {
    QueueName::new("bench").expect("queue name")
}

/// A worker process: `threads` loops of lease a batch, finish it.
fn work(a: &Args) {
    let b = broker(a);
    std::thread::scope(|s| {
        for t in 0..a.threads {
            let b = &b;
            s.spawn(move || {
                let worker =
                    WorkerId::new(format!("bench-{}-{t}", std::process::id())).expect("id");
                let queues = [QueueWeight {
                    queue: queue(),
                    weight: 1,
                }];
                loop {
                    let req = LeaseRequest {
                        worker: &worker,
                        queues: &queues,
                        max: a.batch,
                        lease_for: Duration::from_secs(30),
                    };
                    match b.lease(&req) {
                        Ok(jobs) if jobs.is_empty() => std::thread::sleep(Duration::from_millis(1)),
                        Ok(jobs) => {
                            let done: Vec<Finished> = jobs
                                .iter()
                                .map(|j| Finished {
                                    id: j.id,
                                    outcome: Outcome::Succeeded(serde_json::Value::Null),
                                })
                                .collect();
                            if let Err(e) = b.finish(&worker, &done) {
                                eprintln!("finish: {e}");
                            }
                        }
                        Err(e) => {
                            eprintln!("lease: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            });
        }
    });
}

fn succeeded(b: &RedisBroker) -> u64 {
    b.counters()
        .ok()
        .and_then(|c| c.into_iter().find(|c| c.queue == queue()))
        .map_or(0, |c| c.succeeded)
}

fn main() {
    let a = args();
    if a.worker {
        work(&a);
        return;
    }
    let b = broker(&a);
    b.ping().expect("Redis answers");
    let task = TaskName::new("noop").expect("task");
    let jobs: Vec<NewJob> = (0..a.jobs)
        .map(|_| NewJob::new(task.clone(), serde_json::Value::Null, queue()))
        .collect();

    // Enqueue rate alone (no workers), one producer, batches of 1000.
    let t = Instant::now();
    for chunk in jobs.chunks(1000) {
        b.enqueue(chunk).expect("enqueue");
    }
    let enqueue_secs = t.elapsed().as_secs_f64();
    b.purge(Some(&queue()), sadomap_queue::JobState::Ready)
        .expect("purge");

    let exe = std::env::current_exe().expect("own path");
    let mut children: Vec<Child> = (0..a.procs)
        .map(|_| {
            Command::new(&exe)
                .args(["--worker", "--redis", &a.redis, "--prefix", &a.prefix])
                .args([
                    "--threads",
                    &a.threads.to_string(),
                    "--batch",
                    &a.batch.to_string(),
                ])
                .spawn()
                .expect("start worker")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = succeeded(&b);
    let t = Instant::now();
    for chunk in jobs.chunks(1000) {
        b.enqueue(chunk).expect("enqueue");
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while succeeded(&b) < before + a.jobs as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let e2e_secs = t.elapsed().as_secs_f64();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let done = succeeded(&b) - before;
    let _ = b.purge(None, sadomap_queue::JobState::Succeeded);
    println!(
        "enqueue: {} jobs in {:.3} s = {:.0} jobs/s (one producer, batches of 1000)",
        a.jobs,
        enqueue_secs,
        a.jobs as f64 / enqueue_secs
    );
    println!(
        "end to end: {done} jobs in {e2e_secs:.3} s = {:.0} jobs/s ({} worker processes x {} threads, batch {})",
        done as f64 / e2e_secs,
        a.procs,
        a.threads,
        a.batch
    );
}
