//! The hot path of the SQLite queue: enqueue, lease, renew, finish, release, and the workflow
//! steps a finish unlocks. Every function here runs inside the caller's write transaction,
//! except `lease`, which probes with a plain read first.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::schema::{CANCELLED, DEAD, PENDING, RUNNING, WAITING};
use super::{db_err, i, u, SqliteBroker, Tally};
use crate::broker::{LeaseRequest, Result};
use crate::error::QueueError;
use crate::job::{
    Enqueued, Finished, JobId, Leased, NewJob, Outcome, QueueName, TaskName, Timestamp, WorkerId,
    Workflow, WorkflowId,
};

const ENQUEUED: usize = 0;
const STARTED: usize = 1;
const SUCCEEDED_C: usize = 2;
const FAILED: usize = 3;
const RETRIED: usize = 4;
const DEAD_C: usize = 5;
const LEASE_EXPIRED: usize = 6;

/// Lost leases after which a job is dead (the poison guard).
pub(super) const POISON_LIMIT: i64 = 3;

fn encode(v: &Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| QueueError::Corrupt {
        message: format!("cannot encode a payload: {e}"),
    })
}

fn decode(s: &str, id: i64) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| QueueError::Corrupt {
        message: format!("job {id} has an undecodable payload or result: {e}"),
    })
}

/// Inserts one job row in `state`; returns its id.
#[allow(clippy::too_many_arguments)]
fn insert(
    tx: &Connection,
    job: &NewJob,
    state: i64,
    now: u64,
    key: Option<&str>,
    workflow: Option<i64>,
    step: Option<i64>,
) -> Result<i64> {
    let not_before = job.not_before.map_or(now, |t| t.0);
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO jobs (queue, task, payload, state, not_before, enqueued_at, max_retries, \
             idem_key, workflow, step) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(db_err("preparing an insert"))?;
    stmt.execute(params![
        job.queue.as_str(),
        job.task.as_str(),
        encode(&job.payload)?,
        state,
        i(not_before),
        i(now),
        job.max_retries,
        key,
        workflow,
        step
    ])
    .map_err(db_err("inserting a job"))?;
    Ok(tx.last_insert_rowid())
}

pub(super) fn enqueue(tx: &Connection, jobs: &[NewJob], now: u64) -> Result<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(jobs.len());
    let mut tally = Tally::default();
    for job in jobs {
        if let Some(key) = &job.idempotency_key {
            let existing: Option<i64> = tx
                .prepare_cached("SELECT id FROM jobs WHERE idem_key = ?1")
                .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
                .map_err(db_err("looking up an idempotency key"))?;
            if let Some(id) = existing {
                out.push(Enqueued {
                    id: JobId(u(id)),
                    duplicate: true,
                });
                continue;
            }
        }
        let id = insert(
            tx,
            job,
            PENDING,
            now,
            job.idempotency_key.as_deref(),
            None,
            None,
        )?;
        tally.add(job.queue.as_str(), ENQUEUED, 1);
        out.push(Enqueued {
            id: JobId(u(id)),
            duplicate: false,
        });
    }
    tally.flush(tx)?;
    Ok(out)
}

/// Workflow members ignore idempotency keys: a member deduplicated into another workflow's job
/// would break the links between steps.
pub(super) fn enqueue_workflow(
    tx: &Connection,
    workflow: &Workflow,
    now: u64,
) -> Result<(WorkflowId, Vec<JobId>)> {
    let (kind, members, callback): (&str, &[NewJob], Option<&NewJob>) = match workflow {
        Workflow::Chain(jobs) => ("chain", jobs, None),
        Workflow::Group(jobs) => ("group", jobs, None),
        Workflow::Chord { group, callback } => ("chord", group, Some(callback)),
    };
    tx.execute(
        "INSERT INTO workflows (kind, members, created_at) VALUES (?1, ?2, ?3)",
        params![kind, members.len() as i64, i(now)],
    )
    .map_err(db_err("recording a workflow"))?;
    let wf = tx.last_insert_rowid();
    let mut ids = Vec::with_capacity(members.len() + 1);
    let mut tally = Tally::default();
    for (step, job) in members.iter().enumerate() {
        let state = if kind == "chain" && step > 0 {
            WAITING
        } else {
            PENDING
        };
        ids.push(JobId(u(insert(
            tx,
            job,
            state,
            now,
            None,
            Some(wf),
            Some(step as i64),
        )?)));
        tally.add(job.queue.as_str(), ENQUEUED, 1);
    }
    if let Some(cb) = callback {
        // An empty chord runs its callback at once with no results.
        let (state, job) = if members.is_empty() {
            let mut job = cb.clone();
            job.payload = with_key(job.payload, "results", Value::Array(Vec::new()));
            (PENDING, job)
        } else {
            (WAITING, cb.clone())
        };
        ids.push(JobId(u(insert(
            tx,
            &job,
            state,
            now,
            None,
            Some(wf),
            Some(members.len() as i64),
        )?)));
        tally.add(cb.queue.as_str(), ENQUEUED, 1);
    }
    tally.flush(tx)?;
    Ok((WorkflowId(u(wf)), ids))
}

