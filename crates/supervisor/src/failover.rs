//! The failover manager: what each kind of failure triggers (one enum, one `match`), restart
//! backoff per replica slot, crash-loop detection, and the cascade guard with protective mode.
//!
//! | failure | action |
//! |---|---|
//! | exited | restart at once, then with backoff |
//! | unhealthy | graceful restart (api: the other side keeps accepting on the shared socket) |
//! | unresponsive | kill and replace; release the worker's queue leases |
//! | resource exhaustion | restart, and scale up if load is high |
//! | crash loop | back off (1 s doubling to 5 min, reset after 10 min healthy) |
//!
//! Concurrency: [`FailoverManager`] is plain data owned by the supervisor thread; every method
//! takes `now` from the injected clock, so a ten-minute scenario runs in microseconds.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use crate::clock::Moment;
use crate::config::Role;
use crate::plan::{CascadePolicy, RestartPolicy};
use crate::probe::ProbeFailure;
use crate::runtime::InstanceStatus;

/// How a resource ran out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "resource", rename_all = "snake_case")]
pub enum Exhaustion {
    /// Resident memory above the service's limit.
    MemoryOverLimit {
        /// Memory seen.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Killed by SIGKILL near its memory limit (the kernel's or the engine's OOM killer).
    OomKilled,
    /// CPU at or above the pinned threshold for this many consecutive checks.
    CpuPinned {
        /// Consecutive pinned checks.
        checks: u32,
    },
}

/// A failure of one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureKind {
    /// The process or container is gone.
    Exited {
        /// How it ended.
        status: InstanceStatus,
    },
    /// Consecutive failed probes reached the limit.
    Unhealthy {
        /// How many.
        failed_probes: u32,
        /// The last failure.
        last: ProbeFailure,
    },
    /// Its heartbeat is older than the stale limit (SIGSTOP, network cut, deadlock).
    Unresponsive {
        /// The heartbeat's age.
        heartbeat_age: Duration,
    },
    /// A resource ran out.
    ResourceExhausted(Exhaustion),
    /// Restarted more often than the crash-loop limit allows.
    CrashLoop {
        /// Restarts within the window.
        restarts: u32,
        /// The failure that triggered this restart.
        cause: Box<FailureKind>,
    },
}

impl FailureKind {
    /// Label for metrics and events.
    pub fn label(&self) -> &'static str {
        match self {
            FailureKind::Exited { .. } => "exited",
            FailureKind::Unhealthy { .. } => "unhealthy",
            FailureKind::Unresponsive { .. } => "unresponsive",
            FailureKind::ResourceExhausted(_) => "resource_exhausted",
            FailureKind::CrashLoop { .. } => "crash_loop",
        }
    }
}

/// How to end the failed instance before replacing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopHow {
    /// It is already gone: only reap it.
    AlreadyGone,
    /// SIGTERM, then SIGKILL after the service's grace period (lets requests drain).
    Graceful,
    /// SIGKILL at once (it cannot answer a SIGTERM).
    Kill,
}

/// What to do about one failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The failure, turned into [`FailureKind::CrashLoop`] when the restart intensity is too high.
    pub failure: FailureKind,
    /// How to end the failed instance (at once: a failed instance is not left running).
    pub stop: StopHow,
    /// Wait this long before starting the replacement (backoff, protective mode).
    pub delay: Duration,
    /// Release the worker's queue leases so its jobs run elsewhere at once.
    pub release_leases: bool,
    /// Add a replica (resource exhaustion under high load).
    pub scale_up: bool,
}

/// The action table: one `match` on the failure kind. `backoff` is the slot's current backoff.
pub fn decide(failure: &FailureKind, role: Role, backoff: Duration, load_high: bool) -> Decision {
    let worker = role == Role::Worker;
    let (stop, release_leases, scale_up) = match failure {
        FailureKind::Exited { .. } => (StopHow::AlreadyGone, worker, false),
        FailureKind::Unhealthy { .. } => (StopHow::Graceful, false, false),
        FailureKind::Unresponsive { .. } => (StopHow::Kill, worker, false),
        FailureKind::ResourceExhausted(Exhaustion::OomKilled) => {
            (StopHow::AlreadyGone, worker, worker && load_high)
        }
        FailureKind::ResourceExhausted(_) => (StopHow::Graceful, false, worker && load_high),
        FailureKind::CrashLoop { cause, .. } => {
            let inner = decide(cause, role, backoff, load_high);
            (inner.stop, inner.release_leases, false)
        }
    };
    Decision {
        failure: failure.clone(),
        stop,
        delay: backoff,
        release_leases,
        scale_up,
    }
}

