//! Telemetry as events: one struct per occurrence. [`Telemetry::emit`] writes the event as a JSON
//! line to every sink and updates the Prometheus metrics with the same labels, in one place
//! ([`Event::record`]), so log and metric never disagree.
//!
//! Concurrency: sinks and [`Telemetry`] are `Send + Sync`; each sink serialises its own writes.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::clock::Moment;
use crate::config::Role;
use crate::failover::{FailureKind, StopHow};
use crate::health::HealthState;
use crate::metrics::Metrics;
use crate::probe::ProbeFailure;
use crate::runtime::InstanceId;
use crate::scaling::ScaleReason;

/// An instance was started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStarted {
    /// Service.
    pub service: String,
    /// Role.
    pub role: Role,
    /// Replica slot.
    pub replica: u32,
    /// New instance.
    pub instance: InstanceId,
    /// Its pid, if local.
    pub pid: Option<u32>,
}

/// A probe failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeFailed {
    /// Service.
    pub service: String,
    /// Instance.
    pub instance: InstanceId,
    /// What failed.
    pub failure: ProbeFailure,
    /// Consecutive failed checks so far.
    pub consecutive: u32,
}

/// An instance's health state changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthChanged {
    /// Service.
    pub service: String,
    /// Instance.
    pub instance: InstanceId,
    /// Old state.
    pub from: HealthState,
    /// New state.
    pub to: HealthState,
}

/// A failure to act on was detected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureDetected {
    /// Service.
    pub service: String,
    /// Instance.
    pub instance: InstanceId,
    /// The failure.
    pub failure: FailureKind,
}

/// An instance was replaced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restarted {
    /// Service.
    pub service: String,
    /// The replaced instance.
    pub old_instance: InstanceId,
    /// Its replacement.
    pub instance: InstanceId,
    /// Replacement pid, if local.
    pub pid: Option<u32>,
    /// Failure label that caused it.
    pub reason: &'static str,
    /// How the old one was ended.
    pub stop: StopHow,
    /// Backoff waited before starting, milliseconds.
    pub delay_ms: u64,
}

/// Starting or stopping an instance failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeFailed {
    /// Service.
    pub service: String,
    /// What was attempted (`start`, `stop`, `kill`).
    pub operation: &'static str,
    /// The error, as a sentence.
    pub error: String,
}

/// A requested rolling restart finished.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollingRestarted {
    /// Service.
    pub service: String,
    /// Instances replaced.
    pub instances: u32,
    /// Time from request to the last replacement, milliseconds.
    pub took_ms: u64,
}

/// A dead worker's leases were released.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeasesReleased {
    /// Service.
    pub service: String,
    /// The worker id.
    pub worker_id: String,
    /// Jobs put back on the queue.
    pub jobs: usize,
}

/// A scaled service changed its replica count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scaled {
    /// Service.
    pub service: String,
    /// Before.
    pub from: u32,
    /// After.
    pub to: u32,
    /// Why.
    pub reason: ScaleReason,
}

/// The cascade guard switched protective mode on: an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProtectiveModeEntered {
    /// Failures in the window.
    pub failures: u32,
    /// Window, seconds.
    pub window_secs: u64,
}

/// Protective mode ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProtectiveModeLeft {
    /// Time spent in it, seconds.
    pub after_secs: u64,
}

/// Every occurrence the supervisor reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// See [`InstanceStarted`].
    InstanceStarted(InstanceStarted),
    /// See [`ProbeFailed`].
    ProbeFailed(ProbeFailed),
    /// See [`HealthChanged`].
    HealthChanged(HealthChanged),
    /// See [`FailureDetected`].
    FailureDetected(FailureDetected),
    /// See [`Restarted`].
    Restarted(Restarted),
    /// See [`RuntimeFailed`].
    RuntimeFailed(RuntimeFailed),
    /// See [`RollingRestarted`].
    RollingRestarted(RollingRestarted),
    /// See [`LeasesReleased`].
    LeasesReleased(LeasesReleased),
    /// See [`Scaled`].
    Scaled(Scaled),
    /// See [`ProtectiveModeEntered`].
    ProtectiveModeEntered(ProtectiveModeEntered),
    /// See [`ProtectiveModeLeft`].
    ProtectiveModeLeft(ProtectiveModeLeft),
}

macro_rules! name {
    ($s:literal) => {
        concat!("sadomap_supervisor_", $s)
    };
}

