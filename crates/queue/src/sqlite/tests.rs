//! Semantics of the SQLite backend, with a manual clock wherever time matters.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::clock::ManualClock;
use crate::job::{default_queues, Outcome, QueueWeight, TaskName};

const T0: Timestamp = Timestamp(1_700_000_000_000);
const LEASE: Duration = Duration::from_secs(10);

fn broker() -> (SqliteBroker, ManualClock) {
    let clock = ManualClock::at(T0);
    let b = SqliteBroker::open_in_memory(Arc::new(clock.clone())).expect("open");
    (b, clock)
}

fn q(name: &str) -> QueueName {
    QueueName::new(name).expect("queue name")
}

fn w(name: &str) -> WorkerId {
    WorkerId::new(name).expect("worker id")
}

fn job(task: &str, payload: Value) -> NewJob {
    NewJob::new(TaskName::new(task).expect("task"), payload, q("normal"))
}

fn weights(names: &[(&str, u32)]) -> Vec<QueueWeight> {
    names
        .iter()
        .map(|(n, weight)| QueueWeight {
            queue: q(n),
            weight: *weight,
        })
        .collect()
}

fn lease(b: &SqliteBroker, worker: &WorkerId, max: usize) -> Vec<Leased> {
    let queues = default_queues();
    b.lease(&LeaseRequest {
        worker,
        queues: &queues,
        max,
        lease_for: LEASE,
    })
    .expect("lease")
}

fn ok(id: JobId, v: Value) -> Finished {
    Finished {
        id,
        outcome: Outcome::Succeeded(v),
    }
}

fn dead(id: JobId) -> Finished {
    Finished {
        id,
        outcome: Outcome::Failed {
            error: "boom".into(),
            retry_at: None,
        },
    }
}

fn state(b: &SqliteBroker, id: JobId) -> JobState {
    b.get(id).expect("get").expect("job exists").state
}

#[test]
fn enqueue_lease_finish_round_trip_counts() {
    let (b, _) = broker();
    let ids = b
        .enqueue(&[job("noop", json!({"n": 1})), job("noop", json!({"n": 2}))])
        .expect("enqueue");
    let a = w("a");
    let got = lease(&b, &a, 10);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].attempt, 1);
    assert_eq!(got[0].lease_until, T0.after(LEASE));
    assert!(lease(&b, &a, 10).is_empty(), "a job is never leased twice");
    b.finish(&a, &[ok(ids[0].id, json!(1)), ok(ids[1].id, json!(2))])
        .expect("finish");
    let info = b.get(ids[1].id).expect("get").expect("exists");
    assert_eq!(info.state, JobState::Succeeded);
    assert_eq!(info.result, Some(json!(2)));
    let c = &b.counters().expect("counters")[0];
    assert_eq!((c.enqueued, c.started, c.succeeded), (2, 2, 2));
}

#[test]
fn idempotency_keys_deduplicate_even_within_a_batch() {
    let (b, _) = broker();
    let mut j = job("noop", Value::Null);
    j.idempotency_key = Some("k1".into());
    let first = b.enqueue(&[j.clone(), j.clone()]).expect("enqueue");
    assert!(!first[0].duplicate);
    assert!(first[1].duplicate);
    assert_eq!(first[0].id, first[1].id);
    let again = b.enqueue(&[j]).expect("enqueue");
    assert_eq!(again[0].id, first[0].id);
    assert!(again[0].duplicate);
    assert_eq!(b.stats().expect("stats")[0].ready, 1);
}

#[test]
fn a_24h_delay_is_not_leased_a_millisecond_early_and_leased_exactly_once() {
    let (b, clock) = broker();
    let mut j = job("noop", Value::Null);
    let day = Duration::from_secs(24 * 3600);
    j.not_before = Some(T0.after(day));
    let id = b.enqueue(&[j]).expect("enqueue")[0].id;
    assert_eq!(state(&b, id), JobState::Scheduled);
    let a = w("a");
    clock.advance(day - Duration::from_millis(1));
    assert!(lease(&b, &a, 10).is_empty());
    clock.advance(Duration::from_millis(1));
    let got = lease(&b, &a, 10);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ready_at, T0.after(day));
    // Renewed while it runs: never handed out again, however long it takes.
    for _ in 0..10 {
        clock.advance(Duration::from_secs(5));
        assert!(b.renew(&a, &[id], LEASE).expect("renew").is_empty());
        assert!(lease(&b, &w("b"), 10).is_empty());
    }
    b.finish(&a, &[ok(id, Value::Null)]).expect("finish");
    clock.advance(day);
    assert!(lease(&b, &w("b"), 10).is_empty());
}

