//! A validated topology: [`Plan::build`] checks a [`TopologyConfig`] once, before anything starts,
//! and turns milliseconds into durations and loose options into enums.
//!
//! Concurrency: a `Plan` is immutable after `build`; the listening socket it may hold is handed to
//! the supervisor, which duplicates it for each child.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use crate::config::{ReplicasConfig, Role, ServiceConfig, TopologyConfig};
use crate::error::PlanError;
use crate::probe::HttpTarget;

/// How many instances of a service run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// Exactly this many.
    Fixed(u32),
    /// Between `min` and `max` (`min <= max`, `max >= 1`), moved by the scaler.
    Scaled {
        /// Fewest instances.
        min: u32,
        /// Most instances.
        max: u32,
    },
}

impl Replicas {
    /// The count to start with.
    pub fn initial(self) -> u32 {
        match self {
            Replicas::Fixed(n) => n,
            Replicas::Scaled { min, .. } => min.max(1),
        }
    }
}

/// The probes of one service, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Probes {
    /// Check that the instance is alive.
    pub alive: bool,
    /// HTTP GET target, if any.
    pub http: Option<HttpTarget>,
    /// Check the heartbeat age.
    pub heartbeat: bool,
}

/// One service, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    /// Unique name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Program.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Instance count.
    pub replicas: Replicas,
    /// Services started before this one (all exist in the plan).
    pub depends_on: Vec<String>,
    /// Probes.
    pub probes: Probes,
    /// Memory limit in bytes.
    pub memory_limit: Option<u64>,
    /// Receives the supervisor's listening socket as fd 3.
    pub inherit_listener: bool,
    /// Time between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

/// Health policy with durations.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthPolicy {
    /// Probe interval.
    pub interval: Duration,
    /// Interval of the cheap sweep for gone instances (at most `interval`).
    pub exit_check_interval: Duration,
    /// Grace period after a start.
    pub start_period: Duration,
    /// Consecutive failures that make an instance unhealthy.
    pub unhealthy_after: u32,
    /// Heartbeat age that means unresponsive.
    pub stale_after: Duration,
    /// Checks kept per instance.
    pub history: usize,
    /// CPU % that counts as pinned.
    pub cpu_pinned_percent: f64,
    /// Pinned checks that count as exhaustion.
    pub cpu_pinned_checks: u32,
}

/// Restart policy with durations.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// First backoff after the immediate restart.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Healthy time that resets the backoff.
    pub reset_after_healthy: Duration,
    /// Restarts within the window above which an instance is crash looping.
    pub crash_loop_restarts: u32,
    /// Crash-loop window.
    pub crash_loop_window: Duration,
}

/// Cascade guard policy with durations.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadePolicy {
    /// Failures within the window that switch on protective mode.
    pub failures: u32,
    /// Window.
    pub window: Duration,
    /// Minimum gap between restarts in protective mode.
    pub protective_restart_interval: Duration,
    /// Failure-free time that ends protective mode.
    pub stable_after: Duration,
}

/// Scaling policy with durations.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicy {
    /// Decision interval.
    pub interval: Duration,
    /// Queue depth per worker (at least 1).
    pub target_jobs_per_worker: u32,
    /// Scale-up stabilisation window.
    pub up_window: Duration,
    /// Scale-down stabilisation window.
    pub down_window: Duration,
    /// Predictive scaling on.
    pub predictive: bool,
    /// Arrival-rate bucket width.
    pub bucket: Duration,
    /// Buckets per season.
    pub season_buckets: usize,
    /// Provisioning lead time.
    pub lead: Duration,
    /// Target utilisation in (0, 1].
    pub target_utilisation: f64,
    /// Holt-Winters smoothing factors (level, trend, season), each in [0, 1].
    pub smoothing: (f64, f64, f64),
}

impl From<&crate::config::ScalingConfig> for ScalingPolicy {
    fn from(c: &crate::config::ScalingConfig) -> Self {
        ScalingPolicy {
            interval: ms(c.interval_ms),
            target_jobs_per_worker: c.target_jobs_per_worker.max(1),
            up_window: ms(c.up_window_ms),
            down_window: ms(c.down_window_ms),
            predictive: c.predictive,
            bucket: ms(c.bucket_ms),
            season_buckets: c.season_buckets,
            lead: ms(c.lead_ms),
            target_utilisation: c.target_utilisation,
            smoothing: (c.alpha, c.beta, c.gamma),
        }
    }
}

impl Default for ScalingPolicy {
    fn default() -> Self {
        ScalingPolicy::from(&crate::config::ScalingConfig::default())
    }
}

