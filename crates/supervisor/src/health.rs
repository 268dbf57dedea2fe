//! The health monitor's per-instance memory: the last N checks in a ring buffer and the state
//! machine starting → healthy → degraded → unhealthy.
//!
//! Rules: the first successful check makes an instance healthy; during the start period failed
//! probes do not count (unless the instance has already been healthy); each failed probe after
//! that makes it degraded, and `unhealthy_after` consecutive ones (3) unhealthy; one success resets
//! it to healthy. A gone process, a heartbeat older than the stale limit (3 intervals), memory over
//! its limit and CPU pinned for N checks are failures at once, whatever the count.
//!
//! Concurrency: [`InstanceHealth`] is plain data owned by the supervisor thread; `now` is passed in.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Moment;
use crate::failover::{Exhaustion, FailureKind};
use crate::plan::HealthPolicy;
use crate::probe::ProbeFailure;
use crate::runtime::{InstanceStatus, Stats};

/// A fixed-capacity buffer keeping the newest items.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    /// An empty ring holding at most `capacity` (at least 1) items.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Ring {
            items: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds an item, dropping the oldest when full.
    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Items, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    /// The newest item.
    pub fn last(&self) -> Option<&T> {
        self.items.back()
    }

    /// Number of items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Health of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Started, no successful check yet.
    Starting,
    /// Last check passed.
    Healthy,
    /// Failing, not yet for long enough to act (or near a resource limit).
    Degraded,
    /// Failed enough to be acted on.
    Unhealthy,
}

impl HealthState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Unhealthy => "unhealthy",
        }
    }
}

/// The result of one check (all probes of a service, run together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CheckStatus {
    /// Every probe passed.
    Passed,
    /// A probe failed (the first failure, in order alive, heartbeat, http).
    Failed {
        /// Why.
        failure: ProbeFailure,
    },
}

/// One check as kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// When it ran (milliseconds on the supervisor clock).
    #[serde(serialize_with = "moment_ms", deserialize_with = "ms_moment")]
    pub at: Moment,
    /// Outcome.
    #[serde(flatten)]
    pub status: CheckStatus,
    /// HTTP probe latency, if one ran and answered.
    pub latency_ms: Option<f64>,
    /// CPU % at the check.
    pub cpu_percent: f64,
    /// Resident memory at the check.
    pub memory_bytes: u64,
}

fn moment_ms<S: serde::Serializer>(m: &Moment, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(m.since_origin().as_millis()).unwrap_or(u64::MAX))
}

/// Reads what [`moment_ms`] writes (so `sadomap status` can read a status answer back).
fn ms_moment<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Moment, D::Error> {
    u64::deserialize(d).map(|ms| Moment::from_duration(std::time::Duration::from_millis(ms)))
}

impl Check {
    /// A check from its parts.
    pub fn new(at: Moment, status: CheckStatus, latency: Option<Duration>, stats: Stats) -> Self {
        Check {
            at,
            status,
            latency_ms: latency.map(|d| d.as_secs_f64() * 1000.0),
            cpu_percent: stats.cpu_percent,
            memory_bytes: stats.memory_bytes,
        }
    }
}

/// What recording a check found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// State change `(from, to)`, if any.
    pub transition: Option<(HealthState, HealthState)>,
    /// A failure to act on, if any.
    pub failure: Option<FailureKind>,
}

/// Health of one instance over time.
#[derive(Debug, Clone)]
pub struct InstanceHealth {
    state: HealthState,
    started_at: Moment,
    consecutive_failures: u32,
    consecutive_pinned: u32,
    was_healthy: bool,
    healthy_since: Option<Moment>,
    history: Ring<Check>,
}

impl InstanceHealth {
    /// A newly started instance.
    pub fn new(started_at: Moment, policy: &HealthPolicy) -> Self {
        InstanceHealth {
            state: HealthState::Starting,
            started_at,
            consecutive_failures: 0,
            consecutive_pinned: 0,
            was_healthy: false,
            healthy_since: None,
            history: Ring::new(policy.history),
        }
    }

    /// Current state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// When it was started.
    pub fn started_at(&self) -> Moment {
        self.started_at
    }

    /// Since when it has been healthy without a break.
    pub fn healthy_since(&self) -> Option<Moment> {
        self.healthy_since
    }

    /// Consecutive failed checks.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The kept checks, oldest first.
    pub fn history(&self) -> &Ring<Check> {
        &self.history
    }

