//! A Unix control socket so other processes (`sadomap status`, `sadomap restart SERVICE`) can
//! talk to a running supervisor: one request line, one JSON answer line, then the connection
//! closes. Requests: `status` (the [`Status`](crate::Status) snapshot), `events` (the recent
//! events, oldest first), `metrics` (the Prometheus text) and `restart SERVICE`.
//!
//! Concurrency: a server thread started by [`Supervisor::run`](super::Supervisor::run) accepts
//! connections (non-blocking, checking the shutdown signal every 50 ms) and answers from a
//! [`StatusHandle`] snapshot, the recent-events ring, the metrics, or by sending a command
//! through [`Control`]; it never touches the loop's state. One client at a time, each with a 2 s read/write timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use super::rolling::Control;
use crate::error::{ControlError, PlanError};
use crate::events::RecentEvents;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::status::StatusHandle;

const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds `path`, replacing a stale socket file but never a live supervisor's.
pub(super) fn bind(path: &Path) -> Result<UnixListener, PlanError> {
    let err = |reason: String| PlanError::ControlSocket {
        path: path.to_path_buf(),
        reason,
    };
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(err("another supervisor is answering on it".into()));
        }
        std::fs::remove_file(path)
            .map_err(|e| err(format!("cannot remove the stale socket: {e}")))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| err(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| err(e.to_string()))?;
    Ok(listener)
}

/// What the socket answers from.
pub(super) struct Answers {
    pub(super) status: StatusHandle,
    pub(super) control: Control,
    pub(super) recent: Arc<RecentEvents>,
    pub(super) metrics: Arc<Metrics>,
}

/// Serves requests until `shutdown`, then removes the socket file.
pub(super) fn serve(
    listener: UnixListener,
    path: PathBuf,
    answers: Answers,
    shutdown: Shutdown,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while !shutdown.is_triggered() {
            match listener.accept() {
                Ok((stream, _)) => answer(stream, &answers),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    shutdown.wait(Duration::from_millis(50));
                }
                // A failed accept concerns one client only.
                Err(_) => {
                    shutdown.wait(Duration::from_millis(50));
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    })
}

fn answer(stream: UnixStream, answers: &Answers) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut line = String::new();
    // At most one short line: a request longer than 1 KiB is not one of ours.
    let mut reader = BufReader::new((&stream).take(1024));
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let reply = handle(line.trim(), answers);
    let mut out = &stream;
    let _ = writeln!(out, "{reply}");
}

fn handle(request: &str, a: &Answers) -> Value {
    let mut words = request.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("status"), None, None) => json!({ "ok": true, "status": a.status.snapshot() }),
        (Some("events"), None, None) => json!({ "ok": true, "events": a.recent.snapshot() }),
        (Some("metrics"), None, None) => json!({ "ok": true, "metrics": a.metrics.render() }),
        (Some("restart"), Some(service), None) => match a.control.restart(service) {
            Ok(()) => json!({ "ok": true, "accepted": format!("rolling restart of {service}") }),
            Err(e) => json!({ "ok": false, "code": e.code(), "error": e.to_string() }),
        },
        _ => json!({
            "ok": false,
            "code": "bad_request",
            "error": format!("unknown request {request:?}; hint: `status`, `events`, `metrics` or `restart SERVICE`"),
        }),
    }
}

/// Sends one request line to the supervisor listening on `path` and returns its JSON answer
/// (`{"ok": true, ...}` or `{"ok": false, "code", "error"}`).
pub fn request(path: &Path, line: &str) -> Result<Value, ControlError> {
    let io = |e: std::io::Error| ControlError::Socket {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut stream = UnixStream::connect(path).map_err(io)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    writeln!(stream, "{}", line.trim()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|e| ControlError::Socket {
        path: path.to_path_buf(),
        reason: format!("not a JSON answer ({e}): {answer:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let path =
            std::env::temp_dir().join(format!("sadomap-sup-stale-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(UnixListener::bind(&path).expect("first bind"));
        assert!(path.exists(), "the file outlives its listener");
        let l = bind(&path).expect("stale file replaced");
        drop(l);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn requests_are_parsed_strictly() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let control = Control {
            tx,
            services: std::sync::Arc::new(vec!["api".into()]),
        };
        let a = Answers {
            status: StatusHandle::default(),
            control,
            recent: Arc::new(RecentEvents::new(4)),
            metrics: Arc::new(Metrics::new()),
        };
        assert_eq!(handle("status", &a)["ok"], true);
        assert_eq!(handle("events", &a)["events"], json!([]));
        assert!(handle("metrics", &a)["metrics"].is_string());
        assert_eq!(handle("status now", &a)["code"], "bad_request");
        assert_eq!(handle("events 5", &a)["code"], "bad_request");
        assert_eq!(handle("restart", &a)["code"], "bad_request");
        assert_eq!(handle("restart api", &a)["ok"], true);
        assert_eq!(handle("restart api api", &a)["code"], "bad_request");
        assert_eq!(handle("", &a)["code"], "bad_request");
    }
}
