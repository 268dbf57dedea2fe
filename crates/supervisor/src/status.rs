//! The supervisor's status as data: what `sadomap status` prints and `/admin/status` shows.
//!
//! Concurrency: the supervisor loop replaces the snapshot behind a [`StatusHandle`] once per tick;
//! readers clone it under a short lock.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::Role;
use crate::health::{Check, CheckStatus, HealthState};
use crate::runtime::InstanceId;

/// What one replica slot is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum SlotPhase {
    /// Waiting for its dependencies to be healthy.
    Pending,
    /// Running, with this health.
    Running {
        /// Health state.
        health: HealthState,
    },
    /// Waiting out a backoff before its replacement starts.
    BackingOff {
        /// Milliseconds left.
        remaining_ms: u64,
    },
}

/// One replica slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRow {
    /// Replica slot.
    pub replica: u32,
    /// Current instance, if running.
    pub instance: Option<InstanceId>,
    /// Its pid, if local.
    pub pid: Option<u32>,
    /// Worker id given to it.
    pub worker_id: Option<String>,
    /// Phase.
    #[serde(flatten)]
    pub phase: SlotPhase,
    /// Restarts of this slot.
    pub restarts: u32,
    /// Why it was last restarted.
    pub last_restart_reason: Option<String>,
    /// The last check.
    pub last_check: Option<Check>,
    /// The kept checks, oldest first.
    pub checks: Vec<Check>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Replicas wanted now.
    pub desired: u32,
    /// Queue depth at the last scaling decision (scaled services with load signals).
    pub queue_depth: Option<u64>,
    /// MAPE of the arrival-rate forecast so far, as a fraction (scaled services).
    pub forecast_mape: Option<f64>,
    /// Its slots.
    pub instances: Vec<InstanceRow>,
}

/// The whole supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Status {
    /// Runtime name.
    pub runtime: String,
    /// Protective mode on.
    pub protective_mode: bool,
    /// Services in start order.
    pub services: Vec<ServiceStatus>,
    /// Ticks run so far.
    pub ticks: u64,
}

impl Status {
    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceStatus> {
        self.services.iter().find(|s| s.name == name)
    }

    /// A plain-text health table (what `sadomap status` prints without `--json`).
    pub fn render_table(&self) -> String {
        let mut rows = vec![[
            "SERVICE".to_string(),
            "ROLE".into(),
            "REPLICA".into(),
            "PID/ID".into(),
            "STATE".into(),
            "RESTARTS".into(),
            "LAST PROBE".into(),
        ]];
        for s in &self.services {
            for i in &s.instances {
                let state = match i.phase {
                    SlotPhase::Pending => "pending".to_string(),
                    SlotPhase::Running { health } => health.as_str().to_string(),
                    SlotPhase::BackingOff { remaining_ms } => format!("backoff {remaining_ms} ms"),
                };
                let id = match (i.pid, &i.instance) {
                    (Some(pid), _) => pid.to_string(),
                    (None, Some(id)) => id.0.chars().take(12).collect(),
                    (None, None) => "-".into(),
                };
                let probe = match &i.last_check {
                    Some(c) => match (&c.status, c.latency_ms) {
                        (CheckStatus::Passed, Some(ms)) => format!("ok {ms:.1} ms"),
                        (CheckStatus::Passed, None) => "ok".into(),
                        (CheckStatus::Failed { failure }, _) => {
                            format!("failed ({})", failure.probe())
                        }
                    },
                    None => "-".into(),
                };
                let restarts = match &i.last_restart_reason {
                    Some(r) => format!("{} ({r})", i.restarts),
                    None => i.restarts.to_string(),
                };
                rows.push([
                    s.name.clone(),
                    s.role.as_str().into(),
                    i.replica.to_string(),
                    id,
                    state,
                    restarts,
                    probe,
                ]);
            }
        }
        let mut widths = [0usize; 7];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        if self.protective_mode {
            out.push_str("PROTECTIVE MODE: restarts are rate-limited after repeated failures\n");
        }
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// Shared read access to the latest status.
#[derive(Debug, Clone, Default)]
pub struct StatusHandle {
    inner: Arc<Mutex<Status>>,
}

impl StatusHandle {
    /// A copy of the latest status.
    pub fn snapshot(&self) -> Status {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn publish(&self, status: Status) {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Moment;
    use crate::runtime::Stats;

    #[test]
    fn table_lists_every_slot() {
        let check = Check::new(
            Moment::ZERO,
            CheckStatus::Passed,
            Some(std::time::Duration::from_millis(3)),
            Stats::default(),
        );
        let st = Status {
            runtime: "local".into(),
            protective_mode: true,
            ticks: 3,
            services: vec![ServiceStatus {
                name: "worker".into(),
                role: Role::Worker,
                desired: 2,
                queue_depth: Some(12),
                forecast_mape: None,
                instances: vec![
                    InstanceRow {
                        replica: 0,
                        instance: Some(InstanceId("worker-0-1".into())),
                        pid: Some(4242),
                        worker_id: None,
                        phase: SlotPhase::Running {
                            health: HealthState::Healthy,
                        },
                        restarts: 1,
                        last_restart_reason: Some("exited".into()),
                        last_check: Some(check),
                        checks: vec![],
                    },
                    InstanceRow {
                        replica: 1,
                        instance: None,
                        pid: None,
                        worker_id: None,
                        phase: SlotPhase::BackingOff { remaining_ms: 800 },
                        restarts: 4,
                        last_restart_reason: Some("crash_loop".into()),
                        last_check: None,
                        checks: vec![],
                    },
                ],
            }],
        };
        let t = st.render_table();
        assert!(t.starts_with("PROTECTIVE MODE"), "{t}");
        assert!(
            t.contains("4242") && t.contains("healthy") && t.contains("ok 3.0 ms"),
            "{t}"
        );
        assert!(
            t.contains("backoff 800 ms") && t.contains("4 (crash_loop)"),
            "{t}"
        );
        let json = serde_json::to_value(&st).expect("serialisable");
        assert_eq!(json["services"][0]["instances"][0]["phase"], "running");
        assert_eq!(json["services"][0]["instances"][0]["health"], "healthy");
        // `sadomap status` reads the control socket's answer back into a Status.
        let back: Status = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, st);
    }
}
