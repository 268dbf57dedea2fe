//! [`DockerRuntime`]: instances are containers, run through the Docker Engine API (`bollard`).
//!
//! Every instance runs [`DockerOptions::image`] (or a per-service override) with the launch's
//! command as its entrypoint, on one user-defined bridge network ([`DockerOptions::network`]),
//! where it is reachable by its service name and, from the host, at its own address (which
//! [`Runtime::address`] reports, so HTTP probes go there). Containers carry the launch's labels
//! plus [`labels::PROJECT`]; [`Runtime::instances`] lists them by that label, and with
//! [`DockerOptions::adopt`] a start for a slot whose container is still running takes that
//! container over instead of starting a second one (a restarted supervisor adopts its running
//! containers). No restart policy is set on supervised containers: the supervisor restarts them,
//! unhealthy ones included, which Docker never does.
//!
//! Exit statuses: an exit code above 128 is read as death by signal `code - 128` (the engine's
//! convention: 137 after SIGKILL), and an OOM kill as SIGKILL, so the failover table classifies
//! containers as it does processes.
//!
//! Concurrency: the trait is synchronous; the runtime owns a one-worker tokio runtime and each
//! call blocks on it under a timeout ([`DockerOptions::call_timeout`], plus the grace period for
//! a stop). Calls from several threads at once are fine. A watcher task follows the engine's
//! event stream (see [`super::docker_events`]) so that `inspect` asks the engine only after an
//! event or once per [`INSPECT_RECHECK`], and a task per container follows its stats stream so
//! that `stats` answers from the latest sample without waiting for the engine.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::errors::Error as EngineError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;

use super::docker_events::{ContainerEvents, Watch};
use super::docker_state::{address_on, sample_stats, status_of};
use super::{labels, InstanceId, InstanceStatus, Launch, Runtime, Started, Stats};
use crate::error::RuntimeError;

/// A running container's state is asked of the engine at least this often, events or not.
pub(crate) const INSPECT_RECHECK: Duration = Duration::from_secs(1);

/// A container port published on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The port inside the container (TCP).
    pub container_port: u16,
    /// The host address it is published on (`127.0.0.1:8080`).
    pub host: SocketAddr,
}

/// How a [`DockerRuntime`] runs containers.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerOptions {
    /// Image of every service without an entry in `images`.
    pub image: String,
    /// Per-service images.
    pub images: BTreeMap<String, String>,
    /// The user-defined bridge network every container joins (created if missing).
    pub network: String,
    /// Value of the [`labels::PROJECT`] label: which containers are this runtime's.
    pub project: String,
    /// Bind mounts and volumes, as `docker run -v` writes them (`/host:/data`).
    pub binds: Vec<String>,
    /// Hard memory limit per service in bytes (swap off): the service config's
    /// `memory_limit_bytes` (see [`DockerOptions::with_plan_limits`]).
    pub memory_limits: BTreeMap<String, u64>,
    /// Ports to publish per service. A published host port can be held by one container at a
    /// time, so publish only services with one replica.
    pub publish: BTreeMap<String, Vec<Publish>>,
    /// Take over a running container of the same project, service and replica on start.
    pub adopt: bool,
    /// Limit of one engine call (a stop gets its grace period on top).
    pub call_timeout: Duration,
}

