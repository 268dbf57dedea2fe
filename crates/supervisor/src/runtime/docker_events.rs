//! The engine's event stream, as plain values: [`ContainerEvents`] is a subscription to the
//! container events (`die`, `oom`, `kill`, `health_status`, ...) of one project's containers,
//! fed by a task on the Docker runtime's tokio runtime into a channel that any thread can read.
//!
//! The same stream keeps [`super::DockerRuntime::inspect`] cheap: a watcher task marks a
//! container "changed" on each of its events, and `inspect` asks the engine again only for a
//! changed container or once per recheck period, so the supervisor's 100 ms exit sweep learns of
//! a `die` from the event within one sweep instead of polling every container ten times a second.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

use super::InstanceId;

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEventKind {
    /// It started.
    Started,
    /// Its process ended (the exit code, when the engine gave one).
    Died {
        /// Exit code (137 after SIGKILL, 143 after SIGTERM).
        exit_code: Option<i32>,
    },
    /// The kernel's OOM killer hit it.
    OomKilled,
    /// It was sent a signal through the engine (`docker kill`, or the stop's SIGTERM/SIGKILL).
    Killed {
        /// The signal number, when the engine gave one.
        signal: Option<i32>,
    },
    /// Its Docker health check changed state (`healthy`, `unhealthy`, `starting`).
    Health {
        /// The new state.
        status: String,
    },
    /// It was paused (`docker pause`: its processes are frozen).
    Paused,
    /// It was unpaused.
    Unpaused,
    /// Another action (`create`, `destroy`, `restart`, network actions, ...).
    Other(String),
}

impl ContainerEventKind {
    /// Parses the engine's action string and actor attributes.
    pub(super) fn parse(action: &str, attributes: &HashMap<String, String>) -> Self {
        let int = |key: &str| attributes.get(key).and_then(|v| v.parse::<i32>().ok());
        match action {
            "start" => ContainerEventKind::Started,
            "die" => ContainerEventKind::Died {
                exit_code: int("exitCode"),
            },
            "oom" => ContainerEventKind::OomKilled,
            "kill" => ContainerEventKind::Killed {
                signal: int("signal"),
            },
            "pause" => ContainerEventKind::Paused,
            "unpause" => ContainerEventKind::Unpaused,
            other => match other.strip_prefix("health_status:") {
                Some(status) => ContainerEventKind::Health {
                    status: status.trim().to_string(),
                },
                None => ContainerEventKind::Other(other.to_string()),
            },
        }
    }
}

/// One event of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// The container.
    pub id: InstanceId,
    /// What happened.
    pub kind: ContainerEventKind,
    /// The container's labels (the engine sends them with each event).
    pub labels: BTreeMap<String, String>,
    /// When, in nanoseconds since the Unix epoch (engine clock).
    pub time_nanos: i64,
}

/// Attributes the engine adds to a container event that are not labels.
const NOT_LABELS: &[&str] = &["image", "name", "exitCode", "signal", "execDuration"];