impl Event {
    /// Updates `metrics` for this event, with the labels its JSON line carries.
    pub fn record(&self, m: &Metrics) {
        match self {
            Event::InstanceStarted(e) => m.inc(
                name!("instances_started_total"),
                "Instances started, by service.",
                &[("service", &e.service), ("role", e.role.as_str())],
                1.0,
            ),
            Event::ProbeFailed(e) => m.inc(
                name!("probe_failures_total"),
                "Failed probes, by service and probe.",
                &[("service", &e.service), ("probe", e.failure.probe())],
                1.0,
            ),
            Event::HealthChanged(e) => m.inc(
                name!("health_transitions_total"),
                "Health state changes, by service and new state.",
                &[("service", &e.service), ("to", e.to.as_str())],
                1.0,
            ),
            Event::FailureDetected(e) => m.inc(
                name!("failures_total"),
                "Failures acted on, by service and kind.",
                &[("service", &e.service), ("kind", e.failure.label())],
                1.0,
            ),
            Event::Restarted(e) => {
                m.inc(
                    name!("restarts_total"),
                    "Instances replaced, by service and reason.",
                    &[("service", &e.service), ("reason", e.reason)],
                    1.0,
                );
                m.set(
                    name!("restart_delay_seconds"),
                    "Backoff before the last restart, by service.",
                    &[("service", &e.service)],
                    e.delay_ms as f64 / 1000.0,
                );
                m.forget("instance", &e.old_instance.0);
            }
            Event::RuntimeFailed(e) => m.inc(
                name!("runtime_errors_total"),
                "Failed runtime operations, by service and operation.",
                &[("service", &e.service), ("operation", e.operation)],
                1.0,
            ),
            Event::RollingRestarted(e) => m.inc(
                name!("rolling_restarts_total"),
                "Requested rolling restarts finished, by service.",
                &[("service", &e.service)],
                1.0,
            ),
            Event::LeasesReleased(e) => m.inc(
                name!("leases_released_total"),
                "Jobs put back on the queue from dead workers, by service.",
                &[("service", &e.service)],
                e.jobs as f64,
            ),
            Event::Scaled(e) => {
                m.set(
                    name!("replicas"),
                    "Replicas wanted, by service.",
                    &[("service", &e.service)],
                    f64::from(e.to),
                );
                let direction = if e.to > e.from { "up" } else { "down" };
                m.inc(
                    name!("scalings_total"),
                    "Scaling decisions, by service, direction and reason.",
                    &[
                        ("service", &e.service),
                        ("direction", direction),
                        ("reason", e.reason.as_str()),
                    ],
                    1.0,
                );
            }
            Event::ProtectiveModeEntered(_) => {
                m.set(
                    name!("protective_mode"),
                    "1 while protective mode is on.",
                    &[],
                    1.0,
                );
                m.inc(
                    name!("protective_mode_entries_total"),
                    "Times protective mode was switched on.",
                    &[],
                    1.0,
                );
            }
            Event::ProtectiveModeLeft(_) => m.set(
                name!("protective_mode"),
                "1 while protective mode is on.",
                &[],
                0.0,
            ),
        }
    }

    /// The event as one JSON line (no trailing newline), stamped with the supervisor clock
    /// (`at_ms`) and wall time (`unix_ms`).
    pub fn json_line(&self, at: Moment) -> String {
        #[derive(Serialize)]
        struct Stamped<'a> {
            unix_ms: u128,
            at_ms: u128,
            #[serde(flatten)]
            event: &'a Event,
        }
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let stamped = Stamped {
            unix_ms,
            at_ms: at.since_origin().as_millis(),
            event: self,
        };
        // Serialising plain structs of strings and numbers cannot fail; keep a fallback anyway.
        serde_json::to_string(&stamped)
            .unwrap_or_else(|e| format!("{{\"event\":\"unserialisable\",\"error\":\"{e}\"}}"))
    }
}

/// Where events go.
pub trait EventSink: Send + Sync {
    /// Takes one event.
    fn emit(&self, at: Moment, event: &Event);
}

/// Writes each event as a JSON line.
#[derive(Debug)]
pub struct JsonLinesSink<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonLinesSink {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send> EventSink for JsonLinesSink<W> {
    fn emit(&self, at: Moment, event: &Event) {
        let line = event.json_line(at);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A full disk must not stop supervision: a lost log line is the lesser harm.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Keeps events in memory: for tests and for a status page's recent history.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<(Moment, Event)>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<(Moment, Event)> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many events match `pred`.
    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, e)| pred(e))
            .count()
    }
}

impl EventSink for MemorySink {
    fn emit(&self, at: Moment, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((at, event.clone()));
    }
}

/// The most recent events, as the JSON objects of their lines (newest last), for a status page:
/// restarts with their reasons, failures, scaling decisions, protective mode. Probe failures are
/// left out; the probe history in the status already holds them and they would crowd out the
/// rest during a long outage.
#[derive(Debug)]
pub struct RecentEvents {
    cap: usize,
    events: Mutex<std::collections::VecDeque<serde_json::Value>>,
}

impl RecentEvents {
    /// Keeps the last `cap` events.
    pub fn new(cap: usize) -> Self {
        RecentEvents {
            cap: cap.max(1),
            events: Mutex::new(std::collections::VecDeque::with_capacity(cap.min(1024))),
        }
    }

