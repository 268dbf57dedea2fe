//! What a running worker shows its callers: its state (running, degraded, …), a health check,
//! and in-process counters and the enqueue-to-start latency histogram.
//!
//! Concurrency contract: the worker's threads update these with atomics and one short mutex; a
//! [`WorkerHealth`] handle may be cloned to any thread and read at any time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::broker::Broker;
use crate::error::QueueError;
use crate::job::{Timestamp, WorkerId, WorkerStatus};

/// Where a worker is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerState {
    /// Built, not yet running.
    Starting,
    /// Leasing and running jobs.
    Running,
    /// The broker failed (e.g. it went away); the worker retries with backoff and resumes by
    /// itself.
    Degraded {
        /// When the trouble began.
        since: Timestamp,
        /// The last error.
        error: String,
    },
    /// Shutting down: no more leases; in-flight jobs finish or are released.
    Draining,
    /// Done.
    Stopped,
}

impl WorkerState {
    /// A short name for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Running => "running",
            WorkerState::Degraded { .. } => "degraded",
            WorkerState::Draining => "draining",
            WorkerState::Stopped => "stopped",
        }
    }

    /// The state as heartbeats record it, with the reason when degraded (a stopped worker
    /// reads as draining: it is about to remove its heartbeat).
    pub fn status(&self) -> (WorkerStatus, Option<String>) {
        match self {
            WorkerState::Starting => (WorkerStatus::Starting, None),
            WorkerState::Running => (WorkerStatus::Running, None),
            WorkerState::Degraded { error, .. } => (WorkerStatus::Degraded, Some(error.clone())),
            WorkerState::Draining | WorkerState::Stopped => (WorkerStatus::Draining, None),
        }
    }
}

/// Upper bounds (ms) of the latency histogram buckets.
pub const LATENCY_BUCKETS_MS: [u64; 14] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 60_000,
];

/// Exact per-millisecond counts up to this many ms, for precise percentiles.
const EXACT_MS: usize = 10_000;

/// Counters of one worker process.
#[derive(Debug)]
pub struct WorkerMetrics {
    /// Runs started.
    pub started: AtomicU64,
    /// Runs that succeeded.
    pub succeeded: AtomicU64,
    /// Runs that failed (retried or dead).
    pub failed: AtomicU64,
    /// Failed runs scheduled again.
    pub retried: AtomicU64,
    /// Jobs sent to the dead-letter queue.
    pub dead: AtomicU64,
    /// Leases this worker lost (cancelled, or expired before renewal).
    pub leases_lost: AtomicU64,
    /// Jobs given back unfinished (shutdown).
    pub released: AtomicU64,
    latency_ms: Vec<AtomicU64>,
    latency_over: AtomicU64,
    latency_sum_ms: AtomicU64,
}