impl ContainerEvent {
    /// A container event from an engine message; `None` for other event types.
    pub(super) fn from_message(msg: &EventMessage) -> Option<ContainerEvent> {
        let actor = msg.actor.as_ref()?;
        let id = actor.id.clone()?;
        let empty = HashMap::new();
        let attributes = actor.attributes.as_ref().unwrap_or(&empty);
        let action = msg.action.as_deref().unwrap_or("");
        Some(ContainerEvent {
            id: InstanceId(id),
            kind: ContainerEventKind::parse(action, attributes),
            labels: attributes
                .iter()
                .filter(|(k, _)| !NOT_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            time_nanos: msg
                .time_nano
                .or(msg.time.map(|s| s.saturating_mul(1_000_000_000)))
                .unwrap_or(0),
        })
    }
}

/// A live subscription to container events; ends (the task stops) when dropped.
#[derive(Debug)]
pub struct ContainerEvents {
    rx: mpsc::Receiver<Result<ContainerEvent, String>>,
    task: tokio::task::AbortHandle,
}

impl ContainerEvents {
    /// Subscribes on `handle` to the events of containers labelled `label` (`key=value`).
    pub(super) fn subscribe(
        handle: &tokio::runtime::Handle,
        docker: Docker,
        label: String,
    ) -> ContainerEvents {
        let (tx, rx) = mpsc::channel();
        let task = handle.spawn(async move {
            let filters = HashMap::from([("type", vec!["container"]), ("label", vec![&label])]);
            let mut stream =
                docker.events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
            while let Some(item) = stream.next().await {
                let sent = match item {
                    Ok(msg) => match ContainerEvent::from_message(&msg) {
                        Some(e) => tx.send(Ok(e)),
                        None => Ok(()),
                    },
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                if sent.is_err() {
                    return; // nobody listens any more
                }
            }
            let _ = tx.send(Err("the engine closed the event stream".into()));
        });
        ContainerEvents {
            rx,
            task: task.abort_handle(),
        }
    }

    /// The next event, waiting at most `limit`; `Err` if the stream broke, `Ok(None)` on timeout.
    pub fn next_within(&self, limit: Duration) -> Result<Option<ContainerEvent>, String> {
        match self.rx.recv_timeout(limit) {
            Ok(Ok(e)) => Ok(Some(e)),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err("event stream ended".into()),
        }
    }

    /// Waits up to `limit` for an event `pred` accepts, skipping others.
    pub fn wait_for(
        &self,
        limit: Duration,
        mut pred: impl FnMut(&ContainerEvent) -> bool,
    ) -> Result<Option<ContainerEvent>, String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.next_within(left)? {
                Some(e) if pred(&e) => return Ok(Some(e)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }
}

impl Drop for ContainerEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Change counters per container, bumped by the runtime's own watcher task.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// Whether the watcher's stream is open (if not, `inspect` always asks the engine).
    pub(super) live: AtomicBool,
    /// Events seen per container id.
    pub(super) changes: Mutex<HashMap<String, u64>>,
}

impl Watch {
    /// Events seen so far for `id`.
    pub(super) fn generation(&self, id: &str) -> u64 {
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    fn bump(&self, id: &str) {
        *self
            .changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_insert(0) += 1;
    }

    /// Runs forever on the runtime: follows the events of `label`'s containers, reconnecting
    /// (replaying from the last second seen, so nothing is missed) when the stream breaks.
    pub(super) async fn run(self: Arc<Self>, docker: Docker, label: String, mut since: i64) {
        loop {
            let filters = HashMap::from([("type", vec!["container"]), ("label", vec![&label])]);
            let since_arg = since.to_string();
            let mut stream = docker.events(Some(
                EventsOptionsBuilder::new()
                    .since(&since_arg)
                    .filters(&filters)
                    .build(),
            ));
            // Events from `since` on are replayed, so the cache may trust the stream from here.
            self.live.store(true, Ordering::SeqCst);
            while let Some(Ok(msg)) = stream.next().await {
                if let Some(t) = msg.time {
                    since = since.max(t);
                }
                if let Some(id) = msg.actor.as_ref().and_then(|a| a.id.as_deref()) {
                    self.bump(id);
                }
            }
            self.live.store(false, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    #[test]
    fn parses_actions() {
        let attrs = HashMap::from([
            ("exitCode".to_string(), "137".to_string()),
            ("signal".to_string(), "9".to_string()),
            ("sadomap.service".to_string(), "api".to_string()),
            ("name".to_string(), "c1".to_string()),
        ]);
        assert_eq!(
            ContainerEventKind::parse("die", &attrs),
            ContainerEventKind::Died {
                exit_code: Some(137)
            }
        );
        assert_eq!(
            ContainerEventKind::parse("kill", &attrs),
            ContainerEventKind::Killed { signal: Some(9) }
        );
        assert_eq!(
            ContainerEventKind::parse("health_status: unhealthy", &attrs),
            ContainerEventKind::Health {
                status: "unhealthy".into()
            }
        );
        assert_eq!(
            ContainerEventKind::parse("oom", &attrs),
            ContainerEventKind::OomKilled
        );
        let msg = EventMessage {
            action: Some("die".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(attrs),
            }),
            time: Some(5),
            ..Default::default()
        };
        let e = ContainerEvent::from_message(&msg).expect("a container event");
        assert_eq!(e.id, InstanceId("abc".into()));
        assert_eq!(e.time_nanos, 5_000_000_000);
        assert_eq!(
            e.labels,
            BTreeMap::from([("sadomap.service".to_string(), "api".to_string())])
        );
        assert!(ContainerEvent::from_message(&EventMessage::default()).is_none());
    }
}
