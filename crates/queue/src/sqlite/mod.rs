//! The embedded backend: one SQLite file in WAL mode that several worker processes of one machine
//! share.
//!
//! Concurrency contract: every write is one `BEGIN IMMEDIATE` transaction, so SQLite's write lock
//! serialises the steps of all processes (others wait up to the busy timeout, then get a
//! transient `Unavailable`); a crash in the middle of a step rolls it back. Within a process the
//! one connection sits behind a mutex (SQLite serialises writers anyway). Lease polling first
//! probes the ready index with a plain read, which WAL lets run beside a writer, and only takes
//! the write lock when there is something to lease or reclaim. Every time comes from the injected
//! [`Clock`], never from SQLite.

mod admin;
mod jobs;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::broker::{Broker, LeaseRequest, ListFilter, Result};
use crate::clock::Clock;
use crate::error::QueueError;
use crate::job::{
    Enqueued, Finished, JobId, JobInfo, JobState, Leased, LockInfo, NewJob, QueueCounters,
    QueueName, QueueStats, RateDecision, RateLimit, Timestamp, WorkerId, WorkerInfo, Workflow,
    WorkflowId,
};
use crate::shutdown::Shutdown;

/// Settings of the SQLite backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// How long a step waits for another process's write transaction before failing with a
    /// transient `Unavailable` (default 5 s).
    pub busy_timeout: Duration,
    /// Results of succeeded jobs are returned by `get` for this long (default 24 h);
    /// `expire_results` deletes older ones.
    pub result_ttl: Duration,
}

impl Default for SqliteConfig {
    fn default() -> SqliteConfig {
        SqliteConfig {
            busy_timeout: Duration::from_secs(5),
            result_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// A [`Broker`] on one SQLite file (see the module docs for the concurrency contract).
#[derive(Debug)]
pub struct SqliteBroker {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    config: SqliteConfig,
    path: Option<PathBuf>,
    /// Smooth weighted round-robin state per queue, for fair polling across lease calls.
    fairness: Mutex<HashMap<QueueName, i64>>,
    /// Stops the checkpoint thread when the broker is dropped.
    checkpointer: Option<Shutdown>,
}

impl Drop for SqliteBroker {
    fn drop(&mut self) {
        if let Some(stop) = &self.checkpointer {
            stop.trigger();
        }
    }
}

/// How often the background thread checkpoints the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies the WAL into the database from a connection of its own, so the fsync this needs never
/// stalls a lease or a finish (SQLite would otherwise run it inside whichever commit crossed
/// the auto-checkpoint size). Several processes may each run one: a busy checkpoint is skipped.
fn spawn_checkpointer(path: &Path) -> Result<Shutdown> {
    let conn = Connection::open(path).map_err(db_err("opening the checkpoint connection"))?;
    let stop = Shutdown::new();
    let s = stop.clone();
    std::thread::Builder::new()
        .name("queue-checkpoint".into())
        .spawn(move || {
            while !s.wait_timeout(CHECKPOINT_EVERY) {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "WAL checkpoint skipped");
                }
            }
        })
        .map_err(|e| QueueError::Backend {
            message: format!("cannot start the checkpoint thread: {e}"),
        })?;
    Ok(stop)
}

impl SqliteBroker {
    /// Opens (creating when missing) the queue file at `path` with default settings.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<SqliteBroker> {
        SqliteBroker::open_with(path, clock, SqliteConfig::default())
    }

