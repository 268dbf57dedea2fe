//! Rolling restarts on request (`sadomap restart SERVICE`): one replica at a time, a replacement
//! is started next to the old instance, and only once it is healthy does the old one get a
//! graceful stop. With `inherit_listener` both accept on the same socket meanwhile, so no request
//! is refused.
//!
//! Concurrency: runs inside the supervisor loop's tick (see the module doc of `supervisor`);
//! commands arrive over a channel from any number of [`Control`] clones.

use std::sync::{mpsc, Arc};

use crate::clock::Moment;
use crate::error::ControlError;
use crate::events::{Event, InstanceStarted, Restarted, RollingRestarted, RuntimeFailed};
use crate::failover::StopHow;
use crate::health::{Check, HealthState, InstanceHealth};

use super::state::{probe_instance, LoopState, Phase, Running};
use super::Supervisor;

/// A command to a running supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    RollingRestart { service: String },
}

/// Sends commands to a running [`Supervisor`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) services: Arc<Vec<String>>,
}

impl Control {
    /// Restarts every instance of `service`, one at a time, each replaced only once its
    /// successor is healthy. Returns at once; progress shows as `restarted` events (reason
    /// `requested`) and a final `rolling_restarted` event.
    pub fn restart(&self, service: &str) -> Result<(), ControlError> {
        if !self.services.iter().any(|s| s == service) {
            return Err(ControlError::UnknownService(service.to_string()));
        }
        self.tx
            .send(Command::RollingRestart {
                service: service.to_string(),
            })
            .map_err(|_| ControlError::NotRunning)
    }
}

/// Progress of one rolling restart.
pub(super) struct Rolling {
    service: usize,
    next: usize,
    surge: Option<Running>,
    started: Moment,
    replaced: u32,
}

impl LoopState {
    /// Queues requested rolling restarts (one at a time per service).
    pub(super) fn take_commands(&mut self, sup: &Supervisor, now: Moment) {
        while let Ok(cmd) = sup.commands.try_recv() {
            match cmd {
                Command::RollingRestart { service } => {
                    let Some(i) = sup.plan.services.iter().position(|s| s.name == service) else {
                        continue;
                    };
                    if !self.rolling.iter().any(|r| r.service == i) {
                        self.rolling.push_back(Rolling {
                            service: i,
                            next: 0,
                            surge: None,
                            started: now,
                            replaced: 0,
                        });
                    }
                }
            }
        }
    }

    fn abort_roll(
        &mut self,
        sup: &Supervisor,
        r: Rolling,
        surge: Option<Running>,
        error: String,
        now: Moment,
    ) {
        if let Some(s) = surge {
            let _ = sup.runtime.kill(&s.instance);
            sup.runtime.remove(&s.instance);
        }
        Self::emit(
            sup,
            now,
            Event::RuntimeFailed(RuntimeFailed {
                service: sup.plan.services[r.service].name.clone(),
                operation: "rolling_restart",
                error,
            }),
        );
    }

    /// Advances the first queued rolling restart by one step.
    pub(super) fn roll(&mut self, sup: &Supervisor, now: Moment) {
        let Some(mut r) = self.rolling.pop_front() else {
            return;
        };
        let i = r.service;
        let plan = &sup.plan.services[i];
        loop {
            if r.next >= self.services[i].slots.len() {
                Self::emit(
                    sup,
                    now,
                    Event::RollingRestarted(RollingRestarted {
                        service: plan.name.clone(),
                        instances: r.replaced,
                        took_ms: u64::try_from(now.since(r.started).as_millis())
                            .unwrap_or(u64::MAX),
                    }),
                );
                return;
            }
            let Some(mut surge) = r.surge.take() else {
                // Only running slots are rolled; a slot backing off restarts fresh anyway.
                if !matches!(self.services[i].slots[r.next].phase, Phase::Running(_)) {
                    r.next += 1;
                    continue;
                }
                let replica = self.services[i].slots[r.next].replica;
                let (launch, worker_id) = self.launch_for(sup, i, replica);
                match sup.runtime.start(&launch) {
                    Ok(started) => {
                        Self::emit(
                            sup,
                            now,
                            Event::InstanceStarted(InstanceStarted {
                                service: plan.name.clone(),
                                role: plan.role,
                                replica,
                                instance: started.id.clone(),
                                pid: started.pid,
                            }),
                        );
                        r.surge = Some(Running {
                            instance: started.id,
                            pid: started.pid,
                            worker_id: started.worker_id.clone().unwrap_or(worker_id),
                            health: InstanceHealth::new(now, &sup.plan.health),
                        });
                        self.rolling.push_front(r);
                    }
                    Err(e) => self.abort_roll(sup, r, None, e.to_string(), now),
                }
                return;
            };
            let probed = probe_instance(
                &*sup.runtime,
                sup.heartbeats.as_deref(),
                plan,
                sup.plan.health.stale_after,
                (
                    &surge.instance,
                    &surge.worker_id,
                    now.since(surge.health.started_at()),
                ),
            );
            if let Ok(st) = probed.status {
                if st.is_gone() {
                    let error = format!("replacement {} {st}", surge.instance);
                    self.abort_roll(sup, r, Some(surge), error, now);
                    return;
                }
            }
            let check = Check::new(now, probed.check, probed.latency, probed.stats);
            let obs = surge
                .health
                .record(check, &sup.plan.health, plan.memory_limit);
            if let Some(f) = obs.failure {
                let error = format!("replacement {} failed: {}", surge.instance, f.label());
                self.abort_roll(sup, r, Some(surge), error, now);
                return;
            }
            if surge.health.state() != HealthState::Healthy {
                r.surge = Some(surge);
                self.rolling.push_front(r);
                return;
            }
            let new_id = surge.instance.clone();
            let new_pid = surge.pid;
            let slot = &mut self.services[i].slots[r.next];
            let old = std::mem::replace(&mut slot.phase, Phase::Running(surge));
            slot.restarts += 1;
            slot.last_reason = Some("requested".into());
            if let Phase::Running(o) = old {
                self.stop_in_background(sup, plan, o.instance.clone());
                Self::emit(
                    sup,
                    now,
                    Event::Restarted(Restarted {
                        service: plan.name.clone(),
                        old_instance: o.instance,
                        instance: new_id,
                        pid: new_pid,
                        reason: "requested",
                        stop: StopHow::Graceful,
                        delay_ms: 0,
                    }),
                );
            }
            r.next += 1;
            r.replaced += 1;
            // Continue with the next slot right away (its replacement starts this tick).
        }
    }
}
