//! A failure-injection point: a broker wrapper that can be switched "down", so tests (and
//! drills) see exactly what a worker does when its broker goes away and comes back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::broker::{Broker, LeaseRequest, ListFilter, Result};
use crate::error::QueueError;
use crate::job::{
    Enqueued, Finished, JobId, JobInfo, JobState, Leased, LockInfo, NewJob, QueueCounters,
    QueueName, QueueStats, QueueWeight, RateDecision, RateLimit, Timestamp, WorkerId, WorkerInfo,
    Workflow, WorkflowId,
};

/// Wraps a broker; while [`set_down`](FlakyBroker::set_down) is on, every call fails with a
/// transient [`QueueError::Unavailable`] (except `now`). While
/// [`set_jobs_down`](FlakyBroker::set_jobs_down) is on, only the job calls fail (enqueue, lease,
/// renew, finish, release, wait): a partial outage, as when the node holding a queue's slot of
/// a Redis Cluster is gone while heartbeats and admin calls still answer.
pub struct FlakyBroker {
    inner: Arc<dyn Broker>,
    down: AtomicBool,
    jobs_down: AtomicBool,
    refused: AtomicU64,
}

impl std::fmt::Debug for FlakyBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlakyBroker")
            .field("down", &self.down)
            .finish_non_exhaustive()
    }
}

impl FlakyBroker {
    /// Wraps `inner`, up.
    pub fn new(inner: Arc<dyn Broker>) -> FlakyBroker {
        FlakyBroker {
            inner,
            down: AtomicBool::new(false),
            jobs_down: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        }
    }

    /// Takes the broker down (true) or brings it back (false).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Fails the job calls only (true), or no longer (false).
    pub fn set_jobs_down(&self, down: bool) {
        self.jobs_down.store(down, Ordering::SeqCst);
    }

    /// Calls refused while down.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn jobs_up(&self) -> Result<&dyn Broker> {
        if self.jobs_down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable {
                message: "the queue's node is unreachable (injected failure)".into(),
            });
        }
        self.up()
    }

    fn up(&self) -> Result<&dyn Broker> {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            Err(QueueError::Unavailable {
                message: "connection refused (injected failure)".into(),
            })
        } else {
            Ok(&*self.inner)
        }
    }
}

impl Broker for FlakyBroker {
    fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
        self.jobs_up()?.enqueue(jobs)
    }
    fn enqueue_workflow(&self, workflow: &Workflow) -> Result<(WorkflowId, Vec<JobId>)> {
        self.up()?.enqueue_workflow(workflow)
    }
    fn lease(&self, req: &LeaseRequest<'_>) -> Result<Vec<Leased>> {
        self.jobs_up()?.lease(req)
    }
    fn wait_for_work(&self, queues: &[QueueWeight], timeout: Duration) -> Result<bool> {
        self.jobs_up()?.wait_for_work(queues, timeout)
    }
    fn renew(&self, worker: &WorkerId, jobs: &[JobId], lease_for: Duration) -> Result<Vec<JobId>> {
        self.jobs_up()?.renew(worker, jobs, lease_for)
    }
    fn finish(&self, worker: &WorkerId, done: &[Finished]) -> Result<()> {
        self.jobs_up()?.finish(worker, done)
    }
    fn release(&self, worker: &WorkerId, jobs: &[JobId]) -> Result<usize> {
        self.jobs_up()?.release(worker, jobs)
    }
    fn release_worker(&self, worker: &WorkerId) -> Result<usize> {
        self.up()?.release_worker(worker)
    }
    fn heartbeat(&self, info: &WorkerInfo) -> Result<()> {
        self.up()?.heartbeat(info)
    }
    fn workers(&self, max_age: Duration) -> Result<Vec<WorkerInfo>> {
        self.up()?.workers(max_age)
    }
    fn remove_worker(&self, worker: &WorkerId) -> Result<()> {
        self.up()?.remove_worker(worker)
    }
    fn stats(&self) -> Result<Vec<QueueStats>> {
        self.up()?.stats()
    }
    fn counters(&self) -> Result<Vec<QueueCounters>> {
        self.up()?.counters()
    }
    fn list(&self, filter: &ListFilter) -> Result<Vec<JobInfo>> {
        self.up()?.list(filter)
    }
    fn get(&self, id: JobId) -> Result<Option<JobInfo>> {
        self.up()?.get(id)
    }
    fn retry_dead(&self, queue: Option<&QueueName>, ids: &[JobId]) -> Result<usize> {
        self.up()?.retry_dead(queue, ids)
    }
    fn purge(&self, queue: Option<&QueueName>, state: JobState) -> Result<usize> {
        self.up()?.purge(queue, state)
    }
    fn cancel(&self, id: JobId) -> Result<bool> {
        self.up()?.cancel(id)
    }
    fn cancel_workflow(&self, id: WorkflowId) -> Result<usize> {
        self.up()?.cancel_workflow(id)
    }
    fn expire_results(&self, ttl: Duration) -> Result<usize> {
        self.up()?.expire_results(ttl)
    }
    fn take_token(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        self.up()?.take_token(key, limit)
    }
    fn lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        self.up()?.lock(name, owner, ttl)
    }
    fn extend_lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        self.up()?.extend_lock(name, owner, ttl)
    }
    fn unlock(&self, name: &str, owner: &str) -> Result<bool> {
        self.up()?.unlock(name, owner)
    }
    fn locks(&self) -> Result<Vec<LockInfo>> {
        self.up()?.locks()
    }
    fn now(&self) -> Timestamp {
        self.inner.now()
    }
    fn ping(&self) -> Result<()> {
        self.up()?.ping()
    }
}