    /// Records `check` and applies the rules in the module doc.
    pub fn record(
        &mut self,
        check: Check,
        policy: &HealthPolicy,
        memory_limit: Option<u64>,
    ) -> Observation {
        let before = self.state;
        let now = check.at;
        let in_start_period = !self.was_healthy && now.since(self.started_at) < policy.start_period;
        let pinned = check.cpu_percent >= policy.cpu_pinned_percent;
        self.consecutive_pinned = if pinned {
            self.consecutive_pinned + 1
        } else {
            0
        };
        let over_memory = memory_limit.filter(|&limit| check.memory_bytes > limit);
        let near_memory = memory_limit.is_some_and(|limit| check.memory_bytes > limit / 10 * 9);

        let mut failure = None;
        match &check.status {
            CheckStatus::Passed => {
                self.consecutive_failures = 0;
                self.was_healthy = true;
                self.state = if near_memory || pinned {
                    HealthState::Degraded
                } else {
                    HealthState::Healthy
                };
            }
            CheckStatus::Failed { failure: f } => {
                if let ProbeFailure::Exited { .. } = f {
                    // Gone is gone: no start period, no count.
                    self.consecutive_failures += 1;
                    self.state = HealthState::Unhealthy;
                } else if !in_start_period {
                    self.consecutive_failures += 1;
                    self.state = if self.consecutive_failures >= policy.unhealthy_after {
                        HealthState::Unhealthy
                    } else {
                        HealthState::Degraded
                    };
                    failure = match f {
                        ProbeFailure::HeartbeatStale { age_ms } => {
                            Some(FailureKind::Unresponsive {
                                heartbeat_age: Duration::from_millis(*age_ms),
                            })
                        }
                        _ if self.state == HealthState::Unhealthy => Some(FailureKind::Unhealthy {
                            failed_probes: self.consecutive_failures,
                            last: f.clone(),
                        }),
                        _ => None,
                    };
                }
            }
        }
        if failure.is_none() {
            if let Some(limit) = over_memory {
                failure = Some(FailureKind::ResourceExhausted(
                    Exhaustion::MemoryOverLimit {
                        bytes: check.memory_bytes,
                        limit,
                    },
                ));
            } else if self.consecutive_pinned >= policy.cpu_pinned_checks {
                failure = Some(FailureKind::ResourceExhausted(Exhaustion::CpuPinned {
                    checks: self.consecutive_pinned,
                }));
            }
        }
        if failure.is_some() {
            self.state = HealthState::Unhealthy;
        }
        self.healthy_since = match (self.state, self.healthy_since) {
            (HealthState::Healthy | HealthState::Degraded, Some(t)) => Some(t),
            (HealthState::Healthy | HealthState::Degraded, None) => Some(now),
            _ => None,
        };
        self.history.push(check);
        Observation {
            transition: (before != self.state).then_some((before, self.state)),
            failure,
        }
    }

    /// Classifies a gone instance: an OOM kill if it died of SIGKILL near its memory limit (by
    /// the last recorded check: call this before recording the check that found it gone).
    pub fn exit_failure(&self, status: InstanceStatus, memory_limit: Option<u64>) -> FailureKind {
        let last_memory = self.history.last().map(|c| c.memory_bytes).unwrap_or(0);
        match (status, memory_limit) {
            (InstanceStatus::Signalled { signal: 9 }, Some(limit))
                if last_memory > limit / 10 * 9 =>
            {
                FailureKind::ResourceExhausted(Exhaustion::OomKilled)
            }
            _ => FailureKind::Exited { status },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            interval: Duration::from_secs(2),
            exit_check_interval: Duration::from_millis(100),
            start_period: Duration::from_secs(10),
            unhealthy_after: 3,
            stale_after: Duration::from_secs(6),
            history: 100,
            cpu_pinned_percent: 95.0,
            cpu_pinned_checks: 3,
        }
    }

    fn ok(t: u64) -> Check {
        Check::new(
            Moment::from_secs(t),
            CheckStatus::Passed,
            Some(Duration::from_millis(3)),
            Stats::default(),
        )
    }

    fn http_fail(t: u64) -> Check {
        Check::new(
            Moment::from_secs(t),
            CheckStatus::Failed {
                failure: ProbeFailure::Http {
                    reason: "status 500".into(),
                },
            },
            None,
            Stats::default(),
        )
    }

