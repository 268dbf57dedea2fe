//! The typed topology config: what to run and the policies to run it with.
//!
//! Every field is documented; every default lives in [`defaults`]. Unknown keys are rejected
//! (`deny_unknown_fields`). A config is checked once by [`crate::Plan::build`] before anything
//! starts; durations are written in milliseconds (`*_ms`) so a TOML or JSON file needs no unit
//! parser.
//!
//! The topology `sadomap up` runs, as it reads in TOML (every key not shown takes its default):
//!
//! ```toml
//! listen = "127.0.0.1:8080"           # bound once by the supervisor, inherited as fd 3
//!
//! [health]
//! interval_ms = 2000
//!
//! [scaling]
//! predictive = true
//!
//! [[services]]
//! name = "api-primary"
//! role = "api"
//! command = "/usr/local/bin/sadomap"
//! args = ["serve", "--health-listen", "127.0.0.1:9101"]
//! inherit_listener = true
//! probes = { http = { url = "http://127.0.0.1:9101/health", timeout_ms = 1000 } }
//!
//! [[services]]
//! name = "api-backup"
//! role = "api"
//! command = "/usr/local/bin/sadomap"
//! args = ["serve", "--health-listen", "127.0.0.1:9102"]
//! inherit_listener = true
//! probes = { http = { url = "http://127.0.0.1:9102/health" } }
//!
//! [[services]]
//! name = "worker"
//! role = "worker"
//! command = "/usr/local/bin/sadomap"
//! args = ["worker"]
//! replicas = { min = 1, max = 8 }
//! probes = { heartbeat = true }      # needs Supervisor::with_heartbeats
//!
//! [[services]]
//! name = "scheduler"
//! role = "scheduler"
//! command = "/usr/local/bin/sadomap"
//! args = ["scheduler"]
//! ```
//!
//! (`sadomap up` builds this topology itself, with free health ports and the data directory;
//! per-instance health addresses are needed because an HTTP probe through the shared socket would reach
//! whichever instance accepts, which [`crate::Plan::build`] rejects.)

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Every default of the config, in one place.
pub mod defaults {
    /// Health probe interval (2 s).
    pub const PROBE_INTERVAL_MS: u64 = 2_000;
    /// How often gone instances are looked for between probes (100 ms): an exited process is
    /// replaced within this, not within a probe interval.
    pub const EXIT_CHECK_INTERVAL_MS: u64 = 100;
    /// Grace period after a start during which failed probes do not count (10 s).
    pub const START_PERIOD_MS: u64 = 10_000;
    /// Consecutive failed probes that make an instance unhealthy.
    pub const UNHEALTHY_AFTER: u32 = 3;
    /// A heartbeat older than this many probe intervals means unresponsive.
    pub const STALE_AFTER_INTERVALS: u32 = 3;
    /// Checks kept per instance.
    pub const HISTORY: usize = 100;
    /// CPU % at or above which a check counts as pinned.
    pub const CPU_PINNED_PERCENT: f64 = 95.0;
    /// Consecutive pinned checks that count as resource exhaustion.
    pub const CPU_PINNED_CHECKS: u32 = 15;
    /// HTTP probe timeout (1 s).
    pub const HTTP_TIMEOUT_MS: u64 = 1_000;
    /// Time a graceful stop waits between SIGTERM and SIGKILL (10 s).
    pub const STOP_GRACE_MS: u64 = 10_000;
    /// First restart backoff after the immediate one (1 s).
    pub const BACKOFF_INITIAL_MS: u64 = 1_000;
    /// Longest restart backoff (5 min).
    pub const BACKOFF_MAX_MS: u64 = 300_000;
    /// Healthy time after which the backoff resets (10 min).
    pub const BACKOFF_RESET_AFTER_MS: u64 = 600_000;
    /// Restarts within [`CRASH_LOOP_WINDOW_MS`] above which an instance is crash looping.
    pub const CRASH_LOOP_RESTARTS: u32 = 5;
    /// Window of the crash-loop intensity (1 min).
    pub const CRASH_LOOP_WINDOW_MS: u64 = 60_000;
    /// Failures across services that switch on protective mode.
    pub const CASCADE_FAILURES: u32 = 3;
    /// Window of the cascade guard (5 min).
    pub const CASCADE_WINDOW_MS: u64 = 300_000;
    /// In protective mode, at most one restart per this interval (10 s).
    pub const PROTECTIVE_RESTART_INTERVAL_MS: u64 = 10_000;
    /// Protective mode ends after this long without a failure (2 min).
    pub const STABLE_AFTER_MS: u64 = 120_000;
    /// How often the scaling manager decides (5 s).
    pub const SCALING_INTERVAL_MS: u64 = 5_000;
    /// Queue depth one worker is expected to absorb.
    pub const TARGET_JOBS_PER_WORKER: u32 = 10;
    /// Scale-up stabilisation window (15 s).
    pub const UP_WINDOW_MS: u64 = 15_000;
    /// Scale-down stabilisation window (5 min).
    pub const DOWN_WINDOW_MS: u64 = 300_000;
    /// Width of one bucket of the arrival-rate series the forecaster sees (5 min).
    pub const BUCKET_MS: u64 = 300_000;
    /// Buckets in one season: one day of 5-minute buckets.
    pub const SEASON_BUCKETS: usize = 288;
    /// How far ahead predictive scaling provisions (5 min: covers worker start-up with margin).
    pub const LEAD_MS: u64 = 300_000;
    /// Target utilisation of workers when provisioning for a forecast rate.
    pub const TARGET_UTILISATION: f64 = 0.85;
    /// Holt-Winters smoothing of the level.
    pub const ALPHA: f64 = 0.3;
    /// Holt-Winters smoothing of the trend.
    pub const BETA: f64 = 0.01;
    /// Holt-Winters smoothing of the season.
    pub const GAMMA: f64 = 0.3;
}

