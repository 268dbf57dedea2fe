//! Time as the supervisor sees it: a monotonic [`Moment`] read from an injected [`Clock`].
//!
//! Every manager (health, failover, scaling) takes `now: Moment` as an argument instead of reading
//! a clock itself, so tests replay a ten-minute scenario in microseconds with a [`ManualClock`].
//!
//! Concurrency: [`SystemClock`] and [`ManualClock`] are `Send + Sync`; a `ManualClock` may be
//! advanced from one thread while others read it (an atomic counter of nanoseconds).

use std::fmt;
use std::ops::{Add, Sub};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A point on the supervisor's monotonic time line: the time elapsed since the clock's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Moment(Duration);

impl Moment {
    /// The clock's origin.
    pub const ZERO: Moment = Moment(Duration::ZERO);

    /// A moment `d` after the origin.
    pub const fn from_duration(d: Duration) -> Self {
        Moment(d)
    }

    /// A moment `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Self {
        Moment(Duration::from_secs(secs))
    }

    /// A moment `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Moment(Duration::from_millis(ms))
    }

    /// Time since the origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Moment) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Moment {
    type Output = Moment;
    fn add(self, rhs: Duration) -> Moment {
        Moment(self.0.saturating_add(rhs))
    }
}

impl Sub<Duration> for Moment {
    type Output = Moment;
    fn sub(self, rhs: Duration) -> Moment {
        Moment(self.0.saturating_sub(rhs))
    }
}

impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0.as_secs_f64())
    }
}

/// A source of [`Moment`]s.
pub trait Clock: Send + Sync {
    /// The current moment; never goes backwards.
    fn now(&self) -> Moment;
}

/// The real monotonic clock, with its origin at construction.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Moment {
        Moment(self.origin.elapsed())
    }
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock at the origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(add, Ordering::SeqCst);
    }

    /// Sets the clock to `m` (ignored if `m` is earlier than now: time never goes backwards).
    pub fn set(&self, m: Moment) {
        let target = u64::try_from(m.0.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(target, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Moment {
        Moment(Duration::from_nanos(self.nanos.load(Ordering::SeqCst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let c = ManualClock::new();
        assert_eq!(c.now(), Moment::ZERO);
        c.advance(Duration::from_secs(600));
        assert_eq!(c.now(), Moment::from_secs(600));
        c.set(Moment::from_secs(10));
        assert_eq!(c.now(), Moment::from_secs(600));
    }

    #[test]
    fn since_saturates() {
        let a = Moment::from_secs(5);
        let b = Moment::from_secs(3);
        assert_eq!(a.since(b), Duration::from_secs(2));
        assert_eq!(b.since(a), Duration::ZERO);
        assert_eq!(b - Duration::from_secs(10), Moment::ZERO);
    }
}