    #[test]
    fn ring_keeps_the_newest() {
        let mut r = Ring::new(3);
        for i in 0..5 {
            r.push(i);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(r.last(), Some(&4));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn history_is_capped_at_100() {
        let p = policy();
        let mut h = InstanceHealth::new(Moment::ZERO, &p);
        for t in 0..250 {
            h.record(ok(t), &p, None);
        }
        assert_eq!(h.history().len(), 100);
        assert_eq!(
            h.history().iter().next().map(|c| c.at),
            Some(Moment::from_secs(150))
        );
    }

    #[test]
    fn unhealthy_after_three_consecutive_failures_reset_by_a_success() {
        let p = policy();
        let mut h = InstanceHealth::new(Moment::ZERO, &p);
        let o = h.record(ok(2), &p, None);
        assert_eq!(
            o.transition,
            Some((HealthState::Starting, HealthState::Healthy))
        );
        assert_eq!(
            h.record(http_fail(4), &p, None).transition,
            Some((HealthState::Healthy, HealthState::Degraded))
        );
        assert!(h.record(http_fail(6), &p, None).failure.is_none());
        // A success resets the count.
        h.record(ok(8), &p, None);
        assert_eq!(h.state(), HealthState::Healthy);
        assert!(h.record(http_fail(10), &p, None).failure.is_none());
        assert!(h.record(http_fail(12), &p, None).failure.is_none());
        let o = h.record(http_fail(14), &p, None);
        assert_eq!(h.state(), HealthState::Unhealthy);
        assert!(matches!(
            o.failure,
            Some(FailureKind::Unhealthy {
                failed_probes: 3,
                ..
            })
        ));
    }

    #[test]
    fn start_period_forgives_failures_until_first_success() {
        let p = policy();
        let mut h = InstanceHealth::new(Moment::ZERO, &p);
        for t in [1, 3, 5, 7, 9] {
            assert!(h.record(http_fail(t), &p, None).failure.is_none());
            assert_eq!(h.state(), HealthState::Starting);
        }
        // After the start period failures count.
        h.record(http_fail(11), &p, None);
        h.record(http_fail(13), &p, None);
        assert!(h.record(http_fail(15), &p, None).failure.is_some());
    }

    #[test]
    fn stale_heartbeat_is_unresponsive_at_once() {
        let p = policy();
        let mut h = InstanceHealth::new(Moment::ZERO, &p);
        h.record(ok(2), &p, None);
        let o = h.record(
            Check::new(
                Moment::from_secs(20),
                CheckStatus::Failed {
                    failure: ProbeFailure::HeartbeatStale { age_ms: 7_000 },
                },
                None,
                Stats::default(),
            ),
            &p,
            None,
        );
        assert_eq!(
            o.failure,
            Some(FailureKind::Unresponsive {
                heartbeat_age: Duration::from_secs(7)
            })
        );
    }

    #[test]
    fn memory_over_limit_and_pinned_cpu_are_exhaustion() {
        let p = policy();
        let mut h = InstanceHealth::new(Moment::ZERO, &p);
        let heavy = Stats {
            cpu_percent: 1.0,
            memory_bytes: 2_000,
        };
        let o = h.record(
            Check::new(Moment::from_secs(2), CheckStatus::Passed, None, heavy),
            &p,
            Some(1_000),
        );
        assert!(matches!(
            o.failure,
            Some(FailureKind::ResourceExhausted(
                Exhaustion::MemoryOverLimit {
                    bytes: 2_000,
                    limit: 1_000
                }
            ))
        ));
        let mut h = InstanceHealth::new(Moment::ZERO, &p);
        let busy = Stats {
            cpu_percent: 99.0,
            memory_bytes: 10,
        };
        for t in [2, 4] {
            let o = h.record(
                Check::new(Moment::from_secs(t), CheckStatus::Passed, None, busy),
                &p,
                None,
            );
            assert!(o.failure.is_none());
            assert_eq!(h.state(), HealthState::Degraded);
        }
        let o = h.record(
            Check::new(Moment::from_secs(6), CheckStatus::Passed, None, busy),
            &p,
            None,
        );
        assert!(matches!(
            o.failure,
            Some(FailureKind::ResourceExhausted(Exhaustion::CpuPinned {
                checks: 3
            }))
        ));
    }

    #[test]
    fn exit_near_memory_limit_by_sigkill_is_an_oom_kill() {
        let p = policy();
        let mut h = InstanceHealth::new(Moment::ZERO, &p);
        let heavy = Stats {
            cpu_percent: 1.0,
            memory_bytes: 950,
        };
        h.record(
            Check::new(Moment::from_secs(2), CheckStatus::Passed, None, heavy),
            &p,
            Some(1_000),
        );
        assert_eq!(
            h.exit_failure(InstanceStatus::Signalled { signal: 9 }, Some(1_000)),
            FailureKind::ResourceExhausted(Exhaustion::OomKilled)
        );
        assert_eq!(
            h.exit_failure(InstanceStatus::Exited { code: 1 }, Some(1_000)),
            FailureKind::Exited {
                status: InstanceStatus::Exited { code: 1 }
            }
        );
    }

    #[test]
    fn healthy_since_survives_degraded_but_not_unhealthy() {
        let p = policy();
        let mut h = InstanceHealth::new(Moment::ZERO, &p);
        h.record(ok(2), &p, None);
        h.record(http_fail(4), &p, None);
        assert_eq!(h.healthy_since(), Some(Moment::from_secs(2)));
        h.record(http_fail(6), &p, None);
        h.record(http_fail(8), &p, None);
        assert_eq!(h.healthy_since(), None);
        h.record(ok(10), &p, None);
        assert_eq!(h.healthy_since(), Some(Moment::from_secs(10)));
    }
}
