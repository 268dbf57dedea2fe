//! The server's view of the supervisor that runs it (`/admin/status`, `/metrics`): requests on
//! the supervisor's control socket, plus the queue depths read from the broker. `sadomap up`
//! tells its api processes the socket through `SADOMAP_SUPERVISOR_SOCKET`.
//!
//! Concurrency: called from the server's blocking pool; the broker is opened once, on first
//! use, under a mutex held only for that.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use sadomap_queue::Broker;
use sadomap_server::{Supervision, SupervisionError};
use sadomap_supervisor::{control_request, ControlError};
use serde_json::{json, Value};

use crate::cli::Global;

/// The supervisor behind a control socket.
pub struct SocketSupervision {
    socket: PathBuf,
    global: Global,
    broker: Mutex<Option<Arc<dyn Broker>>>,
}

impl SocketSupervision {
    /// Asks the supervisor on `socket`; reads queues as `global` says (SQLite or Redis).
    pub fn new(socket: PathBuf, global: &Global) -> Self {
        SocketSupervision {
            socket,
            global: global.clone(),
            broker: Mutex::new(None),
        }
    }

    /// One request; its `ok: false` answers become errors.
    fn ask(&self, line: &str) -> Result<Value, SupervisionError> {
        let answer = control_request(&self.socket, line).map_err(|e| match e {
            ControlError::Socket { .. } => SupervisionError::Unavailable(e.to_string()),
            other => SupervisionError::Refused(other.to_string()),
        })?;
        if answer["ok"] == true {
            return Ok(answer);
        }
        let message = answer["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_string();
        Err(match answer["code"].as_str() {
            Some("unknown_service") => SupervisionError::UnknownService(message),
            _ => SupervisionError::Refused(message),
        })
    }

    fn queues(&self) -> Result<Value, String> {
        let broker = {
            let mut slot = self.broker.lock().unwrap_or_else(PoisonError::into_inner);
            match &*slot {
                Some(b) => b.clone(),
                None => {
                    let b = crate::queue_cmd::open_broker(&self.global)
                        .map_err(|e| format!("{e:#}"))?;
                    *slot = Some(b.clone());
                    b
                }
            }
        };
        let stats = broker.stats().map_err(|e| e.to_string())?;
        serde_json::to_value(stats).map_err(|e| e.to_string())
    }
}

impl Supervision for SocketSupervision {
    fn overview(&self) -> Result<Value, SupervisionError> {
        let mut status = self.ask("status")?;
        let mut events = self.ask("events")?;
        let mut out = json!({
            "status": status["status"].take(),
            "events": events["events"].take(),
        });
        // The supervisor is the point of the page: a queue that cannot be read is shown as
        // such rather than failing the whole answer.
        match self.queues() {
            Ok(q) => out["queues"] = q,
            Err(e) => {
                tracing::warn!(error = %e, "queue depths for the status page");
                out["queues"] = json!([]);
                out["queues_error"] = json!(e);
            }
        }
        Ok(out)
    }

    fn metrics(&self) -> Result<String, SupervisionError> {
        let mut answer = self.ask("metrics")?;
        match answer["metrics"].take() {
            Value::String(text) => Ok(text),
            _ => Err(SupervisionError::Refused("metrics are not text".into())),
        }
    }

    fn restart(&self, service: &str) -> Result<(), SupervisionError> {
        // One word: anything else would be a different request line.
        if service.is_empty() || service.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SupervisionError::UnknownService(service.into()));
        }
        self.ask(&format!("restart {service}")).map(|_| ())
    }
}
