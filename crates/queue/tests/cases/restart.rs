//! A real `redis-server` (started here on a free port) restarted under a working broker: calls
//! fail with a transient `Unavailable` while it is down and work again once it is back, without
//! any reconnect call, and jobs enqueued after the restart run.
//!
//! Needs the `redis-server` binary: without it the tests print "skipped" and pass, unless
//! `SADOMAP_REQUIRE_SERVICES=1`, where they fail.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sadomap_queue::{
    Broker, Finished, JobId, JobState, LeaseRequest, Leased, ManualClock, NewJob, Outcome,
    QueueName, QueueWeight, RedisBroker, TaskName, Timestamp, WorkerId,
};
use serde_json::{json, Value};

/// A redis-server child process on a fixed port.
struct Server {
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// Starts one on a free port, or `None` (skipped) without the binary.
    fn start(extra: &[&str]) -> Option<Server> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            let required = std::env::var("SADOMAP_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "redis-server is not installed and SADOMAP_REQUIRE_SERVICES=1"
            );
            eprintln!("skipped: no redis-server binary");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = Server {
            port,
            args,
            child: None,
        };
        s.up();
        Some(s)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the process and waits until it answers.
    fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not come up on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL: a crash, not a clean shutdown).
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.down();
    }
}

fn queues() -> Vec<QueueWeight> {
    vec![QueueWeight {
        queue: QueueName::new("normal").expect("queue"),
        weight: 1,
    }]
}

fn jobs(n: usize) -> Vec<NewJob> {
    let task = TaskName::new("noop").expect("task");
    (0..n)
        .map(|i| {
            NewJob::new(
                task.clone(),
                json!({ "i": i }),
                QueueName::new("normal").expect("queue"),
            )
        })
        .collect()
}

fn lease(b: &dyn Broker, worker: &str, max: usize) -> sadomap_queue::Result<Vec<Leased>> {
    let worker = WorkerId::new(worker).expect("worker");
    b.lease(&LeaseRequest {
        worker: &worker,
        queues: &queues(),
        max,
        lease_for: Duration::from_secs(10),
    })
}

fn finish(b: &dyn Broker, worker: &str, ids: &[JobId]) -> sadomap_queue::Result<()> {
    let done: Vec<Finished> = ids
        .iter()
        .map(|&id| Finished {
            id,
            outcome: Outcome::Succeeded(Value::Null),
        })
        .collect();
    b.finish(&WorkerId::new(worker).expect("worker"), &done)
}

fn broker(s: &Server, clock: &ManualClock) -> RedisBroker {
    RedisBroker::open_with_prefix(&s.url(), "restart", Arc::new(clock.clone())).expect("open")
}

#[test]
fn restart_without_persistence_fails_transiently_then_recovers() {
    let Some(mut server) = Server::start(&["--appendonly", "no"]) else {
        return;
    };
    let clock = ManualClock::at(Timestamp(1_700_000_000_000));
    let b = broker(&server, &clock);
    b.enqueue(&jobs(10)).expect("enqueue");
    let got = lease(&b, "w1", 5).expect("lease");
    finish(&b, "w1", &got.iter().map(|l| l.id).collect::<Vec<_>>()).expect("finish");

    server.down();
    for attempt in 0..3 {
        let e = b.enqueue(&jobs(1)).expect_err("Redis is down");
        assert!(e.is_transient(), "attempt {attempt}: {e}");
        assert_eq!(e.code(), "broker_unavailable");
        assert!(lease(&b, "w1", 5).expect_err("down").is_transient());
        assert!(b.ping().expect_err("down").is_transient());
    }

    server.up();
    // The very next calls work: no reconnect call, the consumer group is recreated.
    b.ping().expect("ping after the restart");
    let ids: Vec<JobId> = b
        .enqueue(&jobs(3))
        .expect("enqueue after the restart")
        .iter()
        .map(|e| e.id)
        .collect();
    let got = lease(&b, "w2", 10).expect("lease after the restart");
    assert_eq!(got.len(), 3, "the data was lost; the new jobs run");
    finish(&b, "w2", &got.iter().map(|l| l.id).collect::<Vec<_>>()).expect("finish");
    for id in ids {
        assert_eq!(
            b.get(id).expect("get").expect("job").state,
            JobState::Succeeded
        );
    }
}

#[test]
fn restart_with_aof_loses_no_acknowledged_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_arg = dir.path().to_str().expect("utf-8 temp dir").to_owned();
    let Some(mut server) = Server::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        &dir_arg,
    ]) else {
        return;
    };
    assert!(Path::new(&dir_arg).exists());
    let clock = ManualClock::at(Timestamp(1_700_000_000_000));
    let b = broker(&server, &clock);
    let ids: Vec<JobId> = b
        .enqueue(&jobs(20))
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();
    let done = lease(&b, "w1", 10).expect("lease");
    finish(&b, "w1", &done.iter().map(|l| l.id).collect::<Vec<_>>()).expect("finish");
    let running = lease(&b, "w1", 5).expect("lease");
    assert_eq!(running.len(), 5);

    // Restarted while the broker is idle, between two calls.
    server.down();
    std::thread::sleep(Duration::from_millis(150));
    server.up();

    // The in-flight runs finish after the restart: their leases survived with the data.
    finish(&b, "w1", &running.iter().map(|l| l.id).collect::<Vec<_>>())
        .expect("finish after the restart");
    let rest = lease(&b, "w2", 20).expect("lease after the restart");
    assert_eq!(rest.len(), 5, "the 5 jobs never leased are still there");
    finish(&b, "w2", &rest.iter().map(|l| l.id).collect::<Vec<_>>()).expect("finish");
    for id in ids {
        let info = b.get(id).expect("get").expect("no job lost");
        assert_eq!(info.state, JobState::Succeeded);
        assert_eq!(info.attempts, 1, "nothing ran twice");
    }
}
