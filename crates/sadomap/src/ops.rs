//! Operating a running `sadomap up` and deploying elsewhere: `status`, `restart`, `deploy
//! compose`, `deploy k8s`, `probe`, and `scheduler` (the process `up` runs as its scheduler
//! service).
//!
//! `status` and `restart` talk to the supervisor over its control socket in the data directory
//! (one request line, one JSON answer).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sadomap_supervisor::{
    control_request, write_compose, write_k8s, ComposeConfig, HttpTarget, K8sAutoscaler, K8sConfig,
    K8sError, K8sRedis, ReplicasConfig, Status,
};
use serde_json::Value;

use crate::cli::Global;
use crate::up::CONTROL_SOCKET;

/// Arguments of `restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The service: `api` (api-primary, then api-backup), `worker`, `scheduler`, or any
    /// service name that `sadomap status` lists.
    pub service: String,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
}

/// Arguments of `deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// What to write.
    #[command(subcommand)]
    pub target: DeployTarget,
}

/// The manifests `deploy` writes.
#[derive(Debug, Subcommand)]
pub enum DeployTarget {
    /// A Docker Compose file (JSON, which Compose reads as YAML): api-primary, api-backup,
    /// worker × N, scheduler and Redis, with health checks and restart policies.
    Compose(ComposeArgs),
    /// Kubernetes manifests (multi-document YAML): Deployments for api (2 replicas), worker and
    /// scheduler, Services, probes, a PodDisruptionBudget and a queue-depth autoscaler.
    K8s(K8sArgs),
}

/// The workers' autoscaler on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutoscalerArg {
    /// A HorizontalPodAutoscaler on the External metric sadomap_queue_depth_jobs (needs an
    /// external-metrics adapter such as prometheus-adapter).
    Hpa,
    /// A KEDA ScaledObject with a Prometheus trigger (needs KEDA).
    Keda,
}

/// Arguments of `deploy k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// Write here (atomically) instead of to standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Namespace of every object.
    #[arg(long, default_value = "sadomap")]
    pub namespace: String,
    /// The sadomap image (its entrypoint is the sadomap binary).
    #[arg(long, default_value = "sadomap:latest")]
    pub image: String,
    /// Workers: `N`, or `MIN..MAX` for the autoscaler.
    #[arg(long, default_value = "1..4", value_parser = crate::up::parse_workers)]
    pub workers: ReplicasConfig,
    /// Ready jobs per worker the autoscaler aims at.
    #[arg(long, default_value_t = 20)]
    pub jobs_per_worker: u32,
    /// Queues the workers poll and the autoscaler counts (comma-separated) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub queues: Vec<String>,
    /// The workers' autoscaler.
    #[arg(long, value_enum, default_value = "hpa")]
    pub autoscaler: AutoscalerArg,
    /// Prometheus that the KEDA trigger queries.
    #[arg(long, default_value = "http://prometheus-server.monitoring.svc:80")]
    pub prometheus_url: String,
    /// Use this Redis (no password in the URL: it goes into the ConfigMap) instead of running
    /// one in the namespace.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
}

/// The `deploy k8s` option that sets a config field, for error messages.
fn k8s_flag(field: &str) -> &'static str {
    match field {
        "workers_min" | "workers_max" => "--workers",
        "namespace" => "--namespace",
        "image" => "--image",
        "jobs_per_worker" => "--jobs-per-worker",
        "queues" => "--queues",
        "prometheus_url" => "--prometheus-url",
        "redis.url" => "--redis-url",
        _ => "deploy k8s",
    }
}

