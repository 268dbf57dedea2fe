//! sadomap's task system: a general queue that knows nothing of places.
//!
//! A [`Broker`] stores jobs (SQLite embedded by default, Redis Streams for several machines);
//! workers lease jobs, renew their leases while tasks run, and report outcomes; failed jobs are
//! retried with backoff and end in a dead-letter queue; workflows chain jobs; named locks and
//! shared token buckets coordinate instances.
//!
//! The pieces: [`Broker`] (the trait both backends implement: [`SqliteBroker`],
//! [`RedisBroker`]; [`FlakyBroker`] wraps either to inject outages), the job types ([`NewJob`],
//! [`Leased`], [`Finished`], [`Workflow`]), the [`Worker`] runtime with its [`Registry`] of task
//! types and [`WorkerHealth`], the cron [`Scheduler`], and [`render_metrics`] (Prometheus text).
//!
//! One job's life by hand, on an in-memory SQLite broker (a [`Worker`] does the same in a loop,
//! renewing leases while tasks run):
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use sadomap_queue::{
//!     Broker, Finished, JobState, LeaseRequest, NewJob, Outcome, QueueName, QueueWeight,
//!     SqliteBroker, SystemClock, TaskName, WorkerId,
//! };
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = SqliteBroker::open_in_memory(Arc::new(SystemClock))?;
//! let queue = QueueName::new("normal")?;
//! let job = NewJob::new(TaskName::new("noop")?, json!({ "n": 1 }), queue.clone());
//! let id = broker.enqueue(&[job])?[0].id;
//!
//! let worker = WorkerId::new("w1")?;
//! let leased = broker.lease(&LeaseRequest {
//!     worker: &worker,
//!     queues: &[QueueWeight { queue, weight: 1 }],
//!     max: 10,
//!     lease_for: Duration::from_secs(10),
//! })?;
//! assert_eq!((leased.len(), leased[0].id, leased[0].attempt), (1, id, 1));
//!
//! let outcome = Outcome::Succeeded(json!({ "ok": true }));
//! broker.finish(&worker, &[Finished { id, outcome }])?;
//! let info = broker.get(id)?.ok_or("the job is gone")?;
//! assert_eq!(info.state, JobState::Succeeded);
//! assert_eq!(info.result, Some(json!({ "ok": true })));
//! # Ok(())
//! # }
//! ```
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
    WorkerId, WorkerInfo, WorkerStatus, Workflow, WorkflowId,
};
pub use metrics::{render_metrics, render_worker_metrics};
pub use redis::RedisBroker;
pub use shutdown::Shutdown;
pub use sqlite::{SqliteBroker, SqliteConfig};
pub use worker::{
    decode_payload, Handler, JobContext, LatencySummary, Registry, SharedRate, TaskEntry,
    TaskError, TaskPolicy, Worker, WorkerConfig, WorkerError, WorkerHealth, WorkerMetrics,
    WorkerReport, WorkerState, LATENCY_BUCKETS_MS,
};
