//! End-to-end tests of `sadomap up` with the built binary on the embedded default (SQLite store
//! and queue in a temporary data directory, a free port): the supervised topology serves,
//! runs jobs, survives SIGKILLs and a rolling restart, and stops on SIGTERM; bad config fails
//! before anything starts. Waits poll a condition with a timeout. `up` runs in its own process
//! group, which a guard SIGKILLs if a test fails, so no child outlives a test.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

mod support;
use support::{free_port, get, request, wait_for, Load};

/// The admin token `up` passes on to its api processes.
const ADMIN_TOKEN: &str = "up-test-admin-token";

fn sadomap(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sadomap"));
    c.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("SADOMAP_REDIS_URL")
        .env_remove("SADOMAP_POSTGRES_URL")
        .env_remove("SADOMAP_DATA_DIR")
        .env_remove("SADOMAP_LISTEN")
        .env_remove("SADOMAP_CONFIG");
    c
}

fn output(dir: &Path, args: &[&str]) -> Output {
    sadomap(dir, args).output().expect("run sadomap")
}

/// A running `sadomap up`, killed with its whole process group if the test ends early.
struct Up {
    child: Child,
    dir: TempDir,
    addr: SocketAddr,
}

impl Up {
    fn start(extra: &[&str]) -> Up {
        let dir = TempDir::new().expect("temp dir");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        // A short probe interval for quick tests; the stale limit stays above the heartbeat.
        let config = dir.path().join("up.toml");
        std::fs::write(
            &config,
            "[up.health]\ninterval_ms = 500\nstale_after_intervals = 12\n",
        )
        .expect("write config");
        let listen = addr.to_string();
        let mut args = vec!["up", "--listen", &listen, "--config"];
        let config = config.display().to_string();
        args.push(&config);
        args.extend_from_slice(extra);
        let child = sadomap(&dir.path().join("data"), &args)
            // The client loops below send more than the default per-client limit (50/s).
            .env("SADOMAP_RATE_LIMIT", "0")
            .env("SADOMAP_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("up.out")).expect("log"))
            .stderr(std::fs::File::create(dir.path().join("up.err")).expect("log"))
            .process_group(0)
            .spawn()
            .expect("start sadomap up");
        Up { child, dir, addr }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.err")).unwrap_or_default()
    }

    /// The supervisor's status, if it answers.
    fn status(&self) -> Option<Value> {
        let out = output(&self.data(), &["--json", "status"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Instances of `service` in the status: (pid, health, restarts).
    fn instances(&self, service: &str) -> Vec<(u32, String, u64)> {
        let Some(st) = self.status() else {
            return Vec::new();
        };
        st["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == service))
            .and_then(|s| s["instances"].as_array())
            .map(|is| {
                is.iter()
                    .filter_map(|i| {
                        Some((
                            u32::try_from(i["pid"].as_u64()?).ok()?,
                            i["health"].as_str().unwrap_or("").to_string(),
                            i["restarts"].as_u64().unwrap_or(0),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pid of the first healthy instance of `service`.
    fn healthy_pid(&self, service: &str) -> Option<u32> {
        self.instances(service)
            .into_iter()
            .find(|(_, h, _)| h == "healthy")
            .map(|(p, _, _)| p)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // `up` leads its own process group (and its children are in it): kill them all.
            if let Ok(pgid) = i32::try_from(self.child.id()) {
                if pgid > 1 {
                    let _ = nix::sys::signal::killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                }
            }
            let _ = self.child.wait();
        }
    }
}

/// Sends `signal` to one process (never a group: the pid must be above 1).
fn kill(pid: u32, signal: Signal) {
    let pid = i32::try_from(pid).expect("a pid");
    assert!(pid > 1, "refusing to signal pid {pid}");
    nix::sys::signal::kill(Pid::from_raw(pid), signal).expect("kill");
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only a live process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn up_serves_runs_jobs_survives_kills_and_restarts_and_stops_cleanly() {
    let up = Up::start(&["--demo", "200", "--workers", "2"]);
    let served = wait_for(Duration::from_secs(90), || {
        get(up.addr, "/v1/places?limit=5").filter(|(s, _)| *s == 200)
    });
    let (_, body) = served.unwrap_or_else(|| panic!("no places served: {}", up.stderr()));
    let body: Value = serde_json::from_str(&body).expect("places JSON");
    assert_eq!(body["places"].as_array().map(Vec::len), Some(5), "{body}");

    // Every service healthy, two workers.
    let all_healthy = wait_for(Duration::from_secs(60), || {
        let st = up.status()?;
        let healthy = |name: &str| {
            st["services"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == name))
                .and_then(|s| s["instances"].as_array())
                .map(|is| {
                    is.iter()
                        .filter(|i| i["health"] == "healthy" && i["pid"].is_u64())
                        .count()
                })
                .unwrap_or(0)
        };
        (healthy("api-primary") == 1
            && healthy("api-backup") == 1
            && healthy("worker") == 2
            && healthy("scheduler") == 1)
            .then_some(())
    });
    assert!(
        all_healthy.is_some(),
        "not all healthy: {:?}\n{}",
        up.status(),
        up.stderr()
    );
    let table = output(&up.data(), &["status"]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    for name in [
        "api-primary",
        "api-backup",
        "worker",
        "scheduler",
        "healthy",
    ] {
        assert!(table.contains(name), "{table}");
    }

    // The supervised workers run enqueued jobs.
    let enq = output(&up.data(), &["queue", "enqueue", "noop", "--count", "50"]);
    assert!(
        enq.status.success(),
        "{}",
        String::from_utf8_lossy(&enq.stderr)
    );
    let done = wait_for(Duration::from_secs(60), || {
        let out = output(
            &up.data(),
            &[
                "--json",
                "queue",
                "list",
                "--state",
                "succeeded",
                "--limit",
                "100",
            ],
        );
        let jobs: Value = serde_json::from_slice(&out.stdout).ok()?;
        (jobs.as_array()?.len() >= 50).then_some(())
    });
    assert!(done.is_some(), "the 50 jobs did not all succeed");

    // SIGKILL api-primary under load: at most the in-flight requests (one per client) fail.
    let primary = up
        .healthy_pid("api-primary")
        .unwrap_or_else(|| panic!("no healthy api-primary: {:?}", up.status()));
    let load = Load::start(up.addr, 2);
    load.more(50);
    kill(primary, Signal::SIGKILL);
    let replaced = wait_for(Duration::from_secs(30), || {
        up.instances("api-primary")
            .into_iter()
            .find(|(p, h, r)| *p != primary && h == "healthy" && *r >= 1)
    });
    assert!(
        replaced.is_some(),
        "api-primary not replaced: {:?}",
        up.status()
    );
    load.more(50);
    let (ok, failed) = load.finish();
    assert!(failed <= 2, "{failed} of {} requests failed", ok + failed);

    // The api processes show their supervisor at /admin/status: services, the restart just
    // done with its reason, queue depths; and its metrics in /metrics.
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let (code, body) =
        request(up.addr, "GET", "/v1/admin/status", &[&auth]).expect("admin status answers");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let names: Vec<&str> = v["status"]["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["api-primary", "api-backup", "worker", "scheduler"]);
    assert!(
        v["events"].as_array().expect("events").iter().any(|e| {
            e["event"] == "restarted" && e["service"] == "api-primary" && e["reason"] == "exited"
        }),
        "{}",
        v["events"]
    );
    assert!(
        v["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .any(|q| q["queue"] == "normal"),
        "{}",
        v["queues"]
    );
    let (code, _) = request(up.addr, "GET", "/v1/admin/status", &[]).expect("answers");
    assert_eq!(code, 401);
    let (code, body) =
        request(up.addr, "POST", "/v1/admin/services/nope/restart", &[&auth]).expect("answers");
    assert_eq!(code, 404, "{body}");
    let (_, metrics) = get(up.addr, "/metrics").expect("metrics");
    assert!(
        metrics.contains(
            "sadomap_supervisor_restarts_total{reason=\"exited\",service=\"api-primary\"}"
        ),
        "{metrics}"
    );
    let (code, page) = get(up.addr, "/admin/status").expect("page");
    assert!(code == 200 && page.contains("status.js"));

    // SIGKILL a worker holding leases: a new process takes its slot within about a second and
    // the supervisor releases the dead worker's leases, so its jobs run again well before the
    // lease (10 s) would have run out.
    let enq = output(
        &up.data(),
        &[
            "queue",
            "enqueue",
            "sleep",
            "--payload",
            r#"{"ms": 1500}"#,
            "--count",
            "4",
        ],
    );
    assert!(
        enq.status.success(),
        "{}",
        String::from_utf8_lossy(&enq.stderr)
    );
    let holder = wait_for(Duration::from_secs(20), || {
        let out = output(
            &up.data(),
            &[
                "--json", "queue", "list", "--state", "running", "--limit", "10",
            ],
        );
        let jobs: Value = serde_json::from_slice(&out.stdout).ok()?;
        let id = jobs
            .as_array()?
            .iter()
            .find_map(|j| j["worker"].as_str())?
            .to_string();
        let st = up.status()?;
        st["services"]
            .as_array()?
            .iter()
            .flat_map(|s| s["instances"].as_array().into_iter().flatten())
            .find(|i| i["worker_id"] == id.as_str())
            .and_then(|i| i["pid"].as_u64())
            .and_then(|p| u32::try_from(p).ok())
    });
    let worker = holder.unwrap_or_else(|| panic!("no worker holds a job: {:?}", up.status()));
    kill(worker, Signal::SIGKILL);
    let t0 = Instant::now();
    let new_worker = wait_for(Duration::from_secs(5), || {
        let pids: Vec<u32> = ["worker", "scheduler"]
            .iter()
            .flat_map(|s| up.instances(s))
            .map(|i| i.0)
            .collect();
        (pids.len() == 3 && !pids.contains(&worker)).then_some(())
    });
    assert!(
        new_worker.is_some(),
        "worker not replaced: {:?}",
        up.status()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "worker replaced after {:?}",
        t0.elapsed()
    );
    let rerun = wait_for(Duration::from_secs(30), || {
        let out = output(
            &up.data(),
            &[
                "--json",
                "queue",
                "list",
                "--state",
                "succeeded",
                "--limit",
                "100",
            ],
        );
        let jobs: Value = serde_json::from_slice(&out.stdout).ok()?;
        let slept = jobs
            .as_array()?
            .iter()
            .filter(|j| j["task"] == "sleep")
            .count();
        (slept >= 4).then(|| t0.elapsed())
    });
    let rerun = rerun.expect("the killed worker's jobs ran again");
    assert!(
        rerun < Duration::from_secs(9),
        "its jobs waited {rerun:?}: leases not released"
    );
    let events =
        std::fs::read_to_string(up.data().join("supervisor-events.jsonl")).expect("events file");
    assert!(
        events.contains("\"leases_released\""),
        "no leases_released event"
    );

    // A rolling restart of the api under load: every replacement is healthy before its
    // predecessor drains, and the drain answers every request already sent to it, so nothing
    // fails.
    let load = Load::start(up.addr, 2);
    load.more(20);
    let restart = output(&up.data(), &["restart", "api"]);
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    let restarted = String::from_utf8_lossy(&restart.stdout).into_owned();
    assert!(
        restarted.contains("api-primary") && restarted.contains("api-backup"),
        "{restarted}"
    );
    load.more(20);
    let (ok, failed) = load.finish();
    assert!(
        failed == 0,
        "{failed} of {} requests failed during the restart",
        ok + failed
    );
    for service in ["api-primary", "api-backup"] {
        let rows = up.instances(service);
        assert!(
            rows.iter().all(|(_, h, r)| h == "healthy" && *r >= 1),
            "{service} not restarted: {rows:?}"
        );
    }

    // SIGTERM: every process exits, up with 0, and the port is free again.
    let pids: Vec<u32> = ["api-primary", "api-backup", "worker", "scheduler"]
        .iter()
        .flat_map(|s| up.instances(s))
        .map(|i| i.0)
        .collect();
    assert_eq!(pids.len(), 5, "{:?}", up.status());
    let mut up = up;
    kill(up.child.id(), Signal::SIGTERM);
    let code = wait_for(Duration::from_secs(40), || {
        up.child.try_wait().ok().flatten()
    });
    let code = code.expect("up exits after SIGTERM");
    assert!(code.success(), "exit {code:?}: {}", up.stderr());
    let gone = wait_for(Duration::from_secs(5), || {
        pids.iter().all(|&p| !alive(p)).then_some(())
    });
    assert!(gone.is_some(), "children outlived up: {pids:?}");
    assert!(
        TcpListener::bind(up.addr).is_ok(),
        "the port is still taken"
    );
    assert!(!up.data().join("supervisor.sock").exists());
}

#[test]
fn bad_config_fails_before_anything_starts() {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("data");
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let out = output(&data, &["up", "--listen", &listen, "--workers", "5..2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("worker") && err.contains('5') && err.contains('2'),
        "{err}"
    );
    assert!(!data.join("supervisor.sock").exists());
    assert!(!data.join("queue.sqlite3").exists(), "the queue was opened");

    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = held.local_addr().expect("addr").to_string();
    let out = output(&data, &["up", "--listen", &taken, "--demo", "10"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&taken), "{err}");
    assert!(!data.join("queue.sqlite3").exists(), "the queue was opened");

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[up.memory]\nwebserver = \"1GiB\"\n").expect("write");
    let config = config.display().to_string();
    let out = output(&data, &["up", "--listen", &listen, "--config", &config]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("memory.webserver"), "{err}");
    assert!(!data.join("queue.sqlite3").exists(), "the queue was opened");

    let out = output(&data, &["status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sadomap up"), "{err}");
}

#[test]
fn deploy_compose_and_probe() {
    let dir = TempDir::new().expect("temp dir");
    let file = dir.path().join("compose.json");
    let f = file.display().to_string();
    let out = output(
        dir.path(),
        &["deploy", "compose", "--out", &f, "--workers", "3"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    assert_eq!(doc["services"]["worker"]["deploy"]["replicas"], 3);
    assert_eq!(doc["services"]["scheduler"]["command"][0], "scheduler");

    let port = free_port();
    let out = output(
        dir.path(),
        &["probe", &format!("http://127.0.0.1:{port}/health")],
    );
    assert!(!out.status.success(), "nothing listens there");
}
