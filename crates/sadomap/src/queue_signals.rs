//! The supervisor's view of the queue: [`QueueSignals`] implements the supervisor's
//! `Heartbeats`, `LoadSignals` and `LeaseReleaser` traits on a queue `Broker`.
//!
//! They live in the binary because it is the one crate that may depend on both the queue and the
//! supervisor; the supervisor stays free of any queue backend and reads the queue only through
//! its traits (DESIGN: "queue (signals and lease release only)").
//!
//! Concurrency: the supervisor calls these from its loop thread and from the scoped threads that
//! probe instances in parallel. Heartbeats are read with one `Broker::workers` query per
//! [`HEARTBEAT_CACHE`] and shared under a mutex, so N workers cost one query per tick, not N.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sadomap_queue::{Broker, WorkerId};
use sadomap_supervisor::{Heartbeats, LeaseReleaser, LoadSample, LoadSignals};

/// How long one read of the heartbeats is reused.
const HEARTBEAT_CACHE: Duration = Duration::from_millis(200);

/// Heartbeats older than this are not asked for (the supervisor's stale limit is far below).
const HEARTBEAT_HORIZON: Duration = Duration::from_secs(3600);

/// A broker seen through the supervisor's signal traits.
pub struct QueueSignals {
    broker: Arc<dyn Broker>,
    beats: Mutex<Option<(Instant, HashMap<String, Duration>)>>,
    /// Total enqueued at the last load reading, for the arrival rate.
    arrivals: Mutex<Option<(Instant, u64)>>,
}

impl QueueSignals {
    /// Signals read from `broker`.
    pub fn new(broker: Arc<dyn Broker>) -> Self {
        QueueSignals {
            broker,
            beats: Mutex::new(None),
            arrivals: Mutex::new(None),
        }
    }

    fn read_beats(&self) -> HashMap<String, Duration> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        match self.broker.workers(HEARTBEAT_HORIZON) {
            Ok(workers) => workers
                .into_iter()
                .map(|w| {
                    let age = Duration::from_millis(now_ms.saturating_sub(w.last_beat.0));
                    (w.id.as_str().to_string(), age)
                })
                .collect(),
            Err(e) => {
                // No answer is no heartbeat: the supervisor then judges by time since start.
                tracing::warn!(error = %e, "cannot read worker heartbeats");
                HashMap::new()
            }
        }
    }
}

impl Heartbeats for QueueSignals {
    fn heartbeat_age(&self, worker_id: &str) -> Option<Duration> {
        let mut cache = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = matches!(&*cache, Some((at, _)) if at.elapsed() < HEARTBEAT_CACHE);
        if !fresh {
            *cache = Some((Instant::now(), self.read_beats()));
        }
        let (at, beats) = cache.as_ref()?;
        beats.get(worker_id).map(|age| *age + at.elapsed())
    }
}

impl LoadSignals for QueueSignals {
    fn load(&self, _service: &str) -> Option<LoadSample> {
        // Every worker polls every queue, so the one worker service works off all of them.
        let stats = match self.broker.stats() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read queue depth");
                return None;
            }
        };
        let depth = stats.iter().map(|s| s.ready).sum();
        let counters = self.broker.counters().unwrap_or_default();
        let enqueued: u64 = counters.iter().map(|c| c.enqueued).sum();
        let now = Instant::now();
        let mut last = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let arrivals_per_sec = match *last {
            Some((at, before)) if now > at => {
                enqueued.saturating_sub(before) as f64 / now.duration_since(at).as_secs_f64()
            }
            _ => 0.0,
        };
        *last = Some((now, enqueued));
        Some(LoadSample {
            depth,
            arrivals_per_sec,
            mean_service_secs: None,
        })
    }
}

impl LeaseReleaser for QueueSignals {
    fn release_worker(&self, worker_id: &str) -> Result<usize, String> {
        let id = WorkerId::new(worker_id).map_err(|e| e.to_string())?;
        self.broker.release_worker(&id).map_err(|e| e.to_string())
    }
}