/// Restart backoff of one replica slot: the first restart is immediate, then `initial` doubling
/// up to `max`; reset once the slot has been healthy for `reset_after_healthy`.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempts: u32,
    restarts: VecDeque<Moment>,
}

impl Backoff {
    /// Delay before the next restart, and counts it.
    pub fn next_delay(&mut self, policy: &RestartPolicy, now: Moment) -> Duration {
        let delay = match self.attempts {
            0 => Duration::ZERO,
            n => {
                let factor = 1u32.checked_shl(n - 1).unwrap_or(u32::MAX);
                policy
                    .initial_backoff
                    .saturating_mul(factor)
                    .min(policy.max_backoff)
            }
        };
        self.attempts = self.attempts.saturating_add(1);
        self.restarts.push_back(now);
        delay
    }

    /// Restarts within the crash-loop window ending at `now`.
    pub fn intensity(&mut self, policy: &RestartPolicy, now: Moment) -> u32 {
        while self
            .restarts
            .front()
            .is_some_and(|&t| now.since(t) > policy.crash_loop_window)
        {
            self.restarts.pop_front();
        }
        u32::try_from(self.restarts.len()).unwrap_or(u32::MAX)
    }

    /// Resets after a long enough healthy stretch.
    pub fn note_healthy(&mut self, policy: &RestartPolicy, healthy_since: Moment, now: Moment) {
        if now.since(healthy_since) >= policy.reset_after_healthy {
            self.attempts = 0;
        }
    }

    /// Restarts counted since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// A change of protective mode, for the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardChange {
    /// Entered, with this many failures in the window.
    Entered {
        /// Failures in the window.
        failures: u32,
    },
    /// Left after this long in protective mode.
    Left {
        /// Time spent in protective mode.
        after: Duration,
    },
}

/// The cascade guard: too many failures across services in a window switch on protective mode,
/// in which restarts are spaced out (serving continues with what is up) until no failure has been
/// seen for the stable time.
#[derive(Debug, Clone, Default)]
pub struct CascadeGuard {
    failures: VecDeque<Moment>,
    protective_since: Option<Moment>,
    next_restart_slot: Option<Moment>,
}

impl CascadeGuard {
    /// Whether protective mode is on.
    pub fn protective(&self) -> bool {
        self.protective_since.is_some()
    }

    /// Counts a failure; may switch protective mode on.
    pub fn record_failure(&mut self, policy: &CascadePolicy, now: Moment) -> Option<GuardChange> {
        self.failures.push_back(now);
        while self
            .failures
            .front()
            .is_some_and(|&t| now.since(t) > policy.window)
        {
            self.failures.pop_front();
        }
        let n = u32::try_from(self.failures.len()).unwrap_or(u32::MAX);
        if self.protective_since.is_none() && n >= policy.failures {
            self.protective_since = Some(now);
            return Some(GuardChange::Entered { failures: n });
        }
        None
    }

    /// Turns a wanted restart delay into the one allowed: in protective mode restarts are at
    /// least `protective_restart_interval` apart.
    pub fn restart_delay(
        &mut self,
        policy: &CascadePolicy,
        now: Moment,
        wanted: Duration,
    ) -> Duration {
        if !self.protective() {
            return wanted;
        }
        let earliest = match self.next_restart_slot {
            Some(slot) if slot > now + wanted => slot,
            _ => now + wanted,
        };
        self.next_restart_slot = Some(earliest + policy.protective_restart_interval);
        earliest.since(now)
    }

    /// Leaves protective mode once no failure has been seen for `stable_after`.
    pub fn tick(&mut self, policy: &CascadePolicy, now: Moment) -> Option<GuardChange> {
        let since = self.protective_since?;
        let last = self.failures.back().copied().unwrap_or(since);
        if now.since(last) >= policy.stable_after {
            self.protective_since = None;
            self.next_restart_slot = None;
            return Some(GuardChange::Left {
                after: now.since(since),
            });
        }
        None
    }
}

/// Replica slot key: service name and replica index.
pub type Slot = (String, u32);

/// Backoff per slot plus the cascade guard.
#[derive(Debug, Clone)]
pub struct FailoverManager {
    restart: RestartPolicy,
    cascade: CascadePolicy,
    backoff: HashMap<Slot, Backoff>,
    guard: CascadeGuard,
}

