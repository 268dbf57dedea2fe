//! The `Broker` trait: the one interface both backends (SQLite, Redis) implement.
//!
//! Concurrency contract: a broker is shared by many threads and processes at once (`Send + Sync`,
//! and several processes may open the same SQLite file or Redis). Every method is one atomic step
//! on the backend (a transaction or a Lua script): a crash between two calls loses nothing, and
//! no interleaving of calls from different workers hands one job to two live leases.
//! Methods take batches where a worker's hot path needs them (enqueue, lease, renew, finish), so
//! a backend can do one round trip for many jobs.

use std::time::Duration;

use crate::error::QueueError;
use crate::job::QueueCounters;
use crate::job::{
    Enqueued, Finished, JobId, JobInfo, JobState, Leased, LockInfo, NewJob, QueueName, QueueStats,
    QueueWeight, RateDecision, RateLimit, Timestamp, WorkerId, WorkerInfo, Workflow, WorkflowId,
};

/// Result of broker operations.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// What `list` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this queue.
    pub queue: Option<QueueName>,
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// At most this many, oldest first (0: a backend default of 100).
    pub limit: usize,
}

/// A lease request from a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest<'a> {
    /// Who asks; leases are recorded under this id.
    pub worker: &'a WorkerId,
    /// The queues to poll, with weights for fair polling.
    pub queues: &'a [QueueWeight],
    /// At most this many jobs.
    pub max: usize,
    /// The lease length; the worker renews well before it ends.
    pub lease_for: Duration,
}

/// A queue backend. See the module docs for the concurrency contract.
///
/// Semantics every backend has (tested against both by the conformance suite):
/// - At-least-once: a leased job whose lease ends (not renewed, worker dead) becomes ready again
///   and counts one lost lease; after 3 lost leases it goes to the dead-letter queue (poison
///   guard). `release_worker` ends a dead worker's leases at once with the same effect.
/// - A job is never leased while another live lease on it exists, and never before `not_before`.
/// - `finish` from a worker whose lease is gone (expired and re-leased) is ignored for that job,
///   so a slow zombie cannot overwrite the new run's outcome.
/// - Idempotency keys deduplicate `enqueue`.
pub trait Broker: Send + Sync {
    /// Adds jobs; with an idempotency key that exists, returns the existing id instead.
    fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>>;

    /// Adds a workflow; its first jobs become ready, the rest wait for their turn.
    fn enqueue_workflow(&self, workflow: &Workflow) -> Result<(WorkflowId, Vec<JobId>)>;

    /// Leases up to `max` ready jobs (due scheduled jobs and expired leases are made ready first),
    /// choosing queues by weighted fair polling.
    fn lease(&self, req: &LeaseRequest<'_>) -> Result<Vec<Leased>>;

    /// Blocks up to `timeout` until an enqueue into one of `queues` signals new work, so an
    /// idle worker picks it up at once without polling. Returns `Ok(false)` at once when the
    /// backend has no such signal (the worker then polls); `Ok(true)` after a signal or the
    /// timeout (either way the caller leases next). Jobs that become ready later (delays,
    /// retries, workflow steps) send no signal: the timeout is their poll interval.
    fn wait_for_work(&self, queues: &[QueueWeight], timeout: Duration) -> Result<bool> {
        let _ = (queues, timeout);
        Ok(false)
    }

    /// Extends the leases `worker` holds on `jobs`; returns the jobs whose lease was lost (they
    /// must be abandoned: another worker may run them now).
    fn renew(&self, worker: &WorkerId, jobs: &[JobId], lease_for: Duration) -> Result<Vec<JobId>>;

    /// Records finished runs: results, retries (scheduled at `retry_at`), dead letters, and the
    /// workflow steps they unlock. Runs whose lease `worker` no longer holds are ignored.
    fn finish(&self, worker: &WorkerId, done: &[Finished]) -> Result<()>;

    /// Gives back leased jobs unfinished without counting a failure (graceful shutdown).
    fn release(&self, worker: &WorkerId, jobs: &[JobId]) -> Result<usize>;

    /// Ends every lease of a worker known to be dead, as if they had expired now (a supervisor
    /// calls this after a SIGKILL, so the jobs run elsewhere at once). Returns how many.
    fn release_worker(&self, worker: &WorkerId) -> Result<usize>;

    /// Records a worker's heartbeat.
    fn heartbeat(&self, info: &WorkerInfo) -> Result<()>;

    /// Workers that beat recently (within `max_age`), with their last beat.
    fn workers(&self, max_age: Duration) -> Result<Vec<WorkerInfo>>;

    /// Forgets a worker (on clean exit).
    fn remove_worker(&self, worker: &WorkerId) -> Result<()>;

    /// Counts per queue (every queue that has or had jobs).
    fn stats(&self) -> Result<Vec<QueueStats>>;

    /// Totals per queue (enqueued, started, succeeded, failed, retried, dead, lease
    /// expirations) for metrics. A backend that does not count returns an empty list.
    fn counters(&self) -> Result<Vec<QueueCounters>> {
        Ok(Vec::new())
    }

    /// Jobs matching a filter.
    fn list(&self, filter: &ListFilter) -> Result<Vec<JobInfo>>;

    /// One job, with its result when it succeeded within the result TTL.
    fn get(&self, id: JobId) -> Result<Option<JobInfo>>;

    /// Makes dead jobs ready again with fresh attempts (all dead jobs of `queue`, or of every
    /// queue, when `ids` is empty). Returns how many.
    fn retry_dead(&self, queue: Option<&QueueName>, ids: &[JobId]) -> Result<usize>;

    /// Deletes jobs in `state` (of `queue`, or every queue). Running jobs cannot be purged.
    fn purge(&self, queue: Option<&QueueName>, state: JobState) -> Result<usize>;

    /// Cancels a job that has not finished: a waiting one is never run; a running one is marked
    /// so its worker's `renew` reports it lost and its result is dropped. False if already done.
    fn cancel(&self, id: JobId) -> Result<bool>;

    /// Cancels every unfinished job of a workflow. Returns how many.
    fn cancel_workflow(&self, id: WorkflowId) -> Result<usize>;

    /// Deletes results and finished jobs older than the result TTL. Returns how many.
    fn expire_results(&self, ttl: Duration) -> Result<usize>;

    /// Takes one token from the shared bucket `key`, or says how long to wait.
    fn take_token(&self, key: &str, limit: RateLimit) -> Result<RateDecision>;

    /// Takes the named lock for `ttl` if it is free or expired (or already `owner`'s). True when
    /// `owner` holds it afterwards.
    fn lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool>;

    /// Extends a lock `owner` holds; false if it is no longer theirs.
    fn extend_lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool>;

    /// Releases a lock `owner` holds; false if it was not theirs.
    fn unlock(&self, name: &str, owner: &str) -> Result<bool>;

    /// Locks currently held.
    fn locks(&self) -> Result<Vec<LockInfo>>;

    /// The broker's clock (all its times come from here).
    fn now(&self) -> Timestamp;

    /// Checks the backend answers (used by `/ready` and the worker's degraded state).
    fn ping(&self) -> Result<()>;
}
