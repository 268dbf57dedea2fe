//! End-to-end tests of `sadomap queue …` and `sadomap worker` (on the embedded SQLite queue, and
//! one on a private `redis-server` that is killed and restarted under a worker): each
//! test runs the built binary with its own temporary data directory and reads `--json` output.
//! Waits poll until a condition holds, with a timeout.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

fn sadomap(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sadomap"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("SADOMAP_REDIS_URL")
        .env_remove("SADOMAP_DATA_DIR")
        .output()
        .expect("run sadomap")
}

/// Runs a command that must succeed and returns its JSON output.
fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = sadomap(dir, &all);
    assert!(
        out.status.success(),
        "`sadomap {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "`sadomap {}` printed no JSON ({e}): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs a command that must fail and returns its standard error.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = sadomap(dir, args);
    assert!(
        !out.status.success(),
        "`sadomap {}` should have failed",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn queue_stat(dir: &Path, queue: &str, field: &str) -> u64 {
    let stats = json(dir, &["queue", "stats"]);
    stats["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["queue"] == queue))
        .map_or(0, |q| q[field].as_u64().unwrap_or(0))
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `sadomap worker` process, killed if a test fails before stopping it.
struct WorkerProcess(Option<Child>);

impl WorkerProcess {
    fn start(dir: &Path, extra: &[&str], redis: Option<&str>) -> WorkerProcess {
        let redis = redis.map(|url| ["--redis", url]);
        let child = Command::new(env!("CARGO_BIN_EXE_sadomap"))
            .arg("--data-dir")
            .arg(dir)
            .args(redis.iter().flatten())
            .args(["--json", "worker", "--concurrency", "2"])
            .args(extra)
            .env_remove("SADOMAP_REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start worker");
        WorkerProcess(Some(child))
    }

    /// Sends SIGTERM and returns the worker's JSON report.
    fn terminate(mut self) -> Value {
        let child = self.0.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "worker exit: {}", out.status);
        serde_json::from_slice(&out.stdout).expect("worker report")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn enqueue_and_stats_report_ready_and_scheduled_jobs() {
    let tmp = TempDir::new().expect("tempdir");
    let dir = tmp.path();
    let out = json(dir, &["queue", "enqueue", "noop", "--count", "25"]);
    assert_eq!(out["enqueued"], 25);
    assert_eq!(out["ids"].as_array().map(Vec::len), Some(25));
    let out = json(
        dir,
        &[
            "queue",
            "enqueue",
            "sleep",
            "--payload",
            r#"{"ms": 1}"#,
            "--queue",
            "background",
            "--delay",
            "24h",
        ],
    );
    assert_eq!(out["enqueued"], 1);
    assert_eq!(queue_stat(dir, "normal", "ready"), 25);
    assert_eq!(queue_stat(dir, "background", "scheduled"), 1);
    // An idempotency key makes a second enqueue a duplicate.
    json(dir, &["queue", "enqueue", "noop", "--key", "once"]);
    let again = json(dir, &["queue", "enqueue", "noop", "--key", "once"]);
    assert_eq!(
        (again["enqueued"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    let listed = json(dir, &["queue", "list", "--queue", "background"]);
    assert_eq!(listed[0]["state"], "scheduled");
    assert_eq!(listed[0]["payload"]["ms"], 1);
}

#[test]
fn a_worker_runs_jobs_dead_letters_failures_and_stops_on_sigterm() {
    let tmp = TempDir::new().expect("tempdir");
    let dir = tmp.path();
    json(dir, &["queue", "enqueue", "noop", "--count", "200"]);
    json(
        dir,
        &[
            "queue",
            "enqueue",
            "fail",
            "--payload",
            r#"{"times": 5}"#,
            "--max-retries",
            "0",
        ],
    );
    json(dir, &["queue", "enqueue", "no-such-task"]);
    let worker = WorkerProcess::start(dir, &[], None);
    wait_until("200 done and 2 dead", Duration::from_secs(30), || {
        queue_stat(dir, "normal", "dead") == 2 && queue_stat(dir, "normal", "ready") == 0
    });
    let report = worker.terminate();
    assert_eq!(report["succeeded"], 200);
    assert_eq!(report["failed"], 2);
    assert!(report["latency"]["p99_ms"].is_u64());

    let dead = json(dir, &["queue", "dead"]);
    let reasons: Vec<&str> = dead
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|j| j["last_error"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("failing on purpose")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("unknown task type")),
        "{reasons:?}"
    );
    let stats = json(dir, &["queue", "stats"]);
    assert_eq!(stats["counters"][0]["succeeded"], 200);

    let id = dead[0]["id"].as_u64().expect("id").to_string();
    assert_eq!(json(dir, &["queue", "retry", &id])["retried"], 1);
    assert_eq!(queue_stat(dir, "normal", "dead"), 1);
    assert_eq!(json(dir, &["queue", "retry"])["retried"], 1);
    assert_eq!(queue_stat(dir, "normal", "ready"), 2);
    assert_eq!(
        json(dir, &["queue", "purge", "--state", "ready"])["purged"],
        2
    );
    assert_eq!(json(dir, &["queue", "purge"])["purged"], 0);
    assert_eq!(
        json(dir, &["queue", "purge", "--state", "succeeded"])["purged"],
        200
    );
}

#[test]
fn sigterm_gives_back_jobs_not_started() {
    let tmp = TempDir::new().expect("tempdir");
    let dir = tmp.path();
    json(
        dir,
        &[
            "queue",
            "enqueue",
            "sleep",
            "--payload",
            r#"{"ms": 300}"#,
            "--count",
            "20",
        ],
    );
    let worker = WorkerProcess::start(dir, &["--prefetch", "10"], None);
    wait_until("jobs running", Duration::from_secs(20), || {
        queue_stat(dir, "normal", "running") > 0
    });
    let report = worker.terminate();
    let done = report["succeeded"].as_u64().expect("count");
    assert_eq!(queue_stat(dir, "normal", "running"), 0);
    assert_eq!(queue_stat(dir, "normal", "ready") + done, 20);
}

#[test]
fn bad_arguments_are_named() {
    let tmp = TempDir::new().expect("tempdir");
    let dir = tmp.path();
    let err = fails(dir, &["queue", "enqueue", "noop", "--payload", "{nope"]);
    assert!(err.contains("--payload is not JSON"), "{err}");
    let err = fails(dir, &["queue", "enqueue", "Bad Task"]);
    assert!(err.contains("task name"), "{err}");
    let err = fails(dir, &["queue", "purge", "--state", "running"]);
    assert!(err.contains("cannot be purged"), "{err}");
    let err = fails(dir, &["queue", "enqueue", "noop", "--delay", "3 weeks"]);
    assert!(err.contains("unknown unit"), "{err}");
    let err = fails(dir, &["--redis", "redis://127.0.0.1:1", "queue", "stats"]);
    assert!(err.to_lowercase().contains("redis"), "{err}");
}

#[test]
fn workers_fire_a_cron_schedule() {
    let tmp = TempDir::new().expect("tempdir");
    let dir = tmp.path();
    // Every minute: the slot at the start of this minute lies inside the 60 s look-back.
    let a = WorkerProcess::start(dir, &["--schedule", "tick;* * * * *;noop"], None);
    let b = WorkerProcess::start(dir, &["--schedule", "tick;* * * * *;noop"], None);
    wait_until("a fired slot run", Duration::from_secs(30), || {
        queue_stat(dir, "maintenance", "ready") == 0
            && json(dir, &["queue", "stats"])["counters"]
                .as_array()
                .is_some_and(|c| {
                    c.iter()
                        .any(|q| q["queue"] == "maintenance" && q["succeeded"] == 1)
                })
    });
    let ran = a.terminate()["succeeded"].as_u64().unwrap_or(0)
        + b.terminate()["succeeded"].as_u64().unwrap_or(0);
    // One slot, or two if a minute began during the test; never one slot twice.
    let fired = json(
        dir,
        &["queue", "list", "--queue", "maintenance", "--limit", "100"],
    );
    assert_eq!(fired.as_array().map(Vec::len), Some(ran as usize));
    assert!((1..=2).contains(&ran), "{ran}");
}

/// A private `redis-server` on a free port (so it can be killed), or `None` (skipped) without
/// the binary unless `SADOMAP_REQUIRE_SERVICES=1`.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Option<PrivateRedis> {
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
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
        };
        r.up();
        Some(r)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let port = self.port;
        wait_until("redis-server up", Duration::from_secs(10), || {
            http_like(port, "PING\r\n").is_some_and(|r| r.starts_with("+PONG"))
        });
    }

    /// SIGKILL: the broker goes away without a goodbye.
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.down();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sends `request` to 127.0.0.1:`port` and reads the answer until the peer closes (or 2 s).
fn http_like(port: u16, request: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                // Redis keeps the connection open: one reply line is enough.
                if request.starts_with("PING") && buf.ends_with(b"\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `GET path` on the worker's endpoint: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let answer = http_like(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

#[test]
fn a_worker_whose_broker_goes_away_reports_degraded_then_recovers() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let url = redis.url();
    let dir = TempDir::new().expect("tempdir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _worker = WorkerProcess::start(
        dir.path(),
        &["--id", "hw1", "--health-listen", &listen, "--lease", "2s"],
        Some(&url),
    );
    let workers = |dir: &Path| json(dir, &["--redis", &url, "queue", "workers"]);
    wait_until("/health 200", Duration::from_secs(15), || {
        get(port, "/health").is_some_and(|(s, b)| s == 200 && b.contains(r#""state":"running""#))
    });
    wait_until("a running heartbeat", Duration::from_secs(10), || {
        let w = workers(dir.path());
        w[0]["id"] == "hw1" && w[0]["state"] == "running" && w[0]["heartbeat_age_s"].is_number()
    });

    redis.down();
    wait_until(
        "/health 503 with the reason",
        Duration::from_secs(15),
        || {
            get(port, "/health").is_some_and(|(s, b)| {
                s == 503 && b.contains(r#""state":"degraded""#) && b.contains("reason")
            })
        },
    );
    let (status, text) = get(port, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    assert!(
        text.contains("sadomap_queue_worker_degraded{worker=\"hw1\"} 1"),
        "{text}"
    );
    assert!(text.contains("# broker unavailable"), "{text}");

    redis.up();
    wait_until("/health 200 again", Duration::from_secs(20), || {
        get(port, "/health").is_some_and(|(s, _)| s == 200)
    });
    wait_until("a running heartbeat again", Duration::from_secs(10), || {
        workers(dir.path())[0]["state"] == "running"
    });
    let (_, text) = get(port, "/metrics").expect("metrics");
    assert!(
        text.contains("sadomap_queue_worker_degraded{worker=\"hw1\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("sadomap_queue_workers{state=\"running\"} 1"),
        "{text}"
    );
}
