//! The loop's actions: carrying out failover decisions and scaling.

use std::thread;

use crate::clock::Moment;
use crate::events::{
    Event, FailureDetected, LeasesReleased, ProtectiveModeEntered, RuntimeFailed, Scaled,
};
use crate::failover::{FailureKind, GuardChange, StopHow};
use crate::plan::{Replicas, ServicePlan};
use crate::runtime::InstanceId;
use crate::scaling::ScaleReason;

use super::state::{LoopState, Phase, Replacing, SlotState};
use super::Supervisor;

impl LoopState {
    /// Carries out the failover decision for a failed running slot.
    pub(super) fn fail(
        &mut self,
        sup: &Supervisor,
        i: usize,
        k: usize,
        failure: FailureKind,
        now: Moment,
    ) {
        let plan = &sup.plan.services[i];
        let svc = &mut self.services[i];
        let load_high = svc.last_load.is_some_and(|l| {
            l.depth > u64::from(sup.plan.scaling.target_jobs_per_worker) * u64::from(svc.desired)
        });
        let slot = &mut svc.slots[k];
        let slot_key = (plan.name.clone(), slot.replica);
        let handled = self
            .failover
            .on_failure(&slot_key, plan.role, failure, load_high, now);
        let d = handled.decision;
        let Phase::Running(run) = std::mem::replace(&mut slot.phase, Phase::Pending) else {
            return;
        };
        Self::emit(
            sup,
            now,
            Event::FailureDetected(FailureDetected {
                service: plan.name.clone(),
                instance: run.instance.clone(),
                failure: d.failure.clone(),
            }),
        );
        if let Some(GuardChange::Entered { failures }) = handled.guard {
            Self::emit(
                sup,
                now,
                Event::ProtectiveModeEntered(ProtectiveModeEntered {
                    failures,
                    window_secs: sup.plan.cascade.window.as_secs(),
                }),
            );
        }
        match d.stop {
            StopHow::AlreadyGone => sup.runtime.remove(&run.instance),
            StopHow::Kill => {
                if let Err(e) = sup.runtime.kill(&run.instance) {
                    Self::emit(
                        sup,
                        now,
                        Event::RuntimeFailed(RuntimeFailed {
                            service: plan.name.clone(),
                            operation: "kill",
                            error: e.to_string(),
                        }),
                    );
                }
                sup.runtime.remove(&run.instance);
            }
            StopHow::Graceful => self.stop_in_background(sup, plan, run.instance.clone()),
        }
        if d.release_leases {
            if let Some(leases) = &sup.leases {
                match leases.release_worker(&run.worker_id) {
                    Ok(jobs) => Self::emit(
                        sup,
                        now,
                        Event::LeasesReleased(LeasesReleased {
                            service: plan.name.clone(),
                            worker_id: run.worker_id.clone(),
                            jobs,
                        }),
                    ),
                    Err(error) => Self::emit(
                        sup,
                        now,
                        Event::RuntimeFailed(RuntimeFailed {
                            service: plan.name.clone(),
                            operation: "release_leases",
                            error,
                        }),
                    ),
                }
            }
        }
        let slot = &mut self.services[i].slots[k];
        slot.restarts += 1;
        slot.last_reason = Some(d.failure.label().to_string());
        slot.phase = Phase::BackingOff {
            until: now + d.delay,
            replacing: Replacing {
                old: run.instance,
                reason: d.failure.label(),
                stop: d.stop,
                delay: d.delay,
            },
        };
        if d.delay.is_zero() {
            self.start_slot(sup, i, k, now);
        }
        if d.scale_up {
            self.resize(
                sup,
                i,
                self.services[i].desired.saturating_add(1),
                ScaleReason::Exhaustion,
                now,
            );
        }
    }

    pub(super) fn stop_in_background(
        &mut self,
        sup: &Supervisor,
        plan: &ServicePlan,
        id: InstanceId,
    ) {
        let runtime = sup.runtime.clone();
        let grace = plan.stop_grace;
        let errors = self.stop_errors_tx.clone();
        let service = plan.name.clone();
        self.background.push(thread::spawn(move || {
            if let Err(e) = runtime.stop(&id, grace) {
                let _ = errors.send((service, e.to_string()));
            }
            runtime.remove(&id);
        }));
    }

    pub(super) fn scale(&mut self, sup: &Supervisor, now: Moment) {
        let Some(load) = sup.load.clone() else { return };
        for i in 0..self.services.len() {
            let name = &sup.plan.services[i].name;
            let Some(sample) = load.load(name) else {
                continue;
            };
            self.services[i].last_load = Some(sample);
            let decision = match self.services[i].scaler.as_mut() {
                Some(scaler) => scaler.observe(now, sample),
                None => continue,
            };
            let metrics = sup.telemetry.metrics();
            let labels = [("service", name.as_str())];
            metrics.set(
                "sadomap_supervisor_queue_depth_jobs",
                "Queue depth seen by the scaler, by service.",
                &labels,
                sample.depth as f64,
            );
            if let Some(mape) = self.services[i]
                .scaler
                .as_ref()
                .and_then(|s| s.forecaster().mape())
            {
                metrics.set(
                    "sadomap_supervisor_forecast_mape_ratio",
                    "Mean absolute percentage error of the arrival-rate forecast (0.1 = 10 %).",
                    &labels,
                    mape,
                );
            }
            if let Some(d) = decision {
                self.resize(sup, i, d.to, d.reason, now);
            }
        }
    }

    /// Moves service `i` to `to` replicas (within its bounds): new slots start at once, the
    /// highest slots are stopped gracefully.
    pub(super) fn resize(
        &mut self,
        sup: &Supervisor,
        i: usize,
        to: u32,
        reason: ScaleReason,
        now: Moment,
    ) {
        let plan = &sup.plan.services[i];
        let Replicas::Scaled { min, max } = plan.replicas else {
            return;
        };
        let to = to.clamp(min, max);
        let from = self.services[i].desired;
        if to == from {
            return;
        }
        self.services[i].desired = to;
        if let Some(s) = self.services[i].scaler.as_mut() {
            s.set_current(to);
        }
        Self::emit(
            sup,
            now,
            Event::Scaled(Scaled {
                service: plan.name.clone(),
                from,
                to,
                reason,
            }),
        );
        while self.services[i].slots.len() > to as usize {
            if let Some(slot) = self.services[i].slots.pop() {
                if let Phase::Running(r) = slot.phase {
                    self.stop_in_background(sup, plan, r.instance);
                }
            }
        }
        while self.services[i].slots.len() < to as usize {
            let replica = self.services[i]
                .slots
                .iter()
                .map(|s| s.replica + 1)
                .max()
                .unwrap_or(0);
            self.services[i].slots.push(SlotState {
                replica,
                phase: Phase::Pending,
                restarts: 0,
                last_reason: None,
            });
            let k = self.services[i].slots.len() - 1;
            if self.deps_ready(sup, i) {
                self.start_slot(sup, i, k, now);
            }
        }
    }
}
