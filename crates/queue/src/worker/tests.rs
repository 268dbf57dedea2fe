//! The worker against an in-memory SQLite broker on the system clock, waiting with
//! poll-until-condition helpers (never fixed sleeps for correctness).

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::broker::ListFilter;
use crate::clock::SystemClock;
use crate::flaky::FlakyBroker;
use crate::job::{JobState, NewJob, QueueName, RateLimit, TaskName};
use crate::sqlite::SqliteBroker;

/// Polls `cond` every 5 ms until it holds; panics with `what` after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn memory_broker() -> Arc<dyn Broker> {
    Arc::new(SqliteBroker::open_in_memory(Arc::new(SystemClock)).expect("open"))
}

fn job(task: &str, payload: Value) -> NewJob {
    NewJob::new(
        TaskName::new(task).expect("task"),
        payload,
        QueueName::new("normal").expect("queue"),
    )
}

fn config() -> WorkerConfig {
    WorkerConfig {
        id: Some(WorkerId::new("test-worker").expect("id")),
        concurrency: 4,
        prefetch: 8,
        lease: Duration::from_secs(2),
        heartbeat: Duration::from_millis(100),
        shutdown_deadline: Duration::from_secs(5),
        ..WorkerConfig::default()
    }
}

/// A registry whose `fail` retries after 10 ms instead of a minute.
fn fast_registry() -> Registry {
    let mut r = Registry::with_builtins();
    let quick = TaskPolicy {
        backoff: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        jitter: 0.0,
        ..TaskPolicy::default()
    };
    r.set_policy(&TaskName::new("fail").expect("name"), quick);
    r
}

struct Running {
    shutdown: Shutdown,
    health: WorkerHealth,
    handle: thread::JoinHandle<WorkerReport>,
}

fn start(broker: Arc<dyn Broker>, registry: Registry, config: WorkerConfig) -> Running {
    let (worker, health) = Worker::build(broker, registry, config).expect("build");
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    let handle = thread::spawn(move || worker.run(&s));
    Running {
        shutdown,
        health,
        handle,
    }
}

impl Running {
    fn stop(self) -> WorkerReport {
        self.shutdown.trigger();
        self.handle.join().expect("worker thread")
    }
}

fn count(b: &dyn Broker, state: JobState) -> usize {
    b.list(&ListFilter {
        state: Some(state),
        limit: 100_000,
        ..ListFilter::default()
    })
    .expect("list")
    .len()
}

#[test]
fn runs_jobs_and_reports_them() {
    let b = memory_broker();
    let jobs: Vec<NewJob> = (0..300).map(|n| job("noop", json!(n))).collect();
    b.enqueue(&jobs).expect("enqueue");
    let w = start(b.clone(), Registry::with_builtins(), config());
    wait_until("all jobs done", Duration::from_secs(20), || {
        count(&*b, JobState::Succeeded) == 300
    });
    assert_eq!(w.health.state(), WorkerState::Running);
    wait_until("a heartbeat", Duration::from_secs(5), || {
        !b.workers(Duration::from_secs(5))
            .expect("workers")
            .is_empty()
    });
    assert!(w.health.check(Duration::from_secs(1)).is_ok());
    let report = w.stop();
    assert_eq!((report.started, report.succeeded), (300, 300));
    assert_eq!(report.latency.count, 300);
    assert!(b
        .workers(Duration::from_secs(60))
        .expect("workers")
        .is_empty());
}

#[test]
fn failures_retry_under_the_policy_then_die() {
    let b = memory_broker();
    let ids = b
        .enqueue(&[
            job("fail", json!({"times": 2})),
            job("fail", json!({"times": 9})),
        ])
        .expect("enqueue");
    let w = start(b.clone(), fast_registry(), config());
    wait_until("both jobs settled", Duration::from_secs(20), || {
        count(&*b, JobState::Succeeded) == 1 && count(&*b, JobState::Dead) == 1
    });
    let ok = b.get(ids[0].id).expect("get").expect("job");
    assert_eq!(ok.result, Some(json!({"succeeded_on_attempt": 3})));
    let dead = b.get(ids[1].id).expect("get").expect("job");
    assert_eq!(dead.attempts, 4, "one run and three retries");
    assert!(dead
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("after 4 attempts")));
    w.stop();
}