/// The whole topology: services and the policies that apply to them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopologyConfig {
    /// Address the supervisor binds once and hands to services with `inherit_listener`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The services to run, each with a unique name.
    pub services: Vec<ServiceConfig>,
    /// Health probing.
    #[serde(default)]
    pub health: HealthConfig,
    /// Restart backoff and crash-loop detection.
    #[serde(default)]
    pub restart: RestartConfig,
    /// The cascade guard.
    #[serde(default)]
    pub cascade: CascadeConfig,
    /// Worker scaling.
    #[serde(default)]
    pub scaling: ScalingConfig,
}

/// What a service is for; decides how failover and scaling treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Serves HTTP (api-primary, api-backup).
    Api,
    /// Runs queue jobs; the only role that scales and holds leases.
    Worker,
    /// Enqueues scheduled work.
    Scheduler,
    /// Anything else.
    Other,
}

impl Role {
    /// The role as written in config and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
            Role::Scheduler => "scheduler",
            Role::Other => "other",
        }
    }
}

/// How many instances of a service run: a fixed count, or a range the scaler moves within.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReplicasConfig {
    /// Exactly this many.
    Fixed(u32),
    /// Between `min` and `max` (workers only).
    Range {
        /// Fewest instances.
        min: u32,
        /// Most instances.
        max: u32,
    },
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        ReplicasConfig::Fixed(1)
    }
}

/// One service: its command and how to check it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name (`api-primary`, `worker`, ...).
    pub name: String,
    /// What the service is for.
    pub role: Role,
    /// Program to run (a path or a name looked up in `PATH`).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Instance count (default 1); a `{ min, max }` range for scaled workers.
    #[serde(default)]
    pub replicas: ReplicasConfig,
    /// Services that must be started before this one.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Health probes.
    #[serde(default)]
    pub probes: ProbesConfig,
    /// Resident memory above which an instance is restarted (bytes; none by default).
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
    /// Pass the supervisor's listening socket as fd 3 (`LISTEN_FDS=1`).
    #[serde(default)]
    pub inherit_listener: bool,
    /// A TCP port the service binds itself; checked free before anything starts.
    #[serde(default)]
    pub port: Option<u16>,
    /// Time between SIGTERM and SIGKILL on a graceful stop.
    #[serde(default = "default_stop_grace_ms")]
    pub stop_grace_ms: u64,
}

fn default_stop_grace_ms() -> u64 {
    defaults::STOP_GRACE_MS
}

