//! The supervisor on the Docker runtime, against the real engine: containers of
//! `sadomap-testchild:local` (built FROM scratch by `docker/build-images.sh`) on a private
//! network made for each test. Every test's containers and network are removed when its guard
//! drops, on panic too. Without an engine or the image a test is skipped with the reason; with
//! `SADOMAP_REQUIRE_SERVICES=1` it fails instead.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use sadomap_supervisor::{
    ContainerEventKind, DockerOptions, DockerRuntime, HttpTarget, InstanceId, InstanceStatus,
    Launch, Role, SystemClock,
};

use super::*;

/// The test child's image.
pub(crate) const CHILD_IMAGE: &str = "sadomap-testchild:local";

/// Whether a missing engine or image must fail the test.
pub(crate) fn services_required() -> bool {
    std::env::var("SADOMAP_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// A short name unique to this test run: `sdt-<tag>-<pid><nanos>`.
pub(crate) fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("sdt-{tag}-{}{:x}", std::process::id(), nanos & 0xffff)
}

/// A runtime on a fresh network, or `None` (after printing why) when Docker is not available
/// and not required. Removes its containers and network when dropped.
pub(crate) struct Engine {
    pub(crate) runtime: Arc<DockerRuntime>,
}

impl Engine {
    pub(crate) fn connect(tag: &str, adjust: impl FnOnce(&mut DockerOptions)) -> Option<Engine> {
        let name = unique(tag);
        let mut options = DockerOptions::new(CHILD_IMAGE, &name, &name);
        options.call_timeout = Duration::from_secs(20);
        adjust(&mut options);
        match DockerRuntime::connect(options) {
            Ok(rt) => Some(Engine {
                runtime: Arc::new(rt),
            }),
            Err(e) => {
                assert!(
                    !services_required(),
                    "SADOMAP_REQUIRE_SERVICES=1 but the Docker runtime is not available: {e}"
                );
                eprintln!("skipped: Docker runtime not available: {e}");
                None
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = self.runtime.cleanup() {
            eprintln!("cleanup of {}: {e}", self.runtime.options().project);
        }
    }
}

/// A supervisor running on a Docker engine in a background thread; stopped (every container
/// stopped, then everything removed) when dropped.
struct DockerRunning {
    status: StatusHandle,
    events: Arc<MemorySink>,
    shutdown: Shutdown,
    thread: Option<thread::JoinHandle<()>>,
    // Dropped last: removes what the supervisor left.
    engine: Engine,
}

impl DockerRunning {
    fn start(
        engine: Engine,
        json: &str,
        setup: impl FnOnce(Supervisor) -> Supervisor,
    ) -> DockerRunning {
        let config: TopologyConfig = serde_json::from_str(json).expect("test config parses");
        let plan = Plan::build(&config).expect("test config is valid");
        let events = Arc::new(MemorySink::new());
        let telemetry = Telemetry::new(Arc::new(Metrics::new())).with_sink(events.clone());
        let sup = setup(Supervisor::new(
            plan,
            engine.runtime.clone(),
            Arc::new(SystemClock::new()),
            telemetry,
        ));
        let status = sup.status();
        let shutdown = Shutdown::new();
        let s = shutdown.clone();
        let thread = Some(thread::spawn(move || {
            sup.run(&s).expect("wiring is complete")
        }));
        DockerRunning {
            status,
            events,
            shutdown,
            thread,
            engine,
        }
    }

    /// Container id of `service`'s replica 0 while it runs with health `want`.
    fn instance(&self, service: &str, want: HealthState) -> Option<InstanceId> {
        let st = self.status.snapshot();
        let row = st.service(service)?.instances.first()?.clone();
        match row.phase {
            SlotPhase::Running { health } if health == want => row.instance,
            _ => None,
        }
    }

    fn healthy(&self, service: &str, other_than: Option<&InstanceId>) -> Option<InstanceId> {
        self.instance(service, HealthState::Healthy)
            .filter(|id| Some(id) != other_than)
    }

    fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events.count(pred)
    }
}

impl Drop for DockerRunning {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP-probed test child service named `api`, probed every `interval_ms`.
fn api_topology(interval_ms: u64, extra_args: &str) -> String {
    format!(
        r#"{{"health":{{"interval_ms":{interval_ms},"start_period_ms":1000}},
            "services":[{{"name":"api","role":"api","command":"/testchild",
              "args":["--host","0.0.0.0","--port","8000"{extra_args}],"stop_grace_ms":2000,
              "probes":{{"http":{{"url":"http://127.0.0.1:8000/health","timeout_ms":500}}}}}}]}}"#
    )
}

fn docker_cli(args: &[&str]) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn docker_killed_container_is_restarted() {
    let Some(engine) = Engine::connect("kill", |_| {}) else {
        return;
    };
    let events = engine.runtime.events();
    let run = DockerRunning::start(engine, &api_topology(200, ""), |s| s);
    let old = wait_for(Duration::from_secs(30), || run.healthy("api", None))
        .expect("api container healthy (probed at its own address)");
    let t0 = Instant::now();
    // The same as a crash from outside: `docker kill` (SIGKILL through the engine).
    docker_cli(&["kill", &old.0]);
    let died = events
        .wait_for(Duration::from_secs(10), |e| {
            e.id == old && matches!(e.kind, ContainerEventKind::Died { .. })
        })
        .expect("event stream")
        .expect("a die event for the killed container");
    assert_eq!(
        died.kind,
        ContainerEventKind::Died {
            exit_code: Some(137)
        }
    );
    assert_eq!(
        died.labels.get("sadomap.service").map(String::as_str),
        Some("api")
    );
    let new = wait_for(Duration::from_secs(20), || {
        run.instance("api", HealthState::Starting)
            .or_else(|| run.instance("api", HealthState::Healthy))
            .filter(|id| *id != old)
    })
    .expect("a replacement container runs");
    println!("docker kill → replacement running in {:?}", t0.elapsed());
    wait_for(Duration::from_secs(20), || run.healthy("api", Some(&old))).expect("it is healthy");
    println!("docker kill → replacement healthy in {:?}", t0.elapsed());
    assert_ne!(new, old);
    assert_eq!(
        run.count(|e| matches!(e, Event::Restarted(r) if r.reason == "exited")),
        1
    );
    // The killed container was removed, not left behind.
    wait_for(Duration::from_secs(10), || {
        run.engine.runtime.inspect(&old).is_err().then_some(())
    })
    .expect("the dead container is removed");
}

#[test]
fn docker_failing_health_endpoint_is_restarted_after_three_failed_probes() {
    let Some(engine) = Engine::connect("unhealthy", |_| {}) else {
        return;
    };
    let run = DockerRunning::start(engine, &api_topology(200, ""), |s| s);
    let old = wait_for(Duration::from_secs(30), || run.healthy("api", None)).expect("healthy");
    let ip = run
        .engine
        .runtime
        .address(&old)
        .expect("the container's address");
    let fail =
        HttpTarget::parse(&format!("http://{ip}:8000/fail"), Duration::from_secs(2)).expect("url");
    let t0 = Instant::now();
    fail.get().expect("told the child to fail");
    wait_for(Duration::from_secs(10), || {
        (run.count(|e| matches!(e, Event::Restarted(r) if r.reason == "unhealthy")) > 0)
            .then_some(())
    })
    .expect("restarted as unhealthy");
    println!(
        "/health 500 → restart in {:?} (interval 200 ms)",
        t0.elapsed()
    );
    let failed: Vec<u32> = run
        .events
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ProbeFailed(p) if p.consecutive > 0 => Some(p.consecutive),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [1, 2, 3], "three failed probes, then the restart");
    wait_for(Duration::from_secs(20), || run.healthy("api", Some(&old)))
        .expect("replacement healthy");
    println!("/health 500 → replacement healthy in {:?}", t0.elapsed());
    // The unhealthy container was stopped (gracefully) and removed.
    wait_for(Duration::from_secs(15), || {
        run.engine.runtime.inspect(&old).is_err().then_some(())
    })
    .expect("the unhealthy container is removed");
}