/// A validated topology, services in start order (dependencies first).
#[derive(Debug)]
pub struct Plan {
    /// Services, dependencies before dependents.
    pub services: Vec<ServicePlan>,
    /// The socket bound once for `inherit_listener` services.
    pub listener: Option<TcpListener>,
    /// Health policy.
    pub health: HealthPolicy,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Cascade policy.
    pub cascade: CascadePolicy,
    /// Scaling policy.
    pub scaling: ScalingPolicy,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Plan {
    /// Checks `config` and builds the plan; binds `listen` if set. Fails on the first problem,
    /// naming the service and field.
    pub fn build(config: &TopologyConfig) -> Result<Plan, PlanError> {
        let h = &config.health;
        if h.interval_ms == 0 {
            return Err(PlanError::Invalid {
                field: "health.interval_ms".into(),
                reason: "must be above 0".into(),
            });
        }
        if h.unhealthy_after == 0 || h.stale_after_intervals == 0 || h.history == 0 {
            return Err(PlanError::Invalid {
                field: "health".into(),
                reason: "unhealthy_after, stale_after_intervals and history must be above 0".into(),
            });
        }
        let r = &config.restart;
        if r.initial_backoff_ms > r.max_backoff_ms {
            return Err(PlanError::Invalid {
                field: "restart.initial_backoff_ms".into(),
                reason: format!(
                    "{} is above max_backoff_ms {}",
                    r.initial_backoff_ms, r.max_backoff_ms
                ),
            });
        }
        let s = &config.scaling;
        if !(s.target_utilisation > 0.0 && s.target_utilisation <= 1.0) {
            return Err(PlanError::Invalid {
                field: "scaling.target_utilisation".into(),
                reason: format!("{} is not in (0, 1]", s.target_utilisation),
            });
        }
        for (name, v) in [("alpha", s.alpha), ("beta", s.beta), ("gamma", s.gamma)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(PlanError::Invalid {
                    field: format!("scaling.{name}"),
                    reason: format!("{v} is not in [0, 1]"),
                });
            }
        }
        if s.season_buckets < 2 || s.bucket_ms == 0 || s.interval_ms == 0 {
            return Err(PlanError::Invalid {
                field: "scaling".into(),
                reason: "season_buckets must be at least 2, bucket_ms and interval_ms above 0"
                    .into(),
            });
        }

        let mut seen = HashSet::new();
        for svc in &config.services {
            if svc.name.trim().is_empty() {
                return Err(PlanError::Invalid {
                    field: "services[].name".into(),
                    reason: "a service name is empty".into(),
                });
            }
            if !seen.insert(svc.name.as_str()) {
                return Err(PlanError::DuplicateService {
                    service: svc.name.clone(),
                });
            }
        }
        let mut services = Vec::with_capacity(config.services.len());
        for svc in &config.services {
            services.push(service_plan(svc, &seen)?);
        }
        let services = start_order(services)?;

        // Ports last: the cheap checks above should fail first, and bind attempts have effects.
        for svc in &config.services {
            if let Some(port) = svc.port {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                if let Err(e) = TcpListener::bind(addr) {
                    return Err(PlanError::PortInUse {
                        service: svc.name.clone(),
                        addr,
                        source: e,
                    });
                }
            }
        }
        if let Some(listen) = config.listen {
            for svc in services.iter().filter(|s| s.inherit_listener) {
                if let Some(http) = &svc.probes.http {
                    let local = ["127.0.0.1", "localhost", "::1", "0.0.0.0", "::"];
                    let same_host =
                        local.contains(&http.host.as_str()) || http.host == listen.ip().to_string();
                    if http.port == listen.port() && same_host {
                        return Err(PlanError::Invalid {
                            field: format!("services.{}.probes.http.url", svc.name),
                            reason: "points at the shared listen address, so it would probe \
                                     whichever instance accepts; hint: give each instance its \
                                     own health address"
                                .into(),
                        });
                    }
                }
            }
        }
        let wants_listener = config.services.iter().any(|s| s.inherit_listener);
        let listener = match (config.listen, wants_listener) {
            (Some(addr), _) => Some(
                TcpListener::bind(addr).map_err(|e| PlanError::ListenInUse { addr, source: e })?,
            ),
            (None, true) => {
                let service = config
                    .services
                    .iter()
                    .find(|s| s.inherit_listener)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                return Err(PlanError::Invalid {
                    field: format!("services.{service}.inherit_listener"),
                    reason: "is set but the topology has no `listen` address".into(),
                });
            }
            (None, false) => None,
        };

        Ok(Plan {
            services,
            listener,
            health: HealthPolicy {
                interval: ms(h.interval_ms),
                exit_check_interval: ms(h.exit_check_interval_ms.clamp(1, h.interval_ms)),
                start_period: ms(h.start_period_ms),
                unhealthy_after: h.unhealthy_after,
                stale_after: ms(h
                    .interval_ms
                    .saturating_mul(u64::from(h.stale_after_intervals))),
                history: h.history,
                cpu_pinned_percent: h.cpu_pinned_percent,
                cpu_pinned_checks: h.cpu_pinned_checks.max(1),
            },
            restart: RestartPolicy {
                initial_backoff: ms(r.initial_backoff_ms),
                max_backoff: ms(r.max_backoff_ms),
                reset_after_healthy: ms(r.reset_after_healthy_ms),
                crash_loop_restarts: r.crash_loop_restarts,
                crash_loop_window: ms(r.crash_loop_window_ms),
            },
            cascade: CascadePolicy {
                failures: config.cascade.failures.max(1),
                window: ms(config.cascade.window_ms),
                protective_restart_interval: ms(config.cascade.protective_restart_interval_ms),
                stable_after: ms(config.cascade.stable_after_ms),
            },
            scaling: ScalingPolicy::from(s),
        })
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServicePlan> {
        self.services.iter().find(|s| s.name == name)
    }
}

fn service_plan(svc: &ServiceConfig, names: &HashSet<&str>) -> Result<ServicePlan, PlanError> {
    let invalid = |field: &str, reason: String| PlanError::Invalid {
        field: format!("services.{}.{field}", svc.name),
        reason,
    };
    if svc.command.trim().is_empty() {
        return Err(invalid("command", "is empty".into()));
    }
    let replicas = match svc.replicas {
        ReplicasConfig::Fixed(n) => Replicas::Fixed(n),
        ReplicasConfig::Range { min, max } if min > max => {
            return Err(PlanError::MinAboveMax {
                service: svc.name.clone(),
                min,
                max,
            })
        }
        ReplicasConfig::Range { max: 0, .. } => {
            return Err(invalid("replicas.max", "must be at least 1".into()))
        }
        ReplicasConfig::Range { .. } if svc.role != Role::Worker => {
            return Err(invalid(
                "replicas",
                format!(
                    "a min/max range needs role worker, not {}",
                    svc.role.as_str()
                ),
            ))
        }
        ReplicasConfig::Range { min, max } => Replicas::Scaled { min, max },
    };
    for dep in &svc.depends_on {
        if !names.contains(dep.as_str()) {
            return Err(PlanError::UnknownDependency {
                service: svc.name.clone(),
                dependency: dep.clone(),
            });
        }
        if dep == &svc.name {
            return Err(PlanError::DependencyCycle {
                service: svc.name.clone(),
            });
        }
    }
    let http = match &svc.probes.http {
        Some(p) => Some(
            HttpTarget::parse(&p.url, ms(p.timeout_ms))
                .map_err(|reason| invalid("probes.http.url", reason))?,
        ),
        None => None,
    };
    if let Some(0) = svc.memory_limit_bytes {
        return Err(invalid("memory_limit_bytes", "must be above 0".into()));
    }
    Ok(ServicePlan {
        name: svc.name.clone(),
        role: svc.role,
        command: svc.command.clone(),
        args: svc.args.clone(),
        env: svc.env.clone(),
        replicas,
        depends_on: svc.depends_on.clone(),
        probes: Probes {
            alive: svc.probes.alive,
            http,
            heartbeat: svc.probes.heartbeat,
        },
        memory_limit: svc.memory_limit_bytes,
        inherit_listener: svc.inherit_listener,
        stop_grace: ms(svc.stop_grace_ms),
    })
}

/// Orders services so each comes after its dependencies (stable: config order otherwise).
fn start_order(services: Vec<ServicePlan>) -> Result<Vec<ServicePlan>, PlanError> {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut mark = vec![0u8; services.len()];
    let mut order = Vec::with_capacity(services.len());
    fn visit(
        i: usize,
        services: &[ServicePlan],
        index: &HashMap<&str, usize>,
        mark: &mut [u8],
        order: &mut Vec<usize>,
    ) -> Result<(), PlanError> {
        match mark[i] {
            2 => return Ok(()),
            1 => {
                return Err(PlanError::DependencyCycle {
                    service: services[i].name.clone(),
                })
            }
            _ => {}
        }
        mark[i] = 1;
        for dep in &services[i].depends_on {
            if let Some(&j) = index.get(dep.as_str()) {
                visit(j, services, index, mark, order)?;
            }
        }
        mark[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..services.len() {
        visit(i, &services, &index, &mut mark, &mut order)?;
    }
    let mut slots: Vec<Option<ServicePlan>> = services.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> TopologyConfig {
        serde_json::from_str(json).expect("test config parses")
    }

    fn err(json: &str) -> PlanError {
        Plan::build(&config(json)).expect_err("must be rejected")
    }

    #[test]
    fn builds_in_dependency_order_with_durations() {
        let plan = Plan::build(&config(
            r#"{"services":[
                {"name":"api","role":"api","command":"x","depends_on":["redis"],
                 "probes":{"http":{"url":"http://127.0.0.1:9/health","timeout_ms":500}}},
                {"name":"redis","role":"other","command":"y"},
                {"name":"worker","role":"worker","command":"z","replicas":{"min":2,"max":5}}]}"#,
        ))
        .expect("valid");
        let names: Vec<_> = plan.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["redis", "api", "worker"]);
        assert_eq!(plan.health.interval, Duration::from_secs(2));
        assert_eq!(plan.health.stale_after, Duration::from_secs(6));
        let w = plan.service("worker").expect("worker");
        assert_eq!(w.replicas, Replicas::Scaled { min: 2, max: 5 });
        assert_eq!(w.replicas.initial(), 2);
        let http = plan.service("api").and_then(|s| s.probes.http.clone());
        assert_eq!(http.map(|h| h.timeout), Some(Duration::from_millis(500)));
    }

