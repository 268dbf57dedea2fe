//! `sadomap worker` and `sadomap queue …`: open the broker the global options name (SQLite in
//! the data directory, or Redis with `--redis`) and call the queue crate.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sadomap_queue::{
    default_queues, render_metrics, Broker, CronExpr, JobId, JobInfo, JobState, ListFilter, NewJob,
    QueueName, QueueWeight, RedisBroker, Registry, Schedule, Scheduler, SchedulerConfig, Shutdown,
    SqliteBroker, SystemClock, TaskName, Worker, WorkerConfig, WorkerId,
};
use serde_json::{json, Value};

use crate::cli::Global;

#[path = "queue_health.rs"]
mod health_endpoint;

/// The queue file's name in the data directory.
const QUEUE_FILE: &str = "queue.sqlite3";

/// Arguments of `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Queues to poll as `name` or `name=weight`, comma-separated (default: high_priority=10,
    /// validation=7, normal=5, ml_processing=3, background=1, maintenance=1).
    #[arg(long, value_delimiter = ',')]
    pub queues: Vec<String>,
    /// Task threads (default: the number of cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Most jobs leased ahead of a free thread (default 128; fewer while tasks are slow).
    #[arg(long)]
    pub prefetch: Option<usize>,
    /// Lease length (renewed every third of it), e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub lease: Duration,
    /// How long SIGTERM waits for running jobs before giving them back, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_deadline: Duration,
    /// Results of finished jobs are kept this long, e.g. 1d.
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    pub result_ttl: Duration,
    /// The worker's id (default: host-pid-start).
    #[arg(long)]
    pub id: Option<String>,
    /// Also fire a cron schedule (UTC; repeatable): `NAME;CRON;TASK[;PAYLOAD[;QUEUE]]`, e.g.
    /// 'refresh;0 3 * * 1;noop'. Workers may all name the same schedules: a leader lock and a
    /// per-slot idempotency key fire each slot once.
    #[arg(long = "schedule")]
    pub schedules: Vec<String>,
    /// Serve `GET /health` (200 running, 503 with the reason when degraded or draining) and
    /// `GET /metrics` on this address, e.g. 127.0.0.1:9310 (port 0: any free port, printed).
    #[arg(long, value_name = "ADDR")]
    pub health_listen: Option<std::net::SocketAddr>,
}

/// Arguments of `queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: QueueCommand,
}

/// The `queue` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Counts per queue (ready, scheduled, running, dead, oldest ready age) and live workers.
    Stats,
    /// Live workers: state (running, degraded, draining), reason, jobs held, heartbeat age.
    Workers,
    /// Jobs, oldest first.
    List(ListArgs),
    /// The dead-letter queue.
    Dead(ListArgs),
    /// Makes dead jobs ready again with fresh attempts: the given ids, or all (of --queue).
    Retry {
        /// Job ids (none: every dead job).
        ids: Vec<String>,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
    },
    /// Deletes jobs in a state (default: dead).
    Purge {
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// ready, scheduled, succeeded, dead, cancelled or waiting.
        #[arg(long, default_value = "dead")]
        state: String,
    },
    /// Adds jobs, to test a deployment from the terminal.
    Enqueue(EnqueueArgs),
    /// One job, with its result.
    Get {
        /// The job id.
        id: String,
    },
    /// Cancels a job that has not finished.
    Cancel {
        /// The job id.
        id: String,
    },
    /// The queue's metrics in Prometheus text format.
    Metrics,
    /// Ends every lease of a worker known to be dead (after a SIGKILL), so its jobs run
    /// elsewhere at once instead of after the lease time.
    ReleaseWorker {
        /// The worker's id (see `queue stats`).
        id: String,
    },
}

/// Filters of `queue list` and `queue dead`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only this state (list only): ready, scheduled, running, succeeded, dead, cancelled,
    /// waiting.
    #[arg(long)]
    pub state: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

