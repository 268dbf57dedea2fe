//! Coordination between instances: shared token buckets, named locks, heartbeats.

use std::time::Duration;

use super::*;

pub(crate) fn rate_limit_tokens_refill(b: &dyn Broker, clock: &ManualClock) {
    let limit = RateLimit {
        rate: 10.0,
        burst: 2,
    };
    assert_eq!(
        b.take_token("places", limit).expect("take"),
        RateDecision::Granted
    );
    assert_eq!(
        b.take_token("places", limit).expect("take"),
        RateDecision::Granted
    );
    match b.take_token("places", limit).expect("take") {
        RateDecision::Wait(ms) => assert!((1..=100).contains(&ms), "wait {ms}"),
        RateDecision::Granted => panic!("the burst is used up"),
    }
    assert_eq!(
        b.take_token("other", limit).expect("take"),
        RateDecision::Granted,
        "buckets are per key"
    );
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        b.take_token("places", limit).expect("take"),
        RateDecision::Granted,
        "one token refilled"
    );
    assert!(matches!(
        b.take_token("places", limit).expect("take"),
        RateDecision::Wait(_)
    ));
    clock.advance(Duration::from_secs(60));
    let granted = (0..5)
        .filter(|_| b.take_token("places", limit).expect("take") == RateDecision::Granted)
        .count();
    assert_eq!(granted, 2, "never more than the burst saved up");
}

pub(crate) fn locks_expire_and_can_be_stolen(b: &dyn Broker, clock: &ManualClock) {
    let ttl = Duration::from_secs(10);
    assert!(b.lock("scheduler", "a", ttl).expect("lock"));
    assert!(
        b.lock("scheduler", "a", ttl).expect("lock"),
        "re-entrant for its owner"
    );
    assert!(!b.lock("scheduler", "b", ttl).expect("lock"));
    assert!(!b.extend_lock("scheduler", "b", ttl).expect("extend"));
    clock.advance(Duration::from_secs(8));
    assert!(b.extend_lock("scheduler", "a", ttl).expect("extend"));
    clock.advance(Duration::from_secs(8));
    assert!(!b.lock("scheduler", "b", ttl).expect("lock"), "extended");
    let locks = b.locks().expect("locks");
    assert_eq!(locks.len(), 1);
    assert_eq!(
        (locks[0].name.as_str(), locks[0].owner.as_str()),
        ("scheduler", "a")
    );
    clock.advance(Duration::from_secs(3));
    assert!(
        b.lock("scheduler", "b", ttl).expect("lock"),
        "an expired lock can be stolen"
    );
    assert!(!b.extend_lock("scheduler", "a", ttl).expect("extend"));
    assert!(!b.unlock("scheduler", "a").expect("unlock"));
    assert!(b.unlock("scheduler", "b").expect("unlock"));
    assert!(b.locks().expect("locks").is_empty());
}

pub(crate) fn heartbeats_list_live_workers(b: &dyn Broker, clock: &ManualClock) {
    let beat = |id: &str| WorkerInfo {
        id: w(id),
        pid: 42,
        host: "h".into(),
        running: 3,
        last_beat: clock.now_ts(),
        state: sadomap_queue::WorkerStatus::Running,
        reason: None,
    };
    b.heartbeat(&beat("w1")).expect("beat");
    clock.advance(Duration::from_secs(20));
    b.heartbeat(&WorkerInfo {
        state: sadomap_queue::WorkerStatus::Degraded,
        reason: Some("Redis: connection refused".into()),
        ..beat("w2")
    })
    .expect("beat");
    let live = b.workers(Duration::from_secs(30)).expect("workers");
    assert_eq!(
        live.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec!["w1", "w2"]
    );
    assert_eq!(live[0].running, 3);
    assert_eq!(live[0].state, sadomap_queue::WorkerStatus::Running);
    assert_eq!(live[0].reason, None);
    assert_eq!(live[1].state, sadomap_queue::WorkerStatus::Degraded);
    assert_eq!(live[1].reason.as_deref(), Some("Redis: connection refused"));
    clock.advance(Duration::from_secs(15));
    let live = b.workers(Duration::from_secs(30)).expect("workers");
    assert_eq!(
        live.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec!["w2"]
    );
    b.remove_worker(&w("w2")).expect("remove");
    assert!(b
        .workers(Duration::from_secs(30))
        .expect("workers")
        .is_empty());
}
