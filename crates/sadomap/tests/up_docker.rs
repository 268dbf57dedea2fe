//! `sadomap up --runtime docker` against the real engine: the topology runs as containers of
//! `sadomap:local` with a Redis container on a private network (images built FROM scratch by
//! `docker/build-images.sh`). A worker container holding jobs is cut off with `docker network
//! disconnect`: its heartbeat stops, the supervisor replaces it and releases its leases, and its
//! jobs finish on another worker. Without an engine or the images the test is skipped with the
//! reason; with `SADOMAP_REQUIRE_SERVICES=1` it fails. Whatever happens, a guard kills `up` and
//! removes every container and the network of the test's project.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

mod support;
use support::wait_for;

const IMAGES: [&str; 2] = ["sadomap:local", "sadomap-redis:local"];

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

/// Why the test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if !docker(&["version"]).status.success() {
        return Some("no Docker engine answers".into());
    }
    IMAGES
        .into_iter()
        .find(|i| !docker(&["image", "inspect", i]).status.success())
        .map(|i| format!("image {i} is missing (docker/build-images.sh builds it)"))
}

fn sadomap(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sadomap"));
    c.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("SADOMAP_REDIS_URL")
        .env_remove("SADOMAP_POSTGRES_URL")
        .env_remove("SADOMAP_DATA_DIR")
        .env_remove("SADOMAP_LISTEN")
        .env_remove("SADOMAP_CONFIG");
    c
}

/// A running `up --runtime docker`; on drop it is killed (process group) and the project's
/// containers and network are removed.
struct Up {
    child: Child,
    dir: TempDir,
    project: String,
}

