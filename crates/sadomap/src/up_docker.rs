//! `sadomap up --runtime docker`: the same services as `up` runs locally, as containers of
//! `--image` (default `sadomap:local`, built FROM scratch by `docker/build-images.sh`) on a
//! private bridge network, supervised through the Docker Engine API.
//!
//! What differs from local processes, and why:
//! - The queue is Redis, in a helper container (`sadomap-redis:local`) on the same network,
//!   unless `--redis URL` names one (it must then be reachable from the containers too). The
//!   embedded SQLite queue would keep working for a worker cut off the network, so a network cut
//!   could not be seen; with Redis on the private network, a cut worker loses its queue, its
//!   heartbeat stops and the supervisor replaces it and releases its leases. The supervisor (on
//!   the host) reaches Redis at the helper's address on the network.
//! - The store stays the embedded SQLite store: the data directory is bind-mounted at `/data` in
//!   every container. All containers run on this host's kernel, so SQLite's POSIX locks and its
//!   WAL shared memory work across containers on one bind-mounted directory exactly as across
//!   local processes (a named volume would too, but `up` itself also opens the store to count
//!   places and load `--demo`). `--postgres URL` is passed through unchanged.
//! - A container cannot inherit the supervisor's listening socket, so api-primary publishes
//!   `--listen` and api-backup the next port, as the Compose file does; each container is probed
//!   at its own address on the network (`/ready` on port 8080 inside).
//! - Containers carry the label `sadomap.project=<project>`; an `up` that was killed leaves them
//!   running and the next `up` with the same project adopts them. A normal stop (or a failed
//!   start) removes every container of the project and the network it created.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use sadomap_queue::Broker;
use sadomap_supervisor::{
    DockerOptions, DockerRuntime, HttpProbeConfig, Plan, ProbesConfig, Publish, ReplicasConfig,
    Role, Runtime, ServiceConfig, Supervisor, SystemClock, Telemetry, TopologyConfig,
};

use crate::cli::Global;

/// The port the API listens on inside its container.
const API_PORT: u16 = 8080;

/// The Redis helper's name on the network (and its alias).
const REDIS: &str = "redis";

/// Options of `up --runtime docker`.
#[derive(Debug, Args)]
pub struct DockerArgs {
    /// Image of the services (its entrypoint is the sadomap binary) [runtime docker].
    #[arg(long, default_value = "sadomap:local")]
    pub image: String,
    /// Image of the Redis helper (redis-server in PATH) [runtime docker].
    #[arg(long, default_value = "sadomap-redis:local")]
    pub redis_image: String,
    /// Project label and network name [runtime docker; default: sadomap-<hash of the data
    /// directory>, so a restarted `up` adopts its running containers].
    #[arg(long)]
    pub project: Option<String>,
}

/// A prepared Docker runtime with its Redis; removes the project's containers and network when
/// dropped (so an `up` that fails or stops leaves nothing behind).
pub struct DockerUp {
    runtime: Arc<DockerRuntime>,
    /// The queue URL the containers use, and the one the supervisor uses.
    redis_in: Option<String>,
    redis_host: Option<String>,
    /// Host addresses of api-primary and api-backup.
    pub published: [SocketAddr; 2],
}

/// A stable project name for a data directory: `sadomap-` and 8 hex digits of its path's FNV hash.
fn default_project(data_dir: &Path) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in data_dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    format!("sadomap-{h:08x}")
}

impl DockerUp {
    /// Connects to the engine, checks the images and host ports, creates the network and starts
    /// Redis (unless `--redis`).
    pub fn prepare(
        g: &Global,
        args: &DockerArgs,
        data_dir: &Path,
        listen: SocketAddr,
        memory: &std::collections::BTreeMap<String, u64>,
    ) -> Result<DockerUp> {
        let backup = SocketAddr::new(listen.ip(), listen.port().wrapping_add(1));
        for addr in [listen, backup] {
            // The engine binds these for the containers; a taken one would only show as a
            // container that never starts.
            TcpListener::bind(addr).with_context(|| {
                format!("{addr} is taken; hint: stop what holds it or change --listen")
            })?;
        }
        let project = args
            .project
            .clone()
            .unwrap_or_else(|| default_project(data_dir));
        let mut options = DockerOptions::new(&args.image, &project, &project);
        options.binds = vec![format!("{}:/data", data_dir.display())];
        // Hard cgroup limits; the supervisor also restarts a container over its limit.
        options.memory_limits.clone_from(memory);
        for (service, host) in [("api-primary", listen), ("api-backup", backup)] {
            options.publish.insert(
                service.into(),
                vec![Publish {
                    container_port: API_PORT,
                    host,
                }],
            );
        }
        if g.redis.is_none() {
            // Not a supervised service: listed so that `connect` checks this image exists too.
            options
                .images
                .insert(REDIS.into(), args.redis_image.clone());
        }
        let runtime = Arc::new(
            DockerRuntime::connect(options)
                .context("the Docker runtime (is the engine running? are the images built?)")?,
        );
        let mut up = DockerUp {
            runtime,
            redis_in: g.redis.clone(),
            redis_host: g.redis.clone(),
            published: [listen, backup],
        };
        if g.redis.is_none() {
            let cmd: Vec<String> = ["redis-server", "--protected-mode", "no", "--save", ""]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let (_, ip) = up
                .runtime
                .start_helper(REDIS, &args.redis_image, &cmd)
                .context("starting the Redis container")?;
            let ip = ip.context("the Redis container has no address on the network")?;
            up.redis_in = Some(format!("redis://{REDIS}:6379"));
            up.redis_host = Some(format!("redis://{ip}:6379"));
        }
        Ok(up)
    }

