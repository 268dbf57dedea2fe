//! The supervisor loop: starts the plan's services, probes every instance each interval, hands
//! failures to the failover manager, carries out its decisions, scales workers, and reports
//! everything as events and a status snapshot.
//!
//! Concurrency contract: [`Supervisor::run`] runs on the calling thread until the [`Shutdown`]
//! is triggered, then stops every instance (SIGTERM, SIGKILL after each service's grace) and
//! returns. All state is owned by that thread. Within a tick the probes of all instances run in
//! parallel on scoped threads (so one slow HTTP probe delays the tick by at most its timeout);
//! graceful stops of replaced instances run on background threads so a draining process never
//! blocks supervision (their errors come back over a channel and are reported next tick). A
//! replacement may therefore start while its predecessor drains: on a shared listening socket
//! this is what makes a restart drop nothing. Readers see state only through [`StatusHandle`]
//! snapshots, [`Telemetry`] events and metrics.

mod actions;
mod rolling;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::error::PlanError;
use crate::events::Telemetry;
use crate::plan::Plan;
use crate::runtime::{LocalRuntime, Runtime};
use crate::shutdown::Shutdown;
use crate::signals::{Heartbeats, LeaseReleaser, LoadSignals};
use crate::status::StatusHandle;

use state::LoopState;

pub use rolling::Control;

/// Supervises the services of a [`Plan`] on a [`Runtime`].
pub struct Supervisor {
    plan: Plan,
    runtime: Arc<dyn Runtime>,
    clock: Arc<dyn Clock>,
    telemetry: Telemetry,
    heartbeats: Option<Arc<dyn Heartbeats>>,
    load: Option<Arc<dyn LoadSignals>>,
    leases: Option<Arc<dyn LeaseReleaser>>,
    status: StatusHandle,
    commands: std::sync::mpsc::Receiver<rolling::Command>,
    commands_tx: std::sync::mpsc::Sender<rolling::Command>,
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
        Supervisor {
            plan,
            runtime,
            clock,
            telemetry,
            heartbeats: None,
            load: None,
            leases: None,
            status: StatusHandle::default(),
            commands,
            commands_tx,
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
        let mut state = LoopState::new(&self);
        let interval = self.plan.health.interval;
        while !shutdown.is_triggered() {
            let started = Instant::now();
            state.tick(&self);
            let left = interval.saturating_sub(started.elapsed());
            if shutdown.wait(left.max(Duration::from_millis(1))) {
                break;
            }
        }
        state.stop_all(&self);
        Ok(())
    }
}