impl Up {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn json(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = sadomap(&self.data(), &all).output().ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// The queue as the host reaches it (the Redis container's address).
    fn queue(&self, redis: &str, args: &[&str]) -> Option<Value> {
        let mut all = vec!["--redis", redis, "--json", "queue"];
        all.extend_from_slice(args);
        let out = sadomap(&self.data(), &all).output().ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// (container, worker id, health, restarts, last restart reason) of `service`'s slots.
    fn slots(&self, service: &str) -> Vec<(String, String, String, u64, String)> {
        let Some(st) = self.json(&["status"]) else {
            return Vec::new();
        };
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        st["services"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x["name"] == service))
            .and_then(|x| x["instances"].as_array())
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        (
                            s(&r["instance"]),
                            s(&r["worker_id"]),
                            s(&r["health"]),
                            r["restarts"].as_u64().unwrap_or(0),
                            s(&r["last_restart_reason"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn all_healthy(&self, service: &str, n: usize) -> bool {
        let rows = self.slots(service);
        rows.len() == n && rows.iter().all(|r| r.2 == "healthy")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.err")).unwrap_or_default()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SIGTERM first: `up` stops and removes its containers itself.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait();
        // Whatever is left of the project (a test that failed half-way).
        let label = format!("label=sadomap.project={}", self.project);
        let out = docker(&["ps", "-aq", "--filter", &label]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = docker(&["rm", "-f", id]);
        }
        let _ = docker(&["network", "rm", &self.project]);
    }
}

#[test]
fn up_docker_replaces_a_worker_cut_off_the_network_and_its_jobs_run_elsewhere() {
    if let Some(why) = unavailable() {
        assert!(
            std::env::var("SADOMAP_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "SADOMAP_REQUIRE_SERVICES=1 but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let dir = TempDir::new().expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = SocketAddr::from(([127, 0, 0, 1], port)).to_string();
    // Workers beat every 2 s: a stale limit of 5 s (1 s × 5) never takes a live one for hung.
    let config = dir.path().join("up.toml");
    std::fs::write(
        &config,
        "[up.health]\ninterval_ms = 1000\nstale_after_intervals = 5\nstart_period_ms = 5000\n\
         [up.restart]\nreset_after_healthy_ms = 0\n[up.memory]\napi = \"256MiB\"\nworker = \"128MiB\"\n",
    )
    .expect("config");
    let project = format!("sdu-{}", std::process::id());
    let config = config.display().to_string();
    let child = sadomap(
        &dir.path().join("data"),
        &[
            "up",
            "--runtime",
            "docker",
            "--listen",
            &listen,
            "--workers",
            "2",
            "--config",
            &config,
            "--project",
            &project,
        ],
    )
    .stdin(Stdio::null())
    .stderr(std::fs::File::create(dir.path().join("up.err")).expect("log"))
    .stdout(Stdio::null())
    .process_group(0)
    .spawn()
    .expect("start sadomap up");
    let up = Up {
        child,
        dir,
        project: project.clone(),
    };
    let t = Instant::now();
    wait_for(Duration::from_secs(60), || {
        (up.all_healthy("api-primary", 1)
            && up.all_healthy("api-backup", 1)
            && up.all_healthy("worker", 2))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("the topology never got healthy:\n{}", up.log()));
    println!("up --runtime docker: healthy in {:?}", t.elapsed());
    // The `[memory]` limits are the containers' hard limits (the scheduler has none).
    for (service, want) in [
        ("api-primary", 256u64 << 20),
        ("worker", 128 << 20),
        ("scheduler", 0),
    ] {
        let id = up.slots(service)[0].0.clone();
        let out = docker(&["inspect", "-f", "{{.HostConfig.Memory}}", &id]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want.to_string(),
            "{service}"
        );
    }
    // Both APIs answer on the host: api-primary on --listen, api-backup on the next port.
    for p in [port, port + 1] {
        let t = sadomap_supervisor::HttpTarget::parse(
            &format!("http://127.0.0.1:{p}/health"),
            Duration::from_secs(2),
        )
        .expect("url");
        assert!(t.get().is_ok(), "port {p} answers");
    }
    let ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("{project}-redis"),
    ]);
    let redis = format!(
        "redis://{}:6379",
        String::from_utf8_lossy(&ip.stdout).trim()
    );
    // Long jobs so that both workers hold some when the cut comes.
    let enq = up
        .queue(
            &redis,
            &[
                "enqueue",
                "sleep",
                "--count",
                "6",
                "--payload",
                r#"{"ms":5000}"#,
            ],
        )
        .expect("enqueue");
    assert_eq!(enq["enqueued"], 6);
    let running = |up: &Up| -> Vec<(Value, String)> {
        up.queue(&redis, &["list", "--state", "running", "--limit", "100"])
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|j| {
                (
                    j["id"].clone(),
                    j["worker"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let (cut, cut_worker, held) = wait_for(Duration::from_secs(20), || {
        let jobs = running(&up);
        up.slots("worker").into_iter().find_map(|(c, w, ..)| {
            let held: Vec<Value> = jobs
                .iter()
                .filter(|(_, jw)| *jw == w)
                .map(|(id, _)| id.clone())
                .collect();
            (!held.is_empty()).then_some((c, w, held))
        })
    })
    .expect("a worker holds jobs");
    let t0 = Instant::now();
    let out = docker(&["network", "disconnect", "-f", &project, &cut]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reason = wait_for(Duration::from_secs(30), || {
        up.slots("worker")
            .into_iter()
            .find(|(c, _, _, restarts, _)| *c != cut && *restarts > 0)
            .map(|r| r.4)
    })
    .unwrap_or_else(|| panic!("the cut worker was not replaced:\n{}", up.log()));
    println!(
        "network cut → worker replaced ({reason}) in {:?}",
        t0.elapsed()
    );
    assert_eq!(reason, "unresponsive", "its heartbeat stopped");
    let events =
        std::fs::read_to_string(up.data().join("supervisor-events.jsonl")).unwrap_or_default();
    assert!(
        events.contains("leases_released") || events.contains("LeasesReleased"),
        "its leases were released: {events}"
    );
    // Every job finishes, the cut worker's on another worker.
    let done = wait_for(Duration::from_secs(60), || {
        let ok = up.queue(&redis, &["list", "--state", "succeeded", "--limit", "100"])?;
        let ok = ok.as_array()?.clone();
        (ok.len() == 6).then_some(ok)
    })
    .unwrap_or_else(|| panic!("not every job succeeded:\n{}", up.log()));
    println!("network cut → all 6 jobs done in {:?}", t0.elapsed());
    for id in &held {
        let job = done
            .iter()
            .find(|j| j["id"] == *id)
            .expect("the held job succeeded");
        assert_ne!(
            job["worker"].as_str(),
            Some(cut_worker.as_str()),
            "job {id} ran elsewhere"
        );
    }
    // The replaced container is gone.
    assert!(!docker(&["inspect", &cut]).status.success());
}
