//! Totals for metrics (`Broker::counters`), and the wake-up an enqueue sends idle workers.

use std::time::{Duration, Instant};

use super::*;

pub(crate) fn counters_count_every_step(b: &dyn Broker, clock: &ManualClock) {
    let ids: Vec<JobId> = b
        .enqueue(&[
            job("normal", json!({})),
            job("normal", json!({})),
            job("normal", json!({})),
            job("background", json!({})),
        ])
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 4);
    let got = lease(b, "w1", "normal", 3);
    assert_eq!(got.len(), 3);
    succeed(b, "w1", got[0].id, json!(1));
    fail(
        b,
        "w1",
        got[1].id,
        Some(clock.now_ts().after(Duration::from_secs(60))),
    );
    fail(b, "w1", got[2].id, None);
    // One lease that runs out: counted as an expiration, and its second run as a start.
    assert_eq!(lease(b, "w2", "background", 1).len(), 1);
    past_lease(clock);
    assert_eq!(lease(b, "w3", "background", 1).len(), 1);

    let counters = b.counters().expect("counters");
    let of = |name: &str| {
        counters
            .iter()
            .find(|c| c.queue == q(name))
            .unwrap_or_else(|| panic!("no counters for {name}: {counters:?}"))
    };
    let n = of("normal");
    assert_eq!(
        (
            n.enqueued,
            n.started,
            n.succeeded,
            n.failed,
            n.retried,
            n.dead,
            n.lease_expired
        ),
        (3, 3, 1, 2, 1, 1, 0),
        "{n:?}"
    );
    let bg = of("background");
    assert_eq!(
        (bg.enqueued, bg.started, bg.lease_expired),
        (1, 2, 1),
        "{bg:?}"
    );
}

pub(crate) fn wake_ups_signal_enqueues(b: &dyn Broker, _clock: &ManualClock) {
    let queues = weights(&[("normal", 5), ("background", 1)]);
    let t = Instant::now();
    let wakes = b
        .wait_for_work(&queues, Duration::from_millis(50))
        .expect("wait");
    if !wakes {
        // A backend without wake-ups answers at once and the worker polls.
        assert!(t.elapsed() < Duration::from_millis(40), "{:?}", t.elapsed());
        return;
    }
    assert!(
        t.elapsed() >= Duration::from_millis(40),
        "no enqueue, so the wait lasts its timeout: {:?}",
        t.elapsed()
    );
    // The heaviest queue: on a cluster the wait listens to that one only.
    enqueue_one(b, job("normal", json!({})));
    let t = Instant::now();
    assert!(b
        .wait_for_work(&queues, Duration::from_secs(2))
        .expect("wait"));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "a pending wake-up returns at once: {:?}",
        t.elapsed()
    );
}
