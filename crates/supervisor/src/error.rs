//! Errors of the supervisor, each with a stable code (rule 2: the server maps codes to statuses).

use std::net::SocketAddr;

use thiserror::Error;

/// A topology config that cannot run; found by [`crate::Plan::build`] before anything starts.
#[derive(Debug, Error)]
pub enum PlanError {
    /// Two services share a name.
    #[error("service `{service}` is defined twice; hint: service names must be unique")]
    DuplicateService {
        /// The repeated name.
        service: String,
    },
    /// A `depends_on` names no service.
    #[error(
        "service `{service}` depends on `{dependency}`, which is not a service in the topology"
    )]
    UnknownDependency {
        /// The dependent service.
        service: String,
        /// The missing dependency.
        dependency: String,
    },
    /// Dependencies form a cycle.
    #[error("service `{service}` is part of a dependency cycle; hint: check its depends_on")]
    DependencyCycle {
        /// A service on the cycle.
        service: String,
    },
    /// `replicas.min` above `replicas.max`.
    #[error("service `{service}`: replicas.min ({min}) is above replicas.max ({max})")]
    MinAboveMax {
        /// The service.
        service: String,
        /// Its min.
        min: u32,
        /// Its max.
        max: u32,
    },
    /// A service's own port is taken.
    #[error("service `{service}`: port {addr} is already in use ({source}); hint: stop what holds it or change `port`")]
    PortInUse {
        /// The service.
        service: String,
        /// The address tried.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// The shared listening address is taken.
    #[error("listen address {addr} cannot be bound ({source}); hint: stop what holds it or change `listen`")]
    ListenInUse {
        /// The address tried.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// The control socket cannot be bound.
    #[error("control socket {path}: {reason}")]
    ControlSocket {
        /// The socket path.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// Any other bad value.
    #[error("`{field}` {reason}")]
    Invalid {
        /// Dotted path of the field (`services.api.probes.http.url`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl PlanError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PlanError::DuplicateService { .. } => "duplicate_service",
            PlanError::UnknownDependency { .. } => "unknown_dependency",
            PlanError::DependencyCycle { .. } => "dependency_cycle",
            PlanError::MinAboveMax { .. } => "min_above_max",
            PlanError::PortInUse { .. } => "port_in_use",
            PlanError::ListenInUse { .. } => "listen_in_use",
            PlanError::ControlSocket { .. } => "control_socket_unavailable",
            PlanError::Invalid { .. } => "invalid_config",
        }
    }
}

/// A runtime operation that failed.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The program could not be started.
    #[error("cannot start `{command}` for service `{service}`: {source}")]
    Spawn {
        /// The service.
        service: String,
        /// The program.
        command: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The instance is not known to this runtime.
    #[error("instance {0} is not managed by this runtime")]
    UnknownInstance(String),
    /// Sending a signal failed.
    #[error("cannot signal instance {instance}: {reason}")]
    Signal {
        /// The instance.
        instance: String,
        /// Why.
        reason: String,
    },
    /// Reading an instance's state or stats failed.
    #[error("cannot inspect instance {instance}: {reason}")]
    Inspect {
        /// The instance.
        instance: String,
        /// Why.
        reason: String,
    },
    /// A container engine call failed or timed out (the Docker runtime).
    #[error("docker engine: {operation} {target}: {reason}")]
    Engine {
        /// The API operation (`create`, `start`, `stop`, `kill`, `inspect`, `stats`, ...).
        operation: &'static str,
        /// The container, image or network it was about.
        target: String,
        /// Why, as the engine or the transport said it.
        reason: String,
    },
}

impl RuntimeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RuntimeError::Spawn { .. } => "spawn_failed",
            RuntimeError::UnknownInstance(_) => "unknown_instance",
            RuntimeError::Signal { .. } => "signal_failed",
            RuntimeError::Inspect { .. } => "inspect_failed",
            RuntimeError::Engine { .. } => "engine_failed",
        }
    }
}

/// A command to a running supervisor that cannot be carried out.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ControlError {
    /// No service has that name.
    #[error("no service is named `{0}`; hint: `sadomap status` lists them")]
    UnknownService(String),
    /// The supervisor loop is not running.
    #[error("the supervisor is not running")]
    NotRunning,
    /// The control socket could not be reached or answered nonsense.
    #[error("control socket {path}: {reason}; hint: is `sadomap up` running?")]
    Socket {
        /// The socket path.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

impl ControlError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::UnknownService(_) => "unknown_service",
            ControlError::NotRunning => "supervisor_not_running",
            ControlError::Socket { .. } => "control_socket_unreachable",
        }
    }
}
