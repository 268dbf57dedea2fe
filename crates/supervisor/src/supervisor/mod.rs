//! The supervisor loop: starts the plan's services, probes every instance each interval, hands
//! failures to the failover manager, carries out its decisions, scales workers, and reports
//! everything as events and a status snapshot.
//!
//! Concurrency contract: [`Supervisor::run`] runs on the calling thread until the [`Shutdown`]
//! is triggered, then stops every instance (SIGTERM, SIGKILL after each service's grace) and
//! returns. All state is owned by that thread. Between probe ticks (every `interval`) a cheap
//! sweep (every `exit_check_interval`, 100 ms) replaces gone instances and ends backoffs, so an
//! exited process is replaced within the sweep period rather than the probe interval. Within a
//! tick the probes of all instances run in parallel on scoped threads (so one slow HTTP probe delays the tick by at most its timeout);
//! graceful stops of replaced instances run on background threads so a draining process never
//! blocks supervision (their errors come back over a channel and are reported next tick). A
//! replacement may therefore start while its predecessor drains: on a shared listening socket
//! this is what makes a restart drop nothing. Readers see state only through [`StatusHandle`]
//! snapshots, [`Telemetry`] events and metrics.

mod actions;
mod control_socket;
mod rolling;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::error::PlanError;
use crate::events::{RecentEvents, Telemetry};
use crate::plan::Plan;
use crate::runtime::{LocalRuntime, Runtime};
use crate::shutdown::Shutdown;
use crate::signals::{Heartbeats, LeaseReleaser, LoadSignals};
use crate::status::StatusHandle;

use state::LoopState;

pub use control_socket::request as control_request;
pub use rolling::Control;

/// Events kept in memory for the control socket's `events` request.
const RECENT_EVENTS: usize = 200;

/// Supervises the services of a [`Plan`] on a [`Runtime`].
pub struct Supervisor {
    plan: Plan,
    runtime: Arc<dyn Runtime>,
    clock: Arc<dyn Clock>,
    telemetry: Telemetry,
    recent: Arc<RecentEvents>,
    heartbeats: Option<Arc<dyn Heartbeats>>,
    load: Option<Arc<dyn LoadSignals>>,
    leases: Option<Arc<dyn LeaseReleaser>>,
    status: StatusHandle,
    commands: std::sync::mpsc::Receiver<rolling::Command>,
    commands_tx: std::sync::mpsc::Sender<rolling::Command>,
    control_socket: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("runtime", &self.runtime.name())
            .field("services", &self.plan.services.len())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor of `plan` on `runtime`.
    pub fn new(
        plan: Plan,
        runtime: Arc<dyn Runtime>,
        clock: Arc<dyn Clock>,
        telemetry: Telemetry,
    ) -> Self {
        let (commands_tx, commands) = std::sync::mpsc::channel();
        let recent = Arc::new(RecentEvents::new(RECENT_EVENTS));
        Supervisor {
            plan,
            runtime,
            clock,
            telemetry: telemetry.with_sink(recent.clone()),
            recent,
            heartbeats: None,
            load: None,
            leases: None,
            status: StatusHandle::default(),
            commands,
            commands_tx,
            control_socket: None,
        }
    }

    /// A supervisor of local processes: the plan's listening socket (if any) goes to a
    /// [`LocalRuntime`], which hands it to `inherit_listener` services.
    pub fn local(mut plan: Plan, telemetry: Telemetry) -> (Self, Arc<LocalRuntime>) {
        let runtime = Arc::new(match plan.listener.take() {
            Some(l) => LocalRuntime::with_listener(l),
            None => LocalRuntime::new(),
        });
        let sup = Supervisor::new(
            plan,
            runtime.clone(),
            Arc::new(SystemClock::new()),
            telemetry,
        );
        (sup, runtime)
    }

    /// Reads worker heartbeats from `h` (for services with the heartbeat probe).
    pub fn with_heartbeats(mut self, h: Arc<dyn Heartbeats>) -> Self {
        self.heartbeats = Some(h);
        self
    }

    /// Reads queue load for scaled services from `l`.
    pub fn with_load_signals(mut self, l: Arc<dyn LoadSignals>) -> Self {
        self.load = Some(l);
        self
    }

    /// Releases dead workers' leases through `r`.
    pub fn with_lease_releaser(mut self, r: Arc<dyn LeaseReleaser>) -> Self {
        self.leases = Some(r);
        self
    }

    /// A handle for commands (`restart`) to the running loop.
    pub fn control(&self) -> Control {
        Control {
            tx: self.commands_tx.clone(),
            services: Arc::new(self.plan.services.iter().map(|s| s.name.clone()).collect()),
        }
    }

    /// The last events (probe failures aside), newest last.
    pub fn recent_events(&self) -> Arc<RecentEvents> {
        self.recent.clone()
    }

    /// Answers `status`, `events`, `metrics` and `restart SERVICE` requests on a Unix socket at
    /// `path` while running
    /// (see [`control_request`] for the client side).
    pub fn with_control_socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.control_socket = Some(path.into());
        self
    }

    /// The live status.
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// Checks that every signal the plan's probes and scaling need is wired.
    fn check_wiring(&self) -> Result<(), PlanError> {
        for s in &self.plan.services {
            if s.probes.heartbeat && self.heartbeats.is_none() {
                return Err(PlanError::Invalid {
                    field: format!("services.{}.probes.heartbeat", s.name),
                    reason: "is on but no heartbeat source is wired (Supervisor::with_heartbeats)"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Runs until `shutdown` is triggered, then stops every instance and returns. Fails before
    /// starting anything if a probe needs a signal that is not wired.
    pub fn run(self, shutdown: &Shutdown) -> Result<(), PlanError> {
        self.check_wiring()?;
        let server = match &self.control_socket {
            Some(path) => {
                let listener = control_socket::bind(path)?;
                let answers = control_socket::Answers {
                    status: self.status(),
                    control: self.control(),
                    recent: self.recent_events(),
                    metrics: self.telemetry.metrics().clone(),
                };
                Some(control_socket::serve(
                    listener,
                    path.clone(),
                    answers,
                    shutdown.clone(),
                ))
            }
            None => None,
        };
        let mut state = LoopState::new(&self);
        let interval = self.plan.health.interval;
        let step = self
            .plan
            .health
            .exit_check_interval
            .max(Duration::from_millis(1));
        let mut next_tick = Instant::now();
        while !shutdown.is_triggered() {
            if Instant::now() >= next_tick {
                state.tick(&self);
                // Ticks keep their rhythm; ticks missed during a stall are skipped, not bunched.
                next_tick += interval;
                let now = Instant::now();
                if next_tick < now {
                    next_tick = now + interval;
                }
            } else {
                state.sweep(&self);
            }
            let left = next_tick.saturating_duration_since(Instant::now());
            if shutdown.wait(left.min(step).max(Duration::from_millis(1))) {
                break;
            }
        }
        state.stop_all(&self);
        if let Some(server) = server {
            let _ = server.join();
        }
        Ok(())
    }
}