    /// Opens the queue file at `path`.
    pub fn open_with(
        path: &Path,
        clock: Arc<dyn Clock>,
        config: SqliteConfig,
    ) -> Result<SqliteBroker> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| QueueError::Unavailable {
                message: format!("cannot open queue file {}: {e}", path.display()),
            })?;
        let mut broker = SqliteBroker::setup(conn, clock, config, Some(path.to_owned()))?;
        broker.checkpointer = Some(spawn_checkpointer(path)?);
        Ok(broker)
    }

    /// A private in-memory queue (tests, one process only).
    pub fn open_in_memory(clock: Arc<dyn Clock>) -> Result<SqliteBroker> {
        let conn = Connection::open_in_memory().map_err(db_err("opening an in-memory queue"))?;
        SqliteBroker::setup(conn, clock, SqliteConfig::default(), None)
    }

    /// The queue file, when not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn setup(
        mut conn: Connection,
        clock: Arc<dyn Clock>,
        config: SqliteConfig,
        path: Option<PathBuf>,
    ) -> Result<SqliteBroker> {
        conn.busy_timeout(config.busy_timeout)
            .map_err(db_err("setting the busy timeout"))?;
        if path.is_some() {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(db_err("switching to WAL"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(QueueError::Backend {
                    message: format!("the queue file cannot use WAL (journal mode stays {mode})"),
                });
            }
        }
        // NORMAL in WAL mode survives process crashes (SIGKILL); only an OS crash may lose the
        // last commits, which at-least-once delivery tolerates for enqueues of a dead machine.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; \
             PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 16777216;",
        )
        .map_err(db_err("tuning the connection"))?;
        conn.set_prepared_statement_cache_capacity(64);
        {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err("starting the schema setup"))?;
            tx.execute_batch(schema::SCHEMA)
                .map_err(db_err("creating the queue tables"))?;
            let found: Option<i64> = tx
                .query_row("SELECT value FROM meta WHERE key = 'version'", [], |r| {
                    r.get(0)
                })
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(db_err("reading the schema version"))?;
            match found {
                Some(v) if v > schema::VERSION => {
                    return Err(QueueError::Corrupt {
                        message: format!(
                            "the queue file has schema version {v}, newer than this program's {}; \
                             upgrade sadomap",
                            schema::VERSION
                        ),
                    })
                }
                Some(1) => {
                    tx.execute_batch(schema::MIGRATE_1_TO_2)
                        .map_err(db_err("upgrading the queue file to schema version 2"))?;
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES ('version', ?1)",
                        [schema::VERSION],
                    )
                    .map_err(db_err("recording the schema version"))?;
                }
            }
            tx.commit().map_err(db_err("committing the schema setup"))?;
        }
        Ok(SqliteBroker {
            conn: Mutex::new(conn),
            clock,
            config,
            path,
            fairness: Mutex::new(HashMap::new()),
            checkpointer: None,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection leaves no open transaction (it rolls back on
        // drop), so the connection stays usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it.
    ///
    /// Waiting for the write lock happens here, in sleeps of 20 µs growing to 500 µs, instead of
    /// in SQLite's busy handler, whose sleeps grow to 100 ms: transactions last well under a
    /// millisecond, so a short poll hands the lock on sooner and keeps latency low.
    fn write<T>(&self, what: &'static str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn();
        let start = Instant::now();
        let mut pause = Duration::from_micros(20);
        conn.busy_timeout(Duration::ZERO).map_err(db_err(what))?;
        let began = loop {
            match conn.execute_batch("BEGIN IMMEDIATE") {
                Err(e)
                    if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && start.elapsed() < self.config.busy_timeout =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_micros(500));
                }
                other => break other,
            }
        };
        // Statements inside the transaction, and reads, keep SQLite's own busy timeout.
        conn.busy_timeout(self.config.busy_timeout)
            .map_err(db_err(what))?;
        began.map_err(db_err(what))?;
        let mut guard = RollbackGuard {
            conn: &conn,
            committed: false,
        };
        let out = f(&conn)?;
        conn.execute_batch("COMMIT").map_err(db_err(what))?;
        guard.committed = true;
        Ok(out)
    }

    fn now_ms(&self) -> u64 {
        self.clock.now().0
    }
}

/// Rolls back an open transaction unless it was committed (an error or a panic in between).
struct RollbackGuard<'a> {
    conn: &'a Connection,
    committed: bool,
}

impl Drop for RollbackGuard<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Maps a SQLite error to a queue error: lock timeouts and I/O trouble are transient.
pub(crate) fn db_err(what: &'static str) -> impl Fn(rusqlite::Error) -> QueueError {
    move |e| {
        let transient = matches!(
            e.sqlite_error_code(),
            Some(
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
                    | ErrorCode::FileLockingProtocolFailed
            )
        );
        let message = format!("{what}: {e}");
        if transient {
            QueueError::Unavailable { message }
        } else {
            QueueError::Backend { message }
        }
    }
}

/// Converts a u64 time or count to SQLite's i64 (saturating: times beyond year 292 million).
pub(super) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Converts a stored integer back (negative values, which this code never writes, read as 0).
pub(super) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Counter increments gathered during one transaction, written once per queue at the end
/// (columns: enqueued, started, succeeded, failed, retried, dead, lease_expired).
#[derive(Debug, Default)]
pub(super) struct Tally(HashMap<String, [u64; 7]>);

impl Tally {
    pub(super) fn add(&mut self, queue: &str, column: usize, n: u64) {
        match self.0.get_mut(queue) {
            Some(c) => c[column] += n,
            None => {
                let mut c = [0; 7];
                c[column] = n;
                self.0.insert(queue.to_owned(), c);
            }
        }
    }

    pub(super) fn flush(self, tx: &Connection) -> Result<()> {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO counters (queue, enqueued, started, succeeded, failed, retried, dead, \
                 lease_expired) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued, \
                 started = started + excluded.started, succeeded = succeeded + excluded.succeeded, \
                 failed = failed + excluded.failed, retried = retried + excluded.retried, \
                 dead = dead + excluded.dead, lease_expired = lease_expired + excluded.lease_expired",
            )
            .map_err(db_err("preparing the counter update"))?;
        for (queue, c) in self.0 {
            stmt.execute(rusqlite::params![
                queue,
                i(c[0]),
                i(c[1]),
                i(c[2]),
                i(c[3]),
                i(c[4]),
                i(c[5]),
                i(c[6])
            ])
            .map_err(db_err("updating counters"))?;
        }
        Ok(())
    }
}

