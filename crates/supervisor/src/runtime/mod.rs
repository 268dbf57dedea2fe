//! Runtimes: where instances of a service run. One trait, [`Runtime`]; [`LocalRuntime`] runs
//! local processes, [`DockerRuntime`] runs containers through the Docker Engine API: an
//! [`InstanceId`] is then a container id, [`Launch::labels`] become container labels, and
//! [`Runtime::instances`] lists containers found by those labels (so a restarted supervisor
//! adopts what is already running).
//!
//! Concurrency: runtimes are `Send + Sync` and take `&self`; each call is independent. `stop`
//! blocks the caller for at most the grace period plus a short wait for the kill to land.

mod docker;
mod docker_events;
mod docker_state;
mod local;
pub(crate) mod procfs;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Role;
use crate::error::RuntimeError;

pub use docker::{DockerOptions, DockerRuntime, Publish};
pub use docker_events::{ContainerEvent, ContainerEventKind, ContainerEvents};
pub use local::{LocalRuntime, LISTEN_FD};

/// Label keys set on every instance (and on containers by a Docker runtime).
pub mod labels {
    /// The service name.
    pub const SERVICE: &str = "sadomap.service";
    /// The role (`api`, `worker`, ...).
    pub const ROLE: &str = "sadomap.role";
    /// The replica slot, `0..n`.
    pub const REPLICA: &str = "sadomap.replica";
    /// The worker id given to the instance (`SADOMAP_WORKER_ID`).
    pub const WORKER_ID: &str = "sadomap.worker_id";
    /// The project a container belongs to (set by the Docker runtime): one supervisor's
    /// containers, found again by this label after a restart.
    pub const PROJECT: &str = "sadomap.project";
}

/// Opaque id of one running (or finished) instance: a local id or a container id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceId(pub String);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything a runtime needs to start one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// Service name.
    pub service: String,
    /// Service role.
    pub role: Role,
    /// Replica slot.
    pub replica: u32,
    /// Program.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment on top of the supervisor's.
    pub env: BTreeMap<String, String>,
    /// Labels identifying the instance (see [`labels`]).
    pub labels: BTreeMap<String, String>,
    /// Hand the supervisor's listening socket to the instance.
    pub inherit_listener: bool,
}

/// A started instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    /// Its id.
    pub id: InstanceId,
    /// Its process id, when the runtime knows it.
    pub pid: Option<u32>,
    /// The worker id the instance really runs with, when it is not the launch's: a container
    /// adopted from an earlier supervisor keeps the `SADOMAP_WORKER_ID` it was started with.
    pub worker_id: Option<String>,
}

/// What an instance is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Running.
    Running,
    /// Stopped by a signal (SIGSTOP) or paused: alive but doing nothing.
    Stopped,
    /// Exited with a code.
    Exited {
        /// The exit code.
        code: i32,
    },
    /// Ended by a signal.
    Signalled {
        /// The signal number.
        signal: i32,
    },
}

impl InstanceStatus {
    /// Whether the instance is gone.
    pub fn is_gone(self) -> bool {
        matches!(
            self,
            InstanceStatus::Exited { .. } | InstanceStatus::Signalled { .. }
        )
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceStatus::Running => f.write_str("running"),
            InstanceStatus::Stopped => f.write_str("stopped"),
            InstanceStatus::Exited { code } => write!(f, "exited with code {code}"),
            InstanceStatus::Signalled { signal } => write!(f, "killed by signal {signal}"),
        }
    }
}

/// Resource use of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stats {
    /// CPU use since the previous sample, in % of one core (0 on the first sample).
    pub cpu_percent: f64,
    /// Resident memory in bytes.
    pub memory_bytes: u64,
}

/// Starts, stops and inspects instances.
pub trait Runtime: Send + Sync {
    /// Short name for logs (`local`, `docker`).
    fn name(&self) -> &'static str;
    /// Starts one instance.
    fn start(&self, launch: &Launch) -> Result<Started, RuntimeError>;
    /// Asks the instance to stop (SIGTERM), kills it after `grace`, and returns how it ended.
    fn stop(&self, id: &InstanceId, grace: Duration) -> Result<InstanceStatus, RuntimeError>;
    /// Kills the instance at once (SIGKILL) and waits for it to end.
    fn kill(&self, id: &InstanceId) -> Result<InstanceStatus, RuntimeError>;
    /// Stops the instance and starts a new one from `launch`.
    fn restart(
        &self,
        id: &InstanceId,
        launch: &Launch,
        grace: Duration,
    ) -> Result<Started, RuntimeError> {
        self.stop(id, grace)?;
        self.remove(id);
        self.start(launch)
    }
    /// What the instance is doing now.
    fn inspect(&self, id: &InstanceId) -> Result<InstanceStatus, RuntimeError>;
    /// CPU and memory use now.
    fn stats(&self, id: &InstanceId) -> Result<Stats, RuntimeError>;
    /// Forgets a finished instance (a no-op for unknown ids).
    fn remove(&self, id: &InstanceId);
    /// Every instance this runtime manages, with its labels.
    fn instances(&self) -> Vec<(InstanceId, BTreeMap<String, String>)>;
    /// The address the instance is reached at, when it has its own (a container's address on
    /// its network). HTTP probes then go to this address instead of their URL's host.
    fn address(&self, _id: &InstanceId) -> Option<IpAddr> {
        None
    }
}
