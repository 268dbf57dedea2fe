//! A shutdown signal that a loop can wait on with a timeout, and that a test, a signal handler or
//! another thread triggers.
//!
//! Concurrency: clones share one flag behind a mutex and condvar; `trigger` wakes every waiter.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Cloneable shutdown flag.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder to stop.
    pub fn trigger(&self) {
        let (flag, cv) = &*self.inner;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// Whether it has been triggered.
    pub fn is_triggered(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout`; returns true if triggered.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (flag, cv) = &*self.inner;
        let deadline = Instant::now() + timeout;
        let mut triggered = flag.lock().unwrap_or_else(|e| e.into_inner());
        while !*triggered {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            triggered = cv
                .wait_timeout(triggered, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        *triggered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_times_out_or_returns_on_trigger() {
        let s = Shutdown::new();
        assert!(!s.wait(Duration::from_millis(10)));
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.wait(Duration::from_secs(30)));
        s.trigger();
        assert!(h.join().expect("waiter"));
        assert!(s.is_triggered());
    }
}