/// Which probes run on every check of a service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbesConfig {
    /// Check that the process or container is alive (default on).
    #[serde(default = "yes")]
    pub alive: bool,
    /// An HTTP GET that must answer 2xx within its timeout.
    #[serde(default)]
    pub http: Option<HttpProbeConfig>,
    /// Check the worker's heartbeat age (from the queue) against the stale limit.
    #[serde(default)]
    pub heartbeat: bool,
}

fn yes() -> bool {
    true
}

impl Default for ProbesConfig {
    fn default() -> Self {
        ProbesConfig {
            alive: true,
            http: None,
            heartbeat: false,
        }
    }
}

/// An HTTP GET probe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeConfig {
    /// `http://host:port/path` (plain HTTP/1.1).
    pub url: String,
    /// Time allowed for connect plus answer.
    #[serde(default = "default_http_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_http_timeout_ms() -> u64 {
    defaults::HTTP_TIMEOUT_MS
}

/// Health probing policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Probe interval.
    pub interval_ms: u64,
    /// How often gone instances are looked for between probes (cheap: no probe runs).
    pub exit_check_interval_ms: u64,
    /// Grace period after a start during which failed probes do not count.
    pub start_period_ms: u64,
    /// Consecutive failed probes that make an instance unhealthy.
    pub unhealthy_after: u32,
    /// A heartbeat older than this many intervals means unresponsive.
    pub stale_after_intervals: u32,
    /// Checks kept per instance.
    pub history: usize,
    /// CPU % at or above which a check counts as pinned.
    pub cpu_pinned_percent: f64,
    /// Consecutive pinned checks that count as resource exhaustion.
    pub cpu_pinned_checks: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval_ms: defaults::PROBE_INTERVAL_MS,
            exit_check_interval_ms: defaults::EXIT_CHECK_INTERVAL_MS,
            start_period_ms: defaults::START_PERIOD_MS,
            unhealthy_after: defaults::UNHEALTHY_AFTER,
            stale_after_intervals: defaults::STALE_AFTER_INTERVALS,
            history: defaults::HISTORY,
            cpu_pinned_percent: defaults::CPU_PINNED_PERCENT,
            cpu_pinned_checks: defaults::CPU_PINNED_CHECKS,
        }
    }
}

/// Restart backoff and crash-loop policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RestartConfig {
    /// First backoff after the immediate restart; doubles on each further one.
    pub initial_backoff_ms: u64,
    /// Longest backoff.
    pub max_backoff_ms: u64,
    /// Healthy time after which the backoff resets.
    pub reset_after_healthy_ms: u64,
    /// Restarts within the window above which an instance is crash looping.
    pub crash_loop_restarts: u32,
    /// Window of the crash-loop intensity.
    pub crash_loop_window_ms: u64,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            initial_backoff_ms: defaults::BACKOFF_INITIAL_MS,
            max_backoff_ms: defaults::BACKOFF_MAX_MS,
            reset_after_healthy_ms: defaults::BACKOFF_RESET_AFTER_MS,
            crash_loop_restarts: defaults::CRASH_LOOP_RESTARTS,
            crash_loop_window_ms: defaults::CRASH_LOOP_WINDOW_MS,
        }
    }
}

/// Cascade guard policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CascadeConfig {
    /// Failures across services within the window that switch on protective mode.
    pub failures: u32,
    /// The window.
    pub window_ms: u64,
    /// In protective mode, at most one restart per this interval.
    pub protective_restart_interval_ms: u64,
    /// Protective mode ends after this long without a failure.
    pub stable_after_ms: u64,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        CascadeConfig {
            failures: defaults::CASCADE_FAILURES,
            window_ms: defaults::CASCADE_WINDOW_MS,
            protective_restart_interval_ms: defaults::PROTECTIVE_RESTART_INTERVAL_MS,
            stable_after_ms: defaults::STABLE_AFTER_MS,
        }
    }
}

