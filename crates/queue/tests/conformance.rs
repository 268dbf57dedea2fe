//! The conformance suite: every semantic of the `Broker` trait, one generic function each
//! (`fn name(b: &dyn Broker, clock: &ManualClock)`), run against every backend as
//! `<name>::sqlite` (a temporary directory), `<name>::redis` (the Redis at
//! `SADOMAP_TEST_REDIS_URL`, default `redis://127.0.0.1:6390`) and `<name>::redis_cluster` (a
//! 3-node Redis Cluster the suite starts from `redis-server` and `redis-cli`, or the nodes in
//! `SADOMAP_TEST_REDIS_CLUSTER`, comma-separated). Each Redis case uses a key prefix of its own.
//! The same binary holds the Redis-only cases: the key layout, and a real `redis-server`
//! restarted under a working broker.
//!
//! Without a reachable Redis the Redis cases print "skipped: no Redis at URL" and pass (the
//! cluster and restart cases "skipped" without the binaries), unless
//! `SADOMAP_REQUIRE_SERVICES=1`, where they fail.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sadomap_queue::{
    Broker, Finished, JobId, JobState, LeaseRequest, Leased, ListFilter, ManualClock, NewJob,
    Outcome, QueueName, QueueWeight, RateDecision, RateLimit, TaskName, Timestamp, WorkerId,
    WorkerInfo, Workflow,
};
use serde_json::{json, Value};

mod support;

// Semantics of workflows and of coordination (locks, rate limits, heartbeats).
#[path = "cases/coordination.rs"]
mod coordination;
#[path = "cases/counters.rs"]
mod counters;
#[path = "cases/workflows.rs"]
mod workflows;
use coordination::*;
use counters::*;
use workflows::*;

// Redis-only cases in the same test binary.
#[path = "cases/layout.rs"]
mod redis_layout;
#[path = "cases/restart.rs"]
mod redis_restart;

/// Runs each named semantic against every backend, as `<name>::sqlite`, `<name>::redis` and
/// `<name>::redis_cluster`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    let b = super::support::sqlite();
                    super::$name(&*b.broker, &b.clock);
                }

                #[test]
                fn redis() {
                    if let Some(b) = super::support::redis(stringify!($name)) {
                        super::$name(&*b.broker, &b.clock);
                    }
                }

                #[test]
                fn redis_cluster() {
                    if let Some(b) = super::support::redis_cluster(stringify!($name)) {
                        super::$name(&*b.broker, &b.clock);
                    }
                }
            }
        )*
    };
}

conformance!(
    enqueue_lease_finish_round_trip,
    leases_expire_and_count,
    renewed_leases_are_kept,
    poison_guard_dead_after_three_lost_leases,
    zombie_finish_is_ignored,
    release_worker_frees_jobs_at_once,
    release_gives_back_without_counting,
    idempotency_keys_deduplicate,
    retries_wait_for_retry_at,
    dead_letters_can_be_retried_and_purged,
    purge_deletes_ready_and_scheduled_jobs,
    weighted_fair_polling_starves_no_queue,
    delay_of_24_hours_runs_once,
    chain_passes_previous_and_a_dead_step_stops_it,
    chord_callback_gets_results_in_member_order,
    group_runs_in_parallel,
    cancel_waiting_and_running_jobs,
    cancel_workflow_cancels_every_unfinished_job,
    results_expire_after_their_ttl,
    rate_limit_tokens_refill,
    locks_expire_and_can_be_stolen,
    heartbeats_list_live_workers,
    stats_and_list_count_states,
    concurrent_leases_never_share_a_job,
    counters_count_every_step,
    wake_ups_signal_enqueues,
);

// ---- helpers -------------------------------------------------------------------------------

pub(crate) fn q(name: &str) -> QueueName {
    QueueName::new(name).expect("queue name")
}

pub(crate) fn w(name: &str) -> WorkerId {
    WorkerId::new(name).expect("worker id")
}

pub(crate) fn job(queue: &str, payload: Value) -> NewJob {
    NewJob::new(TaskName::new("noop").expect("task"), payload, q(queue))
}