/// Arguments of `queue enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The task type (built in: noop, sleep, fail).
    pub task: String,
    /// How many jobs.
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// The payload as JSON, e.g. '{"ms": 100}'.
    #[arg(long, default_value = "{}")]
    pub payload: String,
    /// The queue.
    #[arg(long, default_value = "normal")]
    pub queue: String,
    /// Run no earlier than this from now, e.g. 90s, 15m, 24h, 2d.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Retries before the dead-letter queue (default: the task type's policy, 3).
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Idempotency key (with --count > 1, `-<n>` is appended per job).
    #[arg(long)]
    pub key: Option<String>,
    /// Offer the jobs at this many per second instead of all at once.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// Parses `500ms`, `90s`, `15m`, `24h`, `2d`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 90s, 15m, 24h, 2d)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use ms, s, m, h or d)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Opens the broker the global options name: Redis with `--redis`, else the SQLite queue file
/// in the data directory (created when missing).
pub fn open_broker(g: &Global) -> Result<Arc<dyn Broker>> {
    let clock = Arc::new(SystemClock);
    match &g.redis {
        Some(url) => Ok(Arc::new(
            RedisBroker::open(url, clock).context("opening the Redis queue")?,
        )),
        None => {
            std::fs::create_dir_all(&g.data_dir)
                .with_context(|| format!("creating data directory {}", g.data_dir.display()))?;
            let path: PathBuf = g.data_dir.join(QUEUE_FILE);
            Ok(Arc::new(SqliteBroker::open(&path, clock).with_context(
                || format!("opening the queue file {}", path.display()),
            )?))
        }
    }
}

fn queue_weights(specs: &[String]) -> Result<Vec<QueueWeight>> {
    if specs.is_empty() {
        return Ok(default_queues());
    }
    let defaults = default_queues();
    specs
        .iter()
        .map(|spec| {
            let (name, weight) = match spec.split_once('=') {
                Some((n, w)) => (
                    n,
                    Some(w.parse::<u32>().ok().filter(|&w| w >= 1).with_context(|| {
                        format!("--queues: weight {w:?} of {n:?} must be a whole number ≥ 1")
                    })?),
                ),
                None => (spec.as_str(), None),
            };
            let queue = QueueName::new(name).with_context(|| format!("--queues: {spec:?}"))?;
            let weight = weight
                .or_else(|| defaults.iter().find(|d| d.queue == queue).map(|d| d.weight))
                .unwrap_or(1);
            Ok(QueueWeight { queue, weight })
        })
        .collect()
}

/// Parses `NAME;CRON;TASK[;PAYLOAD[;QUEUE]]`.
fn parse_schedule(spec: &str) -> Result<Schedule> {
    let parts: Vec<&str> = spec.split(';').map(str::trim).collect();
    if !(3..=5).contains(&parts.len()) {
        bail!("--schedule {spec:?}: expected NAME;CRON;TASK[;PAYLOAD[;QUEUE]]");
    }
    let name = QueueName::new(parts[0])
        .with_context(|| format!("--schedule {spec:?}: the schedule name"))?;
    let cron = CronExpr::parse(parts[1]).with_context(|| format!("--schedule {spec:?}"))?;
    let task = TaskName::new(parts[2]).with_context(|| format!("--schedule {spec:?}"))?;
    let payload: Value = match parts.get(3) {
        Some(p) if !p.is_empty() => serde_json::from_str(p)
            .with_context(|| format!("--schedule {spec:?}: the payload is not JSON"))?,
        _ => json!({}),
    };
    let queue = QueueName::new(parts.get(4).copied().unwrap_or("maintenance"))
        .with_context(|| format!("--schedule {spec:?}: the queue"))?;
    Ok(Schedule {
        name: name.to_string(),
        cron,
        job: NewJob::new(task, payload, queue),
    })
}

