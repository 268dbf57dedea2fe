//! `sadomap-supervisor` keeps a topology of processes (or containers) up: it health-checks them,
//! fails over, restarts with backoff, guards against cascades and scales workers, reactively on
//! queue depth and predictively with its own Holt-Winters forecaster. It knows nothing of
//! places: it supervises specs and reads load through traits.
//!
//! The parts, from config to loop:
//! - [`TopologyConfig`] (serde, `deny_unknown_fields`, defaults in [`defaults`]) is validated once
//!   into a [`Plan`] by [`Plan::build`]; bad config fails with a [`PlanError`] naming the service.
//! - A [`Runtime`] starts, stops, kills and inspects instances; [`LocalRuntime`] runs local
//!   processes, reads `/proc` for CPU and memory, and passes a shared listening socket as fd 3
//!   (which a child adopts with [`inherited_listener`]; [`exit_with_supervisor`] keeps it from
//!   outliving the supervisor).
//!   [`DockerRuntime`] runs containers through the Docker Engine API, finds them by label,
//!   probes them at their own address and follows the engine's event stream.
//! - [`InstanceHealth`] keeps the last checks in a [`Ring`] and the [`HealthState`] machine.
//! - [`FailoverManager`] turns a [`FailureKind`] into a [`Decision`] ([`decide`] is the action
//!   table), with [`Backoff`] per slot and the [`CascadeGuard`]'s protective mode.
//! - [`ScalingManager`] decides replica counts; [`sim`] compares reactive and predictive scaling.
//! - [`Event`]s go through [`Telemetry`] to JSON-line sinks and [`Metrics`].
//! - [`Supervisor::run`] ties them together until a [`Shutdown`] is triggered; a [`Control`]
//!   asks it for rolling restarts and a [`StatusHandle`] reads its [`Status`].
//! - [`write_compose`] writes a Docker Compose file of the same topology, and [`write_k8s`]
//!   Kubernetes manifests (typed objects, one multi-document YAML file) from a [`K8sConfig`].
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sadomap_supervisor::{
//!     Event, MemorySink, Metrics, Plan, Shutdown, Supervisor, Telemetry, TopologyConfig,
//! };
//!
//! let config: TopologyConfig = serde_json::from_str(
//!     r#"{"services":[{"name":"worker","role":"worker","command":"sleep","args":["30"]}]}"#,
//! )
//! .expect("valid JSON");
//! let plan = Plan::build(&config).expect("valid topology");
//! let events = Arc::new(MemorySink::new());
//! let telemetry = Telemetry::new(Arc::new(Metrics::new())).with_sink(events.clone());
//! let (supervisor, _runtime) = Supervisor::local(plan, telemetry);
//! let shutdown = Shutdown::new();
//! let stopper = shutdown.clone();
//! std::thread::spawn(move || {
//!     std::thread::sleep(Duration::from_millis(300));
//!     stopper.trigger();
//! });
//! supervisor.run(&shutdown).expect("wiring complete"); // returns once stopped
//! assert_eq!(events.count(|e| matches!(e, Event::InstanceStarted(_))), 1);
//! ```
#![deny(missing_docs)]

mod child;
mod clock;
mod compose;
mod config;
mod error;
mod events;
mod failover;
mod health;
mod k8s;
mod metrics;
mod plan;
mod probe;
mod runtime;
mod scaling;
mod shutdown;
mod signals;
mod status;
mod supervisor;

pub use child::{exit_with_supervisor, inherited_listener, SUPERVISOR_PID_ENV};
pub use clock::{Clock, ManualClock, Moment, SystemClock};
pub use compose::{write_compose, ComposeConfig, ComposeError, HealthcheckConfig};
pub use config::{
    defaults, CascadeConfig, HealthConfig, HttpProbeConfig, ProbesConfig, ReplicasConfig,
    RestartConfig, Role, ScalingConfig, ServiceConfig, TopologyConfig,
};
pub use error::{ControlError, PlanError, RuntimeError};
pub use events::{
    Event, EventSink, FailureDetected, HealthChanged, InstanceStarted, JsonLinesSink,
    LeasesReleased, MemorySink, ProbeFailed, ProtectiveModeEntered, ProtectiveModeLeft,
    RecentEvents, Restarted, RollingRestarted, RuntimeFailed, Scaled, Telemetry,
};
pub use failover::{
    decide, Backoff, CascadeGuard, Decision, Exhaustion, FailoverManager, FailureKind, GuardChange,
    Handled, Slot, StopHow,
};
pub use health::{Check, CheckStatus, HealthState, InstanceHealth, Observation, Ring};
pub use k8s::{
    write_k8s, K8sAutoscaler, K8sConfig, K8sError, K8sObject, K8sRedis, K8sResources,
    KedaScaleTarget, KedaTrigger, ResourceSpec, ScaledObject, ScaledObjectSpec, K8S_SECRET_KEYS,
    QUEUE_DEPTH_METRIC,
};
pub use metrics::{MetricKind, Metrics};
pub use plan::{
    CascadePolicy, HealthPolicy, Plan, Probes, Replicas, RestartPolicy, ScalingPolicy, ServicePlan,
};
pub use probe::{HttpTarget, ProbeFailure};
pub use runtime::{
    labels, ContainerEvent, ContainerEventKind, ContainerEvents, DockerOptions, DockerRuntime,
    InstanceId, InstanceStatus, Launch, LocalRuntime, Publish, Runtime, Started, Stats, LISTEN_FD,
};
pub use scaling::{sim, HoltWinters, ScaleDecision, ScaleReason, ScalingManager};
pub use shutdown::Shutdown;
pub use signals::{Heartbeats, LeaseReleaser, LoadSample, LoadSignals};
pub use status::{InstanceRow, ServiceStatus, SlotPhase, Status, StatusHandle};
pub use supervisor::{control_request, Control, Supervisor};
