//! `sadomap up`: the whole topology on one machine, supervised. The supervisor binds `--listen`
//! once and runs this same binary as child processes: `api-primary` and `api-backup` (`sadomap
//! serve` on the inherited socket, each with its own health address), `worker` × N (`sadomap
//! worker`, probed by queue heartbeat) and `scheduler` (`sadomap scheduler`). It answers
//! `sadomap status` and `sadomap restart` on a Unix socket in the data directory and stops
//! everything on SIGTERM or SIGINT.
//!
//! Concurrency: the supervisor loop runs on the main thread until a signal thread triggers the
//! shutdown; the loop then stops every child (SIGTERM, grace, SIGKILL) before `up` returns.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use sadomap_supervisor::{
    CascadeConfig, HealthConfig, HttpProbeConfig, JsonLinesSink, Metrics, Plan, ProbesConfig,
    ReplicasConfig, RestartConfig, Role, ScalingConfig, ServiceConfig, Shutdown, Supervisor,
    Telemetry, TopologyConfig,
};
use serde::{Deserialize, Serialize};

use crate::cli::{DemoArgs, Global};
use crate::queue_signals::QueueSignals;

/// The control socket's name in the data directory.
pub const CONTROL_SOCKET: &str = "supervisor.sock";

/// The supervisor's events (JSON lines) in the data directory.
const EVENTS_FILE: &str = "supervisor-events.jsonl";

/// Workers when neither `--workers` nor the config file says: one, scaled up to four on depth.
const DEFAULT_WORKERS: ReplicasConfig = ReplicasConfig::Range { min: 1, max: 4 };

/// The worker's heartbeat period (the queue's default); the stale limit must exceed it.
const WORKER_HEARTBEAT_MS: u64 = 2_000;

/// Arguments of `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Address of the API, bound once by the supervisor and shared by api-primary and
    /// api-backup [default: 127.0.0.1:8080, or `listen` in `[up]` of sadomap.toml].
    #[arg(long, env = "SADOMAP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Workers: `N`, or `MIN..MAX` for the scaler to move within on queue depth [default: 1..4].
    /// The supervisor's policies are the `[up]` table of sadomap.toml (see `sadomap config`):
    /// `listen`, `workers`, `[up.health]`, `[up.restart]`, `[up.cascade]`, `[up.scaling]` (see
    /// the supervisor crate's config for the keys) and `[up.memory]` (a limit per service, e.g.
    /// `worker = "256MiB"`, `api` for both api sides).
    #[arg(long, env = "SADOMAP_WORKERS", value_parser = parse_workers)]
    pub workers: Option<ReplicasConfig>,
    /// Load this many demo places first if the store is empty (e.g. `--demo 1000`).
    #[arg(long, value_name = "N")]
    pub demo: Option<u64>,
    /// Where the services run: `local` processes, or `docker` containers on a private network
    /// with a Redis container (api-primary publishes `--listen`, api-backup the next port).
    #[arg(long, value_enum, default_value_t = RuntimeArg::Local)]
    pub runtime: RuntimeArg,
    /// Options of `--runtime docker`.
    #[command(flatten)]
    pub docker: crate::up_docker::DockerArgs,
}

/// Where `up` runs its services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeArg {
    /// Child processes of `up`, sharing one listening socket.
    Local,
    /// Containers through the Docker Engine API (see `up_docker`).
    Docker,
}

/// Parses `N` or `MIN..MAX` (min above max is left for the plan to reject by name).
pub fn parse_workers(s: &str) -> std::result::Result<ReplicasConfig, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?}: expected N or MIN..MAX (whole numbers), e.g. 2 or 1..4"))
    };
    match s.split_once("..") {
        Some((min, max)) => Ok(ReplicasConfig::Range {
            min: num(min)?,
            max: num(max)?,
        }),
        None => Ok(ReplicasConfig::Fixed(num(s)?)),
    }
}

/// The `[up]` table of sadomap.toml: policies; the services are `up`'s own.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpFile {
    listen: Option<SocketAddr>,
    #[serde(default, deserialize_with = "workers_field")]
    workers: Option<ReplicasConfig>,
    #[serde(default)]
    pub(crate) health: HealthConfig,
    #[serde(default)]
    pub(crate) restart: RestartConfig,
    #[serde(default)]
    pub(crate) cascade: CascadeConfig,
    #[serde(default)]
    pub(crate) scaling: ScalingConfig,
    /// Resident-memory limit per service (`api` for both api sides): bytes, or text with a
    /// unit such as `"512MiB"`. Over it, a process is restarted; a container also gets it as
    /// its hard cgroup limit, so the kernel's OOM killer enforces it.
    #[serde(default)]
    memory: std::collections::BTreeMap<String, MemoryLimit>,
}

