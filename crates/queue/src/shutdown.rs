//! A shutdown signal that loops wait on: set once (by SIGTERM, a test, or a supervisor) and
//! seen by every clone at once.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A one-way shutdown flag shared by clones; waiting on it wakes as soon as it is set.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<(Mutex<bool>, Condvar)>);

impl Shutdown {
    /// A signal that is not set.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Sets the signal and wakes every waiter.
    pub fn trigger(&self) {
        let (lock, cv) = &*self.0;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// True once set.
    pub fn is_triggered(&self) -> bool {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps for `d` or until the signal is set; true when it is set.
    pub fn wait_timeout(&self, d: Duration) -> bool {
        let (lock, cv) = &*self.0;
        let deadline = Instant::now() + d;
        let mut set = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*set {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            set = cv
                .wait_timeout(set, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_wakes_a_waiter_at_once() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait_timeout(Duration::from_secs(30)));
        s.trigger();
        assert!(t.join().expect("thread"));
        assert!(s.is_triggered());
        assert!(!Shutdown::new().wait_timeout(Duration::from_millis(1)));
    }
}