/// Everything one failure led to.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The decision.
    pub decision: Decision,
    /// Protective mode switched on by this failure.
    pub guard: Option<GuardChange>,
}

impl FailoverManager {
    /// A manager with the given policies.
    pub fn new(restart: RestartPolicy, cascade: CascadePolicy) -> Self {
        FailoverManager {
            restart,
            cascade,
            backoff: HashMap::new(),
            guard: CascadeGuard::default(),
        }
    }

    /// Decides what to do about `failure` of `slot` at `now`.
    pub fn on_failure(
        &mut self,
        slot: &Slot,
        role: Role,
        failure: FailureKind,
        load_high: bool,
        now: Moment,
    ) -> Handled {
        let guard = self.guard.record_failure(&self.cascade, now);
        let backoff = self.backoff.entry(slot.clone()).or_default();
        let delay = backoff.next_delay(&self.restart, now);
        let restarts = backoff.intensity(&self.restart, now);
        let failure = if restarts > self.restart.crash_loop_restarts {
            match failure {
                already @ FailureKind::CrashLoop { .. } => already,
                cause => FailureKind::CrashLoop {
                    restarts,
                    cause: Box::new(cause),
                },
            }
        } else {
            failure
        };
        let mut decision = decide(&failure, role, delay, load_high);
        decision.delay = self.guard.restart_delay(&self.cascade, now, decision.delay);
        Handled { decision, guard }
    }

    /// Tells the manager `slot` has been healthy since `since` (resets its backoff when long enough).
    pub fn note_healthy(&mut self, slot: &Slot, since: Moment, now: Moment) {
        if let Some(b) = self.backoff.get_mut(slot) {
            b.note_healthy(&self.restart, since, now);
        }
    }

    /// Advances the cascade guard; may leave protective mode.
    pub fn tick(&mut self, now: Moment) -> Option<GuardChange> {
        self.guard.tick(&self.cascade, now)
    }

    /// Whether protective mode is on.
    pub fn protective(&self) -> bool {
        self.guard.protective()
    }

    /// Restarts counted for `slot` since its last reset.
    pub fn attempts(&self, slot: &Slot) -> u32 {
        self.backoff.get(slot).map(Backoff::attempts).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart() -> RestartPolicy {
        RestartPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            reset_after_healthy: Duration::from_secs(600),
            crash_loop_restarts: 5,
            crash_loop_window: Duration::from_secs(60),
        }
    }

    fn cascade() -> CascadePolicy {
        CascadePolicy {
            failures: 3,
            window: Duration::from_secs(300),
            protective_restart_interval: Duration::from_secs(10),
            stable_after: Duration::from_secs(120),
        }
    }

    fn exited() -> FailureKind {
        FailureKind::Exited {
            status: InstanceStatus::Signalled { signal: 9 },
        }
    }

    #[test]
    fn action_table() {
        let d = decide(&exited(), Role::Worker, Duration::ZERO, false);
        assert_eq!(
            (d.stop, d.release_leases, d.scale_up),
            (StopHow::AlreadyGone, true, false)
        );
        let d = decide(&exited(), Role::Api, Duration::ZERO, false);
        assert!(!d.release_leases);
        let unhealthy = FailureKind::Unhealthy {
            failed_probes: 3,
            last: ProbeFailure::Http {
                reason: "status 500".into(),
            },
        };
        assert_eq!(
            decide(&unhealthy, Role::Api, Duration::ZERO, false).stop,
            StopHow::Graceful
        );
        let stuck = FailureKind::Unresponsive {
            heartbeat_age: Duration::from_secs(7),
        };
        let d = decide(&stuck, Role::Worker, Duration::ZERO, false);
        assert_eq!((d.stop, d.release_leases), (StopHow::Kill, true));
        let mem =
            FailureKind::ResourceExhausted(Exhaustion::MemoryOverLimit { bytes: 2, limit: 1 });
        let d = decide(&mem, Role::Worker, Duration::ZERO, true);
        assert_eq!((d.stop, d.scale_up), (StopHow::Graceful, true));
        assert!(!decide(&mem, Role::Worker, Duration::ZERO, false).scale_up);
        assert!(!decide(&mem, Role::Api, Duration::ZERO, true).scale_up);
        let oom = FailureKind::ResourceExhausted(Exhaustion::OomKilled);
        assert_eq!(
            decide(&oom, Role::Worker, Duration::ZERO, true).stop,
            StopHow::AlreadyGone
        );
        let looped = FailureKind::CrashLoop {
            restarts: 6,
            cause: Box::new(stuck),
        };
        let d = decide(&looped, Role::Worker, Duration::from_secs(8), true);
        assert_eq!(
            (d.stop, d.release_leases, d.delay),
            (StopHow::Kill, true, Duration::from_secs(8))
        );
    }

