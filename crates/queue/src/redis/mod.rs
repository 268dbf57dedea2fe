//! The Redis backend: Redis Streams with a consumer group for ready jobs, sorted sets for
//! scheduled jobs and lease deadlines, hashes for job records, and one Lua script per atomic
//! step. Runs on a single Redis or a Redis Cluster.
//!
//! # Key layout
//!
//! Every key starts with the namespace prefix `P` (default `sadomap`). The part in braces is
//! the hash tag: every script touches keys of exactly one tag, so of one cluster slot.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{q:NAME}:ready` | stream, group `workers` | one entry (`id`, `t` = ready time) per ready job; workers read it with `XREADGROUP … NOACK` (the lease is the `leases` sorted set, timed by the client's clock, not the PEL), and the lease script trims delivered entries (`XTRIM MINID ~`) |
//! | `P:{q:NAME}:job:ID` | hash | the job record: `task payload st att lost mr enq nb ra w lu e err res fin ik wf wi` |
//! | `P:{q:NAME}:sched` | sorted set | scheduled jobs (delays, ETAs, retry backoff) by `not_before` |
//! | `P:{q:NAME}:leases` | sorted set | running jobs by lease deadline |
//! | `P:{q:NAME}:dead` / `:done` / `:cancelled` / `:waiting` | sorted sets | dead letters, succeeded and cancelled jobs (by end time), workflow steps waiting for an earlier one |
//! | `P:{q:NAME}:outbox` | sorted set | workflow members that ended and whose effect on the workflow is being propagated |
//! | `P:{q:NAME}:seq` | counter | job sequence of the queue |
//! | `P:{q:NAME}:counts` | hash | totals for metrics (enqueued, started, succeeded, …) |
//! | `P:{q:NAME}:wake` | list | up to 16 tokens the enqueue script pushes for idle workers blocked in `BLPOP` |
//! | `P:{meta}:queues` / `:qnums` / `:qseq` / `:wfseq` | hashes, counters | queue name <-> number (1..65535), workflow ids |
//! | `P:{wf:ID}` | hash | a workflow: `kind n j:I cb`, chord results `r:I`, `done` |
//! | `P:{idem}:keys` | hash | idempotency key -> job id (or `p|token|until` while an enqueue is in flight) |
//! | `P:{locks}` | hash | lock name -> `until|owner` |
//! | `P:{rate:KEY}` | hash | a token bucket: `tokens ts` |
//! | `P:{workers}:info` / `:beats` | hash, sorted set | heartbeats |
//!
//! A job id is `seq * 65536 + queue number`, so an id names its queue and hence its slot:
//! `renew`, `finish`, `get` and `cancel` need no lookup beyond the (cached) queue registry.
//!
//! # Concurrency contract
//!
//! A `RedisBroker` is shared by any number of threads (a pool of sync connections, one per
//! concurrent call) and processes on any number of machines. Each step on one queue is one Lua
//! script, so it is atomic: a job is leased by one worker at a time, and a finish from a worker
//! that lost its lease is ignored. Time always comes from the broker's [`Clock`] and is passed
//! to scripts as an argument (never Redis `TIME`), so injected clocks work and all machines
//! must keep their clocks in step (NTP). Steps that span slots are split into idempotent
//! single-slot scripts run in order:
//! - idempotency keys are claimed in `{idem}` before the enqueue and filled in after it (a
//!   claim holds for 5 s; a concurrent enqueue of the same key waits for it); workflow members
//!   ignore idempotency keys;
//! - a workflow member's end is written to its queue's outbox by the script that ends it, then
//!   propagated (next chain step, chord results in `{wf:ID}`, callback); an outbox entry left
//!   by a client that died is picked up by the next `lease` of that queue after 10 s;
//! - `expire_results` and `purge` delete jobs, then forget their idempotency keys and the
//!   records of workflows with no job left.
//!
//! The scripts are the `*.lua` files beside this module (each per-queue one prefixed with
//! `lib.lua`), loaded on every new connection and run with `EVALSHA`.
//!
//! Connection trouble maps to [`QueueError::Unavailable`]: the call did not happen or its
//! effect is unknown, and the caller retries later. Pooled connections are dropped on the first
//! network error, and the consumer group is recreated (`MKSTREAM`) by the next lease after
//! Redis lost its data.

mod admin;
mod conn;
mod coord;
mod jobs;
mod keys;
mod workflow;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::broker::{Broker, LeaseRequest, ListFilter, Result};
use crate::clock::Clock;
use crate::job::{
    Enqueued, Finished, JobId, JobInfo, JobState, Leased, LockInfo, NewJob, QueueName, QueueStats,
    QueueWeight, RateDecision, RateLimit, Timestamp, WorkerId, WorkerInfo, Workflow, WorkflowId,
};
use conn::Pool;
use keys::{Keys, Registry};

