//! The SQLite queue's inspection and coordination steps: stats, listing, dead letters, purge,
//! result expiry, heartbeats, named locks and token buckets.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::{state_condition, state_of};
use super::{db_err, i, u};
use crate::broker::{ListFilter, Result};
use crate::error::QueueError;
use crate::job::{
    JobId, JobInfo, JobState, LockInfo, QueueCounters, QueueName, QueueStats, RateDecision,
    RateLimit, TaskName, Timestamp, WorkerId, WorkerInfo, WorkerStatus, WorkflowId,
};

fn corrupt(what: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError::Corrupt {
        message: format!("{what}: {e}"),
    }
}

fn queue_name(s: String) -> Result<QueueName> {
    QueueName::new(s).map_err(|e| corrupt("a stored queue name", e))
}

pub(super) fn heartbeat(tx: &Connection, info: &WorkerInfo, now: u64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO workers (id, pid, host, running, last_beat, state, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host, \
         running = excluded.running, last_beat = excluded.last_beat, state = excluded.state, \
         reason = excluded.reason",
    )
    .and_then(|mut s| {
        s.execute(params![
            info.id.as_str(),
            info.pid,
            info.host,
            info.running,
            i(now),
            info.state.as_str(),
            info.reason,
        ])
    })
    .map(|_| ())
    .map_err(db_err("recording a heartbeat"))
}

type WorkerRow = (String, u32, String, u32, i64, String, Option<String>);

pub(super) fn workers(conn: &Connection, since: u64) -> Result<Vec<WorkerInfo>> {
    let rows: Vec<WorkerRow> = conn
        .prepare_cached(
            "SELECT id, pid, host, running, last_beat, state, reason FROM workers \
             WHERE last_beat >= ?1 ORDER BY id",
        )
        .and_then(|mut s| {
            s.query_map([i(since)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect()
        })
        .map_err(db_err("listing workers"))?;
    rows.into_iter()
        .map(|(id, pid, host, running, beat, state, reason)| {
            Ok(WorkerInfo {
                id: WorkerId::new(id).map_err(|e| corrupt("a stored worker id", e))?,
                pid,
                host,
                running,
                last_beat: Timestamp(u(beat)),
                // A state written by a newer version reads as degraded: something is off.
                state: WorkerStatus::parse(&state).unwrap_or(WorkerStatus::Degraded),
                reason,
            })
        })
        .collect()
}

type Stats = std::collections::BTreeMap<String, QueueStats>;

fn entry(by_queue: &mut Stats, q: String) -> Result<&mut QueueStats> {
    if !by_queue.contains_key(&q) {
        let queue = queue_name(q.clone())?;
        by_queue.insert(
            q.clone(),
            QueueStats {
                queue,
                ready: 0,
                scheduled: 0,
                running: 0,
                dead: 0,
                oldest_ready_ms: 0,
            },
        );
    }
    by_queue
        .get_mut(&q)
        .ok_or_else(|| corrupt("queue statistics", "lost an entry"))
}

pub(super) fn stats(conn: &Connection, now: u64) -> Result<Vec<QueueStats>> {
    let mut by_queue = Stats::new();
    let known: Vec<String> = conn
        .prepare_cached("SELECT queue FROM counters")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(db_err("listing queues"))?;
    for q in known {
        entry(&mut by_queue, q)?;
    }
    // Each query below is answered from one partial index.
    let pending: Vec<(String, i64, i64, Option<i64>)> = conn
        .prepare_cached(
            "SELECT queue, SUM(not_before <= ?1), SUM(not_before > ?1), \
             MIN(CASE WHEN not_before <= ?1 THEN not_before END) \
             FROM jobs WHERE state = 0 GROUP BY queue",
        )
        .and_then(|mut s| {
            s.query_map([i(now)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })
        .map_err(db_err("counting pending jobs"))?;
    for (q, ready, scheduled, oldest) in pending {
        let s = entry(&mut by_queue, q)?;
        s.ready = u(ready);
        s.scheduled = u(scheduled);
        s.oldest_ready_ms = oldest.map_or(0, |t| now.saturating_sub(u(t)));
    }
    for (state, sql) in [
        (
            JobState::Running,
            "SELECT queue, COUNT(*) FROM jobs WHERE state = 1 GROUP BY queue",
        ),
        (
            JobState::Dead,
            "SELECT queue, COUNT(*) FROM jobs WHERE state = 3 GROUP BY queue",
        ),
    ] {
        let rows: Vec<(String, i64)> = conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(db_err("counting jobs"))?;
        for (q, n) in rows {
            let s = entry(&mut by_queue, q)?;
            if state == JobState::Running {
                s.running = u(n);
            } else {
                s.dead = u(n);
            }
        }
    }
    Ok(by_queue.into_values().collect())
}

pub(super) fn counters(conn: &Connection) -> Result<Vec<QueueCounters>> {
    let rows: Vec<(String, [i64; 7])> = conn
        .prepare_cached(
            "SELECT queue, enqueued, started, succeeded, failed, retried, dead, lease_expired \
             FROM counters ORDER BY queue",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    [
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ],
                ))
            })?
            .collect()
        })
        .map_err(db_err("reading counters"))?;
    rows.into_iter()
        .map(|(q, c)| {
            Ok(QueueCounters {
                queue: queue_name(q)?,
                enqueued: u(c[0]),
                started: u(c[1]),
                succeeded: u(c[2]),
                failed: u(c[3]),
                retried: u(c[4]),
                dead: u(c[5]),
                lease_expired: u(c[6]),
            })
        })
        .collect()
}

