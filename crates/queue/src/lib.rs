//! sadomap's task system: a general queue that knows nothing of places.
//!
//! A [`Broker`] stores jobs (SQLite embedded by default, Redis Streams for several machines);
//! workers lease jobs, renew their leases while tasks run, and report outcomes; failed jobs are
//! retried with backoff and end in a dead-letter queue; workflows chain jobs; named locks and
//! shared token buckets coordinate instances.
#![deny(missing_docs)]

mod broker;
mod clock;
mod cron;
mod error;
mod flaky;
mod job;
mod metrics;
mod redis;
mod shutdown;
mod sqlite;
mod worker;

pub use broker::{Broker, LeaseRequest, ListFilter, Result};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cron::{CronError, CronExpr, Schedule, Scheduler, SchedulerConfig, LEADER_LOCK};
pub use error::QueueError;
pub use flaky::FlakyBroker;
pub use job::QueueCounters;
pub use job::{
    default_queues, Enqueued, Finished, JobId, JobInfo, JobState, Leased, LockInfo, NewJob,
    Outcome, QueueName, QueueStats, QueueWeight, RateDecision, RateLimit, TaskName, Timestamp,
    WorkerId, WorkerInfo, Workflow, WorkflowId,
};
pub use metrics::render_metrics;
pub use redis::RedisBroker;
pub use shutdown::Shutdown;
pub use sqlite::{SqliteBroker, SqliteConfig};
pub use worker::{
    decode_payload, Handler, JobContext, LatencySummary, Registry, SharedRate, TaskEntry,
    TaskError, TaskPolicy, Worker, WorkerConfig, WorkerError, WorkerHealth, WorkerMetrics,
    WorkerReport, WorkerState, LATENCY_BUCKETS_MS,
};