#[test]
fn lost_leases_are_counted_and_the_third_sends_the_job_to_the_dead_letters() {
    let (b, clock) = broker();
    let id = b.enqueue(&[job("noop", Value::Null)]).expect("enqueue")[0].id;
    for round in 1..=3u32 {
        // Each call first reclaims the previous, expired lease, then leases the job again.
        let got = lease(&b, &w("a"), 1);
        assert_eq!(got.len(), 1, "round {round}");
        assert_eq!(got[0].attempt, round);
        clock.advance(LEASE);
    }
    // The third lease expired: the next poll reclaims it as dead.
    assert!(lease(&b, &w("b"), 1).is_empty());
    let info = b.get(id).expect("get").expect("exists");
    assert_eq!(info.state, JobState::Dead);
    assert_eq!(info.lost_leases, 3);
    assert!(info
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("poison")));
    let c = &b.counters().expect("counters")[0];
    assert_eq!((c.lease_expired, c.dead), (3, 1));
}

#[test]
fn a_zombie_finish_is_ignored() {
    let (b, clock) = broker();
    let id = b.enqueue(&[job("noop", Value::Null)]).expect("enqueue")[0].id;
    let (a, z) = (w("alive"), w("zombie"));
    assert_eq!(lease(&b, &z, 1).len(), 1);
    clock.advance(LEASE + Duration::from_millis(1));
    let got = lease(&b, &a, 1);
    assert_eq!(got[0].attempt, 2);
    assert_eq!(b.renew(&z, &[id], LEASE).expect("renew"), vec![id]);
    b.finish(&z, &[dead(id)]).expect("zombie finish");
    assert_eq!(state(&b, id), JobState::Running);
    b.finish(&a, &[ok(id, json!("mine"))]).expect("finish");
    let info = b.get(id).expect("get").expect("exists");
    assert_eq!(info.result, Some(json!("mine")));
    assert_eq!(info.lost_leases, 1);
}

