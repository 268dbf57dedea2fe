//! Failover drill on the Docker runtime: injects each fault into test-child containers
//! (`sadomap-testchild:local`, built by `docker/build-images.sh`) and measures fault → detection
//! → replacement started → replacement healthy, first under this supervisor, then under Docker's
//! own `restart: always` (plus a HEALTHCHECK) on the same image for comparison.
//!
//! `bench/failover/run.sh --docker` runs it:
//! `cargo run --release -p sadomap-supervisor --example docker_drill -- [--rounds N]
//! [--interval-ms N] [--out FILE]` (the Docker part of FILE is replaced, the rest kept).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sadomap_supervisor::{
    ContainerEventKind, DockerOptions, DockerRuntime, Event, HealthState, Heartbeats, HttpTarget,
    InstanceId, MemorySink, Metrics, Plan, Runtime, Shutdown, SlotPhase, StatusHandle, Supervisor,
    SystemClock, Telemetry, TopologyConfig,
};

const IMAGE: &str = "sadomap-testchild:local";
const LIMIT: Duration = Duration::from_secs(30);
/// The marker line where the Docker part of the results file starts.
const MARKER: &str = "## Docker runtime";

struct FileHeartbeats(PathBuf);

impl Heartbeats for FileHeartbeats {
    fn heartbeat_age(&self, worker_id: &str) -> Option<Duration> {
        let modified = std::fs::metadata(self.0.join(worker_id))
            .ok()?
            .modified()
            .ok()?;
        SystemTime::now().duration_since(modified).ok()
    }
}

fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(3));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL to the container's process from the host (a crash).
    Kill,
    /// `GET /fail`: the health endpoint answers 500 from then on.
    Unhealthy,
    /// `docker network disconnect` of the api container.
    NetworkCut,
    /// `docker pause` of a heartbeat worker (its processes freeze, as under SIGSTOP).
    Pause,
}

#[derive(Default)]
struct Figures {
    detect: Vec<Duration>,
    started: Vec<Duration>,
    healthy: Vec<Duration>,
}

fn stats(v: &[Duration]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let mut ms: Vec<u128> = v.iter().map(|d| d.as_millis()).collect();
    ms.sort_unstable();
    format!("{} ms (max {})", ms[ms.len() / 2], ms[ms.len() - 1])
}

fn healthy(status: &StatusHandle) -> Option<InstanceId> {
    let row = status
        .snapshot()
        .services
        .first()?
        .instances
        .first()?
        .clone();
    match row.phase {
        SlotPhase::Running {
            health: HealthState::Healthy,
        } => row.instance,
        _ => None,
    }
}

fn host_pid(id: &str) -> Result<i32, String> {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", id])
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("no process for {id}"))
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn health_ok(ip: &str) -> bool {
    HttpTarget::parse(
        &format!("http://{ip}:8000/health"),
        Duration::from_millis(300),
    )
    .is_ok_and(|t| t.get().is_ok())
}

/// This supervisor: `rounds` faults of one kind, each on a healthy instance.
fn supervised(fault: Fault, rounds: u32, interval_ms: u64, name: &str) -> Result<Figures, String> {
    let hb = std::env::temp_dir().join(format!("{name}-hb"));
    std::fs::create_dir_all(&hb).map_err(|e| e.to_string())?;
    let mut options = DockerOptions::new(IMAGE, name, name);
    options.binds = vec![format!("{}:/hb", hb.display())];
    let rt = Arc::new(DockerRuntime::connect(options).map_err(|e| e.to_string())?);
    let service = if fault == Fault::Pause {
        r#"{"name":"worker","role":"worker","command":"/testchild","args":["--heartbeat-dir","/hb"],"probes":{"heartbeat":true}}"#.to_string()
    } else {
        r#"{"name":"api","role":"api","command":"/testchild","args":["--host","0.0.0.0","--port","8000"],"stop_grace_ms":2000,
            "probes":{"http":{"url":"http://127.0.0.1:8000/health","timeout_ms":300}}}"#
            .to_string()
    };
    let json = format!(
        r#"{{"health":{{"interval_ms":{interval_ms},"start_period_ms":3000}},"cascade":{{"failures":1000}},
            "restart":{{"reset_after_healthy_ms":0,"crash_loop_restarts":1000}},"services":[{service}]}}"#
    );
    let config: TopologyConfig = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    let plan = Plan::build(&config).map_err(|e| e.to_string())?;
    let events = Arc::new(MemorySink::new());
    let telemetry = Telemetry::new(Arc::new(Metrics::new())).with_sink(events.clone());
    let sup = Supervisor::new(plan, rt.clone(), Arc::new(SystemClock::new()), telemetry)
        .with_heartbeats(Arc::new(FileHeartbeats(hb.clone())));
    let status = sup.status();
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    let handle = thread::spawn(move || sup.run(&s));
    let result = (|| {
        let mut f = Figures::default();
        for _ in 0..rounds {
            let id = wait_for(LIMIT, || healthy(&status)).ok_or("no healthy instance")?;
            let failures = events.count(|e| matches!(e, Event::FailureDetected(_)));
            let restarts = events.count(|e| matches!(e, Event::Restarted(_)));
            let ip = rt.address(&id).ok_or("no address")?;
            let t0 = Instant::now();
            match fault {
                Fault::Kill => kill(Pid::from_raw(host_pid(&id.0)?), Signal::SIGKILL)
                    .map_err(|e| e.to_string())?,
                Fault::Unhealthy => {
                    HttpTarget::parse(&format!("http://{ip}:8000/fail"), Duration::from_secs(2))?
                        .get()?;
                }
                Fault::NetworkCut => rt.set_connected(&id, false).map_err(|e| e.to_string())?,
                Fault::Pause => rt.pause(&id, true).map_err(|e| e.to_string())?,
            }
            wait_for(LIMIT, || {
                (events.count(|e| matches!(e, Event::FailureDetected(_))) > failures).then_some(())
            })
            .ok_or("fault not detected")?;
            f.detect.push(t0.elapsed());
            wait_for(LIMIT, || {
                (events.count(|e| matches!(e, Event::Restarted(_))) > restarts).then_some(())
            })
            .ok_or("no replacement started")?;
            f.started.push(t0.elapsed());
            wait_for(LIMIT, || healthy(&status).filter(|n| *n != id))
                .ok_or("replacement never healthy")?;
            f.healthy.push(t0.elapsed());
        }
        Ok(f)
    })();
    shutdown.trigger();
    let _ = handle.join();
    let _ = rt.cleanup();
    let _ = std::fs::remove_dir_all(&hb);
    result
}

