//! The loop's state: replica slots and their phases; starting, probing and recording.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::clock::Moment;
use crate::events::{
    Event, HealthChanged, InstanceStarted, ProbeFailed, ProtectiveModeLeft, Restarted,
    RuntimeFailed,
};
use crate::failover::{FailoverManager, FailureKind, GuardChange, StopHow};
use crate::health::{Check, CheckStatus, HealthState, InstanceHealth};
use crate::plan::{Replicas, ServicePlan};
use crate::probe::ProbeFailure;
use crate::runtime::{labels, InstanceId, InstanceStatus, Launch, Runtime, Stats};
use crate::scaling::ScalingManager;
use crate::signals::{Heartbeats, LoadSample};
use crate::status::{InstanceRow, ServiceStatus, SlotPhase, Status};

use super::Supervisor;

/// A running instance of a slot.
pub(super) struct Running {
    pub(super) instance: InstanceId,
    pub(super) pid: Option<u32>,
    pub(super) worker_id: String,
    pub(super) health: InstanceHealth,
}

/// Why a slot waits and what to report when it starts again.
pub(super) struct Replacing {
    pub(super) old: InstanceId,
    pub(super) reason: &'static str,
    pub(super) stop: StopHow,
    pub(super) delay: Duration,
}

pub(super) enum Phase {
    Pending,
    Running(Running),
    BackingOff { until: Moment, replacing: Replacing },
}

pub(super) struct SlotState {
    pub(super) replica: u32,
    pub(super) phase: Phase,
    pub(super) restarts: u32,
    pub(super) last_reason: Option<String>,
}

pub(super) struct ServiceState {
    pub(super) desired: u32,
    pub(super) slots: Vec<SlotState>,
    pub(super) scaler: Option<ScalingManager>,
    pub(super) last_load: Option<LoadSample>,
}

/// A background stop that failed: (service, error).
pub(super) type StopError = (String, String);

pub(super) struct LoopState {
    pub(super) services: Vec<ServiceState>,
    pub(super) failover: FailoverManager,
    pub(super) next_worker: u64,
    pub(super) next_scale: Moment,
    pub(super) ticks: u64,
    pub(super) stop_errors_tx: mpsc::Sender<StopError>,
    pub(super) stop_errors_rx: mpsc::Receiver<StopError>,
    pub(super) background: Vec<thread::JoinHandle<()>>,
    pub(super) rolling: std::collections::VecDeque<super::rolling::Rolling>,
}

/// What the probes of one instance found.
pub(super) struct Probed {
    pub(super) status: Result<InstanceStatus, String>,
    pub(super) stats: Stats,
    pub(super) check: CheckStatus,
    pub(super) latency: Option<Duration>,
}

pub(super) fn probe_instance(
    runtime: &dyn Runtime,
    heartbeats: Option<&dyn Heartbeats>,
    plan: &ServicePlan,
    stale_after: Duration,
    run: (&InstanceId, &str, Duration),
) -> Probed {
    let (id, worker_id, age_since_start) = run;
    let status = runtime.inspect(id).map_err(|e| e.to_string());
    if let Ok(st) = status {
        if st.is_gone() {
            return Probed {
                status,
                stats: Stats::default(),
                check: CheckStatus::Failed {
                    failure: ProbeFailure::Exited {
                        exit: st.to_string(),
                    },
                },
                latency: None,
            };
        }
    }
    let stats = runtime.stats(id).unwrap_or_default();
    let mut latency = None;
    let mut check = CheckStatus::Passed;
    if plan.probes.heartbeat {
        let age = heartbeats
            .and_then(|h| h.heartbeat_age(worker_id))
            .map_or(age_since_start, |a| a.min(age_since_start));
        if age > stale_after {
            check = CheckStatus::Failed {
                failure: ProbeFailure::HeartbeatStale {
                    age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
                },
            };
        }
    }
    if let (CheckStatus::Passed, Some(http)) = (&check, &plan.probes.http) {
        // A container is probed at its own address; a local process at the URL's host.
        let target = runtime.address(id).map(|ip| http.at(ip));
        match target.as_ref().unwrap_or(http).get() {
            Ok(l) => latency = Some(l),
            Err(reason) => {
                check = CheckStatus::Failed {
                    failure: ProbeFailure::Http { reason },
                }
            }
        }
    }
    Probed {
        status,
        stats,
        check,
        latency,
    }
}

