//! sadomap's task system: a general queue that knows nothing of places.
//!
//! A [`Broker`] stores jobs (SQLite embedded by default, Redis Streams for several machines);
//! workers lease jobs, renew their leases while tasks run, and report outcomes; failed jobs are
//! retried with backoff and end in a dead-letter queue; workflows chain jobs; named locks and
//! shared token buckets coordinate instances.
#![deny(missing_docs)]

mod broker;
mod clock;
mod error;
mod job;

pub use broker::{Broker, LeaseRequest, ListFilter, Result};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::QueueError;
pub use job::{
    default_queues, Enqueued, Finished, JobId, JobInfo, JobState, Leased, LockInfo, NewJob,
    Outcome, QueueName, QueueStats, QueueWeight, RateDecision, RateLimit, TaskName, Timestamp,
    WorkerId, WorkerInfo, Workflow, WorkflowId,
};