/// `sadomap worker`: runs jobs until SIGTERM or SIGINT, then drains gracefully.
pub fn worker(g: &Global, args: &WorkerArgs) -> Result<ExitCode> {
    let broker = open_broker(g)?;
    let mut config = WorkerConfig {
        queues: queue_weights(&args.queues)?,
        lease: args.lease,
        shutdown_deadline: args.shutdown_deadline,
        ..WorkerConfig::default()
    };
    if let Some(c) = args.concurrency {
        config.concurrency = c;
    }
    if let Some(p) = args.prefetch {
        config.prefetch = p;
    }
    if let Some(id) = &args.id {
        config.id = Some(WorkerId::new(id.as_str()).context("--id")?);
    }
    let schedules = args
        .schedules
        .iter()
        .map(|s| parse_schedule(s))
        .collect::<Result<Vec<_>>>()?;
    let (worker, health) = Worker::build(broker.clone(), Registry::with_builtins(), config)
        .context("starting the worker")?;
    let shutdown = Shutdown::new();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("installing the SIGTERM/SIGINT handler")?;
    {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen == 1 {
                    eprintln!("sadomap worker: signal {sig}: finishing running jobs (again to quit at once)");
                    shutdown.trigger();
                } else {
                    std::process::exit(130);
                }
            }
        });
    }
    // Results past their TTL are deleted by every worker now and then (idempotent).
    {
        let (broker, shutdown, ttl) = (broker.clone(), shutdown.clone(), args.result_ttl);
        std::thread::spawn(move || loop {
            if let Err(e) = broker.expire_results(ttl) {
                tracing::warn!(error = %e, "cannot expire old results");
            }
            if shutdown.wait_timeout(Duration::from_secs(60)) {
                break;
            }
        });
    }
    if !schedules.is_empty() {
        let scheduler = Scheduler::new(
            broker.clone(),
            schedules,
            SchedulerConfig::new(health.id().as_str()),
        );
        let shutdown = shutdown.clone();
        std::thread::spawn(move || scheduler.run(&shutdown));
    }
    eprintln!(
        "sadomap worker {}: running (queue: {})",
        health.id(),
        g.redis.as_deref().map_or_else(
            || g.data_dir.join(QUEUE_FILE).display().to_string(),
            |_| "redis".to_owned()
        )
    );
    let endpoint = match args.health_listen {
        Some(addr) => Some(health_endpoint::start(
            addr,
            broker.clone(),
            health.clone(),
        )?),
        None => None,
    };
    let report = worker.run(&shutdown);
    if let Some(e) = endpoint {
        e.stop();
    }
    if g.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        eprintln!(
            "sadomap worker {}: stopped after {} runs ({} succeeded, {} failed, {} given back); \
             enqueue-to-start p50 {} ms, p99 {} ms",
            report.worker,
            report.started,
            report.succeeded,
            report.failed,
            report.released,
            report.latency.p50_ms,
            report.latency.p99_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_state(s: &str) -> Result<JobState> {
    Ok(match s {
        "ready" => JobState::Ready,
        "scheduled" => JobState::Scheduled,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "dead" => JobState::Dead,
        "cancelled" => JobState::Cancelled,
        "waiting" => JobState::Waiting,
        _ => bail!(
            "unknown state {s:?}: use ready, scheduled, running, succeeded, dead, cancelled or waiting"
        ),
    })
}

fn queue_opt(q: &Option<String>) -> Result<Option<QueueName>> {
    q.as_deref()
        .map(|q| QueueName::new(q).context("--queue"))
        .transpose()
}

fn job_id(s: &str) -> Result<JobId> {
    s.parse::<JobId>().with_context(|| format!("job id {s:?}"))
}

/// `sadomap queue …`.
pub fn queue(g: &Global, args: &QueueArgs) -> Result<ExitCode> {
    let broker = open_broker(g)?;
    let b = &*broker;
    match &args.command {
        QueueCommand::Stats => stats(g, b),
        QueueCommand::Workers => workers(g, b),
        QueueCommand::List(a) => {
            let state = a.state.as_deref().map(parse_state).transpose()?;
            list(g, b, a, state)
        }
        QueueCommand::Dead(a) => list(g, b, a, Some(JobState::Dead)),
        QueueCommand::Retry { ids, queue } => {
            let ids = ids.iter().map(|s| job_id(s)).collect::<Result<Vec<_>>>()?;
            let n = b.retry_dead(queue_opt(queue)?.as_ref(), &ids)?;
            print_count(g, "retried", n);
            Ok(ExitCode::SUCCESS)
        }
        QueueCommand::Purge { queue, state } => {
            let state = parse_state(state)?;
            if state == JobState::Running {
                bail!("running jobs cannot be purged: cancel them (`sadomap queue cancel ID`)");
            }
            let n = b.purge(queue_opt(queue)?.as_ref(), state)?;
            print_count(g, "purged", n);
            Ok(ExitCode::SUCCESS)
        }
        QueueCommand::Enqueue(a) => enqueue(g, b, a),
        QueueCommand::Get { id } => match b.get(job_id(id)?)? {
            Some(job) => {
                print_jobs(g, &[job])?;
                Ok(ExitCode::SUCCESS)
            }
            None => bail!("no job {id} (it never existed, or its result expired)"),
        },
        QueueCommand::Cancel { id } => {
            let done = b.cancel(job_id(id)?)?;
            if g.json {
                println!("{}", json!({ "cancelled": done }));
            } else if done {
                println!("cancelled job {id}");
            } else {
                println!("job {id} had already finished (or does not exist)");
            }
            Ok(ExitCode::SUCCESS)
        }
        QueueCommand::ReleaseWorker { id } => {
            let worker = WorkerId::new(id.as_str()).context("worker id")?;
            let n = b.release_worker(&worker)?;
            print_count(g, "released", n);
            Ok(ExitCode::SUCCESS)
        }
        QueueCommand::Metrics => {
            print!("{}", render_metrics(b, None)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_count(g: &Global, what: &str, n: usize) {
    if g.json {
        println!("{}", json!({ what: n }));
    } else {
        println!("{what} {n} job(s)");
    }
}

fn stats(g: &Global, b: &dyn Broker) -> Result<ExitCode> {
    let stats = b.stats()?;
    let counters = b.counters()?;
    let workers = b.workers(Duration::from_secs(60))?;
    if g.json {
        println!(
            "{}",
            json!({ "queues": stats, "counters": counters, "workers": workers })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<16} {:>8} {:>9} {:>8} {:>6} {:>10}",
        "queue", "ready", "scheduled", "running", "dead", "oldest_s"
    )?;
    for s in &stats {
        writeln!(
            out,
            "{:<16} {:>8} {:>9} {:>8} {:>6} {:>10.1}",
            s.queue.as_str(),
            s.ready,
            s.scheduled,
            s.running,
            s.dead,
            s.oldest_ready_ms as f64 / 1000.0
        )?;
    }
    let now = b.now();
    for w in &workers {
        writeln!(
            out,
            "worker {} {} (pid {}, {} running, beat {:.1}s ago)",
            w.id,
            w.state,
            w.pid,
            w.running,
            now.since(w.last_beat).as_secs_f64()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Heartbeats older than this are not listed (the worker is gone).
const WORKERS_MAX_AGE: Duration = Duration::from_secs(300);

fn workers(g: &Global, b: &dyn Broker) -> Result<ExitCode> {
    let now = b.now();
    let workers = b.workers(WORKERS_MAX_AGE)?;
    let age = |w: &sadomap_queue::WorkerInfo| now.since(w.last_beat).as_secs_f64();
    if g.json {
        let rows: Vec<Value> = workers
            .iter()
            .map(|w| {
                json!({
                    "id": w.id, "state": w.state, "reason": w.reason, "pid": w.pid,
                    "host": w.host, "running": w.running, "heartbeat_age_s": age(w),
                })
            })
            .collect();
        println!("{}", Value::Array(rows));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<40} {:<9} {:>7} {:>8} {:>7}  reason",
        "worker", "state", "pid", "running", "beat_s"
    )?;
    for w in &workers {
        writeln!(
            out,
            "{:<40} {:<9} {:>7} {:>8} {:>7.1}  {}",
            w.id.as_str(),
            w.state.as_str(),
            w.pid,
            w.running,
            age(w),
            w.reason.as_deref().unwrap_or("")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list(g: &Global, b: &dyn Broker, a: &ListArgs, state: Option<JobState>) -> Result<ExitCode> {
    let jobs = b.list(&ListFilter {
        queue: queue_opt(&a.queue)?,
        state,
        limit: a.limit.max(1),
    })?;
    print_jobs(g, &jobs)?;
    Ok(ExitCode::SUCCESS)
}

fn print_jobs(g: &Global, jobs: &[JobInfo]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if g.json {
        writeln!(out, "{}", serde_json::to_string(jobs)?)?;
        return Ok(());
    }
    for j in jobs {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\tattempts={}\t{}",
            j.id,
            j.queue.as_str(),
            j.task.as_str(),
            j.state.as_str(),
            j.attempts,
            j.last_error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

fn enqueue(g: &Global, b: &dyn Broker, a: &EnqueueArgs) -> Result<ExitCode> {
    let task = TaskName::new(a.task.as_str()).context("task")?;
    let queue = QueueName::new(a.queue.as_str()).context("--queue")?;
    let payload: Value = serde_json::from_str(&a.payload)
        .with_context(|| format!("--payload is not JSON: {:?}", a.payload))?;
    if let Some(r) = a.rate {
        if !(r > 0.0 && r.is_finite()) {
            bail!("--rate must be a positive number of jobs per second");
        }
    }
    let template = |n: u64| {
        let mut job = NewJob::new(task.clone(), payload.clone(), queue.clone());
        job.not_before = a.delay.map(|d| b.now().after(d));
        job.max_retries = a.max_retries;
        job.idempotency_key = a.key.as_ref().map(|k| {
            if a.count > 1 {
                format!("{k}-{n}")
            } else {
                k.clone()
            }
        });
        job
    };
    let started = Instant::now();
    let (mut added, mut duplicates, mut ids) = (0u64, 0u64, Vec::new());
    let mut sent = 0u64;
    while sent < a.count {
        // All at once in batches of 1000, or paced: what is due by now, every millisecond.
        let due = match a.rate {
            None => (sent + 1000).min(a.count),
            Some(r) => ((started.elapsed().as_secs_f64() * r) as u64 + 1).min(a.count),
        };
        if due <= sent {
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        let batch: Vec<NewJob> = (sent..due).map(template).collect();
        for e in b.enqueue(&batch)? {
            if e.duplicate {
                duplicates += 1;
            } else {
                added += 1;
            }
            if ids.len() < 1000 {
                ids.push(e.id);
            }
        }
        sent = due;
    }
    let secs = started.elapsed().as_secs_f64();
    if g.json {
        println!(
            "{}",
            json!({
                "enqueued": added,
                "duplicates": duplicates,
                "ids": ids,
                "seconds": secs,
            })
        );
    } else {
        let shown: Vec<String> = ids.iter().take(10).map(|i| i.to_string()).collect();
        println!(
            "enqueued {added} job(s) ({duplicates} duplicate(s)) in {secs:.3}s: {}{}",
            shown.join(" "),
            if ids.len() > 10 { " …" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_weights_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 weeks").is_err());
        let w = queue_weights(&["normal".into(), "custom=4".into()]).expect("weights");
        assert_eq!((w[0].weight, w[1].weight), (5, 4));
        assert!(queue_weights(&["x=0".into()]).is_err());
        let s = parse_schedule("refresh;0 3 * * 1;noop;{\"a\":1};background").expect("schedule");
        assert_eq!(
            (s.name.as_str(), s.job.queue.as_str()),
            ("refresh", "background")
        );
        assert!(parse_schedule("refresh;0 3 * *;noop").is_err());
        assert!(parse_schedule("refresh;0 3 * * 1").is_err());
    }
}