impl LoopState {
    pub(super) fn new(sup: &Supervisor) -> Self {
        let services = sup
            .plan
            .services
            .iter()
            .map(|s| {
                let desired = s.replicas.initial();
                let scaler = match s.replicas {
                    Replicas::Scaled { min, max } => Some(ScalingManager::new(
                        sup.plan.scaling.clone(),
                        min,
                        max,
                        desired,
                    )),
                    Replicas::Fixed(_) => None,
                };
                ServiceState {
                    desired,
                    slots: (0..desired)
                        .map(|replica| SlotState {
                            replica,
                            phase: Phase::Pending,
                            restarts: 0,
                            last_reason: None,
                        })
                        .collect(),
                    scaler,
                    last_load: None,
                }
            })
            .collect();
        let (stop_errors_tx, stop_errors_rx) = mpsc::channel();
        LoopState {
            services,
            failover: FailoverManager::new(sup.plan.restart.clone(), sup.plan.cascade.clone()),
            next_worker: 0,
            next_scale: sup.clock.now() + sup.plan.scaling.interval,
            ticks: 0,
            stop_errors_tx,
            stop_errors_rx,
            background: Vec::new(),
            rolling: std::collections::VecDeque::new(),
        }
    }

    pub(super) fn emit(sup: &Supervisor, now: Moment, e: Event) {
        sup.telemetry.emit(now, e);
    }

    pub(super) fn tick(&mut self, sup: &Supervisor) {
        let now = sup.clock.now();
        self.ticks += 1;
        while let Ok((service, error)) = self.stop_errors_rx.try_recv() {
            Self::emit(
                sup,
                now,
                Event::RuntimeFailed(RuntimeFailed {
                    service,
                    operation: "stop",
                    error,
                }),
            );
        }
        self.background.retain(|h| !h.is_finished());
        self.start_due(sup, now);
        if self.ticks == 1 {
            // The first probes may wait out their timeouts while the services start; show
            // the services meanwhile rather than an empty status.
            self.publish(sup, now);
        }
        self.probe_all(sup, now);
        self.take_commands(sup, now);
        self.roll(sup, now);
        if let Some(GuardChange::Left { after }) = self.failover.tick(now) {
            Self::emit(
                sup,
                now,
                Event::ProtectiveModeLeft(ProtectiveModeLeft {
                    after_secs: after.as_secs(),
                }),
            );
        }
        if now >= self.next_scale {
            self.next_scale = now + sup.plan.scaling.interval;
            self.scale(sup, now);
        }
        self.publish(sup, now);
    }

    /// Whether every dependency of service `i` has a running, healthy (or degraded) instance.
    pub(super) fn deps_ready(&self, sup: &Supervisor, i: usize) -> bool {
        sup.plan.services[i].depends_on.iter().all(|dep| {
            sup.plan
                .services
                .iter()
                .position(|s| &s.name == dep)
                .is_some_and(|j| {
                    self.services[j].slots.iter().any(|slot| {
                        matches!(&slot.phase, Phase::Running(r)
                        if matches!(r.health.state(), HealthState::Healthy | HealthState::Degraded))
                    })
                })
        })
    }

    fn start_due(&mut self, sup: &Supervisor, now: Moment) {
        for i in 0..self.services.len() {
            let ready = self.deps_ready(sup, i);
            for k in 0..self.services[i].slots.len() {
                let due = match &self.services[i].slots[k].phase {
                    Phase::Pending => ready,
                    Phase::BackingOff { until, .. } => *until <= now,
                    Phase::Running(_) => false,
                };
                if due {
                    self.start_slot(sup, i, k, now);
                }
            }
        }
    }

