//! Failover drill: injects each fault into real local processes under a running supervisor and
//! measures time from fault to detection and to a healthy replacement.
//!
//! Needs the test child binary: `bench/failover/run.sh` builds it and runs this drill.
//! `cargo run -p sadomap-supervisor --example failover_drill -- --child PATH [--rounds N]
//! [--interval-ms N] [--out FILE]`

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sadomap_supervisor::{
    Event, HealthState, Heartbeats, HttpTarget, MemorySink, Metrics, Plan, Shutdown, SlotPhase,
    StatusHandle, Supervisor, Telemetry, TopologyConfig,
};

struct FileHeartbeats(PathBuf);

impl Heartbeats for FileHeartbeats {
    fn heartbeat_age(&self, worker_id: &str) -> Option<Duration> {
        let modified = std::fs::metadata(self.0.join(worker_id))
            .ok()?
            .modified()
            .ok()?;
        Some(
            SystemTime::now()
                .duration_since(modified)
                .unwrap_or(Duration::ZERO),
        )
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
        thread::sleep(Duration::from_millis(2));
    }
}

fn healthy_pid(status: &StatusHandle) -> Option<u32> {
    let st = status.snapshot();
    let healthy = |name: &str| {
        let row = st.service(name)?.instances.first()?.clone();
        match row.phase {
            SlotPhase::Running {
                health: HealthState::Healthy,
            } => row.pid,
            _ => None,
        }
    };
    // The api scenarios need both sides up; the others have one service.
    if st.service("api-backup").is_some() {
        healthy("api-backup")?;
    }
    let row = st.services.first()?.instances.first()?.clone();
    match row.phase {
        SlotPhase::Running {
            health: HealthState::Healthy,
        } => row.pid,
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Sigkill,
    Sigstop,
    HealthFails,
    /// SIGKILL api-primary while clients send requests to the shared socket.
    ApiSigkill,
    /// `restart` of api-primary, then api-backup, under the same load.
    RollingRestart,
}

struct Figures {
    detect: Vec<Duration>,
    started: Vec<Duration>,
    healthy: Vec<Duration>,
    /// (answered, failed) client requests, for the api scenarios.
    requests: Option<(u64, u64)>,
}

/// Steady client load on the shared socket: sequential requests from a few threads.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                thread::spawn(move || {
                    // Bounded: stops when told, or after 100 000 requests at most.
                    for _ in 0..100_000 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let answer = (|| -> std::io::Result<String> {
                            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                            s.set_read_timeout(Some(Duration::from_secs(5)))?;
                            s.write_all(
                                b"GET /work HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                            )?;
                            let mut out = String::new();
                            s.read_to_string(&mut out)?;
                            Ok(out)
                        })();
                        match answer {
                            Ok(a) if a.starts_with("HTTP/1.1 200") => {
                                ok.fetch_add(1, Ordering::SeqCst)
                            }
                            _ => failed.fetch_add(1, Ordering::SeqCst),
                        };
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            threads,
        }
    }

    fn more(&self, n: u64) -> Result<(), String> {
        let target = self.ok.load(Ordering::SeqCst) + n;
        wait_for(Duration::from_secs(20), || {
            (self.ok.load(Ordering::SeqCst) >= target).then_some(())
        })
        .ok_or_else(|| "load is not being served".to_string())
    }

    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