/// Worker scaling policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingConfig {
    /// How often the scaler decides.
    pub interval_ms: u64,
    /// Queue depth one worker is expected to absorb.
    pub target_jobs_per_worker: u32,
    /// Scale-up stabilisation window.
    pub up_window_ms: u64,
    /// Scale-down stabilisation window.
    pub down_window_ms: u64,
    /// Also scale up ahead of forecast peaks (Holt-Winters, daily season).
    pub predictive: bool,
    /// Width of one bucket of the arrival-rate series.
    pub bucket_ms: u64,
    /// Buckets in one season (one day by default).
    pub season_buckets: usize,
    /// How far ahead predictive scaling provisions.
    pub lead_ms: u64,
    /// Target worker utilisation when provisioning for a forecast rate.
    pub target_utilisation: f64,
    /// Holt-Winters smoothing of the level.
    pub alpha: f64,
    /// Holt-Winters smoothing of the trend.
    pub beta: f64,
    /// Holt-Winters smoothing of the season.
    pub gamma: f64,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            interval_ms: defaults::SCALING_INTERVAL_MS,
            target_jobs_per_worker: defaults::TARGET_JOBS_PER_WORKER,
            up_window_ms: defaults::UP_WINDOW_MS,
            down_window_ms: defaults::DOWN_WINDOW_MS,
            predictive: false,
            bucket_ms: defaults::BUCKET_MS,
            season_buckets: defaults::SEASON_BUCKETS,
            lead_ms: defaults::LEAD_MS,
            target_utilisation: defaults::TARGET_UTILISATION,
            alpha: defaults::ALPHA,
            beta: defaults::BETA,
            gamma: defaults::GAMMA,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c: TopologyConfig = serde_json::from_str(
            r#"{"services":[{"name":"worker","role":"worker","command":"sleep",
                "replicas":{"min":1,"max":4},"probes":{"heartbeat":true}}]}"#,
        )
        .expect("parses");
        assert_eq!(c.health.interval_ms, 2_000);
        assert_eq!(c.restart.initial_backoff_ms, 1_000);
        assert_eq!(c.restart.max_backoff_ms, 300_000);
        assert_eq!(c.cascade.failures, 3);
        assert_eq!(c.scaling.up_window_ms, 15_000);
        assert_eq!(c.scaling.down_window_ms, 300_000);
        let s = &c.services[0];
        assert_eq!(s.replicas, ReplicasConfig::Range { min: 1, max: 4 });
        assert!(s.probes.alive && s.probes.heartbeat);
        assert_eq!(s.stop_grace_ms, 10_000);
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err = serde_json::from_str::<TopologyConfig>(
            r#"{"services":[{"name":"a","role":"api","command":"x","replica":2}]}"#,
        )
        .expect_err("typo must fail");
        assert!(err.to_string().contains("replica"), "{err}");
        let err = serde_json::from_str::<TopologyConfig>(
            r#"{"services":[],"health":{"intervall_ms":5}}"#,
        )
        .expect_err("typo must fail");
        assert!(err.to_string().contains("intervall_ms"), "{err}");
    }

    #[test]
    fn the_documented_toml_topology_parses_and_plans() {
        // The example in this module's doc, so the doc cannot drift from the types.
        let src = include_str!("config.rs");
        let start = src.find("//! ```toml").expect("doc example") + "//! ```toml".len();
        let end = start + src[start..].find("//! ```").expect("end of example");
        let text: String = src[start..end]
            .lines()
            .map(|l| l.trim_start().strip_prefix("//!").unwrap_or(l))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let mut config: TopologyConfig = toml::from_str(&text).expect("documented TOML parses");
        assert_eq!(config.services.len(), 4);
        assert_eq!(
            config.services[2].replicas,
            ReplicasConfig::Range { min: 1, max: 8 }
        );
        assert!(config.scaling.predictive);
        // Plan it on a free port (8080 may be taken on a developer machine).
        config.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let plan = crate::Plan::build(&config).expect("documented topology is valid");
        assert_eq!(plan.services.len(), 4);
    }

    #[test]
    fn fixed_replicas_parse_as_a_number() {
        let c: TopologyConfig = serde_json::from_str(
            r#"{"services":[{"name":"a","role":"api","command":"x","replicas":2}]}"#,
        )
        .expect("parses");
        assert_eq!(c.services[0].replicas, ReplicasConfig::Fixed(2));
    }
}