    #[test]
    fn backoff_is_immediate_then_doubles_to_five_minutes() {
        let p = restart();
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..12)
            .map(|i| b.next_delay(&p, Moment::from_secs(i * 1000)).as_secs())
            .collect();
        assert_eq!(delays, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn backoff_resets_after_ten_minutes_healthy() {
        let p = restart();
        let mut b = Backoff::default();
        for i in 0..4 {
            b.next_delay(&p, Moment::from_secs(i));
        }
        b.note_healthy(&p, Moment::from_secs(10), Moment::from_secs(10 + 599));
        assert_eq!(b.attempts(), 4);
        b.note_healthy(&p, Moment::from_secs(10), Moment::from_secs(10 + 600));
        assert_eq!(b.next_delay(&p, Moment::from_secs(700)), Duration::ZERO);
    }

    #[test]
    fn crash_loop_is_named_after_the_intensity_limit() {
        let mut m = FailoverManager::new(
            restart(),
            CascadePolicy {
                failures: 1000,
                ..cascade()
            },
        );
        let slot = ("worker".to_string(), 0);
        let mut t = Moment::ZERO;
        let mut kinds = Vec::new();
        for _ in 0..7 {
            let h = m.on_failure(&slot, Role::Worker, exited(), false, t);
            kinds.push(h.decision.failure.label());
            t = t + h.decision.delay + Duration::from_millis(100);
        }
        assert_eq!(kinds[..5], ["exited"; 5]);
        assert_eq!(kinds[5..], ["crash_loop"; 2]);
    }

    #[test]
    fn ten_minute_cascade_scenario() {
        // Three services fail within five minutes: protective mode spaces restarts 10 s apart;
        // two quiet minutes later it ends. Simulated time only: this runs in microseconds.
        let mut m = FailoverManager::new(restart(), cascade());
        let a = ("api-primary".to_string(), 0);
        let w = ("worker".to_string(), 0);
        let s = ("scheduler".to_string(), 0);
        let h1 = m.on_failure(&a, Role::Api, exited(), false, Moment::from_secs(0));
        assert_eq!((h1.decision.delay, h1.guard), (Duration::ZERO, None));
        let h2 = m.on_failure(&w, Role::Worker, exited(), false, Moment::from_secs(60));
        assert!(h2.guard.is_none() && !m.protective());
        let h3 = m.on_failure(&s, Role::Scheduler, exited(), false, Moment::from_secs(120));
        assert_eq!(h3.guard, Some(GuardChange::Entered { failures: 3 }));
        assert!(m.protective());
        assert_eq!(h3.decision.delay, Duration::ZERO);
        // Two more failures at the same moment: restarts 10 s apart, not at once.
        let h4 = m.on_failure(&a, Role::Api, exited(), false, Moment::from_secs(121));
        let h5 = m.on_failure(&w, Role::Worker, exited(), false, Moment::from_secs(121));
        assert_eq!(h4.decision.delay, Duration::from_secs(9));
        assert_eq!(h5.decision.delay, Duration::from_secs(19));
        // Still failures within the stable time: stays protective.
        assert_eq!(m.tick(Moment::from_secs(200)), None);
        assert_eq!(
            m.tick(Moment::from_secs(241)),
            Some(GuardChange::Left {
                after: Duration::from_secs(121)
            })
        );
        assert!(!m.protective());
        // Back to normal backoff for a fresh slot.
        let h6 = m.on_failure(
            &("other".to_string(), 0),
            Role::Other,
            exited(),
            false,
            Moment::from_secs(600),
        );
        assert_eq!(h6.decision.delay, Duration::ZERO);
    }

    #[test]
    fn failures_outside_the_window_do_not_cascade() {
        let mut g = CascadeGuard::default();
        let p = cascade();
        assert!(g.record_failure(&p, Moment::from_secs(0)).is_none());
        assert!(g.record_failure(&p, Moment::from_secs(200)).is_none());
        assert!(g.record_failure(&p, Moment::from_secs(400)).is_none());
        assert!(!g.protective());
    }
}