pub(crate) fn weights(qs: &[(&str, u32)]) -> Vec<QueueWeight> {
    qs.iter()
        .map(|(n, weight)| QueueWeight {
            queue: q(n),
            weight: *weight,
        })
        .collect()
}

pub(crate) const LEASE: Duration = Duration::from_secs(10);

pub(crate) fn lease_from(
    b: &dyn Broker,
    worker: &WorkerId,
    queues: &[QueueWeight],
    max: usize,
) -> Vec<Leased> {
    b.lease(&LeaseRequest {
        worker,
        queues,
        max,
        lease_for: LEASE,
    })
    .expect("lease")
}

pub(crate) fn lease(b: &dyn Broker, worker: &str, queue: &str, max: usize) -> Vec<Leased> {
    lease_from(b, &w(worker), &weights(&[(queue, 1)]), max)
}

pub(crate) fn succeed(b: &dyn Broker, worker: &str, id: JobId, result: Value) {
    b.finish(
        &w(worker),
        &[Finished {
            id,
            outcome: Outcome::Succeeded(result),
        }],
    )
    .expect("finish");
}

pub(crate) fn fail(b: &dyn Broker, worker: &str, id: JobId, retry_at: Option<Timestamp>) {
    let outcome = Outcome::Failed {
        error: "boom".into(),
        retry_at,
    };
    b.finish(&w(worker), &[Finished { id, outcome }])
        .expect("finish");
}

pub(crate) fn state(b: &dyn Broker, id: JobId) -> JobState {
    b.get(id).expect("get").expect("job exists").state
}

pub(crate) fn enqueue_one(b: &dyn Broker, j: NewJob) -> JobId {
    b.enqueue(&[j]).expect("enqueue")[0].id
}

pub(crate) fn past_lease(clock: &ManualClock) {
    clock.advance(LEASE + Duration::from_millis(1));
}

// ---- the semantics -------------------------------------------------------------------------

fn enqueue_lease_finish_round_trip(b: &dyn Broker, _clock: &ManualClock) {
    let jobs: Vec<NewJob> = (0..3).map(|i| job("normal", json!({ "n": i }))).collect();
    let ids: Vec<JobId> = b
        .enqueue(&jobs)
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        3,
        "ids are distinct"
    );
    let got = lease(b, "w1", "normal", 10);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|l| l.attempt == 1 && l.queue == q("normal")));
    let mut payloads: Vec<Value> = got.iter().map(|l| l.payload.clone()).collect();
    payloads.sort_by_key(|p| p["n"].as_i64());
    assert_eq!(
        payloads,
        vec![json!({"n": 0}), json!({"n": 1}), json!({"n": 2})]
    );
    assert_eq!(state(b, ids[0]), JobState::Running);
    for l in &got {
        succeed(b, "w1", l.id, json!({ "done": l.payload["n"] }));
    }
    let info = b.get(ids[1]).expect("get").expect("job");
    assert_eq!(info.state, JobState::Succeeded);
    assert_eq!(info.result, Some(json!({"done": 1})));
    assert_eq!(info.attempts, 1);
    assert!(lease(b, "w1", "normal", 10).is_empty());
}

fn leases_expire_and_count(b: &dyn Broker, clock: &ManualClock) {
    let id = enqueue_one(b, job("normal", json!({})));
    assert_eq!(lease(b, "w1", "normal", 1).len(), 1);
    clock.advance(LEASE - Duration::from_secs(1));
    assert!(
        lease(b, "w2", "normal", 1).is_empty(),
        "a live lease is never handed out twice"
    );
    clock.advance(Duration::from_secs(1) + Duration::from_millis(1));
    let again = lease(b, "w2", "normal", 1);
    assert_eq!(again.len(), 1, "an expired lease makes the job ready again");
    assert_eq!(again[0].id, id);
    assert_eq!(again[0].attempt, 2);
    let info = b.get(id).expect("get").expect("job");
    assert_eq!(info.lost_leases, 1);
    assert_eq!(info.worker, Some(w("w2")));
    assert_eq!(
        b.renew(&w("w1"), &[id], LEASE).expect("renew"),
        vec![id],
        "w1 lost it"
    );
}

