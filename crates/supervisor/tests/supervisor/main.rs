//! Integration tests: the supervisor loop on real local processes. Short intervals (100 ms) and
//! poll-until-condition helpers with timeouts; no fixed sleeps decide an outcome.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sadomap_supervisor::{
    Control, ControlError, Event, HealthState, Heartbeats, LeaseReleaser, LoadSample, LoadSignals,
    LocalRuntime, MemorySink, Metrics, Plan, PlanError, Runtime, ScaleReason, Shutdown, SlotPhase,
    StatusHandle, Supervisor, Telemetry, TopologyConfig,
};

const CHILD: &str = env!("CARGO_BIN_EXE_sadomap-supervisor-testchild");

/// Polls `f` every 10 ms until it returns `Some` or `limit` passes.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

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

#[derive(Default)]
struct Releaser(Mutex<Vec<String>>);

impl LeaseReleaser for Releaser {
    fn release_worker(&self, worker_id: &str) -> Result<usize, String> {
        self.0
            .lock()
            .map_err(|e| e.to_string())?
            .push(worker_id.to_string());
        Ok(2)
    }
}

#[derive(Default)]
struct FakeLoad(Mutex<u64>);

impl LoadSignals for FakeLoad {
    fn load(&self, _service: &str) -> Option<LoadSample> {
        let depth = *self.0.lock().ok()?;
        Some(LoadSample {
            depth,
            arrivals_per_sec: 0.0,
            mean_service_secs: None,
        })
    }
}

struct Running {
    listen: Option<std::net::SocketAddr>,
    status: StatusHandle,
    events: Arc<MemorySink>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    thread: Option<thread::JoinHandle<()>>,
    runtime: Arc<LocalRuntime>,
}

impl Running {
    fn start(json: &str, setup: impl FnOnce(Supervisor) -> Supervisor) -> Running {
        Self::start_with_control(json, setup).0
    }

    fn start_with_control(
        json: &str,
        setup: impl FnOnce(Supervisor) -> Supervisor,
    ) -> (Running, Control) {
        let config: TopologyConfig = serde_json::from_str(json).expect("test config parses");
        let plan = Plan::build(&config).expect("test config is valid");
        let listen = plan.listener.as_ref().and_then(|l| l.local_addr().ok());
        let events = Arc::new(MemorySink::new());
        let metrics = Arc::new(Metrics::new());
        let telemetry = Telemetry::new(metrics.clone()).with_sink(events.clone());
        let (sup, runtime) = Supervisor::local(plan, telemetry);
        let sup = setup(sup);
        let status = sup.status();
        let control = sup.control();
        let shutdown = Shutdown::new();
        let s = shutdown.clone();
        let thread = Some(thread::spawn(move || {
            sup.run(&s).expect("wiring is complete")
        }));
        let running = Running {
            listen,
            status,
            events,
            metrics,
            shutdown,
            thread,
            runtime,
        };
        (running, control)
    }

    /// Pid and health of a service's replica 0 when running.
    fn running(&self, service: &str) -> Option<(u32, HealthState)> {
        let st = self.status.snapshot();
        let row = st.service(service)?.instances.first()?.clone();
        match row.phase {
            SlotPhase::Running { health } => Some((row.pid?, health)),
            _ => None,
        }
    }

    fn healthy_pid(&self, service: &str) -> Option<u32> {
        self.running(service)
            .filter(|(_, h)| *h == HealthState::Healthy)
            .map(|(p, _)| p)
    }

    fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events.count(pred)
    }

    fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            t.join().expect("supervisor thread");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie reads state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(i32::try_from(pid).expect("pid fits")), sig).expect("signal the child");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

mod compose;
mod docker;
mod docker_compose;
mod failover;
mod k8s;
mod lifecycle;
mod shared_socket;