#[test]
fn failed_runs_retry_at_the_workers_time_then_die_and_can_be_retried_or_purged() {
    let (b, clock) = broker();
    let id = b.enqueue(&[job("fail", Value::Null)]).expect("enqueue")[0].id;
    let a = w("a");
    lease(&b, &a, 1);
    let retry_at = T0.after(Duration::from_secs(60));
    b.finish(
        &a,
        &[Finished {
            id,
            outcome: Outcome::Failed {
                error: "e1".into(),
                retry_at: Some(retry_at),
            },
        }],
    )
    .expect("finish");
    assert_eq!(state(&b, id), JobState::Scheduled);
    clock.advance(Duration::from_secs(59));
    assert!(lease(&b, &a, 1).is_empty());
    clock.advance(Duration::from_secs(1));
    let got = lease(&b, &a, 1);
    assert_eq!(got[0].attempt, 2);
    b.finish(&a, &[dead(id)]).expect("finish");
    let dead_jobs = b
        .list(&ListFilter {
            state: Some(JobState::Dead),
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(dead_jobs.len(), 1);
    assert_eq!(dead_jobs[0].last_error.as_deref(), Some("boom"));
    assert_eq!(b.retry_dead(None, &[]).expect("retry"), 1);
    let got = lease(&b, &a, 1);
    assert_eq!(
        got[0].attempt, 1,
        "a retried dead job starts with fresh attempts"
    );
    b.finish(&a, &[dead(id)]).expect("finish");
    assert_eq!(
        b.purge(Some(&q("other")), JobState::Dead).expect("purge"),
        0
    );
    assert_eq!(b.purge(None, JobState::Dead).expect("purge"), 1);
    assert!(b.get(id).expect("get").is_none());
    let c = &b.counters().expect("counters")[0];
    assert_eq!((c.failed, c.retried, c.dead), (3, 1, 2));
}

#[test]
fn weighted_fair_polling_serves_every_queue_by_weight() {
    let (b, _) = broker();
    let queues = default_queues();
    let mut jobs = Vec::new();
    for qw in &queues {
        for _ in 0..100 {
            jobs.push(NewJob::new(
                TaskName::new("noop").expect("task"),
                Value::Null,
                qw.queue.clone(),
            ));
        }
    }
    b.enqueue(&jobs).expect("enqueue");
    let a = w("a");
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    // One job per call (concurrency 1): every queue is reached within one round of 27.
    for _ in 0..27 {
        let got = b
            .lease(&LeaseRequest {
                worker: &a,
                queues: &queues,
                max: 1,
                lease_for: LEASE,
            })
            .expect("lease");
        *served.entry(got[0].queue.to_string()).or_default() += 1;
    }
    let expect: BTreeMap<String, usize> = queues
        .iter()
        .map(|qw| (qw.queue.to_string(), qw.weight as usize))
        .collect();
    assert_eq!(served, expect);
    // A batch splits by weight too, and a lone queue with work gets the whole batch.
    let got = lease(&b, &a, 54);
    let highs = got
        .iter()
        .filter(|l| l.queue.as_str() == "high_priority")
        .count();
    assert_eq!(highs, 20);
    let only = weights(&[("maintenance", 1), ("empty", 10)]);
    let got = b
        .lease(&LeaseRequest {
            worker: &a,
            queues: &only,
            max: 50,
            lease_for: LEASE,
        })
        .expect("lease");
    assert_eq!(got.len(), 50);
}

#[test]
fn chain_passes_previous_and_a_dead_step_cancels_the_rest() {
    let (b, _) = broker();
    let (wf, ids) = b
        .enqueue_workflow(&Workflow::Chain(vec![
            job("a", json!({"x": 1})),
            job("b", json!({"y": 2})),
            job("c", Value::Null),
        ]))
        .expect("workflow");
    assert_eq!(state(&b, ids[1]), JobState::Waiting);
    let a = w("a");
    let got = lease(&b, &a, 10);
    assert_eq!(got.len(), 1);
    b.finish(&a, &[ok(ids[0], json!("r0"))]).expect("finish");
    let got = lease(&b, &a, 10);
    assert_eq!(got[0].id, ids[1]);
    assert_eq!(got[0].payload, json!({"y": 2, "previous": "r0"}));
    b.finish(&a, &[dead(ids[1])]).expect("finish");
    assert_eq!(state(&b, ids[2]), JobState::Cancelled);
    assert_eq!(b.get(ids[0]).expect("get").expect("job").workflow, Some(wf));
}

#[test]
fn chord_callback_gets_results_in_order_and_group_runs_in_parallel() {
    let (b, _) = broker();
    let (_, ids) = b
        .enqueue_workflow(&Workflow::Chord {
            group: vec![job("m", json!(0)), job("m", json!(1)), job("m", json!(2))],
            callback: job("cb", json!({})),
        })
        .expect("chord");
    let a = w("a");
    let got = lease(&b, &a, 10);
    assert_eq!(got.len(), 3, "members run in parallel; the callback waits");
    // Finish out of order: results still come in member order.
    b.finish(&a, &[ok(ids[2], json!("c"))]).expect("finish");
    b.finish(&a, &[ok(ids[0], json!("a"))]).expect("finish");
    assert_eq!(state(&b, ids[3]), JobState::Waiting);
    b.finish(&a, &[ok(ids[1], json!("b"))]).expect("finish");
    let got = lease(&b, &a, 10);
    assert_eq!(got[0].id, ids[3]);
    assert_eq!(got[0].payload, json!({"results": ["a", "b", "c"]}));

    let (_, ids) = b
        .enqueue_workflow(&Workflow::Group(vec![
            job("m", json!(0)),
            job("m", json!(1)),
        ]))
        .expect("group");
    assert_eq!(lease(&b, &a, 10).len(), 2);
    b.finish(&a, &[ok(ids[0], json!(0)), ok(ids[1], json!(1))])
        .expect("finish");
}

#[test]
fn a_dead_chord_member_cancels_the_rest_and_workflows_can_be_cancelled() {
    let (b, _) = broker();
    let (_, ids) = b
        .enqueue_workflow(&Workflow::Chord {
            group: vec![job("m", json!(0)), job("m", json!(1))],
            callback: job("cb", json!({})),
        })
        .expect("chord");
    let a = w("a");
    lease(&b, &a, 1);
    b.finish(&a, &[dead(ids[0])]).expect("finish");
    assert_eq!(state(&b, ids[1]), JobState::Cancelled);
    assert_eq!(state(&b, ids[2]), JobState::Cancelled);

    let (wf, ids) = b
        .enqueue_workflow(&Workflow::Chain(vec![
            job("a", json!(0)),
            job("b", json!(1)),
        ]))
        .expect("chain");
    let got = lease(&b, &a, 10);
    assert_eq!(got[0].id, ids[0]);
    assert_eq!(b.cancel_workflow(wf).expect("cancel"), 2);
    assert_eq!(b.renew(&a, &[ids[0]], LEASE).expect("renew"), vec![ids[0]]);
    b.finish(&a, &[ok(ids[0], json!(0))]).expect("finish");
    assert_eq!(state(&b, ids[0]), JobState::Cancelled);
    assert!(lease(&b, &a, 10).is_empty());
}

#[test]
fn cancel_stops_waiting_jobs_and_drops_running_results() {
    let (b, _) = broker();
    let ids = b
        .enqueue(&[job("a", Value::Null), job("b", Value::Null)])
        .expect("enqueue");
    assert!(b.cancel(ids[0].id).expect("cancel"));
    let a = w("a");
    let got = lease(&b, &a, 10);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, ids[1].id);
    assert!(b.cancel(ids[1].id).expect("cancel"));
    assert_eq!(
        b.renew(&a, &[ids[1].id], LEASE).expect("renew"),
        vec![ids[1].id]
    );
    b.finish(&a, &[ok(ids[1].id, json!(1))]).expect("finish");
    assert_eq!(state(&b, ids[1].id), JobState::Cancelled);
    assert!(!b.cancel(ids[1].id).expect("cancel"), "already done");
}

#[test]
fn results_live_for_their_ttl() {
    let clock = ManualClock::at(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let b = SqliteBroker::open_with(
        &dir.path().join("q.sqlite3"),
        Arc::new(clock.clone()),
        SqliteConfig {
            result_ttl: Duration::from_secs(60),
            ..SqliteConfig::default()
        },
    )
    .expect("open");
    let mut j = job("noop", Value::Null);
    j.idempotency_key = Some("once".into());
    let id = b.enqueue(&[j.clone()]).expect("enqueue")[0].id;
    let a = w("a");
    lease(&b, &a, 1);
    b.finish(&a, &[ok(id, json!({"r": 1}))]).expect("finish");
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        b.get(id).expect("get").expect("job").result,
        Some(json!({"r": 1}))
    );
    assert_eq!(
        b.expire_results(Duration::from_secs(60)).expect("expire"),
        0
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(b.get(id).expect("get").expect("job").result, None);
    assert_eq!(
        b.expire_results(Duration::from_secs(60)).expect("expire"),
        1
    );
    assert!(b.get(id).expect("get").is_none());
    // The key is free again once its job expired.
    assert!(!b.enqueue(&[j]).expect("enqueue")[0].duplicate);
}

#[test]
fn named_locks_have_one_owner_until_they_expire() {
    let (b, clock) = broker();
    let ttl = Duration::from_secs(10);
    assert!(b.lock("leader", "a", ttl).expect("lock"));
    assert!(!b.lock("leader", "b", ttl).expect("lock"));
    assert!(b.lock("leader", "a", ttl).expect("lock"), "re-entrant");
    clock.advance(Duration::from_secs(9));
    assert!(b.extend_lock("leader", "a", ttl).expect("extend"));
    clock.advance(Duration::from_secs(9));
    assert!(!b.lock("leader", "b", ttl).expect("lock"));
    assert_eq!(b.locks().expect("locks")[0].owner, "a");
    clock.advance(Duration::from_secs(2));
    assert!(b.locks().expect("locks").is_empty());
    assert!(b.lock("leader", "b", ttl).expect("lock"));
    assert!(!b.extend_lock("leader", "a", ttl).expect("extend"));
    assert!(!b.unlock("leader", "a").expect("unlock"));
    assert!(b.unlock("leader", "b").expect("unlock"));
}

#[test]
fn token_buckets_grant_a_burst_then_pace() {
    let (b, clock) = broker();
    let limit = RateLimit {
        rate: 10.0,
        burst: 2,
    };
    assert_eq!(
        b.take_token("places", limit).expect("take"),
        RateDecision::Granted
    );
    assert_eq!(
        b.take_token("places", limit).expect("take"),
        RateDecision::Granted
    );
    assert_eq!(
        b.take_token("places", limit).expect("take"),
        RateDecision::Wait(100)
    );
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        b.take_token("places", limit).expect("take"),
        RateDecision::Granted
    );
    assert_eq!(
        b.take_token("other", limit).expect("take"),
        RateDecision::Granted
    );
}

#[test]
fn heartbeats_release_and_release_worker() {
    let (b, clock) = broker();
    let a = w("a");
    let info = WorkerInfo {
        id: a.clone(),
        pid: 42,
        host: "h".into(),
        running: 1,
        last_beat: T0,
        state: crate::job::WorkerStatus::Running,
        reason: None,
    };
    b.heartbeat(&info).expect("beat");
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.workers(Duration::from_secs(5)).expect("workers").len(), 1);
    assert!(b
        .workers(Duration::from_secs(4))
        .expect("workers")
        .is_empty());
    b.remove_worker(&a).expect("remove");
    assert!(b
        .workers(Duration::from_secs(60))
        .expect("workers")
        .is_empty());

    let ids = b
        .enqueue(&[job("a", Value::Null), job("b", Value::Null)])
        .expect("enqueue");
    lease(&b, &a, 10);
    assert_eq!(b.release(&a, &[ids[0].id]).expect("release"), 1);
    let info = b.get(ids[0].id).expect("get").expect("job");
    assert_eq!(
        (info.state, info.attempts, info.lost_leases),
        (JobState::Ready, 0, 0)
    );
    assert_eq!(b.release_worker(&a).expect("release worker"), 1);
    let info = b.get(ids[1].id).expect("get").expect("job");
    assert_eq!((info.state, info.lost_leases), (JobState::Ready, 1));
    let s = &b.stats().expect("stats")[0];
    assert_eq!((s.ready, s.running, s.oldest_ready_ms), (2, 0, 0));
}