fn renewed_leases_are_kept(b: &dyn Broker, clock: &ManualClock) {
    let id = enqueue_one(b, job("normal", json!({})));
    assert_eq!(lease(b, "w1", "normal", 1).len(), 1);
    // A task running for 10 lease lengths, renewed well before each end.
    for _ in 0..10 {
        clock.advance(LEASE / 2);
        assert!(b.renew(&w("w1"), &[id], LEASE).expect("renew").is_empty());
        assert!(lease(b, "w2", "normal", 1).is_empty());
    }
    succeed(b, "w1", id, json!(1));
    assert_eq!(b.get(id).expect("get").expect("job").lost_leases, 0);
}

fn poison_guard_dead_after_three_lost_leases(b: &dyn Broker, clock: &ManualClock) {
    let id = enqueue_one(b, job("normal", json!({})));
    for round in 1..=3 {
        let got = lease(b, &format!("w{round}"), "normal", 1);
        assert_eq!(got.len(), 1, "round {round}");
        past_lease(clock);
    }
    assert!(
        lease(b, "w4", "normal", 1).is_empty(),
        "after 3 lost leases the job is dead"
    );
    let info = b.get(id).expect("get").expect("job");
    assert_eq!(info.state, JobState::Dead);
    assert_eq!(info.lost_leases, 3);
    assert!(info.last_error.unwrap_or_default().contains("poison"));
    let dead = b
        .list(&ListFilter {
            state: Some(JobState::Dead),
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
}

fn zombie_finish_is_ignored(b: &dyn Broker, clock: &ManualClock) {
    let id = enqueue_one(b, job("normal", json!({})));
    assert_eq!(lease(b, "slow", "normal", 1).len(), 1);
    past_lease(clock);
    assert_eq!(lease(b, "fresh", "normal", 1).len(), 1);
    succeed(b, "slow", id, json!("zombie"));
    assert_eq!(
        state(b, id),
        JobState::Running,
        "the zombie's finish changed nothing"
    );
    fail(b, "slow", id, None);
    assert_eq!(state(b, id), JobState::Running);
    succeed(b, "fresh", id, json!("real"));
    assert_eq!(
        b.get(id).expect("get").expect("job").result,
        Some(json!("real"))
    );
}

fn release_worker_frees_jobs_at_once(b: &dyn Broker, _clock: &ManualClock) {
    b.enqueue(&[job("normal", json!(1)), job("normal", json!(2))])
        .expect("enqueue");
    assert_eq!(lease(b, "dead", "normal", 5).len(), 2);
    assert_eq!(lease(b, "other", "normal", 5).len(), 0);
    assert_eq!(b.release_worker(&w("dead")).expect("release_worker"), 2);
    let again = lease(b, "other", "normal", 5);
    assert_eq!(
        again.len(),
        2,
        "released without waiting for the lease to end"
    );
    for l in again {
        assert_eq!(b.get(l.id).expect("get").expect("job").lost_leases, 1);
    }
    assert_eq!(b.release_worker(&w("dead")).expect("release_worker"), 0);
}

fn release_gives_back_without_counting(b: &dyn Broker, _clock: &ManualClock) {
    let id = enqueue_one(b, job("normal", json!({})));
    assert_eq!(lease(b, "w1", "normal", 1).len(), 1);
    assert_eq!(
        b.release(&w("other"), &[id]).expect("release"),
        0,
        "not other's lease"
    );
    assert_eq!(b.release(&w("w1"), &[id]).expect("release"), 1);
    assert_eq!(state(b, id), JobState::Ready);
    let again = lease(b, "w2", "normal", 1);
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].attempt, 1,
        "a release does not count as an attempt"
    );
    assert_eq!(b.get(id).expect("get").expect("job").lost_leases, 0);
}