    /// The launch of a new instance of service `i` in replica slot `replica`, with a fresh
    /// worker id.
    pub(super) fn launch_for(
        &mut self,
        sup: &Supervisor,
        i: usize,
        replica: u32,
    ) -> (Launch, String) {
        let plan = &sup.plan.services[i];
        self.next_worker += 1;
        let worker_id = format!(
            "{}.{}.{}.{}",
            plan.name,
            replica,
            std::process::id(),
            self.next_worker
        );
        let mut env = plan.env.clone();
        env.insert("SADOMAP_SERVICE".into(), plan.name.clone());
        env.insert("SADOMAP_ROLE".into(), plan.role.as_str().into());
        env.insert("SADOMAP_REPLICA".into(), replica.to_string());
        env.insert("SADOMAP_WORKER_ID".into(), worker_id.clone());
        let launch = Launch {
            service: plan.name.clone(),
            role: plan.role,
            replica,
            command: plan.command.clone(),
            args: plan.args.clone(),
            env,
            labels: BTreeMap::from([
                (labels::SERVICE.to_string(), plan.name.clone()),
                (labels::ROLE.to_string(), plan.role.as_str().to_string()),
                (labels::REPLICA.to_string(), replica.to_string()),
                (labels::WORKER_ID.to_string(), worker_id.clone()),
            ]),
            inherit_listener: plan.inherit_listener,
        };
        (launch, worker_id)
    }

    pub(super) fn start_slot(&mut self, sup: &Supervisor, i: usize, k: usize, now: Moment) {
        let plan = &sup.plan.services[i];
        let replica = self.services[i].slots[k].replica;
        let (launch, worker_id) = self.launch_for(sup, i, replica);
        match sup.runtime.start(&launch) {
            Ok(started) => {
                let slot = &mut self.services[i].slots[k];
                let previous = std::mem::replace(
                    &mut slot.phase,
                    Phase::Running(Running {
                        instance: started.id.clone(),
                        pid: started.pid,
                        worker_id: started.worker_id.clone().unwrap_or(worker_id),
                        health: InstanceHealth::new(now, &sup.plan.health),
                    }),
                );
                let event = match previous {
                    Phase::BackingOff { replacing: r, .. } => Event::Restarted(Restarted {
                        service: plan.name.clone(),
                        old_instance: r.old,
                        instance: started.id,
                        pid: started.pid,
                        reason: r.reason,
                        stop: r.stop,
                        delay_ms: u64::try_from(r.delay.as_millis()).unwrap_or(u64::MAX),
                    }),
                    _ => Event::InstanceStarted(InstanceStarted {
                        service: plan.name.clone(),
                        role: plan.role,
                        replica,
                        instance: started.id,
                        pid: started.pid,
                    }),
                };
                Self::emit(sup, now, event);
            }
            Err(e) => {
                Self::emit(
                    sup,
                    now,
                    Event::RuntimeFailed(RuntimeFailed {
                        service: plan.name.clone(),
                        operation: "start",
                        error: e.to_string(),
                    }),
                );
                // A program that cannot start is treated like one that exits at once: backoff.
                let slot_key = (plan.name.clone(), replica);
                let h = self.failover.on_failure(
                    &slot_key,
                    plan.role,
                    FailureKind::Exited {
                        status: InstanceStatus::Exited { code: 127 },
                    },
                    false,
                    now,
                );
                let slot = &mut self.services[i].slots[k];
                let old = match &slot.phase {
                    Phase::BackingOff { replacing, .. } => replacing.old.clone(),
                    _ => InstanceId(String::new()),
                };
                slot.phase = Phase::BackingOff {
                    until: now + h.decision.delay.max(sup.plan.restart.initial_backoff),
                    replacing: Replacing {
                        old,
                        reason: "spawn_failed",
                        stop: StopHow::AlreadyGone,
                        delay: h.decision.delay,
                    },
                };
            }
        }
    }