/// Creates and starts the test child under Docker's `restart: always` with a HEALTHCHECK in exec
/// form (a scratch image has no shell for `docker run --health-cmd`): the child probing its own
/// `/health` every 1 s, unhealthy after 3 failures. Returns the container id.
fn run_restart_always(network: &str) -> Result<String, String> {
    use bollard::models::{
        ContainerCreateBody, HealthConfig, HostConfig, RestartPolicy, RestartPolicyNameEnum,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let d = bollard::Docker::connect_with_local_defaults()
            .map_err(|e| e.to_string())?
            .negotiate_version()
            .await
            .map_err(|e| e.to_string())?;
        let second = 1_000_000_000i64;
        let body = ContainerCreateBody {
            image: Some(IMAGE.into()),
            cmd: Some(
                ["--host", "0.0.0.0", "--port", "8000"]
                    .map(String::from)
                    .to_vec(),
            ),
            labels: Some(std::collections::HashMap::from([(
                "sadomap.project".to_string(),
                network.to_string(),
            )])),
            healthcheck: Some(HealthConfig {
                test: Some(
                    ["CMD", "/testchild", "--probe", "8000"]
                        .map(String::from)
                        .to_vec(),
                ),
                interval: Some(second),
                timeout: Some(second),
                retries: Some(3),
                start_period: Some(second),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some(network.to_string()),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::ALWAYS),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = d
            .create_container(None, body)
            .await
            .map_err(|e| e.to_string())?;
        d.start_container(&created.id, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(created.id)
    })
}

/// Docker alone: the same container under `--restart always` and a HEALTHCHECK (the test child
/// probing itself). Returns figures and, for faults Docker does not act on, what it did instead.
fn docker_alone(fault: Fault, rounds: u32, name: &str) -> Result<(Figures, String), String> {
    // A runtime only for its network and event stream; the container is made by `docker run`.
    let rt =
        DockerRuntime::connect(DockerOptions::new(IMAGE, name, name)).map_err(|e| e.to_string())?;
    let events = rt.events();
    let result = (|| {
        let id = run_restart_always(name)?;
        let ip = docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &id,
        ])?;
        let mut f = Figures::default();
        let mut note = String::new();
        for _ in 0..rounds {
            wait_for(LIMIT, || health_ok(&ip).then_some(())).ok_or("container not answering")?;
            // Start from a container Docker itself calls healthy.
            wait_for(LIMIT, || {
                docker(&["inspect", "-f", "{{.State.Health.Status}}", &id])
                    .ok()
                    .filter(|h| h == "healthy")
            })
            .ok_or("Docker never called it healthy")?;
            let t0 = Instant::now();
            let mine = |e: &sadomap_supervisor::ContainerEvent| {
                id.starts_with(&e.id.0) || e.id.0.starts_with(&id)
            };
            match fault {
                Fault::Kill => {
                    kill(Pid::from_raw(host_pid(&id)?), Signal::SIGKILL)
                        .map_err(|e| e.to_string())?;
                    events
                        .wait_for(LIMIT, |e| {
                            mine(e) && matches!(e.kind, ContainerEventKind::Died { .. })
                        })?
                        .ok_or("no die event")?;
                    f.detect.push(t0.elapsed());
                    events
                        .wait_for(LIMIT, |e| mine(e) && e.kind == ContainerEventKind::Started)?
                        .ok_or("Docker did not restart it")?;
                    f.started.push(t0.elapsed());
                    wait_for(LIMIT, || health_ok(&ip).then_some(())).ok_or("never healthy")?;
                    f.healthy.push(t0.elapsed());
                }
                Fault::Unhealthy | Fault::NetworkCut => {
                    if fault == Fault::Unhealthy {
                        HttpTarget::parse(
                            &format!("http://{ip}:8000/fail"),
                            Duration::from_secs(2),
                        )?
                        .get()?;
                    } else {
                        docker(&["network", "disconnect", "-f", name, &id])?;
                    }
                    let unhealthy = events.wait_for(Duration::from_secs(15), |e| {
                        mine(e)
                            && e.kind
                                == (ContainerEventKind::Health {
                                    status: "unhealthy".into(),
                                })
                    })?;
                    match unhealthy {
                        Some(_) => f.detect.push(t0.elapsed()),
                        None => note
                            .push_str("its HEALTHCHECK (run inside the container) still passes; "),
                    }
                    // Watch 10 s more for a restart that never comes.
                    let restarted = events.wait_for(Duration::from_secs(10), |e| {
                        mine(e)
                            && matches!(
                                e.kind,
                                ContainerEventKind::Died { .. } | ContainerEventKind::Started
                            )
                    })?;
                    let count = docker(&["inspect", "-f", "{{.RestartCount}}", &id])?;
                    let _ = write!(
                        note,
                        "{} after {:.0} s, RestartCount {count}",
                        if restarted.is_some() {
                            "restarted"
                        } else {
                            "not restarted"
                        },
                        t0.elapsed().as_secs_f64()
                    );
                    break; // one round shows it
                }
                Fault::Pause => return Err("not a Docker-alone scenario".into()),
            }
        }
        Ok((f, note))
    })();
    let _ = rt.cleanup();
    result
}

