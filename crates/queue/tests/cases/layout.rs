//! The Redis key layout as it really is after a workload: every key carries one hash tag of
//! the documented kinds (so each script touches one cluster slot), and expired results leave
//! neither job records nor workflow records behind.
//!
//! Uses the Redis at `SADOMAP_TEST_REDIS_URL` (default `redis://127.0.0.1:6390`): without it the
//! test prints "skipped" and passes, unless `SADOMAP_REQUIRE_SERVICES=1`.

use std::sync::Arc;
use std::time::Duration;

use sadomap_queue::{
    Broker, Finished, LeaseRequest, ManualClock, NewJob, Outcome, QueueName, QueueWeight,
    RateLimit, RedisBroker, TaskName, Timestamp, WorkerId, WorkerInfo, Workflow,
};
use serde_json::json;

fn job(queue: &str) -> NewJob {
    NewJob::new(
        TaskName::new("noop").expect("task"),
        json!({}),
        QueueName::new(queue).expect("queue"),
    )
}

#[test]
fn keys_carry_one_documented_hash_tag_and_expiry_leaves_no_records() {
    let url =
        std::env::var("SADOMAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390".into());
    let Ok(mut conn) = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
    else {
        let required = std::env::var("SADOMAP_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "no Redis at {url} and SADOMAP_REQUIRE_SERVICES=1"
        );
        eprintln!("skipped: no Redis at {url}");
        return;
    };
    let prefix = format!("test:layout:{}", std::process::id());
    let clock = ManualClock::at(Timestamp(1_700_000_000_000));
    let b = RedisBroker::open_with_prefix(&url, &prefix, Arc::new(clock.clone())).expect("open");

    let keyed = NewJob {
        idempotency_key: Some("k".into()),
        ..job("normal")
    };
    b.enqueue(&[keyed, job("background")]).expect("enqueue");
    b.enqueue_workflow(&Workflow::Chain(vec![job("normal"), job("validation")]))
        .expect("chain");
    let worker = WorkerId::new("w1").expect("worker");
    let queues: Vec<QueueWeight> = ["normal", "background", "validation"]
        .iter()
        .map(|q| QueueWeight {
            queue: QueueName::new(*q).expect("queue"),
            weight: 1,
        })
        .collect();
    for _ in 0..3 {
        let req = LeaseRequest {
            worker: &worker,
            queues: &queues,
            max: 10,
            lease_for: Duration::from_secs(10),
        };
        let done: Vec<Finished> = b
            .lease(&req)
            .expect("lease")
            .iter()
            .map(|l| Finished {
                id: l.id,
                outcome: Outcome::Succeeded(json!(1)),
            })
            .collect();
        b.finish(&worker, &done).expect("finish");
    }
    b.lock("leader", "me", Duration::from_secs(10))
        .expect("lock");
    b.take_token(
        "places",
        RateLimit {
            rate: 1.0,
            burst: 1,
        },
    )
    .expect("token");
    b.heartbeat(&WorkerInfo {
        id: worker.clone(),
        pid: 1,
        host: "h".into(),
        running: 0,
        last_beat: clock.now_ts(),
        state: sadomap_queue::WorkerStatus::Running,
        reason: None,
    })
    .expect("beat");

    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut conn)
        .expect("keys");
    assert!(keys.iter().any(|k| k.contains("{wf:")), "{keys:?}");
    for k in &keys {
        let rest = &k[prefix.len() + 1..];
        assert!(rest.starts_with('{'), "{k}: the tag follows the prefix");
        let tag = &rest[1..rest.find('}').expect("closed tag")];
        let kind = tag.split(':').next().unwrap_or("");
        assert!(
            ["q", "meta", "idem", "wf", "locks", "rate", "workers"].contains(&kind),
            "{k}: unexpected tag {tag}"
        );
        assert_eq!(rest.matches('{').count(), 1, "{k}: one tag");
    }

    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        b.expire_results(Duration::from_secs(60)).expect("expire"),
        4
    );
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut conn)
        .expect("keys");
    assert!(
        !left
            .iter()
            .any(|k| k.contains(":job:") || k.contains("{wf:")),
        "records left: {left:?}"
    );
    let idem: Option<String> = redis::cmd("HGET")
        .arg(format!("{prefix}:{{idem}}:keys"))
        .arg("k")
        .query(&mut conn)
        .expect("hget");
    assert_eq!(idem, None, "the idempotency key was forgotten with its job");
    for k in left {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(k).query(&mut conn);
    }
}

/// `Clock::now` on the manual clock.
trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        sadomap_queue::Clock::now(self)
    }
}