fn idempotency_keys_deduplicate(b: &dyn Broker, clock: &ManualClock) {
    let keyed = |k: &str| NewJob {
        idempotency_key: Some(k.into()),
        ..job("normal", json!({ "k": k }))
    };
    let first = b.enqueue(&[keyed("a")]).expect("enqueue");
    assert!(!first[0].duplicate);
    let again = b
        .enqueue(&[keyed("a"), keyed("b"), keyed("b"), job("normal", json!(0))])
        .expect("enqueue");
    assert_eq!((again[0].id, again[0].duplicate), (first[0].id, true));
    assert!(!again[1].duplicate);
    assert_eq!(
        (again[2].id, again[2].duplicate),
        (again[1].id, true),
        "within one batch too"
    );
    assert!(!again[3].duplicate);
    // Across queues the key is the same key.
    let other = b
        .enqueue(&[NewJob {
            queue: q("background"),
            ..keyed("a")
        }])
        .expect("enqueue");
    assert_eq!((other[0].id, other[0].duplicate), (first[0].id, true));
    assert_eq!(lease(b, "w1", "normal", 10).len(), 3);
    succeed(b, "w1", first[0].id, json!(null));
    assert!(
        b.enqueue(&[keyed("a")]).expect("enqueue")[0].duplicate,
        "done within the TTL"
    );
    clock.advance(Duration::from_secs(120));
    assert!(b.expire_results(Duration::from_secs(60)).expect("expire") >= 1);
    let fresh = b.enqueue(&[keyed("a")]).expect("enqueue");
    assert!(!fresh[0].duplicate, "the key is free once the job expired");
    assert_ne!(fresh[0].id, first[0].id);
}

fn retries_wait_for_retry_at(b: &dyn Broker, clock: &ManualClock) {
    let id = enqueue_one(b, job("normal", json!({})));
    assert_eq!(lease(b, "w1", "normal", 1).len(), 1);
    let retry_at = clock.now_ts().after(Duration::from_secs(60));
    fail(b, "w1", id, Some(retry_at));
    let info = b.get(id).expect("get").expect("job");
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.not_before, Some(retry_at));
    assert_eq!(info.last_error.as_deref(), Some("boom"));
    clock.advance(Duration::from_secs(59));
    assert!(lease(b, "w1", "normal", 1).is_empty());
    clock.advance(Duration::from_secs(1));
    let again = lease(b, "w1", "normal", 1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
}