#[test]
fn docker_paused_worker_is_unresponsive_and_replaced() {
    // Heartbeat files in a host directory bind-mounted into the containers.
    let dir = std::env::temp_dir().join(unique("hb"));
    std::fs::create_dir_all(&dir).expect("heartbeat dir");
    let bind = format!("{}:/hb", dir.display());
    let Some(engine) = Engine::connect("pause", |o| o.binds = vec![bind]) else {
        return;
    };
    let releaser = Arc::new(Releaser::default());
    let r2 = releaser.clone();
    let hb = Arc::new(FileHeartbeats(dir.clone()));
    let run = DockerRunning::start(
        engine,
        r#"{"health":{"interval_ms":200,"start_period_ms":2000},
            "services":[{"name":"worker","role":"worker","command":"/testchild",
              "args":["--heartbeat-dir","/hb"],"probes":{"heartbeat":true}}]}"#,
        move |s| s.with_heartbeats(hb).with_lease_releaser(r2),
    );
    let old = wait_for(Duration::from_secs(30), || run.healthy("worker", None)).expect("healthy");
    let t0 = Instant::now();
    run.engine.runtime.pause(&old, true).expect("docker pause");
    wait_for(Duration::from_secs(10), || {
        (run.count(
            |e| matches!(e, Event::FailureDetected(f) if f.failure.label() == "unresponsive"),
        ) > 0)
            .then_some(())
    })
    .expect("unresponsive detected");
    println!(
        "docker pause → unresponsive in {:?} (stale after 600 ms)",
        t0.elapsed()
    );
    wait_for(Duration::from_secs(20), || {
        run.healthy("worker", Some(&old))
    })
    .expect("replacement healthy");
    println!("docker pause → replacement healthy in {:?}", t0.elapsed());
    // Killed although paused (a paused container must be unpaused to be killed), leases given back.
    assert!(!matches!(
        run.engine.runtime.inspect(&old),
        Ok(InstanceStatus::Running | InstanceStatus::Stopped)
    ));
    assert_eq!(releaser.0.lock().expect("lock").len(), 1);
    drop(run);
    let _ = std::fs::remove_dir_all(&dir);
}

