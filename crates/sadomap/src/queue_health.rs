//! `sadomap worker --health-listen`: wires the worker's [`WorkerHealth`] to the server crate's
//! worker endpoint (`GET /health`, `GET /metrics`), which runs on a thread of its own with a
//! small tokio runtime, so the worker itself stays plain threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use sadomap_queue::{render_metrics, render_worker_metrics, Broker, WorkerHealth, WorkerState};
use sadomap_server::{serve_worker_endpoint, WorkerHealthAnswer, WorkerProbe};

/// How long `/health` waits for the broker's answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers the endpoint from the worker's own state and its broker.
struct Probe {
    broker: Arc<dyn Broker>,
    health: WorkerHealth,
}

impl WorkerProbe for Probe {
    fn health(&self) -> WorkerHealthAnswer {
        let state = self.health.state();
        let (_, degraded_reason) = state.status();
        let reason = match &state {
            WorkerState::Running => self
                .health
                .check(CHECK_TIMEOUT)
                .err()
                .map(|e| e.to_string()),
            WorkerState::Degraded { .. } => degraded_reason,
            WorkerState::Starting => Some("the worker is starting".into()),
            WorkerState::Draining => Some("the worker is shutting down (draining)".into()),
            WorkerState::Stopped => Some("the worker has stopped".into()),
        };
        WorkerHealthAnswer {
            healthy: reason.is_none(),
            worker: self.health.id().to_string(),
            state: state.as_str().to_owned(),
            reason,
        }
    }

    fn metrics(&self) -> String {
        // While the broker is unreachable, serve what the worker knows by itself.
        render_metrics(&*self.broker, Some(&self.health)).unwrap_or_else(|e| {
            format!(
                "# broker unavailable: {}\n{}",
                e.to_string().replace('\n', " "),
                render_worker_metrics(&self.health)
            )
        })
    }
}

/// The running endpoint.
pub struct Endpoint {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl Endpoint {
    /// Stops serving and waits for the thread.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Binds `addr` now (so a taken port fails the command at once) and serves on a thread.
pub fn start(addr: SocketAddr, broker: Arc<dyn Broker>, health: WorkerHealth) -> Result<Endpoint> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--health-listen {addr}: cannot listen"))?;
    listener
        .set_nonblocking(true)
        .context("--health-listen: setting the socket non-blocking")?;
    let bound = listener.local_addr().context("--health-listen")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the health endpoint's runtime")?;
    let probe: Arc<dyn WorkerProbe> = Arc::new(Probe { broker, health });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("health-endpoint".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "health endpoint: cannot use the socket");
                        return;
                    }
                };
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = serve_worker_endpoint(listener, probe, shutdown).await {
                    tracing::error!(error = %e, "health endpoint stopped");
                }
            });
        })
        .context("starting the health endpoint's thread")?;
    eprintln!("sadomap worker: health endpoint on http://{bound}/health and /metrics");
    Ok(Endpoint { stop, thread })
}