    /// Between probe ticks: replaces gone instances and those whose heartbeat went stale, and
    /// starts slots whose backoff ended. Only `inspect` and the heartbeat age are read (for local
    /// processes a `waitpid`), so this can run every 100 ms.
    pub(super) fn sweep(&mut self, sup: &Supervisor) {
        let now = sup.clock.now();
        self.start_due(sup, now);
        let mut failed = Vec::new();
        let stale_after = sup.plan.health.stale_after;
        for (i, svc) in self.services.iter().enumerate() {
            let heartbeat = sup.plan.services[i].probes.heartbeat;
            for (k, slot) in svc.slots.iter().enumerate() {
                let Phase::Running(r) = &slot.phase else {
                    continue;
                };
                let Ok(st) = sup.runtime.inspect(&r.instance) else {
                    continue;
                };
                if st.is_gone() {
                    let exit = st.to_string();
                    failed.push((i, k, st, ProbeFailure::Exited { exit }));
                    continue;
                }
                // A stale heartbeat is found here too, not only at the next probe tick, so a
                // hung worker is detected within a sweep of the stale limit.
                let age = match (heartbeat, sup.heartbeats.as_deref()) {
                    (true, Some(h)) => h.heartbeat_age(&r.worker_id),
                    _ => None,
                };
                if let Some(age) = age.map(|a| a.min(now.since(r.health.started_at()))) {
                    if age > stale_after {
                        let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
                        failed.push((i, k, st, ProbeFailure::HeartbeatStale { age_ms }));
                    }
                }
            }
        }
        if failed.is_empty() {
            return;
        }
        for (i, k, st, failure) in failed {
            let probed = Probed {
                status: Ok(st),
                stats: Stats::default(),
                check: CheckStatus::Failed { failure },
                latency: None,
            };
            self.process(sup, i, k, probed, now);
        }
        self.publish(sup, now);
    }