const JOB_COLUMNS: &str = "id, task, queue, state, payload, attempts, lost_leases, enqueued_at, \
    not_before, worker, last_error, result, finished_at, workflow";

type Row = (
    i64,
    String,
    String,
    i64,
    String,
    u32,
    u32,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
    ))
}

fn to_info(row: Row, now: u64, ttl: Duration) -> Result<JobInfo> {
    let (id, task, queue, code, payload, attempts, lost, enq, nb, worker, err, result, fin, wf) =
        row;
    let state = state_of(code, u(nb), now)
        .ok_or_else(|| corrupt(&format!("job {id}"), format!("unknown state {code}")))?;
    let fresh = fin.is_some_and(|f| u(f).saturating_add(ttl.as_millis() as u64) > now);
    let result = match result {
        Some(r) if state == JobState::Succeeded && fresh => {
            Some(serde_json::from_str(&r).map_err(|e| corrupt(&format!("job {id}'s result"), e))?)
        }
        _ => None,
    };
    Ok(JobInfo {
        id: JobId(u(id)),
        task: TaskName::new(task).map_err(|e| corrupt(&format!("job {id}"), e))?,
        queue: queue_name(queue)?,
        state,
        payload: serde_json::from_str(&payload)
            .map_err(|e| corrupt(&format!("job {id}'s payload"), e))?,
        attempts,
        lost_leases: lost,
        enqueued_at: Timestamp(u(enq)),
        not_before: matches!(state, JobState::Ready | JobState::Scheduled)
            .then_some(Timestamp(u(nb))),
        worker: match worker {
            Some(w) => Some(WorkerId::new(w).map_err(|e| corrupt(&format!("job {id}"), e))?),
            None => None,
        },
        last_error: err,
        result,
        workflow: wf.map(|w| WorkflowId(u(w))),
    })
}

pub(super) fn list(
    conn: &Connection,
    filter: &ListFilter,
    now: u64,
    ttl: Duration,
) -> Result<Vec<JobInfo>> {
    let mut conds = Vec::new();
    if let Some(s) = filter.state {
        conds.push(state_condition(s, "?1"));
    }
    if filter.queue.is_some() {
        conds.push("queue = ?2".to_owned());
    }
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs {} {} ORDER BY id LIMIT ?3",
        if conds.is_empty() { "" } else { "WHERE" },
        conds.join(" AND ")
    );
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    let queue = filter.queue.as_ref().map(|q| q.as_str());
    // Unused parameters are fine in SQLite; binding them all keeps one statement per shape.
    let rows: Vec<Row> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params![i(now), queue, limit as i64], read_row)?
                .collect()
        })
        .map_err(db_err("listing jobs"))?;
    rows.into_iter().map(|r| to_info(r, now, ttl)).collect()
}

pub(super) fn get(
    conn: &Connection,
    id: JobId,
    now: u64,
    ttl: Duration,
) -> Result<Option<JobInfo>> {
    let row = conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
        .and_then(|mut s| s.query_row([i(id.0)], read_row).optional())
        .map_err(db_err("reading a job"))?;
    row.map(|r| to_info(r, now, ttl)).transpose()
}