/// `deploy k8s`: the config from the arguments; errors name the option.
fn deploy_k8s(g: &Global, a: &K8sArgs) -> Result<ExitCode> {
    let (workers_min, workers_max) = match a.workers {
        ReplicasConfig::Fixed(n) => (n, n),
        ReplicasConfig::Range { min, max } => (min, max),
    };
    let defaults = K8sConfig::default();
    let config = K8sConfig {
        namespace: a.namespace.clone(),
        image: a.image.clone(),
        workers_min,
        workers_max,
        jobs_per_worker: a.jobs_per_worker,
        queues: a.queues.clone(),
        autoscaler: match a.autoscaler {
            AutoscalerArg::Hpa => K8sAutoscaler::Hpa,
            AutoscalerArg::Keda => K8sAutoscaler::Keda,
        },
        prometheus_url: a.prometheus_url.clone(),
        redis: match &a.redis_url {
            Some(url) => K8sRedis::External { url: url.clone() },
            None => defaults.redis.clone(),
        },
        ..defaults
    };
    let named = |e: K8sError| match &e {
        K8sError::Invalid { field, .. } => anyhow!("{}: {e}", k8s_flag(field)),
        _ => anyhow!(e),
    };
    match &a.out {
        Some(path) => {
            write_k8s(&config, path).map_err(named)?;
            if !g.json {
                eprintln!(
                    "wrote {}; create the Secret its header names, then `kubectl apply -f {}`",
                    path.display(),
                    path.display()
                );
            }
        }
        None => print!("{}", config.to_yaml().map_err(named)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `deploy compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Write here (atomically) instead of to standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// The sadomap image (its entrypoint is the sadomap binary).
    #[arg(long, default_value = "sadomap:latest")]
    pub image: String,
    /// Worker replicas.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Host port of api-primary (api-backup gets the next one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

/// Arguments of `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// `http://host:port/path`.
    pub url: String,
    /// Time allowed for connect plus answer, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub timeout_ms: u64,
}

/// Arguments of `scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Cron schedules (UTC; repeatable) as `NAME;CRON;TASK[;PAYLOAD[;QUEUE]]` [default: the
    /// weekly refresh, Monday 03:00 Tokyo time].
    #[arg(long = "schedule")]
    pub schedules: Vec<String>,
}

/// The default schedules. The refresh task of the collection pipeline is not registered yet,
/// so the weekly slot fires `noop`: the slot, its leader lock and its idempotency run for real.
const DEFAULT_SCHEDULES: &[&str] = &["weekly-refresh;0 18 * * 0;noop"];

fn socket(g: &Global) -> PathBuf {
    g.data_dir.join(CONTROL_SOCKET)
}

/// Sends `line` to the supervisor and returns its answer, or an error with a hint.
fn ask(path: &Path, line: &str) -> Result<Value> {
    let answer = control_request(path, line)
        .map_err(|e| anyhow!("{e}; hint: is `sadomap up` running with this --data-dir?"))?;
    if answer["ok"] != Value::Bool(true) {
        bail!(
            "the supervisor refused `{line}`: {}",
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(answer)
}

/// `sadomap status`.
pub fn status(g: &Global) -> Result<ExitCode> {
    let answer = ask(&socket(g), "status")?;
    let status = &answer["status"];
    if g.json {
        println!("{}", serde_json::to_string(status)?);
    } else {
        let status: Status = serde_json::from_value(status.clone())
            .context("reading the supervisor's status answer")?;
        print!("{}", status.render_table());
    }
    Ok(ExitCode::SUCCESS)
}

/// Restarts of each slot of `service`, and whether every slot runs healthy.
fn slots(status: &Value, service: &str) -> Option<(Vec<u64>, bool)> {
    let s = status["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)?;
    let instances = s["instances"].as_array()?;
    let restarts = instances
        .iter()
        .map(|i| i["restarts"].as_u64().unwrap_or(0))
        .collect();
    let healthy = instances.iter().all(|i| i["health"] == "healthy");
    Some((restarts, healthy))
}

/// `sadomap restart SERVICE`: a rolling restart; for `api`, api-primary then api-backup, so one
/// side always serves. Waits until every replaced instance is healthy.
pub fn restart(g: &Global, args: &RestartArgs) -> Result<ExitCode> {
    let path = socket(g);
    let services: Vec<String> = match args.service.as_str() {
        "api" => vec!["api-primary".into(), "api-backup".into()],
        s => vec![s.to_string()],
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    for service in &services {
        let before = ask(&path, "status")?;
        let (before, _) = slots(&before["status"], service)
            .ok_or_else(|| anyhow!("no service {service:?}; `sadomap status` lists them"))?;
        ask(&path, &format!("restart {service}"))?;
        // One side at a time: the next starts only once this one is replaced and healthy.
        loop {
            let now = ask(&path, "status")?;
            if let Some((after, healthy)) = slots(&now["status"], service) {
                let all_replaced =
                    after.len() >= before.len() && before.iter().zip(&after).all(|(b, a)| a > b);
                if all_replaced && healthy {
                    break;
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "{service} was not replaced by healthy instances within {} s; see `sadomap \
                     status` and the supervisor's events",
                    args.timeout_secs
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if !g.json {
            println!("restarted {service}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sadomap deploy …`.
pub fn deploy(g: &Global, args: &DeployArgs) -> Result<ExitCode> {
    match &args.target {
        DeployTarget::Compose(a) => {
            let config = ComposeConfig {
                image: a.image.clone(),
                api_port: a.port,
                backup_port: a.port.checked_add(1).context("--port: no port after it")?,
                workers: a.workers,
                ..ComposeConfig::default()
            };
            match &a.out {
                Some(path) => {
                    write_compose(&config, path)?;
                    if !g.json {
                        eprintln!(
                            "wrote {}; check it with `docker compose -f {} config`",
                            path.display(),
                            path.display()
                        );
                    }
                }
                None => println!("{}", serde_json::to_string_pretty(&config.document()?)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        DeployTarget::K8s(a) => deploy_k8s(g, a),
    }
}

/// `sadomap probe URL`: exit 0 on an HTTP 2xx within the timeout (a container health check for
/// images without curl).
pub fn probe(args: &ProbeArgs) -> Result<ExitCode> {
    let target = HttpTarget::parse(&args.url, Duration::from_millis(args.timeout_ms))
        .map_err(|e| anyhow!("{e}"))?;
    match target.get() {
        Ok(latency) => {
            println!("ok {} ms", latency.as_millis());
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("{}: {reason}", args.url);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The worker's own arguments, parsed as if typed after `sadomap worker`.
#[derive(Debug, Parser)]
struct AsWorker {
    #[command(flatten)]
    worker: crate::queue_cmd::WorkerArgs,
}

/// `sadomap scheduler`: fires the cron schedules (one leader among any number of schedulers)
/// and runs only the `maintenance` queue, one job at a time, so it stays light.
pub fn scheduler(g: &Global, args: &SchedulerArgs, id: Option<String>) -> Result<ExitCode> {
    let mut argv = vec![
        "worker".to_string(),
        "--queues".into(),
        "maintenance".into(),
        "--concurrency".into(),
        "1".into(),
        "--shutdown-deadline".into(),
        "8s".into(),
    ];
    if let Some(id) = id {
        argv.extend(["--id".into(), id]);
    }
    let schedules: Vec<String> = if args.schedules.is_empty() {
        DEFAULT_SCHEDULES.iter().map(|s| s.to_string()).collect()
    } else {
        args.schedules.clone()
    };
    for s in schedules {
        argv.extend(["--schedule".into(), s]);
    }
    let parsed = AsWorker::try_parse_from(&argv).context("the scheduler's worker arguments")?;
    crate::queue_cmd::worker(g, &parsed.worker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedules_parse_as_worker_arguments() {
        let argv = ["worker", "--schedule", DEFAULT_SCHEDULES[0]];
        assert!(AsWorker::try_parse_from(argv).is_ok());
    }
}