/// Adds `key: value` to a payload: into an object, or wrapping another value as `"input"`.
pub(super) fn with_key(payload: Value, key: &str, value: Value) -> Value {
    match payload {
        Value::Object(mut m) => {
            m.insert(key.to_owned(), value);
            Value::Object(m)
        }
        Value::Null => Value::Object([(key.to_owned(), value)].into_iter().collect()),
        other => Value::Object(
            [("input".to_owned(), other), (key.to_owned(), value)]
                .into_iter()
                .collect(),
        ),
    }
}

/// Ends expired leases (or, with `worker`, every lease of that worker) as lost leases; the third
/// loss sends a job to the dead-letter queue. Returns the ids affected.
pub(super) fn reclaim(tx: &Connection, now: u64, worker: Option<&WorkerId>) -> Result<Vec<i64>> {
    let sql = format!(
        "UPDATE jobs SET lost_leases = lost_leases + 1, worker = NULL, lease_until = NULL, \
         state = CASE WHEN lost_leases + 1 >= {POISON_LIMIT} THEN {DEAD} ELSE {PENDING} END, \
         finished_at = CASE WHEN lost_leases + 1 >= {POISON_LIMIT} THEN ?1 ELSE NULL END, \
         last_error = CASE WHEN lost_leases + 1 >= {POISON_LIMIT} \
           THEN 'poison guard: the worker running it was lost ' || (lost_leases + 1) || ' times' \
           ELSE 'lease lost (worker gone or too slow to renew)' END \
         WHERE {} RETURNING id, queue, state, workflow",
        if worker.is_some() {
            "state = 1 AND worker = ?2"
        } else {
            "state = 1 AND lease_until <= ?1"
        }
    );
    let mut stmt = tx
        .prepare_cached(&sql)
        .map_err(db_err("preparing lease reclaim"))?;
    let map = |r: &rusqlite::Row<'_>| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    };
    let rows: Vec<(i64, String, i64, Option<i64>)> = match worker {
        Some(w) => stmt.query_map(params![i(now), w.as_str()], map),
        None => stmt.query_map(params![i(now)], map),
    }
    .and_then(|rows| rows.collect())
    .map_err(db_err("reclaiming leases"))?;
    drop(stmt);
    let mut tally = Tally::default();
    let mut ids = Vec::with_capacity(rows.len());
    for (id, queue, state, workflow) in rows {
        tally.add(&queue, LEASE_EXPIRED, 1);
        if state == DEAD {
            tally.add(&queue, DEAD_C, 1);
            if let Some(wf) = workflow {
                cancel_rest(tx, wf, now, "an earlier workflow member died")?;
            }
        }
        ids.push(id);
    }
    tally.flush(tx)?;
    Ok(ids)
}

/// Which queues have ready jobs, and whether any lease has expired (a plain read: no lock).
fn probe(b: &SqliteBroker, req: &LeaseRequest<'_>, now: u64) -> Result<(Vec<bool>, bool)> {
    let conn = b.conn();
    let mut ready = Vec::with_capacity(req.queues.len());
    let mut stmt = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 0 AND queue = ?1 AND not_before <= ?2)",
        )
        .map_err(db_err("preparing the ready probe"))?;
    for q in req.queues {
        let has: bool = stmt
            .query_row(params![q.queue.as_str(), i(now)], |r| r.get(0))
            .map_err(db_err("probing the ready set"))?;
        ready.push(has);
    }
    let expired: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 1 AND lease_until <= ?1)")
        .and_then(|mut s| s.query_row([i(now)], |r| r.get(0)))
        .map_err(db_err("probing for expired leases"))?;
    Ok((ready, expired))
}