    fn probe_all(&mut self, sup: &Supervisor, now: Moment) {
        let mut targets = Vec::new();
        for (i, svc) in self.services.iter().enumerate() {
            for (k, slot) in svc.slots.iter().enumerate() {
                if let Phase::Running(r) = &slot.phase {
                    targets.push((
                        i,
                        k,
                        r.instance.clone(),
                        r.worker_id.clone(),
                        now.since(r.health.started_at()),
                    ));
                }
            }
        }
        let runtime = &*sup.runtime;
        let heartbeats = sup.heartbeats.as_deref();
        let stale_after = sup.plan.health.stale_after;
        let results: Vec<(usize, usize, Probed)> = thread::scope(|scope| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(i, k, id, worker_id, age)| {
                    let plan = &sup.plan.services[*i];
                    let (i, k) = (*i, *k);
                    scope.spawn(move || {
                        (
                            i,
                            k,
                            probe_instance(
                                runtime,
                                heartbeats,
                                plan,
                                stale_after,
                                (id, worker_id, *age),
                            ),
                        )
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (i, k, probed) in results {
            self.process(sup, i, k, probed, now);
        }
    }

    fn process(&mut self, sup: &Supervisor, i: usize, k: usize, probed: Probed, now: Moment) {
        let plan = &sup.plan.services[i];
        let slot = &mut self.services[i].slots[k];
        let Phase::Running(run) = &mut slot.phase else {
            return;
        };
        let status = match probed.status {
            Ok(s) => s,
            Err(error) => {
                Self::emit(
                    sup,
                    now,
                    Event::RuntimeFailed(RuntimeFailed {
                        service: plan.name.clone(),
                        operation: "inspect",
                        error,
                    }),
                );
                return;
            }
        };
        let check = Check::new(now, probed.check.clone(), probed.latency, probed.stats);
        let instance = run.instance.clone();
        let metrics = sup.telemetry.metrics();
        let labels = [
            ("service", plan.name.as_str()),
            ("instance", instance.0.as_str()),
        ];
        metrics.set(
            "sadomap_supervisor_cpu_percent",
            "CPU use of an instance, % of one core.",
            &labels,
            check.cpu_percent,
        );
        metrics.set(
            "sadomap_supervisor_memory_bytes",
            "Resident memory of an instance.",
            &labels,
            check.memory_bytes as f64,
        );
        if let Some(l) = probed.latency {
            metrics.set(
                "sadomap_supervisor_probe_latency_seconds",
                "Latency of the last HTTP probe.",
                &labels,
                l.as_secs_f64(),
            );
        }
        // Classify an exit before recording it: the OOM test needs the memory of the last check
        // made while the instance was alive, not of this one (a gone process reads 0).
        let exit = status
            .is_gone()
            .then(|| run.health.exit_failure(status, plan.memory_limit));
        let obs = run
            .health
            .record(check, &sup.plan.health, plan.memory_limit);
        if let CheckStatus::Failed { failure } = probed.check {
            Self::emit(
                sup,
                now,
                Event::ProbeFailed(ProbeFailed {
                    service: plan.name.clone(),
                    instance: instance.clone(),
                    failure,
                    consecutive: run.health.consecutive_failures(),
                }),
            );
        }
        if let Some((from, to)) = obs.transition {
            Self::emit(
                sup,
                now,
                Event::HealthChanged(HealthChanged {
                    service: plan.name.clone(),
                    instance: instance.clone(),
                    from,
                    to,
                }),
            );
        }
        let failure = exit.or(obs.failure);
        match failure {
            Some(f) => self.fail(sup, i, k, f, now),
            None => {
                if let Some(since) = run.health.healthy_since() {
                    self.failover
                        .note_healthy(&(plan.name.clone(), slot.replica), since, now);
                }
            }
        }
    }

    fn publish(&self, sup: &Supervisor, now: Moment) {
        for (plan, svc) in sup.plan.services.iter().zip(&self.services) {
            sup.telemetry.metrics().set(
                "sadomap_supervisor_replicas",
                "Replicas wanted, by service.",
                &[("service", &plan.name)],
                f64::from(svc.desired),
            );
        }
        sup.telemetry.metrics().set(
            "sadomap_supervisor_protective_mode",
            "1 while protective mode is on.",
            &[],
            if self.failover.protective() { 1.0 } else { 0.0 },
        );
        let services = sup
            .plan
            .services
            .iter()
            .zip(&self.services)
            .map(|(plan, svc)| ServiceStatus {
                name: plan.name.clone(),
                role: plan.role,
                desired: svc.desired,
                queue_depth: svc.last_load.map(|l| l.depth),
                forecast_mape: svc.scaler.as_ref().and_then(|s| s.forecaster().mape()),
                instances: svc
                    .slots
                    .iter()
                    .map(|slot| {
                        let (instance, pid, worker_id, phase, checks) = match &slot.phase {
                            Phase::Pending => (None, None, None, SlotPhase::Pending, Vec::new()),
                            Phase::Running(r) => (
                                Some(r.instance.clone()),
                                r.pid,
                                Some(r.worker_id.clone()),
                                SlotPhase::Running {
                                    health: r.health.state(),
                                },
                                r.health.history().iter().cloned().collect(),
                            ),
                            Phase::BackingOff { until, .. } => (
                                None,
                                None,
                                None,
                                SlotPhase::BackingOff {
                                    remaining_ms: u64::try_from(until.since(now).as_millis())
                                        .unwrap_or(u64::MAX),
                                },
                                Vec::new(),
                            ),
                        };
                        InstanceRow {
                            replica: slot.replica,
                            instance,
                            pid,
                            worker_id,
                            phase,
                            restarts: slot.restarts,
                            last_restart_reason: slot.last_reason.clone(),
                            last_check: checks.last().cloned(),
                            checks,
                        }
                    })
                    .collect(),
            })
            .collect();
        sup.status.publish(Status {
            runtime: sup.runtime.name().to_string(),
            protective_mode: self.failover.protective(),
            services,
            ticks: self.ticks,
        });
    }

    /// Stops every instance in parallel, each with its service's grace, and waits for them.
    pub(super) fn stop_all(&mut self, sup: &Supervisor) {
        let runtime = &*sup.runtime;
        thread::scope(|scope| {
            for (plan, svc) in sup.plan.services.iter().zip(&self.services) {
                for slot in &svc.slots {
                    if let Phase::Running(r) = &slot.phase {
                        let id = r.instance.clone();
                        scope.spawn(move || {
                            let _ = runtime.stop(&id, plan.stop_grace);
                            runtime.remove(&id);
                        });
                    }
                }
            }
        });
        for h in self.background.drain(..) {
            let _ = h.join();
        }
        let now = sup.clock.now();
        for svc in &mut self.services {
            for slot in &mut svc.slots {
                slot.phase = Phase::Pending;
            }
        }
        self.publish(sup, now);
    }
}