    #[test]
    fn unknown_dependency_names_service_and_dependency() {
        let e = err(
            r#"{"services":[{"name":"api","role":"api","command":"x","depends_on":["redsi"]}]}"#,
        );
        assert_eq!(e.code(), "unknown_dependency");
        let msg = e.to_string();
        assert!(msg.contains("api") && msg.contains("redsi"), "{msg}");
    }

    #[test]
    fn min_above_max_is_rejected() {
        let e = err(
            r#"{"services":[{"name":"worker","role":"worker","command":"x","replicas":{"min":5,"max":2}}]}"#,
        );
        assert!(matches!(e, PlanError::MinAboveMax { min: 5, max: 2, .. }));
        assert!(e.to_string().contains("worker"));
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let e = err(
            r#"{"services":[{"name":"a","role":"api","command":"x"},{"name":"a","role":"other","command":"y"}]}"#,
        );
        assert_eq!(e.code(), "duplicate_service");
    }

    #[test]
    fn cycles_are_rejected() {
        let e = err(
            r#"{"services":[{"name":"a","role":"api","command":"x","depends_on":["b"]},
                            {"name":"b","role":"other","command":"y","depends_on":["a"]}]}"#,
        );
        assert_eq!(e.code(), "dependency_cycle");
    }

    #[test]
    fn port_in_use_is_found_by_binding() {
        let held = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = held.local_addr().expect("addr").port();
        let e = err(&format!(
            r#"{{"services":[{{"name":"api-primary","role":"api","command":"x","port":{port}}}]}}"#
        ));
        assert_eq!(e.code(), "port_in_use");
        assert!(e.to_string().contains("api-primary"), "{e}");
        let e = err(&format!(
            r#"{{"listen":"127.0.0.1:{port}","services":[{{"name":"api","role":"api","command":"x","inherit_listener":true}}]}}"#
        ));
        assert_eq!(e.code(), "listen_in_use");
    }

    #[test]
    fn range_on_a_non_worker_and_bad_urls_are_rejected() {
        let e = err(
            r#"{"services":[{"name":"api","role":"api","command":"x","replicas":{"min":1,"max":2}}]}"#,
        );
        assert!(e.to_string().contains("services.api.replicas"), "{e}");
        let e = err(
            r#"{"services":[{"name":"api","role":"api","command":"x","probes":{"http":{"url":"https://x/"}}}]}"#,
        );
        assert!(
            e.to_string().contains("services.api.probes.http.url"),
            "{e}"
        );
        let e = err(
            r#"{"services":[{"name":"api","role":"api","command":"x","inherit_listener":true}]}"#,
        );
        assert!(e.to_string().contains("listen"), "{e}");
    }

    #[test]
    fn http_probe_through_the_shared_socket_is_rejected() {
        let e = err(
            r#"{"listen":"127.0.0.1:0","services":[{"name":"api-primary","role":"api","command":"x",
                "inherit_listener":true,"probes":{"http":{"url":"http://127.0.0.1:0/health"}}}]}"#,
        );
        assert!(
            e.to_string()
                .contains("services.api-primary.probes.http.url"),
            "{e}"
        );
    }

    #[test]
    fn listener_is_bound_once() {
        let plan = Plan::build(&config(
            r#"{"listen":"127.0.0.1:0","services":[{"name":"api","role":"api","command":"x","inherit_listener":true}]}"#,
        ))
        .expect("valid");
        assert!(plan.listener.is_some());
    }
}