    /// A copy of the kept events, oldest first.
    pub fn snapshot(&self) -> Vec<serde_json::Value> {
        let g = self.events.lock().unwrap_or_else(|e| e.into_inner());
        g.iter().cloned().collect()
    }
}

impl EventSink for RecentEvents {
    fn emit(&self, at: Moment, event: &Event) {
        if matches!(event, Event::ProbeFailed(_)) {
            return;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&event.json_line(at)) else {
            return;
        };
        let mut g = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() == self.cap {
            g.pop_front();
        }
        g.push_back(v);
    }
}

/// Metrics plus sinks: the one way the supervisor reports.
#[derive(Clone, Default)]
pub struct Telemetry {
    metrics: Arc<Metrics>,
    sinks: Vec<Arc<dyn EventSink>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl Telemetry {
    /// Telemetry recording into `metrics`, with no sink yet.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Telemetry {
            metrics,
            sinks: Vec::new(),
        }
    }

    /// Adds a sink.
    pub fn with_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Records and writes one event.
    pub fn emit(&self, at: Moment, event: Event) {
        event.record(&self.metrics);
        for s in &self.sinks {
            s.emit(at, &event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::InstanceStatus;

    #[test]
    fn recent_events_keep_the_last_few_without_probe_failures() {
        let recent = RecentEvents::new(2);
        let scaled = |to| {
            Event::Scaled(Scaled {
                service: "worker".into(),
                from: 1,
                to,
                reason: ScaleReason::Reactive,
            })
        };
        recent.emit(Moment::from_millis(1), &scaled(2));
        recent.emit(
            Moment::from_millis(2),
            &Event::ProbeFailed(ProbeFailed {
                service: "api".into(),
                instance: InstanceId("api-0-1".into()),
                failure: ProbeFailure::Exited {
                    exit: "signal 9".into(),
                },
                consecutive: 1,
            }),
        );
        recent.emit(Moment::from_millis(3), &scaled(3));
        recent.emit(Moment::from_millis(4), &scaled(4));
        let kept = recent.snapshot();
        let tos: Vec<_> = kept.iter().map(|e| e["to"].clone()).collect();
        assert_eq!(tos, vec![serde_json::json!(3), serde_json::json!(4)]);
        assert!(kept
            .iter()
            .all(|e| e["event"] == "scaled" && e["at_ms"].is_u64()));
    }

    #[test]
    fn one_event_one_line_one_metric_with_the_same_labels() {
        let mem = Arc::new(MemorySink::new());
        let buf = Arc::new(JsonLinesSink::new(Vec::<u8>::new()));
        let t = Telemetry::new(Arc::new(Metrics::new()))
            .with_sink(mem.clone())
            .with_sink(buf.clone());
        t.emit(
            Moment::from_millis(1500),
            Event::Restarted(Restarted {
                service: "worker".into(),
                old_instance: InstanceId("worker-0-1".into()),
                instance: InstanceId("worker-0-2".into()),
                pid: Some(42),
                reason: "exited",
                stop: StopHow::AlreadyGone,
                delay_ms: 0,
            }),
        );
        let line = {
            let out = buf.out.lock().expect("not poisoned");
            String::from_utf8(out.clone()).expect("utf-8")
        };
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
        assert_eq!(v["event"], "restarted");
        assert_eq!(v["service"], "worker");
        assert_eq!(v["reason"], "exited");
        assert_eq!(v["at_ms"], 1500);
        assert_eq!(
            t.metrics().get(
                "sadomap_supervisor_restarts_total",
                &[("service", "worker"), ("reason", "exited")]
            ),
            Some(1.0)
        );
        assert_eq!(mem.count(|e| matches!(e, Event::Restarted(_))), 1);
    }

    #[test]
    fn failure_and_protective_mode_events() {
        let t = Telemetry::new(Arc::new(Metrics::new()));
        t.emit(
            Moment::ZERO,
            Event::FailureDetected(FailureDetected {
                service: "api".into(),
                instance: InstanceId("api-0-1".into()),
                failure: FailureKind::Exited {
                    status: InstanceStatus::Signalled { signal: 9 },
                },
            }),
        );
        t.emit(
            Moment::ZERO,
            Event::ProtectiveModeEntered(ProtectiveModeEntered {
                failures: 3,
                window_secs: 300,
            }),
        );
        let text = t.metrics().render();
        assert!(
            text.contains("sadomap_supervisor_failures_total{kind=\"exited\",service=\"api\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sadomap_supervisor_protective_mode 1"),
            "{text}"
        );
        t.emit(
            Moment::ZERO,
            Event::ProtectiveModeLeft(ProtectiveModeLeft { after_secs: 120 }),
        );
        assert!(t
            .metrics()
            .render()
            .contains("sadomap_supervisor_protective_mode 0"));
        let line = Event::ProtectiveModeLeft(ProtectiveModeLeft { after_secs: 120 })
            .json_line(Moment::ZERO);
        assert!(
            line.contains("\"event\":\"protective_mode_left\""),
            "{line}"
        );
    }
}