    /// The topology: the services of local `up`, as commands of the image.
    pub fn topology(
        &self,
        g: &Global,
        workers: ReplicasConfig,
        file: crate::up::UpFile,
    ) -> TopologyConfig {
        let mut env = std::collections::BTreeMap::from([(
            "SADOMAP_DATA_DIR".to_string(),
            "/data".to_string(),
        )]);
        if let Some(url) = &self.redis_in {
            env.insert("SADOMAP_REDIS_URL".into(), url.clone());
        }
        if let Some(url) = &g.postgres {
            env.insert("SADOMAP_POSTGRES_URL".into(), url.clone());
        }
        // The data directory is bind-mounted, so the supervisor's socket is reachable inside.
        env.insert(
            "SADOMAP_SUPERVISOR_SOCKET".into(),
            format!("/data/{}", crate::up::CONTROL_SOCKET),
        );
        let service = |name: &str, role, args: &[&str]| ServiceConfig {
            name: name.into(),
            role,
            command: "/sadomap".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env.clone(),
            replicas: ReplicasConfig::Fixed(1),
            depends_on: Vec::new(),
            probes: ProbesConfig::default(),
            memory_limit_bytes: None,
            inherit_listener: false,
            port: None,
            stop_grace_ms: sadomap_supervisor::defaults::STOP_GRACE_MS,
        };
        let listen = format!("0.0.0.0:{API_PORT}");
        let mut services = Vec::new();
        for name in ["api-primary", "api-backup"] {
            let mut s = service(name, Role::Api, &["serve", "--listen", &listen]);
            // Containers do not inherit this process's environment: the admin token goes to the
            // api containers alone (it shows in `docker inspect`, as any container env does).
            if let Ok(token) = std::env::var("SADOMAP_ADMIN_TOKEN") {
                s.env.insert("SADOMAP_ADMIN_TOKEN".into(), token);
            }
            // The host part is replaced by the container's own address.
            s.probes.http = Some(HttpProbeConfig {
                url: format!("http://127.0.0.1:{API_PORT}/ready"),
                timeout_ms: sadomap_supervisor::defaults::HTTP_TIMEOUT_MS,
            });
            s.stop_grace_ms = 12_000;
            services.push(s);
        }
        let mut worker = service(
            "worker",
            Role::Worker,
            &["worker", "--shutdown-deadline", "8s"],
        );
        worker.replicas = workers;
        worker.probes.heartbeat = true;
        services.push(worker);
        let mut scheduler = service("scheduler", Role::Scheduler, &["scheduler"]);
        scheduler.probes.heartbeat = true;
        services.push(scheduler);
        TopologyConfig {
            listen: None,
            services,
            health: file.health,
            restart: file.restart,
            cascade: file.cascade,
            scaling: file.scaling,
        }
    }

    /// The queue as the supervisor reaches it, waiting up to 15 s for a fresh Redis.
    pub fn open_broker(&self, g: &Global) -> Result<Arc<dyn Broker>> {
        let host = Global {
            redis: self.redis_host.clone(),
            ..g.clone()
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match crate::queue_cmd::open_broker(&host) {
                Ok(b) => return Ok(b),
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "Redis not ready yet");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e).context("the Redis container does not answer"),
            }
        }
    }

    /// A supervisor of `plan` on the Docker runtime.
    pub fn supervisor(&self, plan: Plan, telemetry: Telemetry) -> Supervisor {
        let runtime: Arc<dyn Runtime> = self.runtime.clone();
        Supervisor::new(plan, runtime, Arc::new(SystemClock::new()), telemetry)
    }
}

impl Drop for DockerUp {
    fn drop(&mut self) {
        match self.runtime.cleanup() {
            Ok(n) => eprintln!(
                "sadomap up: removed {n} containers of project {}",
                self.runtime.options().project
            ),
            Err(e) => eprintln!("sadomap up: cleanup: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_stable_per_directory() {
        let a = default_project(Path::new("/srv/a"));
        assert_eq!(a, default_project(Path::new("/srv/a")));
        assert_ne!(a, default_project(Path::new("/srv/b")));
        assert!(a.starts_with("sadomap-") && a.len() == 16);
    }
}