#[test]
fn several_connections_to_one_file_never_lease_a_job_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("q.sqlite3");
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
    let producer = SqliteBroker::open(&path, clock.clone()).expect("open");
    let jobs: Vec<NewJob> = (0..2000).map(|n| job("noop", json!(n))).collect();
    producer.enqueue(&jobs).expect("enqueue");
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let b = SqliteBroker::open(&path, clock.clone()).expect("open");
            std::thread::spawn(move || {
                let me = w(&format!("w{k}"));
                let mut seen = Vec::new();
                loop {
                    let got = lease(&b, &me, 37);
                    if got.is_empty() {
                        break seen;
                    }
                    let done: Vec<Finished> = got.iter().map(|l| ok(l.id, Value::Null)).collect();
                    b.finish(&me, &done).expect("finish");
                    seen.extend(got.iter().map(|l| l.id));
                }
            })
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        for id in h.join().expect("thread") {
            assert!(all.insert(id), "job {id} leased twice");
        }
    }
    assert_eq!(all.len(), 2000);
}

#[test]
fn a_version_1_file_gains_worker_states() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.sqlite3");
    let clock = Arc::new(ManualClock::at(T0));
    drop(SqliteBroker::open(&path, clock.clone()).expect("create"));
    // Turn the file back into what version 1 wrote: workers without state or reason.
    let conn = Connection::open(&path).expect("open raw");
    conn.execute_batch(
        "ALTER TABLE workers DROP COLUMN state; ALTER TABLE workers DROP COLUMN reason; \
         INSERT INTO workers (id, pid, host, running, last_beat) VALUES ('old', 1, 'h', 0, 0); \
         UPDATE meta SET value = 1 WHERE key = 'version';",
    )
    .expect("downgrade");
    drop(conn);
    let b = SqliteBroker::open(&path, clock).expect("upgrade");
    let old = b.workers(Duration::from_secs(1 << 40)).expect("workers");
    assert_eq!(old[0].state, crate::job::WorkerStatus::Running);
    b.heartbeat(&WorkerInfo {
        id: w("new"),
        pid: 2,
        host: "h".into(),
        running: 0,
        last_beat: T0,
        state: crate::job::WorkerStatus::Degraded,
        reason: Some("why".into()),
    })
    .expect("beat");
    let all = b.workers(Duration::from_secs(1 << 40)).expect("workers");
    assert_eq!(all[0].state, crate::job::WorkerStatus::Degraded);
    assert_eq!(all[0].reason.as_deref(), Some("why"));
}