fn launch(service: &str, replica: u32, args: &[&str]) -> Launch {
    Launch {
        service: service.into(),
        role: Role::Other,
        replica,
        command: "/testchild".into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::from([("SADOMAP_WORKER_ID".to_string(), format!("{service}.w"))]),
        labels: BTreeMap::from([
            ("sadomap.service".to_string(), service.to_string()),
            ("sadomap.replica".to_string(), replica.to_string()),
            ("sadomap.worker_id".to_string(), format!("{service}.w")),
        ]),
        inherit_listener: false,
    }
}

#[test]
fn docker_runtime_adopts_measures_limits_and_restarts_in_place() {
    let Some(engine) = Engine::connect("rt", |o| {
        o.memory_limits.insert("hog".into(), 48 * 1024 * 1024);
    }) else {
        return;
    };
    let rt = &engine.runtime;
    // Adoption: a second runtime of the same project takes over the running container.
    let spin = rt
        .start(&launch("spin", 0, &["--spin", "--alloc-mb", "16"]))
        .expect("start");
    let second = DockerRuntime::connect(rt.options().clone()).expect("second runtime");
    let adopted = second
        .start(&launch("spin", 0, &["--spin"]))
        .expect("adopt");
    assert_eq!(adopted.id, spin.id, "the running container is adopted");
    assert_eq!(adopted.worker_id.as_deref(), Some("spin.w"));
    assert!(second.instances().iter().any(|(id, _)| *id == spin.id));
    assert!(second.address(&spin.id).is_some());
    // Stats: CPU from the stats stream's cpu/precpu deltas, memory without the page cache.
    let s = wait_for(Duration::from_secs(10), || {
        rt.stats(&spin.id)
            .ok()
            .filter(|s| s.cpu_percent > 20.0 && s.memory_bytes > 16 * 1024 * 1024)
    });
    println!("spinning container: {s:?}");
    assert!(s.is_some(), "a busy core and 16 MiB held show in the stats");
    // Docker's own restart keeps the container id.
    rt.restart_in_place(&spin.id, Duration::from_secs(1))
        .expect("restart in place");
    assert_eq!(
        rt.inspect(&spin.id).expect("inspect"),
        InstanceStatus::Running
    );
    assert_eq!(
        rt.stop(&spin.id, Duration::from_secs(2)).expect("stop"),
        InstanceStatus::Exited { code: 0 },
        "SIGTERM is handled: a clean exit"
    );
    // The memory limit comes from the service config; going over it is an OOM kill, read
    // like a SIGKILL so the failover table classifies it as resource exhaustion.
    let events = rt.events();
    let hog = rt
        .start(&launch("hog", 0, &["--alloc-mb", "200"]))
        .expect("start");
    let oom = events
        .wait_for(Duration::from_secs(20), |e| {
            e.id == hog.id && e.kind == ContainerEventKind::OomKilled
        })
        .expect("event stream");
    assert!(oom.is_some(), "an oom event");
    let st = wait_for(Duration::from_secs(10), || {
        rt.inspect(&hog.id).ok().filter(|s| s.is_gone())
    });
    assert_eq!(st, Some(InstanceStatus::Signalled { signal: 9 }));
    // A socket cannot be handed to a container.
    let mut inherit = launch("x", 0, &[]);
    inherit.inherit_listener = true;
    assert!(rt.start(&inherit).is_err());
    drop(second);
}
