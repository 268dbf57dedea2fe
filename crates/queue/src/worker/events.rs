//! Telemetry as events: one value per occurrence in a worker. [`WorkerEvent::emit`] writes the
//! log line and updates the worker's metrics in one `match`, so the two never disagree.
//!
//! Concurrency: emitting only touches atomics and the `tracing` subscriber; any thread may emit.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::health::WorkerMetrics;
use crate::job::{JobId, Leased, Timestamp, WorkerId};

/// Something that happened in a worker.
#[derive(Debug)]
pub(crate) enum WorkerEvent<'a> {
    /// A run started, `latency` after its job became ready.
    Started { job: &'a Leased, latency: Duration },
    /// A run succeeded.
    Succeeded { job: &'a Leased, took: Duration },
    /// A run failed and the job will run again at `retry_at`.
    Retried {
        job: &'a Leased,
        error: &'a str,
        retry_at: Timestamp,
    },
    /// A run failed for good (bad input, unknown task, retries used up): dead letter.
    DeadLettered { job: &'a Leased, reason: &'a str },
    /// The broker reported a lease lost (cancelled or expired): the job is abandoned.
    LeaseLost { job: JobId },
    /// Jobs given back unfinished at shutdown.
    Released { jobs: usize },
}

impl WorkerEvent<'_> {
    /// Logs the event and counts it.
    pub(crate) fn emit(&self, worker: &WorkerId, m: &WorkerMetrics) {
        let add = |c: &std::sync::atomic::AtomicU64, n: u64| c.fetch_add(n, Ordering::Relaxed);
        match self {
            WorkerEvent::Started { job, latency } => {
                add(&m.started, 1);
                m.observe_latency(*latency);
                tracing::debug!(%worker, job = %job.id, task = %job.task, attempt = job.attempt,
                    latency_ms = latency.as_millis() as u64, "job started");
            }
            WorkerEvent::Succeeded { job, took } => {
                add(&m.succeeded, 1);
                tracing::debug!(%worker, job = %job.id, task = %job.task,
                    took_ms = took.as_millis() as u64, "job succeeded");
            }
            WorkerEvent::Retried {
                job,
                error,
                retry_at,
            } => {
                add(&m.failed, 1);
                add(&m.retried, 1);
                tracing::info!(%worker, job = %job.id, task = %job.task, attempt = job.attempt,
                    %error, retry_at = retry_at.0, "job failed; retrying");
            }
            WorkerEvent::DeadLettered { job, reason } => {
                add(&m.failed, 1);
                add(&m.dead, 1);
                tracing::warn!(%worker, job = %job.id, task = %job.task, attempt = job.attempt,
                    %reason, "job dead-lettered");
            }
            WorkerEvent::LeaseLost { job } => {
                add(&m.leases_lost, 1);
                tracing::warn!(%worker, %job, "lease lost (cancelled or expired); job abandoned");
            }
            WorkerEvent::Released { jobs } => {
                add(&m.released, *jobs as u64);
                tracing::info!(%worker, jobs, "jobs given back unfinished");
            }
        }
    }
}