pub(super) fn retry_dead(
    tx: &Connection,
    queue: Option<&QueueName>,
    ids: &[JobId],
    now: u64,
) -> Result<usize> {
    const SET: &str = "UPDATE jobs SET state = 0, attempts = 0, lost_leases = 0, not_before = ?1, \
                       finished_at = NULL, worker = NULL, lease_until = NULL WHERE state = 3";
    if ids.is_empty() {
        let q = queue.map(|q| q.as_str());
        return tx
            .execute(
                &format!("{SET} AND (?2 IS NULL OR queue = ?2)"),
                params![i(now), q],
            )
            .map_err(db_err("retrying dead jobs"));
    }
    let mut stmt = tx
        .prepare_cached(&format!("{SET} AND id = ?2"))
        .map_err(db_err("preparing a dead-job retry"))?;
    let mut n = 0;
    for id in ids {
        n += stmt
            .execute(params![i(now), i(id.0)])
            .map_err(db_err("retrying a dead job"))?;
    }
    Ok(n)
}

pub(super) fn purge(
    tx: &Connection,
    queue: Option<&QueueName>,
    state: JobState,
    now: u64,
) -> Result<usize> {
    if state == JobState::Running {
        return Ok(0);
    }
    let q = queue.map(|q| q.as_str());
    tx.execute(
        &format!(
            "DELETE FROM jobs WHERE {} AND (?2 IS NULL OR queue = ?2)",
            state_condition(state, "?1")
        ),
        params![i(now), q],
    )
    .map_err(db_err("purging jobs"))
}

pub(super) fn expire(tx: &Connection, before: u64) -> Result<usize> {
    let n = tx
        .execute(
            "DELETE FROM jobs WHERE state IN (2, 4) AND finished_at <= ?1",
            [i(before)],
        )
        .map_err(db_err("expiring results"))?;
    tx.execute(
        "DELETE FROM workflows WHERE NOT EXISTS \
         (SELECT 1 FROM jobs WHERE jobs.workflow = workflows.id)",
        [],
    )
    .map_err(db_err("forgetting finished workflows"))?;
    Ok(n)
}

pub(super) fn take_token(
    tx: &Connection,
    key: &str,
    limit: RateLimit,
    now: u64,
) -> Result<RateDecision> {
    let burst = f64::from(limit.burst.max(1));
    let found: Option<(f64, i64)> = tx
        .prepare_cached("SELECT tokens, updated FROM buckets WHERE key = ?1")
        .and_then(|mut s| {
            s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db_err("reading a token bucket"))?;
    let tokens = match found {
        None => burst,
        Some((tokens, updated)) => {
            let elapsed = now.saturating_sub(u(updated)) as f64 / 1000.0;
            (tokens + elapsed * limit.rate.max(0.0)).min(burst)
        }
    };
    let (left, decision) = if tokens >= 1.0 {
        (tokens - 1.0, RateDecision::Granted)
    } else if limit.rate > 0.0 {
        let wait = ((1.0 - tokens) / limit.rate * 1000.0).ceil().max(1.0);
        (tokens, RateDecision::Wait(wait as u64))
    } else {
        (tokens, RateDecision::Wait(1000))
    };
    tx.prepare_cached(
        "INSERT INTO buckets (key, tokens, updated) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
    )
    .and_then(|mut s| s.execute(params![key, left, i(now)]))
    .map_err(db_err("updating a token bucket"))?;
    Ok(decision)
}

pub(super) fn lock(
    tx: &Connection,
    name: &str,
    owner: &str,
    now: Timestamp,
    ttl: Duration,
) -> Result<bool> {
    // Free, expired, or already ours: take (or extend) it.
    let n = tx
        .execute(
            "INSERT INTO locks (name, owner, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until \
             WHERE locks.until <= ?4 OR locks.owner = excluded.owner",
            params![name, owner, i(now.after(ttl).0), i(now.0)],
        )
        .map_err(db_err("taking a lock"))?;
    Ok(n > 0)
}

pub(super) fn locks(conn: &Connection, now: u64) -> Result<Vec<LockInfo>> {
    conn.prepare_cached("SELECT name, owner, until FROM locks WHERE until > ?1 ORDER BY name")
        .and_then(|mut s| {
            s.query_map([i(now)], |r| {
                Ok(LockInfo {
                    name: r.get(0)?,
                    owner: r.get(1)?,
                    until: Timestamp(u(r.get(2)?)),
                })
            })?
            .collect()
        })
        .map_err(db_err("listing locks"))
}