impl Default for WorkerMetrics {
    fn default() -> WorkerMetrics {
        WorkerMetrics {
            started: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            leases_lost: AtomicU64::new(0),
            released: AtomicU64::new(0),
            latency_ms: (0..=EXACT_MS).map(|_| AtomicU64::new(0)).collect(),
            latency_over: AtomicU64::new(0),
            latency_sum_ms: AtomicU64::new(0),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LatencySummary {
    /// Jobs measured.
    pub count: u64,
    /// Median.
    pub p50_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
    /// Largest (capped at the exact range, 10 s).
    pub max_ms: u64,
}

impl WorkerMetrics {
    /// Records one enqueue-to-start latency.
    pub fn observe_latency(&self, d: Duration) {
        let ms = d.as_millis().min(u128::from(u64::MAX)) as u64;
        self.latency_sum_ms.fetch_add(ms, Ordering::Relaxed);
        match self.latency_ms.get(ms as usize) {
            Some(c) => c.fetch_add(1, Ordering::Relaxed),
            None => self.latency_over.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Cumulative counts per bucket of [`LATENCY_BUCKETS_MS`], the total count and the sum (ms).
    pub fn latency_histogram(&self) -> (Vec<u64>, u64, u64) {
        let mut cumulative = vec![0u64; LATENCY_BUCKETS_MS.len()];
        let mut total = 0;
        for (ms, c) in self.latency_ms.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            total += n;
            for (b, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
                if ms as u64 <= *bound {
                    cumulative[b] += n;
                }
            }
        }
        let over = self.latency_over.load(Ordering::Relaxed);
        // Over the exact range (10 s) only the last (60 s) bucket is uncertain; count it there.
        if let Some(last) = cumulative.last_mut() {
            *last += over;
        }
        total += over;
        (
            cumulative,
            total,
            self.latency_sum_ms.load(Ordering::Relaxed),
        )
    }

    /// Percentiles of the latencies seen so far.
    pub fn latency_summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .latency_ms
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let over = self.latency_over.load(Ordering::Relaxed);
        let count: u64 = counts.iter().sum::<u64>() + over;
        let pct = |p: f64| -> u64 {
            let rank = ((count as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (ms, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return ms as u64;
                }
            }
            EXACT_MS as u64
        };
        let max_ms = if over > 0 {
            EXACT_MS as u64
        } else {
            counts.iter().rposition(|&n| n > 0).unwrap_or(0) as u64
        };
        LatencySummary {
            count,
            p50_ms: if count == 0 { 0 } else { pct(0.5) },
            p99_ms: if count == 0 { 0 } else { pct(0.99) },
            max_ms,
        }
    }
}

/// A handle on a worker's state and metrics, and its health check.
#[derive(Clone)]
pub struct WorkerHealth {
    pub(crate) id: WorkerId,
    pub(crate) state: Arc<Mutex<WorkerState>>,
    pub(crate) metrics: Arc<WorkerMetrics>,
    pub(crate) broker: Arc<dyn Broker>,
}

impl std::fmt::Debug for WorkerHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHealth")
            .field("id", &self.id)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl WorkerHealth {
    /// The worker's id.
    pub fn id(&self) -> &WorkerId {
        &self.id
    }

    /// The worker's state now.
    pub fn state(&self) -> WorkerState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The worker's counters.
    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    /// Does what the worker does first on every loop, ask the broker, within `timeout`; also
    /// fails while the worker reports itself degraded.
    pub fn check(&self, timeout: Duration) -> Result<(), QueueError> {
        if let WorkerState::Degraded { error, .. } = self.state() {
            return Err(QueueError::Unavailable {
                message: format!("worker {} is degraded: {error}", self.id),
            });
        }
        let (tx, rx) = mpsc::channel();
        let broker = self.broker.clone();
        // A hung backend must not hang the check: the ping runs on its own thread.
        std::thread::spawn(move || {
            let _ = tx.send(broker.ping());
        });
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => Err(QueueError::Unavailable {
                message: format!("the broker did not answer within {timeout:?}"),
            }),
        }
    }

    pub(crate) fn set(&self, s: WorkerState) {
        let mut cur = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if *cur != s {
            tracing::info!(worker = %self.id, state = s.as_str(), "worker state");
            *cur = s;
        }
    }

    /// Marks the worker degraded (keeping the first `since`).
    pub(crate) fn degrade(&self, now: Timestamp, err: &QueueError) {
        let mut cur = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let since = match &*cur {
            WorkerState::Degraded { since, .. } => *since,
            _ => {
                tracing::warn!(worker = %self.id, error = %err, "broker failing; worker degraded, retrying with backoff");
                now
            }
        };
        if !matches!(*cur, WorkerState::Draining | WorkerState::Stopped) {
            *cur = WorkerState::Degraded {
                since,
                error: err.to_string(),
            };
        }
    }

    /// Back to running after a degraded spell.
    pub(crate) fn recover(&self) {
        let mut cur = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*cur, WorkerState::Degraded { .. } | WorkerState::Starting) {
            tracing::info!(worker = %self.id, "broker answers again; worker running");
            *cur = WorkerState::Running;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_exact_counts() {
        let m = WorkerMetrics::default();
        for ms in 0..100 {
            m.observe_latency(Duration::from_millis(ms));
        }
        let s = m.latency_summary();
        assert_eq!((s.count, s.p50_ms, s.p99_ms, s.max_ms), (100, 49, 98, 99));
        let (buckets, total, sum) = m.latency_histogram();
        assert_eq!((buckets[0], total, sum), (2, 100, 4950));
    }
}