fn drill(
    fault: Fault,
    child: &str,
    rounds: u32,
    interval_ms: u64,
    dir: &std::path::Path,
) -> Result<Figures, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let api = |name: &str| {
        format!(
            r#"{{"name":"{name}","role":"api","command":"{child}","args":["--inherit","--work-ms","5"],"inherit_listener":true,"stop_grace_ms":3000}}"#
        )
    };
    let service = match fault {
        Fault::ApiSigkill | Fault::RollingRestart => {
            format!("{},{}", api("api-primary"), api("api-backup"))
        }
        Fault::Sigkill => format!(r#"{{"name":"worker","role":"worker","command":"{child}"}}"#),
        Fault::Sigstop => format!(
            r#"{{"name":"worker","role":"worker","command":"{child}","args":["--heartbeat-dir","{}"],"probes":{{"heartbeat":true}}}}"#,
            dir.display()
        ),
        Fault::HealthFails => format!(
            r#"{{"name":"api-primary","role":"api","command":"{child}","args":["--port","{port}"],"stop_grace_ms":2000,
                "probes":{{"http":{{"url":"http://127.0.0.1:{port}/health","timeout_ms":{}}}}}}}"#,
            interval_ms.max(50)
        ),
    };
    let json = format!(
        r#"{{"listen":"127.0.0.1:0","health":{{"interval_ms":{interval_ms},"start_period_ms":{}}},"cascade":{{"failures":1000}},
            "restart":{{"reset_after_healthy_ms":0}},"services":[{service}]}}"#,
        interval_ms * 20
    );
    let config: TopologyConfig = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    let plan = Plan::build(&config).map_err(|e| e.to_string())?;
    let addr = plan
        .listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .ok_or("no listening socket")?;
    let events = Arc::new(MemorySink::new());
    let telemetry = Telemetry::new(Arc::new(Metrics::new())).with_sink(events.clone());
    let (sup, _rt) = Supervisor::local(plan, telemetry);
    let sup = sup.with_heartbeats(Arc::new(FileHeartbeats(dir.to_path_buf())));
    let status = sup.status();
    let control = sup.control();
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    let handle = thread::spawn(move || sup.run(&s));
    let mut figures = Figures {
        detect: Vec::new(),
        started: Vec::new(),
        healthy: Vec::new(),
        requests: None,
    };
    let limit = Duration::from_secs(20);
    let load =
        matches!(fault, Fault::ApiSigkill | Fault::RollingRestart).then(|| Load::start(addr, 2));
    for _ in 0..rounds {
        if let Some(l) = &load {
            wait_for(limit, || healthy_pid(&status)).ok_or("no healthy instance")?;
            l.more(100)?;
        }
        if fault == Fault::RollingRestart {
            let t0 = Instant::now();
            for name in ["api-primary", "api-backup"] {
                let before = events.count(|e| matches!(e, Event::RollingRestarted(_)));
                control.restart(name).map_err(|e| e.to_string())?;
                wait_for(limit, || {
                    (events.count(|e| matches!(e, Event::RollingRestarted(_))) > before)
                        .then_some(())
                })
                .ok_or("rolling restart did not finish")?;
            }
            figures.detect.push(Duration::ZERO);
            figures.started.push(Duration::ZERO);
            figures.healthy.push(t0.elapsed());
            continue;
        }
        let pid = wait_for(limit, || healthy_pid(&status)).ok_or("no healthy instance")?;
        let failures_before = events.count(|e| matches!(e, Event::FailureDetected(_)));
        let restarts_before = events.count(|e| matches!(e, Event::Restarted(_)));
        let t0 = Instant::now();
        let pid_i = i32::try_from(pid).map_err(|e| e.to_string())?;
        match fault {
            Fault::Sigkill | Fault::ApiSigkill => {
                kill(Pid::from_raw(pid_i), Signal::SIGKILL).map_err(|e| e.to_string())?
            }
            Fault::RollingRestart => {}
            Fault::Sigstop => {
                kill(Pid::from_raw(pid_i), Signal::SIGSTOP).map_err(|e| e.to_string())?
            }
            Fault::HealthFails => {
                HttpTarget::parse(
                    &format!("http://127.0.0.1:{port}/fail"),
                    Duration::from_secs(2),
                )?
                .get()?;
            }
        }
        wait_for(limit, || {
            (events.count(|e| matches!(e, Event::FailureDetected(_))) > failures_before)
                .then_some(())
        })
        .ok_or("fault not detected")?;
        figures.detect.push(t0.elapsed());
        wait_for(limit, || {
            (events.count(|e| matches!(e, Event::Restarted(_))) > restarts_before).then_some(())
        })
        .ok_or("no replacement started")?;
        figures.started.push(t0.elapsed());
        wait_for(limit, || healthy_pid(&status).filter(|&p| p != pid))
            .ok_or("no healthy replacement")?;
        figures.healthy.push(t0.elapsed());
    }
    if let Some(l) = load {
        l.more(100)?;
        figures.requests = Some(l.finish());
    }
    shutdown.trigger();
    handle
        .join()
        .map_err(|_| "supervisor thread panicked".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(figures)
}