/// A memory size: a whole number of bytes, or text with a binary (`KiB`, `MiB`, `GiB`) or
/// decimal (`KB`, `MB`, `GB`) unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemoryLimit(u64);

impl Serialize for MemoryLimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for MemoryLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum M {
            Bytes(u64),
            Text(String),
        }
        match M::deserialize(d)? {
            M::Bytes(b) => Ok(MemoryLimit(b)),
            M::Text(t) => parse_memory(&t)
                .map(MemoryLimit)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"512MiB"`, `"1.5GiB"`, `"300MB"` or `"1048576"`.
fn parse_memory(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "k" | "K" => 1 << 10,
        "MiB" | "m" | "M" => 1 << 20,
        "GiB" | "g" | "G" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
            "{text:?}: unknown unit {other:?}; hint: bytes, or a unit of KiB, MiB, GiB, KB, MB, GB"
        ))
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as \"512MiB\""))?;
    let bytes = n * factor as f64;
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("{text:?}: must be at least one byte"));
    }
    Ok(bytes as u64)
}

impl UpFile {
    /// The memory limit of each service of `up` that has one; an unknown name is an error.
    pub(crate) fn memory_limits(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        const SERVICES: [&str; 4] = ["api-primary", "api-backup", "worker", "scheduler"];
        let mut out = std::collections::BTreeMap::new();
        for (name, limit) in &self.memory {
            let targets: Vec<&str> = match name.as_str() {
                "api" => SERVICES[..2].to_vec(),
                n if SERVICES.contains(&n) => vec![n],
                _ => bail!(
                    "memory.{name}: no such service; hint: one of api, {}",
                    SERVICES.join(", ")
                ),
            };
            for t in targets {
                // A side named on its own wins over `api`.
                if name == "api" && self.memory.contains_key(t) {
                    continue;
                }
                out.insert(t.to_string(), limit.0);
            }
        }
        Ok(out)
    }
}

/// `workers = 2`, `workers = "1..4"` or `workers = { min = 1, max = 4 }`.
fn workers_field<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<ReplicasConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum W {
        Text(String),
        Replicas(ReplicasConfig),
    }
    match W::deserialize(d)? {
        W::Text(s) => parse_workers(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
        W::Replicas(r) => Ok(Some(r)),
    }
}

/// A free loopback port for a per-instance health address. Another program could take it
/// before the child binds it; the child then fails to start and is restarted with backoff.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port for a health address")?;
    Ok(l.local_addr()?.port())
}

/// What the children get besides their subcommand.
struct ChildBase {
    exe: String,
    global: Vec<String>,
    env: std::collections::BTreeMap<String, String>,
}

impl ChildBase {
    fn service(&self, name: &str, role: Role, args: &[&str]) -> ServiceConfig {
        let mut all = self.global.clone();
        all.extend(args.iter().map(|a| a.to_string()));
        ServiceConfig {
            name: name.into(),
            role,
            command: self.exe.clone(),
            args: all,
            env: self.env.clone(),
            replicas: ReplicasConfig::Fixed(1),
            depends_on: Vec::new(),
            probes: ProbesConfig::default(),
            memory_limit_bytes: None,
            inherit_listener: false,
            port: None,
            stop_grace_ms: sadomap_supervisor::defaults::STOP_GRACE_MS,
        }
    }
}

/// The topology `up` runs.
fn topology(
    g: &Global,
    data_dir: &Path,
    listen: SocketAddr,
    workers: ReplicasConfig,
    file: UpFile,
) -> Result<TopologyConfig> {
    let exe = std::env::current_exe().context("finding this program's path for its children")?;
    let mut env = std::collections::BTreeMap::new();
    // Connection URLs go by environment, not argv: they may hold passwords and argv is public.
    if let Some(url) = &g.redis {
        env.insert("SADOMAP_REDIS_URL".to_string(), url.clone());
    }
    if let Some(url) = &g.postgres {
        env.insert("SADOMAP_POSTGRES_URL".to_string(), url.clone());
    }
    env.insert(
        "SADOMAP_SUPERVISOR_SOCKET".to_string(),
        data_dir.join(CONTROL_SOCKET).display().to_string(),
    );
    // The api processes read `[serve]` from the same file.
    if let Some(path) = &g.config {
        env.insert("SADOMAP_CONFIG".to_string(), path.display().to_string());
    }
    let base = ChildBase {
        exe: exe.display().to_string(),
        global: vec!["--data-dir".into(), data_dir.display().to_string()],
        env,
    };
    let listen_arg = listen.to_string();
    let mut services = Vec::new();
    for name in ["api-primary", "api-backup"] {
        let health = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let health_arg = health.to_string();
        let mut s = base.service(
            name,
            Role::Api,
            &[
                "serve",
                "--listen",
                &listen_arg,
                "--health-listen",
                &health_arg,
            ],
        );
        s.inherit_listener = true;
        s.probes.http = Some(HttpProbeConfig {
            url: format!("http://{health}/ready"),
            timeout_ms: sadomap_supervisor::defaults::HTTP_TIMEOUT_MS,
        });
        // The server drains for up to 10 s after SIGTERM; give it that plus a margin.
        s.stop_grace_ms = 12_000;
        services.push(s);
    }
    // Workers drain within the stop grace so a stop never ends in SIGKILL with leases held.
    let mut worker = base.service(
        "worker",
        Role::Worker,
        &["worker", "--shutdown-deadline", "8s"],
    );
    worker.replicas = workers;
    worker.probes.heartbeat = true;
    services.push(worker);
    let mut scheduler = base.service("scheduler", Role::Scheduler, &["scheduler"]);
    scheduler.probes.heartbeat = true;
    services.push(scheduler);
    Ok(TopologyConfig {
        listen: Some(listen),
        services,
        health: file.health,
        restart: file.restart,
        cascade: file.cascade,
        scaling: file.scaling,
    })
}

/// `file` with the flags (and their variables) given to `up` on top.
pub(crate) fn with_flags(mut file: UpFile, args: &UpArgs) -> UpFile {
    if args.listen.is_some() {
        file.listen = args.listen;
    }
    if args.workers.is_some() {
        file.workers = args.workers;
    }
    file
}

/// `sadomap up`.
pub fn up(g: &Global, args: &UpArgs, settings: &crate::settings::Settings) -> Result<ExitCode> {
    let file = with_flags(settings.up(&UpFile::default())?.value, args);
    let stale_ms = file
        .health
        .interval_ms
        .saturating_mul(u64::from(file.health.stale_after_intervals));
    if stale_ms <= 2 * WORKER_HEARTBEAT_MS {
        bail!(
            "health: interval_ms × stale_after_intervals is {stale_ms} ms, but workers beat every \
             {WORKER_HEARTBEAT_MS} ms; hint: make it above {} ms so a live worker is never taken \
             for a hung one",
            2 * WORKER_HEARTBEAT_MS
        );
    }
    let listen = file
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let workers = file.workers.unwrap_or(DEFAULT_WORKERS);
    let memory = file.memory_limits().context("[up] of the configuration")?;
    std::fs::create_dir_all(&g.data_dir)
        .with_context(|| format!("creating data directory {}", g.data_dir.display()))?;
    let data_dir = g
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving data directory {}", g.data_dir.display()))?;
    // With Docker: the engine, images, network and Redis, removed again when `docker` drops.
    let docker = match args.runtime {
        RuntimeArg::Local => None,
        RuntimeArg::Docker => Some(crate::up_docker::DockerUp::prepare(
            g,
            &args.docker,
            &data_dir,
            listen,
            &memory,
        )?),
    };
    let mut config = match &docker {
        Some(d) => d.topology(g, workers, file),
        None => topology(g, &data_dir, listen, workers, file)?,
    };
    for s in &mut config.services {
        s.memory_limit_bytes = memory.get(&s.name).copied();
    }
    // Validates everything and binds the listening socket: bad config stops here, before
    // anything starts or any data is loaded.
    let plan = Plan::build(&config).context("the topology of `sadomap up`")?;
    let bound = plan
        .listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(listen);

    let store = crate::open_store(g)?;
    let count = store.count().context("counting the stored places")?;
    drop(store);
    match (count, args.demo) {
        (0, Some(n)) => {
            eprintln!("sadomap up: the store is empty; loading {n} demo places");
            crate::data::demo(
                g,
                &DemoArgs {
                    count: n,
                    seed: 1,
                    out: None,
                },
            )?;
        }
        (0, None) => eprintln!(
            "sadomap up: the store in {} is empty; load places with `sadomap demo --count 1000` \
             (synthetic) or `sadomap import FILE`, or start with `sadomap up --demo 1000`",
            data_dir.display()
        ),
        (n, _) => eprintln!("sadomap up: {n} places in the store"),
    }

    // Opening the queue here also creates its file and schema before the children race to.
    let broker = match &docker {
        Some(d) => d.open_broker(g)?,
        None => crate::queue_cmd::open_broker(g)?,
    };
    let signals = Arc::new(QueueSignals::new(broker));
    let events_path = data_dir.join(EVENTS_FILE);
    let events = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&events_path)
        .with_context(|| format!("opening the events file {}", events_path.display()))?;
    let telemetry =
        Telemetry::new(Arc::new(Metrics::new())).with_sink(Arc::new(JsonLinesSink::new(events)));
    let socket = data_dir.join(CONTROL_SOCKET);
    let supervisor = match &docker {
        Some(d) => d.supervisor(plan, telemetry),
        None => Supervisor::local(plan, telemetry).0,
    };
    let supervisor = supervisor
        .with_heartbeats(signals.clone())
        .with_load_signals(signals.clone())
        .with_lease_releaser(signals)
        .with_control_socket(&socket);

    let shutdown = Shutdown::new();
    let mut sigs = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("installing the SIGTERM/SIGINT handler")?;
    {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            for sig in sigs.forever() {
                seen += 1;
                if seen == 1 {
                    eprintln!(
                        "sadomap up: signal {sig}: stopping every process (again to quit at once)"
                    );
                    shutdown.trigger();
                } else {
                    // The children get SIGTERM from the kernel when their parent goes.
                    std::process::exit(130);
                }
            }
        });
    }
    let (min, max) = match workers {
        ReplicasConfig::Fixed(n) => (n, n),
        ReplicasConfig::Range { min, max } => (min, max),
    };
    let where_ = match &docker {
        Some(d) => format!(
            "containers; api-primary on http://{}/, api-backup on http://{}/",
            d.published[0], d.published[1]
        ),
        None => "processes".to_string(),
    };
    eprintln!(
        "sadomap up: http://{bound}/ (api-primary, api-backup, {} workers, scheduler as \
         {where_}); `sadomap status` shows them, Ctrl-C stops them; events in {}",
        if min == max {
            min.to_string()
        } else {
            format!("{min}..{max}")
        },
        events_path.display()
    );
    supervisor
        .run(&shutdown)
        .context("starting the supervisor")?;
    eprintln!("sadomap up: stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_parse_as_count_or_range() {
        assert_eq!(parse_workers("3"), Ok(ReplicasConfig::Fixed(3)));
        assert_eq!(
            parse_workers("1..4"),
            Ok(ReplicasConfig::Range { min: 1, max: 4 })
        );
        assert!(parse_workers("a..4").is_err());
        assert!(parse_workers("-1").is_err());
    }

    #[test]
    fn config_file_takes_policies_and_rejects_unknown_keys() {
        let f: UpFile = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nworkers = \"2..3\"\n[health]\ninterval_ms = 500\n",
        )
        .expect("valid");
        assert_eq!(f.workers, Some(ReplicasConfig::Range { min: 2, max: 3 }));
        assert_eq!(f.health.interval_ms, 500);
        assert!(toml::from_str::<UpFile>("services = []").is_err());
    }

    #[test]
    fn memory_limits_take_units_and_name_real_services() {
        let f: UpFile = toml::from_str(
            "[memory]\napi = \"512MiB\"\napi-backup = 1000000\nworker = \"1.5GiB\"\nscheduler = \"64MB\"\n",
        )
        .expect("valid");
        let m = f.memory_limits().expect("known services");
        assert_eq!(m["api-primary"], 512 << 20);
        assert_eq!(
            m["api-backup"], 1_000_000,
            "a side named alone wins over `api`"
        );
        assert_eq!(m["worker"], 3 << 29);
        assert_eq!(m["scheduler"], 64_000_000);
        let f: UpFile = toml::from_str("[memory]\nwebserver = 1\n").expect("parses");
        let e = f.memory_limits().expect_err("unknown service").to_string();
        assert!(
            e.contains("memory.webserver") && e.contains("worker"),
            "{e}"
        );
        for bad in ["\"12 parsecs\"", "\"MiB\"", "\"0\"", "-5"] {
            assert!(
                toml::from_str::<UpFile>(&format!("[memory]\nworker = {bad}\n")).is_err(),
                "{bad}"
            );
        }
    }
}