/// Splits `max` slots among the queues with work by smooth weighted round-robin, carrying the
/// round-robin state across calls so that even `max = 1` serves every queue in turn.
fn allocate(b: &SqliteBroker, req: &LeaseRequest<'_>, has_work: &[bool]) -> Vec<usize> {
    let mut counts = vec![0usize; req.queues.len()];
    let total: i64 = req
        .queues
        .iter()
        .zip(has_work)
        .filter(|(_, &h)| h)
        .map(|(q, _)| i64::from(q.weight.max(1)))
        .sum();
    if total == 0 {
        return counts;
    }
    let mut state = b.fairness.lock().unwrap_or_else(|e| e.into_inner());
    let mut cur: Vec<i64> = req
        .queues
        .iter()
        .map(|q| state.get(&q.queue).copied().unwrap_or(0))
        .collect();
    for _ in 0..req.max {
        let mut best: Option<usize> = None;
        for (k, q) in req.queues.iter().enumerate() {
            if has_work[k] {
                cur[k] += i64::from(q.weight.max(1));
                if best.is_none_or(|b| cur[k] > cur[b]) {
                    best = Some(k);
                }
            }
        }
        if let Some(k) = best {
            cur[k] -= total;
            counts[k] += 1;
        }
    }
    for (k, q) in req.queues.iter().enumerate() {
        if has_work[k] {
            state.insert(q.queue.clone(), cur[k]);
        }
    }
    counts
}

/// Leases up to `k` ready jobs of one queue, oldest first.
fn lease_from(
    tx: &Connection,
    queue: &QueueName,
    k: usize,
    worker: &WorkerId,
    now: u64,
    until: u64,
    out: &mut Vec<Leased>,
) -> Result<usize> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE jobs SET state = 1, worker = ?1, lease_until = ?2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM jobs WHERE state = 0 AND queue = ?3 AND not_before <= ?4 \
             ORDER BY not_before, id LIMIT ?5) \
             RETURNING id, task, payload, attempts, max_retries, not_before",
        )
        .map_err(db_err("preparing a lease"))?;
    let rows = stmt
        .query_map(
            params![worker.as_str(), i(until), queue.as_str(), i(now), k as i64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<u32>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db_err("leasing jobs"))?;
    let n = rows.len();
    for (id, task, payload, attempts, max_retries, not_before) in rows {
        out.push(Leased {
            id: JobId(u(id)),
            task: TaskName::new(task).map_err(|e| QueueError::Corrupt {
                message: format!("job {id}: {e}"),
            })?,
            payload: decode(&payload, id)?,
            queue: queue.clone(),
            attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
            max_retries,
            ready_at: Timestamp(u(not_before)),
            lease_until: Timestamp(until),
        });
    }
    Ok(n)
}

pub(super) fn lease(b: &SqliteBroker, req: &LeaseRequest<'_>) -> Result<Vec<Leased>> {
    if req.max == 0 || req.queues.is_empty() {
        return Ok(Vec::new());
    }
    let now = b.now_ms();
    let (mut has_work, expired) = probe(b, req, now)?;
    if !expired && !has_work.iter().any(|&h| h) {
        return Ok(Vec::new());
    }
    b.write("leasing jobs", |tx| {
        // Times are taken once the write lock is held, so waiting for it shortens no lease.
        let now = b.now_ms();
        let until = Timestamp(now).after(req.lease_for).0;
        if expired && !reclaim(tx, now, None)?.is_empty() {
            // Reclaimed jobs may sit in queues the probe found empty.
            has_work.iter_mut().for_each(|h| *h = true);
        }
        let counts = allocate(b, req, &has_work);
        let mut out = Vec::with_capacity(req.max);
        let mut tally = Tally::default();
        let mut exhausted = vec![false; req.queues.len()];
        for (k, q) in req.queues.iter().enumerate() {
            if counts[k] == 0 {
                continue;
            }
            let got = lease_from(tx, &q.queue, counts[k], req.worker, now, until, &mut out)?;
            exhausted[k] = got < counts[k];
        }
        // Slots a queue could not fill go to the queues that may have more, heaviest first.
        let mut order: Vec<usize> = (0..req.queues.len())
            .filter(|&k| has_work[k] && !exhausted[k])
            .collect();
        order.sort_by_key(|&k| std::cmp::Reverse(req.queues[k].weight));
        for k in order {
            let left = req.max - out.len();
            if left == 0 {
                break;
            }
            lease_from(
                tx,
                &req.queues[k].queue,
                left,
                req.worker,
                now,
                until,
                &mut out,
            )?;
        }
        for l in &out {
            tally.add(l.queue.as_str(), STARTED, 1);
        }
        tally.flush(tx)?;
        Ok(out)
    })
}