fn dead_letters_can_be_retried_and_purged(b: &dyn Broker, _clock: &ManualClock) {
    let a = enqueue_one(b, job("normal", json!("a")));
    let c = enqueue_one(b, job("normal", json!("c")));
    for l in lease(b, "w1", "normal", 5) {
        fail(b, "w1", l.id, None);
    }
    assert_eq!(state(b, a), JobState::Dead);
    let dead = b
        .list(&ListFilter {
            state: Some(JobState::Dead),
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(dead.len(), 2);
    assert_eq!(b.retry_dead(None, &[a]).expect("retry"), 1);
    let again = lease(b, "w1", "normal", 5);
    assert_eq!(again.iter().map(|l| l.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(again[0].attempt, 1, "fresh attempts");
    fail(b, "w1", a, None);
    assert_eq!(b.retry_dead(Some(&q("other")), &[]).expect("retry"), 0);
    assert_eq!(
        b.purge(Some(&q("normal")), JobState::Running)
            .expect("purge"),
        0
    );
    assert_eq!(b.purge(None, JobState::Dead).expect("purge"), 2);
    assert!(b.get(a).expect("get").is_none());
    assert!(b.get(c).expect("get").is_none());
}

fn purge_deletes_ready_and_scheduled_jobs(b: &dyn Broker, clock: &ManualClock) {
    let later = NewJob {
        not_before: Some(clock.now_ts().after(LEASE)),
        ..job("normal", json!("later"))
    };
    let keyed = NewJob {
        idempotency_key: Some("once".into()),
        ..job("normal", json!("keyed"))
    };
    b.enqueue(&[
        job("normal", json!(1)),
        keyed.clone(),
        job("normal", json!(3)),
        later,
    ])
    .expect("enqueue");
    let running = lease(b, "w1", "normal", 1);
    assert_eq!(running.len(), 1);
    assert_eq!(
        b.purge(Some(&q("normal")), JobState::Ready).expect("purge"),
        2
    );
    assert_eq!(b.purge(None, JobState::Scheduled).expect("purge"), 1);
    let stats = b.stats().expect("stats");
    let s = stats
        .iter()
        .find(|s| s.queue == q("normal"))
        .expect("normal queue");
    assert_eq!((s.ready, s.scheduled, s.running), (0, 0, 1));
    clock.advance(LEASE / 2);
    assert!(lease(b, "w2", "normal", 10).is_empty());
    if running[0].payload != json!("keyed") {
        let again = b.enqueue(&[keyed]).expect("enqueue");
        assert!(!again[0].duplicate, "a purged job's key is free again");
    }
}

fn weighted_fair_polling_starves_no_queue(b: &dyn Broker, _clock: &ManualClock) {
    let jobs: Vec<NewJob> = (0..150)
        .flat_map(|i| [job("hi", json!(i)), job("lo", json!(i))])
        .collect();
    b.enqueue(&jobs).expect("enqueue");
    let qs = weights(&[("hi", 10), ("lo", 1)]);
    let mut got: HashMap<QueueName, usize> = HashMap::new();
    for _ in 0..110 {
        for l in lease_from(b, &w("w1"), &qs, 1) {
            *got.entry(l.queue).or_default() += 1;
        }
    }
    let (hi, lo) = (
        got.get(&q("hi")).copied().unwrap_or(0),
        got.get(&q("lo")).copied().unwrap_or(0),
    );
    assert_eq!(hi + lo, 110);
    assert!(lo >= 5, "the light queue is served too: hi {hi}, lo {lo}");
    assert!(
        hi >= 90,
        "the heavy queue about 10x as often: hi {hi}, lo {lo}"
    );
    // A batch lease spreads by weight as well, and an empty queue does not block the other.
    let batch = lease_from(b, &w("w1"), &qs, 22);
    let lo_in_batch = batch.iter().filter(|l| l.queue == q("lo")).count();
    assert!((1..=4).contains(&lo_in_batch), "lo got {lo_in_batch} of 22");
    let rest = lease_from(b, &w("w1"), &weights(&[("empty", 10), ("lo", 1)]), 500);
    assert_eq!(rest.len(), 150 - lo - lo_in_batch);
}

fn delay_of_24_hours_runs_once(b: &dyn Broker, clock: &ManualClock) {
    let day = Duration::from_secs(24 * 3600);
    let eta = clock.now_ts().after(day);
    let id = enqueue_one(
        b,
        NewJob {
            not_before: Some(eta),
            ..job("normal", json!({}))
        },
    );
    assert_eq!(state(b, id), JobState::Scheduled);
    assert!(lease(b, "w1", "normal", 10).is_empty());
    clock.advance(day - Duration::from_secs(1));
    assert!(lease(b, "w1", "normal", 10).is_empty());
    clock.advance(Duration::from_secs(1));
    let got = lease(b, "w1", "normal", 10);
    assert_eq!(got.iter().map(|l| l.id).collect::<Vec<_>>(), vec![id]);
    // However long it runs (leases renewed), nobody else gets it: no visibility-timeout rerun.
    for _ in 0..20 {
        clock.advance(Duration::from_secs(5));
        assert!(b.renew(&w("w1"), &[id], LEASE).expect("renew").is_empty());
        assert!(lease(b, "w2", "normal", 10).is_empty());
    }
    succeed(b, "w1", id, json!(null));
    clock.advance(day);
    assert!(lease(b, "w2", "normal", 10).is_empty());
    assert_eq!(b.get(id).expect("get").expect("job").attempts, 1);
}

fn cancel_waiting_and_running_jobs(b: &dyn Broker, clock: &ManualClock) {
    let ready = enqueue_one(b, job("normal", json!("ready")));
    let later = enqueue_one(
        b,
        NewJob {
            not_before: Some(clock.now_ts().after(LEASE)),
            ..job("normal", json!("later"))
        },
    );
    assert!(b.cancel(ready).expect("cancel"));
    assert!(b.cancel(later).expect("cancel"));
    assert_eq!(state(b, ready), JobState::Cancelled);
    clock.advance(LEASE * 2);
    assert!(
        lease(b, "w1", "normal", 10).is_empty(),
        "cancelled jobs never run"
    );
    let running = enqueue_one(b, job("normal", json!("running")));
    assert_eq!(lease(b, "w1", "normal", 10).len(), 1);
    assert!(b.cancel(running).expect("cancel"));
    assert_eq!(
        b.renew(&w("w1"), &[running], LEASE).expect("renew"),
        vec![running]
    );
    succeed(b, "w1", running, json!("dropped"));
    let info = b.get(running).expect("get").expect("job");
    assert_eq!(info.state, JobState::Cancelled);
    assert_eq!(info.result, None);
    assert!(!b.cancel(running).expect("cancel"), "already ended");
}

fn results_expire_after_their_ttl(b: &dyn Broker, clock: &ManualClock) {
    let id = enqueue_one(b, job("normal", json!({})));
    lease(b, "w1", "normal", 1);
    succeed(b, "w1", id, json!({"answer": 42}));
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        b.expire_results(Duration::from_secs(60)).expect("expire"),
        0
    );
    assert_eq!(
        b.get(id).expect("get").expect("job").result,
        Some(json!({"answer": 42}))
    );
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        b.expire_results(Duration::from_secs(60)).expect("expire"),
        1
    );
    assert!(b.get(id).expect("get").is_none());
}

fn stats_and_list_count_states(b: &dyn Broker, clock: &ManualClock) {
    b.enqueue(&[
        job("normal", json!(1)),
        job("normal", json!(2)),
        job("normal", json!(3)),
    ])
    .expect("enqueue");
    enqueue_one(
        b,
        NewJob {
            not_before: Some(clock.now_ts().after(LEASE)),
            ..job("normal", json!(4))
        },
    );
    clock.advance(Duration::from_secs(2));
    let got = lease(b, "w1", "normal", 2);
    fail(b, "w1", got[0].id, None);
    let stats = b.stats().expect("stats");
    let s = stats
        .iter()
        .find(|s| s.queue == q("normal"))
        .expect("normal queue");
    assert_eq!((s.ready, s.scheduled, s.running, s.dead), (1, 1, 1, 1));
    assert_eq!(s.oldest_ready_ms, 2000);
    let all = b
        .list(&ListFilter {
            queue: Some(q("normal")),
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(all.len(), 4);
    let ready = b
        .list(&ListFilter {
            state: Some(JobState::Ready),
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(ready.len(), 1);
    let one = b
        .list(&ListFilter {
            limit: 1,
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(one.len(), 1);
    let running = b
        .list(&ListFilter {
            state: Some(JobState::Running),
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(running[0].worker, Some(w("w1")));
    // A cancelled ready job leaves the count (and a gap among the undelivered entries).
    let more = b
        .enqueue(&[job("normal", json!(5)), job("normal", json!(6))])
        .expect("enqueue");
    assert!(b.cancel(more[0].id).expect("cancel"));
    let stats = b.stats().expect("stats");
    let s = stats
        .iter()
        .find(|s| s.queue == q("normal"))
        .expect("normal queue");
    assert_eq!(s.ready, 2);
}

fn concurrent_leases_never_share_a_job(b: &dyn Broker, _clock: &ManualClock) {
    let jobs: Vec<NewJob> = (0..400).map(|i| job("normal", json!(i))).collect();
    b.enqueue(&jobs).expect("enqueue");
    let seen: Vec<Vec<JobId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    let worker = format!("t{t}");
                    let mut mine = Vec::new();
                    loop {
                        let got = lease(b, &worker, "normal", 7);
                        if got.is_empty() {
                            return mine;
                        }
                        let done: Vec<Finished> = got
                            .iter()
                            .map(|l| Finished {
                                id: l.id,
                                outcome: Outcome::Succeeded(Value::Null),
                            })
                            .collect();
                        b.finish(&w(&worker), &done).expect("finish");
                        mine.extend(got.iter().map(|l| l.id));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let all: Vec<JobId> = seen.into_iter().flatten().collect();
    assert_eq!(all.len(), 400);
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        400,
        "each job leased once"
    );
}

/// `ManualClock::now` through the `Clock` trait, without importing it at every call.
pub(crate) trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        sadomap_queue::Clock::now(self)
    }
}
