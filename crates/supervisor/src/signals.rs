//! What the supervisor reads from, and asks of, the queue: through traits, so this crate does not
//! depend on a queue backend. `sadomap-queue`'s broker implements them when `sadomap up` wires things.
//!
//! Concurrency: implementations are called from the supervisor thread and must not block for long
//! (a slow backend should answer from a cached value).

use std::time::Duration;

/// Worker heartbeats, by worker id (the supervisor gives each worker instance its id in the
/// `SADOMAP_WORKER_ID` environment variable).
pub trait Heartbeats: Send + Sync {
    /// Age of the last heartbeat of `worker_id`, `None` if it never sent one.
    fn heartbeat_age(&self, worker_id: &str) -> Option<Duration>;
}

/// Load of one scaled service, read every scaling interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSample {
    /// Jobs waiting.
    pub depth: u64,
    /// Jobs enqueued per second over the last interval.
    pub arrivals_per_sec: f64,
    /// Mean service time of a job in seconds, if measured.
    pub mean_service_secs: Option<f64>,
}

/// Queue load signals.
pub trait LoadSignals: Send + Sync {
    /// The load that `service` (a worker service) works off, `None` if unknown.
    fn load(&self, service: &str) -> Option<LoadSample>;
}

/// Releases the job leases a dead worker held, so its jobs run elsewhere at once.
/// The queue's `Broker::release_worker(&WorkerId)` implements this.
pub trait LeaseReleaser: Send + Sync {
    /// Releases `worker_id`'s leases; returns how many jobs went back to the queue.
    fn release_worker(&self, worker_id: &str) -> Result<usize, String>;
}