pub(super) fn renew(
    tx: &Connection,
    worker: &WorkerId,
    ids: &[JobId],
    until: u64,
) -> Result<Vec<JobId>> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE jobs SET lease_until = ?1 WHERE id = ?2 AND state = 1 AND worker = ?3",
        )
        .map_err(db_err("preparing a renewal"))?;
    let mut lost = Vec::new();
    for id in ids {
        let n = stmt
            .execute(params![i(until), i(id.0), worker.as_str()])
            .map_err(db_err("renewing a lease"))?;
        if n == 0 {
            lost.push(*id);
        }
    }
    Ok(lost)
}

/// Queue, workflow, step and result of a job whose finish was recorded.
type FinishedRow = (String, Option<i64>, Option<i64>, Option<String>);

pub(super) fn finish(
    tx: &Connection,
    worker: &WorkerId,
    done: &[Finished],
    now: u64,
) -> Result<()> {
    let mut tally = Tally::default();
    for f in done {
        // Each UPDATE only matches while `worker` still holds the lease: a zombie's finish is
        // a no-op.
        let (sql, p1, p2): (&str, Option<String>, i64) = match &f.outcome {
            Outcome::Succeeded(v) => (
                "UPDATE jobs SET state = 2, result = ?1, finished_at = ?2, worker = NULL, \
                 lease_until = NULL WHERE id = ?3 AND state = 1 AND worker = ?4 \
                 RETURNING queue, workflow, step, result",
                Some(encode(v)?),
                i(now),
            ),
            Outcome::Failed {
                error,
                retry_at: Some(t),
            } => (
                "UPDATE jobs SET state = 0, last_error = ?1, not_before = ?2, worker = NULL, \
                 lease_until = NULL WHERE id = ?3 AND state = 1 AND worker = ?4 \
                 RETURNING queue, workflow, step, NULL",
                Some(error.clone()),
                i(t.0.max(now)),
            ),
            Outcome::Failed {
                error,
                retry_at: None,
            } => (
                "UPDATE jobs SET state = 3, last_error = ?1, finished_at = ?2, worker = NULL, \
                 lease_until = NULL WHERE id = ?3 AND state = 1 AND worker = ?4 \
                 RETURNING queue, workflow, step, NULL",
                Some(error.clone()),
                i(now),
            ),
        };
        let row: Option<FinishedRow> = tx
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(params![p1, p2, i(f.id.0), worker.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(db_err("recording a finished job"))?;
        let Some((queue, workflow, step, result)) = row else {
            continue;
        };
        match &f.outcome {
            Outcome::Succeeded(_) => {
                tally.add(&queue, SUCCEEDED_C, 1);
                if let (Some(wf), Some(step), Some(result)) = (workflow, step, result) {
                    advance(tx, wf, step, &result, now)?;
                }
            }
            Outcome::Failed {
                retry_at: Some(_), ..
            } => {
                tally.add(&queue, FAILED, 1);
                tally.add(&queue, RETRIED, 1);
            }
            Outcome::Failed { retry_at: None, .. } => {
                tally.add(&queue, FAILED, 1);
                tally.add(&queue, DEAD_C, 1);
                if let Some(wf) = workflow {
                    cancel_rest(tx, wf, now, "an earlier workflow member died")?;
                }
            }
        }
    }
    tally.flush(tx)
}

/// Unlocks what a succeeded workflow member allows: the next chain step (given `"previous"`), or
/// the chord callback once every member succeeded (given `"results"` in member order).
fn advance(tx: &Connection, wf: i64, step: i64, result: &str, now: u64) -> Result<()> {
    let found: Option<(String, i64)> = tx
        .prepare_cached("SELECT kind, members FROM workflows WHERE id = ?1")
        .and_then(|mut s| s.query_row([wf], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db_err("reading a workflow"))?;
    let Some((kind, members)) = found else {
        return Ok(());
    };
    let (next_step, key, value) = match kind.as_str() {
        "chain" => (step + 1, "previous", decode(result, wf)?),
        "chord" if step < members => {
            let unfinished: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM jobs WHERE workflow = ?1 AND step < ?2 AND state != 2",
                )
                .and_then(|mut s| s.query_row(params![wf, members], |r| r.get(0)))
                .map_err(db_err("counting chord members"))?;
            if unfinished > 0 {
                return Ok(());
            }
            let results: Vec<Option<String>> = tx
                .prepare_cached(
                    "SELECT result FROM jobs WHERE workflow = ?1 AND step < ?2 ORDER BY step",
                )
                .and_then(|mut s| {
                    s.query_map(params![wf, members], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(db_err("gathering chord results"))?;
            let values = results
                .iter()
                .map(|r| r.as_deref().map_or(Ok(Value::Null), |s| decode(s, wf)))
                .collect::<Result<Vec<_>>>()?;
            (members, "results", Value::Array(values))
        }
        _ => return Ok(()),
    };
    let next: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, payload FROM jobs WHERE workflow = ?1 AND step = ?2 AND state = 5",
        )
        .and_then(|mut s| {
            s.query_row(params![wf, next_step], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db_err("finding the next workflow step"))?;
    if let Some((id, payload)) = next {
        let payload = with_key(decode(&payload, id)?, key, value);
        tx.execute(
            "UPDATE jobs SET state = 0, payload = ?1, not_before = MAX(not_before, ?2) \
             WHERE id = ?3",
            params![encode(&payload)?, i(now), id],
        )
        .map_err(db_err("unlocking a workflow step"))?;
    }
    Ok(())
}

/// Cancels every unfinished job of workflow `wf` (running ones are then reported lost to their
/// workers). Returns how many.
pub(super) fn cancel_rest(tx: &Connection, wf: i64, now: u64, why: &str) -> Result<usize> {
    tx.prepare_cached(&format!(
        "UPDATE jobs SET state = {CANCELLED}, finished_at = ?2, last_error = ?3, worker = NULL, \
         lease_until = NULL WHERE workflow = ?1 AND state IN ({PENDING}, {RUNNING}, {WAITING})"
    ))
    .and_then(|mut s| s.execute(params![wf, i(now), why]))
    .map_err(db_err("cancelling workflow jobs"))
}

pub(super) fn cancel(tx: &Connection, id: JobId, now: u64) -> Result<bool> {
    let row: Option<Option<i64>> = tx
        .prepare_cached(&format!(
            "UPDATE jobs SET state = {CANCELLED}, finished_at = ?2, last_error = 'cancelled', \
             worker = NULL, lease_until = NULL \
             WHERE id = ?1 AND state IN ({PENDING}, {RUNNING}, {WAITING}) RETURNING workflow"
        ))
        .and_then(|mut s| {
            s.query_row(params![i(id.0), i(now)], |r| r.get(0))
                .optional()
        })
        .map_err(db_err("cancelling a job"))?;
    match row {
        None => Ok(false),
        Some(wf) => {
            // Later steps that waited for this job can never run now.
            if let Some(wf) = wf {
                tx.execute(
                    &format!(
                        "UPDATE jobs SET state = {CANCELLED}, finished_at = ?2, \
                         last_error = 'an earlier workflow member was cancelled' \
                         WHERE workflow = ?1 AND state = {WAITING}"
                    ),
                    params![wf, i(now)],
                )
                .map_err(db_err("cancelling dependent steps"))?;
            }
            Ok(true)
        }
    }
}

pub(super) fn release(tx: &Connection, worker: &WorkerId, ids: &[JobId]) -> Result<usize> {
    // The run never finished, so it does not count as an attempt.
    let mut stmt = tx
        .prepare_cached(
            "UPDATE jobs SET state = 0, worker = NULL, lease_until = NULL, \
             attempts = MAX(attempts - 1, 0) WHERE id = ?1 AND state = 1 AND worker = ?2",
        )
        .map_err(db_err("preparing a release"))?;
    let mut n = 0;
    for id in ids {
        n += stmt
            .execute(params![i(id.0), worker.as_str()])
            .map_err(db_err("releasing a job"))?;
    }
    Ok(n)
}