#[test]
fn bad_input_is_dead_lettered_with_a_reason_and_the_worker_keeps_running() {
    let b = memory_broker();
    let big = "x".repeat(2000);
    let ids = b
        .enqueue(&[
            job("no.such.task", Value::Null),
            job("sleep", json!({"ms": "soon"})),
            job("noop", json!(big)),
            job("noop", Value::Null),
        ])
        .expect("enqueue");
    let w = start(
        b.clone(),
        Registry::with_builtins(),
        WorkerConfig {
            max_payload_bytes: 1000,
            ..config()
        },
    );
    wait_until("three dead, one done", Duration::from_secs(20), || {
        count(&*b, JobState::Dead) == 3 && count(&*b, JobState::Succeeded) == 1
    });
    let reason = |k: usize| {
        b.get(ids[k].id)
            .expect("get")
            .expect("job")
            .last_error
            .unwrap_or_default()
    };
    assert!(reason(0).contains("unknown task type"), "{}", reason(0));
    assert!(reason(1).starts_with("bad input"), "{}", reason(1));
    assert!(reason(2).contains("exceeds the limit"), "{}", reason(2));
    assert_eq!(w.health.state(), WorkerState::Running);
    w.stop();
}

#[test]
fn a_renewed_lease_keeps_a_long_task_from_a_second_worker() {
    let b = memory_broker();
    let id = b
        .enqueue(&[job("sleep", json!({"ms": 1500}))])
        .expect("enqueue")[0]
        .id;
    let short = |name: &str| WorkerConfig {
        id: Some(WorkerId::new(name).expect("id")),
        lease: Duration::from_millis(400),
        ..config()
    };
    let w1 = start(b.clone(), Registry::with_builtins(), short("w1"));
    let w2 = start(b.clone(), Registry::with_builtins(), short("w2"));
    wait_until("the sleep done", Duration::from_secs(20), || {
        count(&*b, JobState::Succeeded) == 1
    });
    let info = b.get(id).expect("get").expect("job");
    assert_eq!((info.attempts, info.lost_leases), (1, 0));
    assert_eq!(w1.stop().started + w2.stop().started, 1);
}

#[test]
fn shutdown_finishes_running_jobs_and_gives_back_the_rest() {
    let b = memory_broker();
    let jobs: Vec<NewJob> = (0..10).map(|_| job("sleep", json!({"ms": 300}))).collect();
    b.enqueue(&jobs).expect("enqueue");
    let w = start(
        b.clone(),
        Registry::with_builtins(),
        WorkerConfig {
            concurrency: 2,
            ..config()
        },
    );
    wait_until("two running", Duration::from_secs(10), || {
        w.health.metrics().started.load(Ordering::Relaxed) >= 2
    });
    let report = w.stop();
    assert_eq!(report.succeeded, report.started, "running jobs finished");
    let ready = count(&*b, JobState::Ready);
    assert_eq!(ready as u64 + report.succeeded, 10);
    assert_eq!(report.released, ready as u64);
    for info in b.list(&ListFilter::default()).expect("list") {
        if info.state == JobState::Ready {
            assert_eq!(info.attempts, 0, "a released job lost no attempt");
        }
    }
}

#[test]
fn past_the_deadline_running_jobs_are_released() {
    let b = memory_broker();
    b.enqueue(&[job("sleep", json!({"ms": 60_000}))])
        .expect("enqueue");
    let w = start(
        b.clone(),
        Registry::with_builtins(),
        WorkerConfig {
            shutdown_deadline: Duration::from_millis(200),
            ..config()
        },
    );
    wait_until("the job running", Duration::from_secs(10), || {
        count(&*b, JobState::Running) == 1
    });
    let t = Instant::now();
    let report = w.stop();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(report.released, 1);
    assert_eq!(count(&*b, JobState::Ready), 1);
}

#[test]
fn a_broker_going_away_makes_the_worker_degraded_then_it_resumes() {
    let flaky = Arc::new(FlakyBroker::new(memory_broker()));
    let b: Arc<dyn Broker> = flaky.clone();
    let w = start(b.clone(), Registry::with_builtins(), config());
    wait_until("running", Duration::from_secs(5), || {
        w.health.state() == WorkerState::Running
    });
    flaky.set_down(true);
    wait_until("degraded", Duration::from_secs(5), || {
        matches!(w.health.state(), WorkerState::Degraded { .. })
    });
    assert!(w.health.check(Duration::from_secs(1)).is_err());
    flaky.set_down(false);
    b.enqueue(&[job("noop", Value::Null)]).expect("enqueue");
    wait_until("resumed and ran the job", Duration::from_secs(10), || {
        count(&*b, JobState::Succeeded) == 1
    });
    wait_until("running again", Duration::from_secs(5), || {
        w.health.state() == WorkerState::Running
    });
    w.stop();
}