impl DockerOptions {
    /// Options for `image` on `network`, containers labelled with `project`; no binds, limits or
    /// published ports, adoption on, 10 s per call.
    pub fn new(image: &str, network: &str, project: &str) -> Self {
        DockerOptions {
            image: image.into(),
            images: BTreeMap::new(),
            network: network.into(),
            project: project.into(),
            binds: Vec::new(),
            memory_limits: BTreeMap::new(),
            publish: BTreeMap::new(),
            adopt: true,
            call_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the memory limit of each service of `plan` that has one.
    pub fn with_plan_limits(mut self, plan: &crate::plan::Plan) -> Self {
        for s in &plan.services {
            if let Some(limit) = s.memory_limit {
                self.memory_limits.insert(s.name.clone(), limit);
            }
        }
        self
    }

    fn image_of(&self, service: &str) -> &str {
        self.images.get(service).unwrap_or(&self.image)
    }
}

/// A listed container: (id, labels, running).
type Listed = (String, BTreeMap<String, String>, bool);

/// What the runtime remembers of a container it started or adopted.
#[derive(Debug)]
struct Known {
    labels: BTreeMap<String, String>,
    address: Option<IpAddr>,
    /// The latest stats sample, kept by a task following the engine's stats stream.
    stats: Arc<Mutex<Stats>>,
    /// That task.
    sampler: tokio::task::AbortHandle,
    /// When the engine last said "running", and the event generation it said it at.
    running_seen: Option<(Instant, u64)>,
}

/// Runs instances as Docker containers (see the module docs).
pub struct DockerRuntime {
    docker: Docker,
    rt: tokio::runtime::Runtime,
    options: DockerOptions,
    known: Mutex<HashMap<String, Known>>,
    watch: Arc<Watch>,
    next: AtomicU64,
    created_network: bool,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn engine_err(operation: &'static str, target: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Engine {
        operation,
        target: target.to_string(),
        reason: e.to_string(),
    }
}

fn status_code(e: &EngineError) -> Option<u16> {
    match e {
        EngineError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

impl DockerRuntime {
    /// Connects to the engine (`DOCKER_HOST` or the local socket), negotiates the API version,
    /// checks that every image exists and creates the network if it is missing.
    pub fn connect(options: DockerOptions) -> Result<DockerRuntime, RuntimeError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sadomap-docker")
            .enable_all()
            .build()
            .map_err(|e| engine_err("connect", "tokio runtime", e))?;
        let limit = options.call_timeout;
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| engine_err("connect", "local engine", e))?;
        let docker = rt
            .block_on(async { tokio::time::timeout(limit, docker.negotiate_version()).await })
            .map_err(|_| engine_err("connect", "local engine", "timed out"))?
            .map_err(|e| engine_err("connect", "local engine", e))?;
        let mut runtime = DockerRuntime {
            docker,
            rt,
            options,
            known: Mutex::new(HashMap::new()),
            watch: Arc::new(Watch::default()),
            next: AtomicU64::new(1),
            created_network: false,
        };
        let mut images: Vec<&String> = runtime.options.images.values().collect();
        images.push(&runtime.options.image);
        for image in images {
            let d = runtime.docker.clone();
            let name = image.clone();
            runtime
                .call("inspect image", image, async move {
                    d.inspect_image(&name).await
                })
                .map_err(|e| match e {
                    RuntimeError::Engine { reason, .. } if reason.contains("404") => engine_err(
                        "inspect image",
                        image,
                        "no such image; hint: build it with docker/build-images.sh",
                    ),
                    e => e,
                })?;
        }
        runtime.created_network = runtime.ensure_network()?;
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            - 1;
        runtime.rt.spawn(runtime.watch.clone().run(
            runtime.docker.clone(),
            runtime.project_label(),
            since,
        ));
        Ok(runtime)
    }

    /// The options it runs with.
    pub fn options(&self) -> &DockerOptions {
        &self.options
    }

    /// `sadomap.project=<project>`, the filter of every listing.
    fn project_label(&self) -> String {
        format!("{}={}", labels::PROJECT, self.options.project)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Known>> {
        // Every update is one insert, remove or field write: a poisoned map is still usable.
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one engine call on the runtime under `limit`.
    fn call_within<T>(
        &self,
        operation: &'static str,
        target: &str,
        limit: Duration,
        fut: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, RuntimeError> {
        // The timer is made inside the runtime (it needs the runtime's clock).
        match self
            .rt
            .block_on(async { tokio::time::timeout(limit, fut).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if status_code(&e) == Some(404) && operation != "inspect image" => {
                Err(RuntimeError::UnknownInstance(target.to_string()))
            }
            Ok(Err(e)) => Err(engine_err(operation, target, e)),
            Err(_) => Err(engine_err(
                operation,
                target,
                format!("no answer within {limit:?}"),
            )),
        }
    }

    fn call<T>(
        &self,
        operation: &'static str,
        target: &str,
        fut: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, RuntimeError> {
        self.call_within(operation, target, self.options.call_timeout, fut)
    }

    /// Creates the network unless it exists; true if it created it.
    fn ensure_network(&self) -> Result<bool, RuntimeError> {
        let d = self.docker.clone();
        let name = self.options.network.clone();
        match self.call("inspect network", &self.options.network, async move {
            d.inspect_network(&name, None).await
        }) {
            Ok(_) => return Ok(false),
            Err(RuntimeError::UnknownInstance(_)) => {}
            Err(e) => return Err(e),
        }
        let d = self.docker.clone();
        let request = NetworkCreateRequest {
            name: self.options.network.clone(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([(
                labels::PROJECT.to_string(),
                self.options.project.clone(),
            )])),
            ..Default::default()
        };
        self.call("create network", &self.options.network, async move {
            d.create_network(request).await
        })?;
        Ok(true)
    }

    fn inspect_raw(&self, id: &str) -> Result<ContainerInspectResponse, RuntimeError> {
        let d = self.docker.clone();
        let name = id.to_string();
        self.call("inspect", id, async move {
            d.inspect_container(&name, None).await
        })
    }

    /// Containers of this project with all of `want` among their labels, running or not:
    /// (id, labels, running).
    fn list(&self, want: &[(&str, &str)]) -> Result<Vec<Listed>, RuntimeError> {
        let mut label_filters = vec![self.project_label()];
        label_filters.extend(want.iter().map(|(k, v)| format!("{k}={v}")));
        let filters = HashMap::from([("label".to_string(), label_filters)]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let d = self.docker.clone();
        let found = self.call("list", &self.options.project, async move {
            d.list_containers(Some(opts)).await
        })?;
        Ok(found
            .into_iter()
            .filter_map(|c| {
                let running = c.state.is_some_and(|s| s.to_string() == "running");
                Some((c.id?, c.labels?.into_iter().collect(), running))
            })
            .collect())
    }

    /// Remembers a started or adopted container and reads its address.
    fn learn(&self, id: &str, labels: BTreeMap<String, String>) -> Result<Started, RuntimeError> {
        let info = self.inspect_raw(id)?;
        let address = address_on(&info, &self.options.network);
        let pid = info
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0);
        let worker_id = labels.get(labels::WORKER_ID).cloned();
        let stats = Arc::new(Mutex::new(Stats::default()));
        let sampler = self
            .rt
            .spawn(sample_stats(
                self.docker.clone(),
                id.to_string(),
                stats.clone(),
            ))
            .abort_handle();
        let old = self.lock().insert(
            id.to_string(),
            Known {
                labels,
                address,
                stats,
                sampler,
                running_seen: None,
            },
        );
        if let Some(old) = old {
            old.sampler.abort();
        }
        Ok(Started {
            id: InstanceId(id.to_string()),
            pid,
            worker_id,
        })
    }

    /// A running container of the launch's slot not yet known here, to adopt; removes the
    /// slot's finished leftovers.
    fn adoptable(&self, launch: &Launch) -> Result<Option<Started>, RuntimeError> {
        let replica = launch.replica.to_string();
        let found = self.list(&[
            (labels::SERVICE, launch.service.as_str()),
            (labels::REPLICA, replica.as_str()),
        ])?;
        let mut adopt = None;
        for (id, labels, running) in found {
            if self.lock().contains_key(&id) {
                continue;
            }
            if running && adopt.is_none() {
                adopt = Some((id, labels));
            } else if !running {
                self.remove(&InstanceId(id));
            }
        }
        match adopt {
            Some((id, labels)) => self.learn(&id, labels).map(Some),
            None => Ok(None),
        }
    }

    fn create_body(&self, launch: &Launch) -> ContainerCreateBody {
        let mut labels: HashMap<String, String> = launch.labels.clone().into_iter().collect();
        labels.insert(labels::PROJECT.into(), self.options.project.clone());
        let publish = self.options.publish.get(&launch.service);
        let port_bindings = publish.map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        format!("{}/tcp", p.container_port),
                        Some(vec![PortBinding {
                            host_ip: Some(p.host.ip().to_string()),
                            host_port: Some(p.host.port().to_string()),
                        }]),
                    )
                })
                .collect()
        });
        let memory = self
            .options
            .memory_limits
            .get(&launch.service)
            .and_then(|&m| i64::try_from(m).ok());
        ContainerCreateBody {
            image: Some(self.options.image_of(&launch.service).to_string()),
            entrypoint: Some(vec![launch.command.clone()]),
            cmd: Some(launch.args.clone()),
            env: Some(launch.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            exposed_ports: publish.map(|ps| {
                ps.iter()
                    .map(|p| format!("{}/tcp", p.container_port))
                    .collect()
            }),
            host_config: Some(HostConfig {
                binds: (!self.options.binds.is_empty()).then(|| self.options.binds.clone()),
                memory,
                memory_swap: memory,
                port_bindings,
                network_mode: Some(self.options.network.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.options.network.clone(),
                    EndpointSettings {
                        aliases: Some(vec![launch.service.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    /// Unfreezes a paused container (a paused container can be neither stopped nor killed).
    fn unpause_if_paused(&self, id: &InstanceId) -> Result<(), RuntimeError> {
        if self.inspect_raw(&id.0).map(|i| status_of(&i))? == InstanceStatus::Stopped {
            let d = self.docker.clone();
            let name = id.0.clone();
            self.call(
                "unpause",
                &id.0,
                async move { d.unpause_container(&name).await },
            )?;
        }
        Ok(())
    }

    /// Waits up to `limit` for the container to be gone; its status then.
    fn wait_gone(&self, id: &InstanceId, limit: Duration) -> Result<InstanceStatus, RuntimeError> {
        let deadline = Instant::now() + limit;
        loop {
            let st = status_of(&self.inspect_raw(&id.0)?);
            if st.is_gone() || Instant::now() >= deadline {
                return Ok(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `docker pause` / `docker unpause`: a failure-injection point (the container's processes
    /// freeze, as under SIGSTOP; [`Runtime::inspect`] then reads [`InstanceStatus::Stopped`]).
    pub fn pause(&self, id: &InstanceId, paused: bool) -> Result<(), RuntimeError> {
        let d = self.docker.clone();
        let name = id.0.clone();
        if paused {
            self.call(
                "pause",
                &id.0,
                async move { d.pause_container(&name).await },
            )
        } else {
            self.call(
                "unpause",
                &id.0,
                async move { d.unpause_container(&name).await },
            )
        }
    }

    /// `docker network disconnect` (`connected: false`) or `connect` of the container on the
    /// runtime's network: a failure-injection point (a network cut).
    pub fn set_connected(&self, id: &InstanceId, connected: bool) -> Result<(), RuntimeError> {
        let d = self.docker.clone();
        let network = self.options.network.clone();
        let container = id.0.clone();
        if connected {
            self.call("connect network", &id.0, async move {
                d.connect_network(
                    &network,
                    NetworkConnectRequest {
                        container,
                        endpoint_config: None,
                    },
                )
                .await
            })
        } else {
            self.call("disconnect network", &id.0, async move {
                d.disconnect_network(
                    &network,
                    NetworkDisconnectRequest {
                        container,
                        force: Some(true),
                    },
                )
                .await
            })
        }
    }

    /// Docker's own restart of the same container (stop with `grace`, start again; the id
    /// stays). The supervisor replaces instances instead; this is for drills and tools.
    pub fn restart_in_place(&self, id: &InstanceId, grace: Duration) -> Result<(), RuntimeError> {
        let t = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let d = self.docker.clone();
        let name = id.0.clone();
        self.call_within(
            "restart",
            &id.0,
            grace + self.options.call_timeout,
            async move {
                d.restart_container(
                    &name,
                    Some(RestartContainerOptionsBuilder::new().t(t).build()),
                )
                .await
            },
        )
    }

    /// Subscribes to the events of this project's containers (`die`, `oom`, `kill`,
    /// `health_status`, ...), from now on.
    pub fn events(&self) -> ContainerEvents {
        ContainerEvents::subscribe(self.rt.handle(), self.docker.clone(), self.project_label())
    }

    /// Starts a helper container that the supervisor does not supervise (Redis for the queue):
    /// `image` running `cmd` on the network as `name` (also its alias), with Docker's
    /// `unless-stopped` restart policy and the project label, so [`DockerRuntime::cleanup`]
    /// removes it. A helper of that name already running is reused. Returns its id and address.
    pub fn start_helper(
        &self,
        name: &str,
        image: &str,
        cmd: &[String],
    ) -> Result<(InstanceId, Option<IpAddr>), RuntimeError> {
        let container = format!("{}-{name}", self.options.project);
        if let Ok(info) = self.inspect_raw(&container) {
            if status_of(&info) == InstanceStatus::Running {
                let id = info.id.clone().unwrap_or(container);
                return Ok((InstanceId(id), address_on(&info, &self.options.network)));
            }
            self.remove(&InstanceId(container.clone()));
        }
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(cmd.to_vec()),
            labels: Some(HashMap::from([
                (labels::PROJECT.to_string(), self.options.project.clone()),
                ("sadomap.helper".to_string(), name.to_string()),
            ])),
            host_config: Some(HostConfig {
                network_mode: Some(self.options.network.clone()),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.options.network.clone(),
                    EndpointSettings {
                        aliases: Some(vec![name.to_string()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let d = self.docker.clone();
        let opts = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        let created = self.call("create", &container, async move {
            d.create_container(Some(opts), body).await
        })?;
        let d = self.docker.clone();
        let id = created.id.clone();
        self.call("start", &created.id, async move {
            d.start_container(&id, None).await
        })?;
        let info = self.inspect_raw(&created.id)?;
        Ok((
            InstanceId(created.id),
            address_on(&info, &self.options.network),
        ))
    }

    /// Removes every container of the project (supervised or helper) and the network if this
    /// runtime created it; returns how many containers went.
    pub fn cleanup(&self) -> Result<usize, RuntimeError> {
        let all = self.list(&[])?;
        let n = all.len();
        for (id, _, _) in all {
            self.remove(&InstanceId(id));
        }
        if self.created_network {
            let d = self.docker.clone();
            let name = self.options.network.clone();
            self.call("remove network", &self.options.network, async move {
                d.remove_network(&name).await
            })?;
        }
        Ok(n)
    }
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn start(&self, launch: &Launch) -> Result<Started, RuntimeError> {
        if launch.inherit_listener {
            return Err(RuntimeError::Spawn {
                service: launch.service.clone(),
                command: launch.command.clone(),
                source: std::io::Error::other(
                    "a container cannot inherit the supervisor's listening socket; hint: \
                     publish a port instead (DockerOptions::publish)",
                ),
            });
        }
        if self.options.adopt {
            if let Some(started) = self.adoptable(launch)? {
                return Ok(started);
            }
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "{}-{}-{}-{}{:08x}",
            self.options.project,
            launch.service,
            launch.replica,
            self.next.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let body = self.create_body(launch);
        let d = self.docker.clone();
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self.call("create", &name, async move {
            d.create_container(Some(opts), body).await
        })?;
        let d = self.docker.clone();
        let id = created.id.clone();
        if let Err(e) = self.call("start", &created.id, async move {
            d.start_container(&id, None).await
        }) {
            self.remove(&InstanceId(created.id));
            return Err(e);
        }
        let mut labels = launch.labels.clone();
        labels.insert(labels::PROJECT.into(), self.options.project.clone());
        let mut started = self.learn(&created.id, labels)?;
        // A new container runs with the launch's own worker id.
        started.worker_id = None;
        Ok(started)
    }

    fn stop(&self, id: &InstanceId, grace: Duration) -> Result<InstanceStatus, RuntimeError> {
        self.unpause_if_paused(id)?;
        let t = i32::try_from(grace.as_secs_f64().ceil() as u64).unwrap_or(i32::MAX);
        let d = self.docker.clone();
        let name = id.0.clone();
        // The engine sends SIGTERM, waits `t` seconds, then SIGKILL; it answers once stopped.
        self.call_within(
            "stop",
            &id.0,
            grace + self.options.call_timeout,
            async move {
                d.stop_container(&name, Some(StopContainerOptionsBuilder::new().t(t).build()))
                    .await
            },
        )?;
        self.wait_gone(id, Duration::from_secs(5))
    }

    fn kill(&self, id: &InstanceId) -> Result<InstanceStatus, RuntimeError> {
        self.unpause_if_paused(id)?;
        let d = self.docker.clone();
        let name = id.0.clone();
        match self.call("kill", &id.0, async move {
            d.kill_container(
                &name,
                Some(KillContainerOptionsBuilder::new().signal("SIGKILL").build()),
            )
            .await
        }) {
            Ok(()) => {}
            // 409: not running any more.
            Err(RuntimeError::Engine { reason, .. }) if reason.contains("409") => {}
            Err(e) => return Err(e),
        }
        let st = self.wait_gone(id, Duration::from_secs(5))?;
        if st.is_gone() {
            Ok(st)
        } else {
            Err(RuntimeError::Signal {
                instance: id.0.clone(),
                reason: "still running 5 s after SIGKILL".into(),
            })
        }
    }

    fn inspect(&self, id: &InstanceId) -> Result<InstanceStatus, RuntimeError> {
        let generation = self.watch.generation(&id.0);
        let live = self.watch.live.load(Ordering::SeqCst);
        let cached = self.lock().get(&id.0).and_then(|k| k.running_seen);
        if let Some((at, seen_generation)) = cached {
            // No event for it since the engine last said running, and that was recent.
            if live && seen_generation == generation && at.elapsed() < INSPECT_RECHECK {
                return Ok(InstanceStatus::Running);
            }
        }
        let st = status_of(&self.inspect_raw(&id.0)?);
        if let Some(k) = self.lock().get_mut(&id.0) {
            k.running_seen = (st == InstanceStatus::Running).then(|| (Instant::now(), generation));
        }
        Ok(st)
    }

    fn stats(&self, id: &InstanceId) -> Result<Stats, RuntimeError> {
        // The latest sample of the container's stats stream (at most ~1 s old); zero until the
        // first one arrives. Asking the engine per call would block a probe tick for a second:
        // its one-shot stats answer only on its next collection.
        let stats = self
            .lock()
            .get(&id.0)
            .map(|k| k.stats.clone())
            .ok_or_else(|| RuntimeError::UnknownInstance(id.0.clone()))?;
        let latest = *stats.lock().unwrap_or_else(|e| e.into_inner());
        Ok(latest)
    }

    fn remove(&self, id: &InstanceId) {
        if let Some(k) = self.lock().remove(&id.0) {
            k.sampler.abort();
        }
        let d = self.docker.clone();
        let name = id.0.clone();
        // Force: a live container is killed first, so nothing is orphaned.
        let _ = self.call("remove", &id.0, async move {
            d.remove_container(
                &name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
        });
    }

    fn instances(&self) -> Vec<(InstanceId, BTreeMap<String, String>)> {
        let mut v: Vec<_> = match self.list(&[]) {
            Ok(found) => found
                .into_iter()
                .filter(|(_, l, _)| l.contains_key(labels::SERVICE))
                .map(|(id, l, _)| (InstanceId(id), l))
                .collect(),
            // The engine did not answer: what this runtime knows.
            Err(_) => self
                .lock()
                .iter()
                .map(|(id, k)| (InstanceId(id.clone()), k.labels.clone()))
                .collect(),
        };
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn address(&self, id: &InstanceId) -> Option<IpAddr> {
        self.lock().get(&id.0).and_then(|k| k.address)
    }
}