fn stats(v: &[Duration]) -> String {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(ms.len() / 2).copied().unwrap_or(0.0);
    let max = ms.last().copied().unwrap_or(0.0);
    format!("{median:.0} ms (max {max:.0} ms)")
}

fn main() -> ExitCode {
    let mut child = None;
    let mut rounds = 5u32;
    let mut interval_ms = 100u64;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        match (a.as_str(), v) {
            ("--child", Some(v)) => child = Some(v),
            ("--rounds", Some(v)) => rounds = v.parse().unwrap_or(rounds),
            ("--interval-ms", Some(v)) => interval_ms = v.parse().unwrap_or(interval_ms),
            ("--out", Some(v)) => out = Some(PathBuf::from(v)),
            (other, _) => {
                eprintln!("unknown or incomplete argument {other}\nusage: failover_drill --child PATH [--rounds N] [--interval-ms N] [--out FILE]");
                return ExitCode::from(2);
            }
        }
    }
    let Some(child) = child else {
        eprintln!("--child PATH (the sadomap-supervisor-testchild binary) is required");
        return ExitCode::from(2);
    };
    let dir = std::env::temp_dir().join(format!("sadomap-drill-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let mut table = String::from(
        "| failure (injected as) | probe interval | detected after | replacement started after | replacement healthy after | client requests failed | goal |\n|---|---|---|---|---|---|---|\n",
    );
    let mut ok = true;
    for (fault, name, goal, interval_ms) in [
        (
            Fault::Sigkill,
            "exited (SIGKILL worker)",
            "replaced ≤ 1 s",
            2_000,
        ),
        (
            Fault::Sigkill,
            "exited (SIGKILL worker)",
            "replaced ≤ 1 s",
            interval_ms,
        ),
        (
            Fault::Sigstop,
            "unresponsive (SIGSTOP worker)",
            "detected ≤ 3 × interval",
            interval_ms,
        ),
        (
            Fault::HealthFails,
            "unhealthy (health endpoint 500)",
            "restart after 3 failed probes",
            interval_ms,
        ),
        (
            Fault::ApiSigkill,
            "exited (SIGKILL api-primary, shared socket, 2 clients)",
            "no failure beyond its in-flight request",
            interval_ms,
        ),
        (
            Fault::RollingRestart,
            "`restart` api-primary, then api-backup (2 clients)",
            "no failed request",
            interval_ms,
        ),
    ] {
        match drill(fault, &child, rounds, interval_ms, &dir) {
            Ok(f) => {
                let requests = match f.requests {
                    Some((answered, failed)) => format!("{failed} of {}", answered + failed),
                    None => "-".into(),
                };
                let (detect, started) = if fault == Fault::RollingRestart {
                    ("-".into(), "-".into())
                } else {
                    (stats(&f.detect), stats(&f.started))
                };
                let _ = writeln!(
                    table,
                    "| {name} | {interval_ms} ms | {detect} | {started} | {} | {requests} | {goal} |",
                    stats(&f.healthy)
                );
            }
            Err(e) => {
                ok = false;
                let _ = writeln!(
                    table,
                    "| {name} | {interval_ms} ms | failed: {e} | | | | {goal} |"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let header = format!(
        "{rounds} rounds each, median (max), local processes, exit sweep every 100 ms; requests: \
         totals over all rounds; for the rolling restart, the time covers both sides. \
         Healthy = the replacement's first passed probe (needs a probe tick).\n\n"
    );
    print!("{header}{table}");
    if let Some(path) = out {
        // Keep the Docker part (written by the docker_drill example) if the file has one.
        let docker = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.find("## Docker runtime").map(|i| t[i..].to_string()))
            .map(|d| format!("\n{d}"))
            .unwrap_or_default();
        if let Err(e) = std::fs::write(&path, format!("{header}{table}{docker}")) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