/// The Redis backend. Cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    keys: Keys,
    clock: Arc<dyn Clock>,
    registry: Registry,
    /// Smooth weighted round robin state per queue (see `jobs::fair_allocation`).
    fairness: Mutex<std::collections::HashMap<QueueName, i64>>,
    /// Tokens naming this broker's idempotency claims.
    token_base: String,
    token_seq: AtomicU64,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl RedisBroker {
    /// A broker on the Redis at `url` (`redis://host:port/db`) with the key prefix `sadomap`.
    /// Several URLs separated by commas are seed nodes of a Redis Cluster (there, batches go
    /// one command per round trip, each to its slot's node).
    /// Connects lazily: opening succeeds while Redis is down, and calls fail with
    /// [`QueueError::Unavailable`](crate::QueueError::Unavailable) until it is back.
    pub fn open(url: &str, clock: Arc<dyn Clock>) -> Result<RedisBroker> {
        RedisBroker::open_with_prefix(url, "sadomap", clock)
    }

    /// A broker whose keys all start with `prefix` (letters, digits, `_ - . :`), so several
    /// deployments or tests share one Redis without seeing each other.
    pub fn open_with_prefix(url: &str, prefix: &str, clock: Arc<dyn Clock>) -> Result<RedisBroker> {
        let keys = Keys::new(prefix)?;
        let pool = Pool::open(url)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(RedisBroker {
            inner: Arc::new(Inner {
                pool,
                keys,
                clock,
                registry: Registry::default(),
                fairness: Mutex::new(Default::default()),
                token_base: format!("{}-{nanos:x}", std::process::id()),
                token_seq: AtomicU64::new(0),
            }),
        })
    }
}

impl Inner {
    /// `BLPOP` on the queues' `wake` lists. On a cluster the keys of one `BLPOP` must share a
    /// slot, so it waits on the heaviest queue only (the others are seen at the timeout).
    fn wait_for_work(&self, queues: &[QueueWeight], timeout: Duration) -> Result<bool> {
        let mut keys: Vec<String> = if self.pool.is_cluster() {
            queues
                .iter()
                .max_by_key(|q| q.weight)
                .map(|q| vec![self.keys.queue_key(q.queue.as_str(), "wake")])
                .unwrap_or_default()
        } else {
            queues
                .iter()
                .map(|q| self.keys.queue_key(q.queue.as_str(), "wake"))
                .collect()
        };
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(false);
        }
        // Redis takes fractional seconds; 0 would block forever.
        let secs = timeout.as_secs_f64().clamp(0.001, 5.0);
        let mut conn = self.pool.get()?;
        conn.query::<Option<(String, String)>>(redis::cmd("BLPOP").arg(&keys).arg(secs))?;
        Ok(true)
    }

    fn token(&self) -> String {
        let n = self.token_seq.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.token_base)
    }
}

impl Broker for RedisBroker {
    fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
        self.inner.enqueue(jobs)
    }

    fn enqueue_workflow(&self, workflow: &Workflow) -> Result<(WorkflowId, Vec<JobId>)> {
        self.inner.enqueue_workflow(workflow)
    }

    fn lease(&self, req: &LeaseRequest<'_>) -> Result<Vec<Leased>> {
        self.inner.lease(req)
    }

    fn wait_for_work(&self, queues: &[QueueWeight], timeout: Duration) -> Result<bool> {
        self.inner.wait_for_work(queues, timeout)
    }

    fn renew(&self, worker: &WorkerId, jobs: &[JobId], lease_for: Duration) -> Result<Vec<JobId>> {
        self.inner.renew(worker, jobs, lease_for)
    }

    fn finish(&self, worker: &WorkerId, done: &[Finished]) -> Result<()> {
        self.inner.finish(worker, done)
    }

    fn release(&self, worker: &WorkerId, jobs: &[JobId]) -> Result<usize> {
        self.inner.release(worker, jobs)
    }

    fn release_worker(&self, worker: &WorkerId) -> Result<usize> {
        self.inner.release_worker(worker)
    }

    fn heartbeat(&self, info: &WorkerInfo) -> Result<()> {
        self.inner.heartbeat(info)
    }

    fn workers(&self, max_age: Duration) -> Result<Vec<WorkerInfo>> {
        self.inner.workers(max_age)
    }

    fn remove_worker(&self, worker: &WorkerId) -> Result<()> {
        self.inner.remove_worker(worker)
    }

    fn stats(&self) -> Result<Vec<QueueStats>> {
        self.inner.stats()
    }

    fn counters(&self) -> Result<Vec<crate::job::QueueCounters>> {
        self.inner.counters()
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<JobInfo>> {
        self.inner.list(filter)
    }

    fn get(&self, id: JobId) -> Result<Option<JobInfo>> {
        self.inner.get(id)
    }

    fn retry_dead(&self, queue: Option<&QueueName>, ids: &[JobId]) -> Result<usize> {
        self.inner.retry_dead(queue, ids)
    }

    fn purge(&self, queue: Option<&QueueName>, state: JobState) -> Result<usize> {
        self.inner.purge(queue, state)
    }

    fn cancel(&self, id: JobId) -> Result<bool> {
        self.inner.cancel(id)
    }

    fn cancel_workflow(&self, id: WorkflowId) -> Result<usize> {
        self.inner.cancel_workflow(id)
    }

    fn expire_results(&self, ttl: Duration) -> Result<usize> {
        self.inner.expire_results(ttl)
    }

    fn take_token(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        self.inner.take_token(key, limit)
    }

    fn lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        self.inner.lock_op("lock", name, owner, ttl)
    }

    fn extend_lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        self.inner.lock_op("extend", name, owner, ttl)
    }

    fn unlock(&self, name: &str, owner: &str) -> Result<bool> {
        self.inner.lock_op("unlock", name, owner, Duration::ZERO)
    }

    fn locks(&self) -> Result<Vec<LockInfo>> {
        self.inner.locks()
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn ping(&self) -> Result<()> {
        let mut conn = self.inner.pool.get()?;
        conn.query::<()>(&redis::cmd("PING"))
    }
}