#[test]
fn the_heartbeat_carries_the_workers_state_and_reason() {
    let flaky = Arc::new(FlakyBroker::new(memory_broker()));
    let b: Arc<dyn Broker> = flaky.clone();
    let w = start(b.clone(), Registry::with_builtins(), config());
    let beat = || {
        b.workers(Duration::from_secs(60))
            .expect("workers")
            .into_iter()
            .next()
    };
    wait_until("a running beat", Duration::from_secs(5), || {
        beat().is_some_and(|i| i.state == WorkerStatus::Running && i.reason.is_none())
    });
    // Jobs unreachable while heartbeats still answer: others see the worker degraded, and why.
    flaky.set_jobs_down(true);
    wait_until("a degraded beat", Duration::from_secs(5), || {
        beat().is_some_and(|i| {
            i.state == WorkerStatus::Degraded
                && i.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("unreachable"))
        })
    });
    assert!(w.health.check(Duration::from_secs(1)).is_err());
    let text = crate::metrics::render_metrics(&*b, Some(&w.health)).expect("metrics");
    assert!(
        text.contains("sadomap_queue_worker_degraded{worker=\"test-worker\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sadomap_queue_workers{state=\"degraded\"} 1"),
        "{text}"
    );
    flaky.set_jobs_down(false);
    wait_until("a running beat again", Duration::from_secs(5), || {
        beat().is_some_and(|i| i.state == WorkerStatus::Running && i.reason.is_none())
    });
    assert!(w.health.check(Duration::from_secs(1)).is_ok());
    w.stop();
}

#[test]
fn a_cancelled_running_job_is_abandoned() {
    let b = memory_broker();
    let id = b
        .enqueue(&[job("sleep", json!({"ms": 30_000}))])
        .expect("enqueue")[0]
        .id;
    let w = start(
        b.clone(),
        Registry::with_builtins(),
        WorkerConfig {
            lease: Duration::from_millis(300),
            ..config()
        },
    );
    wait_until("running", Duration::from_secs(10), || {
        count(&*b, JobState::Running) == 1
    });
    assert!(b.cancel(id).expect("cancel"));
    wait_until("abandoned", Duration::from_secs(10), || {
        w.health.metrics().leases_lost.load(Ordering::Relaxed) == 1
    });
    let t = Instant::now();
    w.stop();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the sleep stopped early"
    );
    assert_eq!(
        b.get(id).expect("get").expect("job").state,
        JobState::Cancelled
    );
}

#[test]
fn a_shared_rate_limit_paces_a_task_across_workers() {
    let b = memory_broker();
    let calls = Arc::new(AtomicU32::new(0));
    let registry = || {
        let mut r = Registry::new();
        let c = calls.clone();
        r.register(
            TaskName::new("paced").expect("name"),
            TaskPolicy {
                rate_limit: Some(SharedRate {
                    key: "api".into(),
                    limit: RateLimit {
                        rate: 20.0,
                        burst: 1,
                    },
                }),
                ..TaskPolicy::default()
            },
            move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(Value::Null)
            },
        );
        r
    };
    let jobs: Vec<NewJob> = (0..11).map(|_| job("paced", Value::Null)).collect();
    let t = Instant::now();
    b.enqueue(&jobs).expect("enqueue");
    let w1 = start(b.clone(), registry(), config());
    let mut c2 = config();
    c2.id = Some(WorkerId::new("second").expect("id"));
    let w2 = start(b.clone(), registry(), c2);
    wait_until("all paced jobs", Duration::from_secs(20), || {
        calls.load(Ordering::SeqCst) == 11
    });
    // 1 token at once, then 10 more at 20/s: at least 500 ms for both workers together.
    assert!(
        t.elapsed() >= Duration::from_millis(480),
        "{:?}",
        t.elapsed()
    );
    w1.stop();
    w2.stop();
}
