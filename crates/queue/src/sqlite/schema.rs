//! The SQLite queue's tables, and the small integer codes of job states.
//!
//! `pending` covers both ready and scheduled jobs: a job is ready once `not_before <= now`, so a
//! delay of any length is just a row in the ready index `(queue, not_before, id)` that the lease
//! query does not reach before its time (no mover, no visibility timeout, no duplicate).

use crate::job::JobState;

/// Ready (not_before reached) or scheduled (not yet).
pub(super) const PENDING: i64 = 0;
/// Leased by a worker.
pub(super) const RUNNING: i64 = 1;
/// Finished successfully.
pub(super) const SUCCEEDED: i64 = 2;
/// In the dead-letter queue.
pub(super) const DEAD: i64 = 3;
/// Cancelled.
pub(super) const CANCELLED: i64 = 4;
/// A workflow step waiting for an earlier one.
pub(super) const WAITING: i64 = 5;

/// The schema version this code writes.
pub(super) const VERSION: i64 = 2;

/// Brings a version-1 file (workers without a state) to version 2.
pub(super) const MIGRATE_1_TO_2: &str = "
ALTER TABLE workers ADD COLUMN state TEXT NOT NULL DEFAULT 'running';
ALTER TABLE workers ADD COLUMN reason TEXT;
UPDATE meta SET value = 2 WHERE key = 'version';
";

/// Tables and indexes. Partial indexes use literal state codes so the planner can match them.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    task TEXT NOT NULL,
    payload TEXT NOT NULL,
    state INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lost_leases INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER,
    worker TEXT,
    lease_until INTEGER,
    last_error TEXT,
    result TEXT,
    finished_at INTEGER,
    idem_key TEXT,
    workflow INTEGER,
    step INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(queue, not_before, id) WHERE state = 0;
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs(lease_until) WHERE state = 1;
CREATE INDEX IF NOT EXISTS jobs_dead ON jobs(queue, id) WHERE state = 3;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_workflow ON jobs(workflow, step) WHERE workflow IS NOT NULL;
CREATE TABLE IF NOT EXISTS workflows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    members INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    queue TEXT PRIMARY KEY,
    enqueued INTEGER NOT NULL DEFAULT 0,
    started INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    lease_expired INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    running INTEGER NOT NULL,
    last_beat INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'running',
    reason TEXT
);
";

/// The state a stored code means at `now` (pending splits into ready and scheduled).
pub(super) fn state_of(code: i64, not_before: u64, now: u64) -> Option<JobState> {
    Some(match code {
        PENDING if not_before <= now => JobState::Ready,
        PENDING => JobState::Scheduled,
        RUNNING => JobState::Running,
        SUCCEEDED => JobState::Succeeded,
        DEAD => JobState::Dead,
        CANCELLED => JobState::Cancelled,
        WAITING => JobState::Waiting,
        _ => return None,
    })
}

/// The SQL condition selecting jobs in `state` (with `?now` bound as parameter `now_param`).
pub(super) fn state_condition(state: JobState, now_param: &str) -> String {
    match state {
        JobState::Ready => format!("state = 0 AND not_before <= {now_param}"),
        JobState::Scheduled => format!("state = 0 AND not_before > {now_param}"),
        JobState::Running => "state = 1".to_owned(),
        JobState::Succeeded => "state = 2".to_owned(),
        JobState::Dead => "state = 3".to_owned(),
        JobState::Cancelled => "state = 4".to_owned(),
        JobState::Waiting => "state = 5".to_owned(),
    }
}