fn main() -> ExitCode {
    let mut rounds = 3u32;
    let mut interval_ms = 200u64;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--rounds", Some(v)) => rounds = v.parse().unwrap_or(rounds),
            ("--interval-ms", Some(v)) => interval_ms = v.parse().unwrap_or(interval_ms),
            ("--out", Some(v)) => out = Some(PathBuf::from(v)),
            (other, _) => {
                eprintln!("unknown or incomplete argument {other}\nusage: docker_drill [--rounds N] [--interval-ms N] [--out FILE]");
                return ExitCode::from(2);
            }
        }
    }
    let tag = format!("sdd-{}", std::process::id());
    let mut table = String::from(
        "| failure (injected as) | who restarts | detected after | replacement started after | replacement healthy after | notes |\n|---|---|---|---|---|---|\n",
    );
    let ours = [
        (Fault::Kill, "exited (SIGKILL of the container's process)"),
        (Fault::Unhealthy, "unhealthy (/health answers 500)"),
        (
            Fault::NetworkCut,
            "network cut (`docker network disconnect`, api)",
        ),
        (
            Fault::Pause,
            "unresponsive (`docker pause`, heartbeat worker)",
        ),
    ];
    for (i, (fault, label)) in ours.into_iter().enumerate() {
        eprintln!("docker drill: {label} (this supervisor)");
        match supervised(fault, rounds, interval_ms, &format!("{tag}-s{i}")) {
            Ok(f) => {
                let _ = writeln!(
                    table,
                    "| {label} | this supervisor ({interval_ms} ms probes) | {} | {} | {} | {rounds} rounds |",
                    stats(&f.detect), stats(&f.started), stats(&f.healthy)
                );
            }
            Err(e) => {
                eprintln!("docker drill: {label}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let theirs = [
        (Fault::Kill, "exited (SIGKILL of the container's process)"),
        (Fault::Unhealthy, "unhealthy (/health answers 500)"),
        (
            Fault::NetworkCut,
            "network cut (`docker network disconnect`, api)",
        ),
    ];
    for (i, (fault, label)) in theirs.into_iter().enumerate() {
        eprintln!("docker drill: {label} (Docker restart: always)");
        match docker_alone(fault, rounds, &format!("{tag}-d{i}")) {
            Ok((f, note)) => {
                let _ = writeln!(
                    table,
                    "| {label} | Docker `restart: always`, HEALTHCHECK every 1 s, 3 retries | {} | {} | {} | {} |",
                    stats(&f.detect),
                    if f.started.is_empty() { "never".into() } else { stats(&f.started) },
                    if f.healthy.is_empty() { "never".into() } else { stats(&f.healthy) },
                    if note.is_empty() { format!("{rounds} rounds") } else { note }
                );
            }
            Err(e) => {
                eprintln!("docker drill: {label}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let section = format!(
        "{MARKER}\n\n`bench/failover/run.sh --docker`: containers of `{IMAGE}` on a private bridge network; \
         median (max). Detected = this supervisor's failure event, or Docker's `die` / \
         `health_status: unhealthy` event; healthy = the replacement's first passed probe (this \
         supervisor) or first 200 from `/health` (Docker).\n\n{table}"
    );
    print!("{section}");
    if let Some(path) = out {
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        let kept = before.split(MARKER).next().unwrap_or("").trim_end();
        let text = if kept.is_empty() {
            section
        } else {
            format!("{kept}\n\n{section}")
        };
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
