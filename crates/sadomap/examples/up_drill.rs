//! Failover drill through `sadomap up` with the real processes (`serve` ×2 on the shared socket,
//! `worker`, `scheduler`) on the embedded default, under a steady client load: for each fault,
//! the time from the fault to its detection, to the replacement's start and to the replacement's
//! first passed probe (from the supervisor's event log), and the client requests that failed.
//!
//! Usage: `up_drill --bin target/release/sadomap [--rounds N] [--interval-ms N] [--out FILE]`
//! (`bench/failover/up_drill.sh` builds and runs it).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

#[path = "../tests/support/mod.rs"]
mod support;
use support::{wait_for, Load};

type Res<T> = Result<T, String>;

struct Args {
    bin: PathBuf,
    rounds: usize,
    interval_ms: u64,
    out: Option<PathBuf>,
}

fn args() -> Res<Args> {
    let mut a = Args {
        bin: PathBuf::from("target/release/sadomap"),
        rounds: 5,
        interval_ms: 2_000,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--bin" => a.bin = PathBuf::from(v()?),
            "--rounds" => a.rounds = v()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--interval-ms" => {
                a.interval_ms = v()?.parse().map_err(|e| format!("--interval-ms: {e}"))?
            }
            "--out" => a.out = Some(PathBuf::from(v()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running `sadomap up` in its own process group, killed with it on drop.
struct Up {
    child: Child,
    bin: PathBuf,
    data: PathBuf,
    addr: SocketAddr,
}

impl Up {
    fn start(bin: &Path, dir: &Path, interval_ms: u64) -> Res<Up> {
        let addr: SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
        let config = dir.join("up.toml");
        // The stale limit must exceed the worker's 2 s heartbeat: 3 intervals when the interval
        // is at least 1 s, else enough intervals to cover 6 s.
        let stale = if interval_ms >= 1_000 {
            3
        } else {
            6_000u64.div_ceil(interval_ms.max(1))
        };
        std::fs::write(
            &config,
            // The drill injects many faults in a few minutes on purpose: keep the cascade guard
            // (3 failures in 5 min → protective, rate-limited restarts) out of the timings.
            format!(
                "[up.health]\ninterval_ms = {interval_ms}\nstale_after_intervals = {stale}\n\n[up.cascade]\nfailures = 1000\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let data = dir.join("data");
        let log =
            |name: &str| std::fs::File::create(dir.join(name)).map_err(|e| format!("{name}: {e}"));
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(&data)
            .args(["up", "--workers", "1", "--demo", "1000", "--listen"])
            .arg(addr.to_string())
            .arg("--config")
            .arg(&config)
            .env("SADOMAP_RATE_LIMIT", "0")
            .env_remove("SADOMAP_REDIS_URL")
            .stdin(Stdio::null())
            .stdout(log("up.out")?)
            .stderr(log("up.err")?)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        Ok(Up {
            child,
            bin: bin.to_path_buf(),
            data,
            addr,
        })
    }

    fn sadomap(&self, args: &[&str]) -> Option<std::process::Output> {
        Command::new(&self.bin)
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .output()
            .ok()
    }

    /// `(pid, health)` of each instance of `service`.
    fn instances(&self, service: &str) -> Vec<(u32, String)> {
        let Some(out) = self.sadomap(&["--json", "status"]) else {
            return Vec::new();
        };
        let Ok(st) = serde_json::from_slice::<Value>(&out.stdout) else {
            return Vec::new();
        };
        st["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == service))
            .and_then(|s| s["instances"].as_array())
            .map(|is| {
                is.iter()
                    .filter_map(|i| {
                        let pid = u32::try_from(i["pid"].as_u64()?).ok()?;
                        Some((pid, i["health"].as_str()?.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn healthy_pid(&self, service: &str, timeout: Duration) -> Res<u32> {
        wait_for(timeout, || {
            self.instances(service)
                .into_iter()
                .find(|(_, h)| h == "healthy")
                .map(|(p, _)| p)
        })
        .ok_or(format!("no healthy {service} within {timeout:?}"))
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.data.join("supervisor-events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            if pgid > 1 {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// One round's timings (ms after the fault) and failed/total requests.
#[derive(Default, Clone)]
struct Round {
    detected: Option<u64>,
    started: Option<u64>,
    healthy: Option<u64>,
    failed: u64,
    total: u64,
}

/// Reads the event log for the first `failure_detected`, `restarted` and then `health_changed`
/// to healthy of the new instance, for `service`, after `t0`.
fn timings(up: &Up, service: &str, t0: u64, timeout: Duration) -> Round {
    let mut r = Round::default();
    let _ = wait_for(timeout, || {
        let evs = up.events();
        let after =
            |e: &&Value| e["service"] == service && e["unix_ms"].as_u64().is_some_and(|t| t >= t0);
        let at = |e: &Value| e["unix_ms"].as_u64().map(|t| t - t0);
        r.detected = evs
            .iter()
            .filter(after)
            .find(|e| e["event"] == "failure_detected")
            .and_then(at);
        let restarted = evs
            .iter()
            .filter(after)
            .find(|e| e["event"] == "restarted")?;
        r.started = at(restarted);
        let new = restarted["instance"].as_str()?;
        let healthy = evs.iter().filter(after).find(|e| {
            e["event"] == "health_changed" && e["instance"] == new && e["to"] == "healthy"
        })?;
        r.healthy = at(healthy);
        Some(())
    });
    r
}

fn fmt_ms(v: &[Option<u64>]) -> String {
    let mut xs: Vec<u64> = v.iter().flatten().copied().collect();
    if xs.is_empty() {
        return "–".into();
    }
    xs.sort_unstable();
    let missing = v.len() - xs.len();
    // Rounds after the first may include the slot's restart backoff: show the first round too.
    let first = v
        .first()
        .copied()
        .flatten()
        .map_or("–".into(), |x| x.to_string());
    let s = format!(
        "{} ms (min {}, max {}; round 1: {first})",
        xs[(xs.len() - 1) / 2],
        xs[0],
        xs[xs.len() - 1]
    );
    if missing > 0 {
        format!("{s}, {missing} not seen")
    } else {
        s
    }
}

fn row(name: &str, rounds: &[Round]) -> String {
    let col = |f: fn(&Round) -> Option<u64>| fmt_ms(&rounds.iter().map(f).collect::<Vec<_>>());
    let failed: u64 = rounds.iter().map(|r| r.failed).sum();
    let total: u64 = rounds.iter().map(|r| r.total).sum();
    format!(
        "| {name} | {} | {} | {} | {failed} of {total} |",
        col(|r| r.detected),
        col(|r| r.started),
        col(|r| r.healthy)
    )
}

fn run() -> Res<String> {
    let a = args()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let up = Up::start(&a.bin, dir.path(), a.interval_ms)?;
    let startup = Duration::from_secs(60);
    up.healthy_pid("api-primary", startup)?;
    up.healthy_pid("api-backup", startup)?;
    up.healthy_pid("worker", startup)?;
    let settle = Duration::from_millis(a.interval_ms.max(500) * 2);
    let timeout = Duration::from_secs(60);
    let mut out = Vec::new();
    let mut drill = |name: &str, service: &str, fault: &dyn Fn(&Up) -> Res<()>| -> Res<()> {
        let mut rounds = Vec::new();
        for _ in 0..a.rounds {
            up.healthy_pid(service, timeout)?;
            thread::sleep(settle);
            let load = Load::start(up.addr, 2);
            thread::sleep(Duration::from_millis(300));
            let (ok0, failed0) = load.counts();
            let t0 = now_ms();
            fault(&up)?;
            let mut r = timings(&up, service, t0, timeout);
            // Keep the load on a little past the recovery.
            thread::sleep(Duration::from_millis(300));
            let (ok1, failed1) = load.counts();
            load.finish();
            r.failed = failed1 - failed0;
            r.total = ok1 + failed1 - ok0 - failed0;
            rounds.push(r);
        }
        let line = row(name, &rounds);
        eprintln!("{line}");
        out.push(line);
        Ok(())
    };
    let signal = |service: &'static str, sig: Signal| {
        move |up: &Up| -> Res<()> {
            let pid = up.healthy_pid(service, Duration::from_secs(30))?;
            let pid = i32::try_from(pid).map_err(|e| e.to_string())?;
            kill(Pid::from_raw(pid), sig).map_err(|e| format!("kill {pid}: {e}"))
        }
    };
    drill(
        "exited: SIGKILL api-primary (shared socket)",
        "api-primary",
        &signal("api-primary", Signal::SIGKILL),
    )?;
    drill(
        "exited: SIGKILL worker",
        "worker",
        &signal("worker", Signal::SIGKILL),
    )?;
    drill(
        "unresponsive: SIGSTOP worker",
        "worker",
        &signal("worker", Signal::SIGSTOP),
    )?;
    // A rolling restart: both sides replaced, one at a time; timed as a whole.
    let mut rounds = Vec::new();
    for _ in 0..a.rounds {
        up.healthy_pid("api-primary", timeout)?;
        up.healthy_pid("api-backup", timeout)?;
        thread::sleep(settle);
        let load = Load::start(up.addr, 2);
        thread::sleep(Duration::from_millis(300));
        let (ok0, failed0) = load.counts();
        let t = Instant::now();
        let res = up
            .sadomap(&["restart", "api"])
            .ok_or("sadomap restart did not run")?;
        if !res.status.success() {
            return Err(String::from_utf8_lossy(&res.stderr).into_owned());
        }
        let took = t.elapsed().as_millis() as u64;
        thread::sleep(Duration::from_millis(300));
        let (ok1, failed1) = load.counts();
        load.finish();
        rounds.push(Round {
            healthy: Some(took),
            failed: failed1 - failed0,
            total: ok1 + failed1 - ok0 - failed0,
            ..Round::default()
        });
    }
    let line = row("rolling `sadomap restart api` (both sides)", &rounds);
    eprintln!("{line}");
    out.push(line);
    drop(up);
    let head = format!(
        "{} rounds each, median (min, max, and the first round), `sadomap up --workers 1 --demo 1000`, probe interval {} ms, cascade guard off (failures = 1000), 2 client loops (one request in flight each, a new connection per request). Times from the fault, read from the supervisor's event log; healthy = the replacement's first passed probe; for the restart, the time `sadomap restart api` took.\n\n| fault | detected | replacement started | replacement healthy | client requests failed |\n|---|---|---|---|---|\n",
        a.rounds, a.interval_ms
    );
    let table = head + &out.join("\n") + "\n";
    if let Some(path) = &a.out {
        std::fs::write(path, &table).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(table)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(t) => {
            print!("{t}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("up_drill: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