impl Broker for SqliteBroker {
    fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
        let now = self.now_ms();
        self.write("enqueueing jobs", |tx| jobs::enqueue(tx, jobs, now))
    }

    fn enqueue_workflow(&self, workflow: &Workflow) -> Result<(WorkflowId, Vec<JobId>)> {
        let now = self.now_ms();
        self.write("enqueueing a workflow", |tx| {
            jobs::enqueue_workflow(tx, workflow, now)
        })
    }

    fn lease(&self, req: &LeaseRequest<'_>) -> Result<Vec<Leased>> {
        jobs::lease(self, req)
    }

    fn renew(&self, worker: &WorkerId, ids: &[JobId], lease_for: Duration) -> Result<Vec<JobId>> {
        let until = self.clock.now().after(lease_for).0;
        self.write("renewing leases", |tx| jobs::renew(tx, worker, ids, until))
    }

    fn finish(&self, worker: &WorkerId, done: &[Finished]) -> Result<()> {
        let now = self.now_ms();
        self.write("recording finished jobs", |tx| {
            jobs::finish(tx, worker, done, now)
        })
    }

    fn release(&self, worker: &WorkerId, ids: &[JobId]) -> Result<usize> {
        self.write("releasing jobs", |tx| jobs::release(tx, worker, ids))
    }

    fn release_worker(&self, worker: &WorkerId) -> Result<usize> {
        let now = self.now_ms();
        self.write("releasing a dead worker's jobs", |tx| {
            jobs::reclaim(tx, now, Some(worker)).map(|r| r.len())
        })
    }

    fn heartbeat(&self, info: &WorkerInfo) -> Result<()> {
        let now = self.now_ms();
        self.write("recording a heartbeat", |tx| {
            admin::heartbeat(tx, info, now)
        })
    }

    fn workers(&self, max_age: Duration) -> Result<Vec<WorkerInfo>> {
        let since = self.now_ms().saturating_sub(max_age.as_millis() as u64);
        admin::workers(&self.conn(), since)
    }

    fn remove_worker(&self, worker: &WorkerId) -> Result<()> {
        self.write("removing a worker", |tx| {
            tx.execute("DELETE FROM workers WHERE id = ?1", [worker.as_str()])
                .map(|_| ())
                .map_err(db_err("removing a worker"))
        })
    }

    fn stats(&self) -> Result<Vec<QueueStats>> {
        admin::stats(&self.conn(), self.now_ms())
    }

    fn counters(&self) -> Result<Vec<QueueCounters>> {
        admin::counters(&self.conn())
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<JobInfo>> {
        admin::list(&self.conn(), filter, self.now_ms(), self.config.result_ttl)
    }

    fn get(&self, id: JobId) -> Result<Option<JobInfo>> {
        admin::get(&self.conn(), id, self.now_ms(), self.config.result_ttl)
    }

    fn retry_dead(&self, queue: Option<&QueueName>, ids: &[JobId]) -> Result<usize> {
        let now = self.now_ms();
        self.write("retrying dead jobs", |tx| {
            admin::retry_dead(tx, queue, ids, now)
        })
    }

    fn purge(&self, queue: Option<&QueueName>, state: JobState) -> Result<usize> {
        let now = self.now_ms();
        self.write("purging jobs", |tx| admin::purge(tx, queue, state, now))
    }

    fn cancel(&self, id: JobId) -> Result<bool> {
        let now = self.now_ms();
        self.write("cancelling a job", |tx| jobs::cancel(tx, id, now))
    }

    fn cancel_workflow(&self, id: WorkflowId) -> Result<usize> {
        let now = self.now_ms();
        self.write("cancelling a workflow", |tx| {
            jobs::cancel_rest(tx, i(id.0), now, "workflow cancelled")
        })
    }

    fn expire_results(&self, ttl: Duration) -> Result<usize> {
        let before = self.clock.now().0.saturating_sub(ttl.as_millis() as u64);
        self.write("expiring results", |tx| admin::expire(tx, before))
    }

    fn take_token(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        let now = self.now_ms();
        self.write("taking a rate-limit token", |tx| {
            admin::take_token(tx, key, limit, now)
        })
    }

    fn lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let now = self.clock.now();
        self.write("taking a lock", |tx| admin::lock(tx, name, owner, now, ttl))
    }

    fn extend_lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let until = self.clock.now().after(ttl);
        self.write("extending a lock", |tx| {
            tx.execute(
                "UPDATE locks SET until = ?3 WHERE name = ?1 AND owner = ?2",
                rusqlite::params![name, owner, i(until.0)],
            )
            .map(|n| n > 0)
            .map_err(db_err("extending a lock"))
        })
    }

    fn unlock(&self, name: &str, owner: &str) -> Result<bool> {
        self.write("releasing a lock", |tx| {
            tx.execute(
                "DELETE FROM locks WHERE name = ?1 AND owner = ?2",
                [name, owner],
            )
            .map(|n| n > 0)
            .map_err(db_err("releasing a lock"))
        })
    }

    fn locks(&self) -> Result<Vec<LockInfo>> {
        admin::locks(&self.conn(), self.now_ms())
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn ping(&self) -> Result<()> {
        self.conn()
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(db_err("pinging the queue file"))
    }
}
