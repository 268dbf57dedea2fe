//! `sadomap deploy k8s`: writes Kubernetes manifests for the same topology, built from the typed
//! objects of `k8s-openapi` (so every field exists and has the right type by construction) and
//! written as one multi-document YAML file, which is what `kubectl apply -f` expects.
//!
//! What the file holds, in apply order: a Namespace; a ConfigMap of the non-secret settings;
//! with the in-cluster Redis, its PersistentVolumeClaim, Deployment and Service; Deployments
//! `sadomap-api`, `sadomap-worker` and `sadomap-scheduler`; the api's ClusterIP Service and
//! PodDisruptionBudget; and the workers' autoscaler (an `autoscaling/v2` HorizontalPodAutoscaler
//! on an External metric, or a KEDA ScaledObject).
//!
//! **The primary/backup pair.** Locally, `api-primary` and `api-backup` serve one listening
//! socket that the supervisor binds, so waiting connections survive the loss of either. In
//! Kubernetes the Service is that shared socket: one Deployment `sadomap-api` runs
//! [`K8sConfig::api_replicas`] (default 2) identical pods and the Service spreads connections
//! over the ready ones. Readiness (`/ready`) takes a pod that cannot reach the store out of the
//! Service, liveness (`/health`) restarts a hung one, the rolling update (`maxUnavailable: 0`,
//! `maxSurge: 1`) replaces one pod at a time like `sadomap restart api`, the PodDisruptionBudget
//! (`minAvailable: 1`) keeps one serving through node drains, and a preferred pod anti-affinity
//! puts the two on different nodes. Neither pod is "the backup": both serve.
//!
//! **Secrets.** The file holds no secret values. Containers read them from the Secret named
//! [`K8sConfig::secret_name`] (default `sadomap-secrets`) through `secretKeyRef`; the user creates
//! it (the file's header comment shows the `kubectl create secret` line). Its keys are
//! [`K8S_SECRET_KEYS`]: `postgres-url` (required: replicas on several nodes need one shared
//! store, so the embedded SQLite store is not used here), `admin-token` (optional; without it the
//! admin routes are off) and `google-api-key` (optional; passed to workers and the scheduler as
//! `SADOMAP_GOOGLE_API_KEY` for the collectors, which no code reads yet).
//!
//! **Autoscaling on queue depth.** The queue exports `sadomap_queue_depth_jobs{queue,state}` on
//! each worker's `--health-listen` `/metrics` (the api's `/metrics` does not carry it). It is a
//! broker-wide gauge, so every worker reports the same numbers: a query must take `max by
//! (queue)` across pods, never a sum. No Kubernetes component serves it by itself: the HPA
//! needs an external-metrics adapter (e.g. prometheus-adapter with an `externalRules` entry for
//! `sadomap_queue_depth_jobs` whose `metricsQuery` is `max by (queue, state)
//! (<<.Series>>{<<.LabelMatchers>>})`), and the KEDA trigger queries Prometheus directly. Worker
//! pods carry the `prometheus.io/scrape|port|path` annotations. The target is an `AverageValue`
//! of [`K8sConfig::jobs_per_worker`] ready jobs per worker; the minimum stays at 1 or more
//! because the workers themselves export the metric.
//!
//! Concurrency: pure functions plus one file write (temporary file, then rename, so a failure
//! leaves nothing behind).

mod keda;
mod objects;
mod yaml;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::compose::HealthcheckConfig;

pub use keda::{KedaScaleTarget, KedaTrigger, ScaledObject, ScaledObjectSpec};
pub use objects::K8sObject;

/// The keys of the Secret the manifests refer to: `(key, environment variable, required)`.
pub const K8S_SECRET_KEYS: &[(&str, &str, bool)] = &[
    ("postgres-url", "SADOMAP_POSTGRES_URL", true),
    ("admin-token", "SADOMAP_ADMIN_TOKEN", false),
    ("google-api-key", "SADOMAP_GOOGLE_API_KEY", false),
];

/// The name of the queue-depth gauge the autoscaler reads (rendered by `sadomap-queue`).
pub const QUEUE_DEPTH_METRIC: &str = "sadomap_queue_depth_jobs";

/// Kubernetes manifests that could not be made.
#[derive(Debug, Error)]
pub enum K8sError {
    /// A config value is out of range.
    #[error("k8s config: `{field}` {reason}")]
    Invalid {
        /// The field, e.g. `workers_min` or `resources.api.limits_memory`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Serialising an object to YAML failed.
    #[error("cannot write {kind} as YAML: {message}")]
    Serialize {
        /// The object's kind.
        kind: &'static str,
        /// The serialiser's message.
        message: String,
    },
    /// Writing the file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl K8sError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            K8sError::Invalid { .. } => "invalid_k8s_config",
            K8sError::Serialize { .. } => "k8s_serialize_failed",
            K8sError::Write { .. } => "k8s_write_failed",
        }
    }
}

/// Which autoscaler scales the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum K8sAutoscaler {
    /// An `autoscaling/v2` HorizontalPodAutoscaler on the External metric
    /// [`QUEUE_DEPTH_METRIC`] (needs an external-metrics adapter).
    #[default]
    Hpa,
    /// A KEDA `keda.sh/v1alpha1` ScaledObject with a Prometheus trigger (needs KEDA installed).
    Keda,
}

/// Where the queue's Redis runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum K8sRedis {
    /// A single Redis pod in the namespace (Deployment, Service, PersistentVolumeClaim).
    InCluster {
        /// Redis image.
        image: String,
        /// Size of its data volume, a Kubernetes quantity such as `1Gi`.
        storage: String,
    },
    /// A Redis run elsewhere (a managed service). The URL lands in the ConfigMap, so it must
    /// carry no password.
    External {
        /// `redis://host:port/db` or `rediss://…`.
        url: String,
    },
}

/// CPU and memory of one container, as Kubernetes quantities (`250m`, `256Mi`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// CPU request.
    pub requests_cpu: String,
    /// Memory request.
    pub requests_memory: String,
    /// CPU limit (none by default: a limit throttles, a request already reserves).
    pub limits_cpu: Option<String>,
    /// Memory limit.
    pub limits_memory: Option<String>,
}

impl ResourceSpec {
    fn new(cpu: &str, memory: &str, memory_limit: &str) -> Self {
        ResourceSpec {
            requests_cpu: cpu.into(),
            requests_memory: memory.into(),
            limits_cpu: None,
            limits_memory: Some(memory_limit.into()),
        }
    }
}

/// Resources per component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct K8sResources {
    /// Each api pod.
    pub api: ResourceSpec,
    /// Each worker pod.
    pub worker: ResourceSpec,
    /// The scheduler pod.
    pub scheduler: ResourceSpec,
    /// The in-cluster Redis pod.
    pub redis: ResourceSpec,
}

impl Default for K8sResources {
    fn default() -> Self {
        K8sResources {
            api: ResourceSpec::new("100m", "128Mi", "512Mi"),
            worker: ResourceSpec::new("250m", "256Mi", "1Gi"),
            scheduler: ResourceSpec::new("50m", "64Mi", "256Mi"),
            redis: ResourceSpec::new("100m", "128Mi", "512Mi"),
        }
    }
}

/// What `sadomap deploy k8s` writes. Validated by [`K8sConfig::objects`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct K8sConfig {
    /// Namespace of every object (created by the first document).
    pub namespace: String,
    /// Image of sadomap (entrypoint: the `sadomap` binary).
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: String,
    /// Pods of the `sadomap-api` Deployment (the primary/backup pair: at least 2).
    pub api_replicas: u32,
    /// Port the api listens on in its pod, and the Service's port.
    pub api_port: u16,
    /// Port of each worker's `--health-listen` endpoint (`/health`, `/metrics`).
    pub worker_metrics_port: u16,
    /// Fewest workers (at least 1: the workers export the depth metric).
    pub workers_min: u32,
    /// Most workers.
    pub workers_max: u32,
    /// Ready jobs per worker the autoscaler aims at.
    pub jobs_per_worker: u32,
    /// Queues the workers poll (`--queues`) and the autoscaler counts; empty: the worker's
    /// default set, and every queue counts.
    pub queues: Vec<String>,
    /// How long a worker's SIGTERM waits for running jobs (its pod gets 15 s more).
    pub worker_shutdown_secs: u32,
    /// Run the scheduler Deployment.
    pub scheduler: bool,
    /// The workers' autoscaler.
    pub autoscaler: K8sAutoscaler,
    /// Prometheus the KEDA trigger queries.
    pub prometheus_url: String,
    /// The queue's Redis.
    pub redis: K8sRedis,
    /// The Secret holding [`K8S_SECRET_KEYS`], created by the user.
    pub secret_name: String,
    /// Requests and limits.
    pub resources: K8sResources,
    /// Probe timing, the same defaults as Compose's health checks: `interval_secs` becomes
    /// `periodSeconds`, `timeout_secs` `timeoutSeconds`, `retries` `failureThreshold`, and
    /// `start_period_secs` a startupProbe allowed that long before liveness counts.
    pub probes: HealthcheckConfig,
}

impl Default for K8sConfig {
    fn default() -> Self {
        K8sConfig {
            namespace: "sadomap".into(),
            image: "sadomap:latest".into(),
            image_pull_policy: "IfNotPresent".into(),
            api_replicas: 2,
            api_port: 8080,
            worker_metrics_port: 9310,
            workers_min: 1,
            workers_max: 4,
            jobs_per_worker: 20,
            queues: Vec::new(),
            worker_shutdown_secs: 30,
            scheduler: true,
            autoscaler: K8sAutoscaler::Hpa,
            prometheus_url: "http://prometheus-server.monitoring.svc:80".into(),
            redis: K8sRedis::InCluster {
                image: "redis:7-alpine".into(),
                storage: "1Gi".into(),
            },
            secret_name: "sadomap-secrets".into(),
            resources: K8sResources::default(),
            probes: HealthcheckConfig::default(),
        }
    }
}

fn invalid<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, K8sError> {
    Err(K8sError::Invalid {
        field: field.into(),
        reason: reason.into(),
    })
}

/// A DNS-1123 label: what Kubernetes accepts as a namespace or object name.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A label value: up to 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A Kubernetes quantity in the forms people write: `250m`, `0.5`, `128Mi`, `1G`.
fn is_quantity(s: &str) -> bool {
    let suffixes = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    suffixes.iter().any(|suf| {
        s.strip_suffix(suf).is_some_and(|num| {
            let mut parts = num.splitn(2, '.');
            let whole = parts.next().unwrap_or("");
            let frac = parts.next();
            !whole.is_empty()
                && whole.bytes().all(|c| c.is_ascii_digit())
                && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()))
        })
    })
}

impl K8sConfig {
    fn validate(&self) -> Result<(), K8sError> {
        if !is_dns_label(&self.namespace) {
            return invalid(
                "namespace",
                format!(
                    "{:?} is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
                    self.namespace
                ),
            );
        }
        if !is_dns_label(&self.secret_name) {
            return invalid(
                "secret_name",
                format!("{:?} is not a DNS-1123 label", self.secret_name),
            );
        }
        if self.image.trim().is_empty() || self.image.contains(char::is_whitespace) {
            return invalid("image", "is empty or contains spaces");
        }
        if !matches!(
            self.image_pull_policy.as_str(),
            "Always" | "IfNotPresent" | "Never"
        ) {
            return invalid("image_pull_policy", "must be Always, IfNotPresent or Never");
        }
        if self.api_replicas < 2 {
            return invalid(
                "api_replicas",
                "must be at least 2: the PodDisruptionBudget keeps 1 available, so with 1 a \
                 node drain would block (and nothing would serve while it restarts)",
            );
        }
        for (field, port) in [
            ("api_port", self.api_port),
            ("worker_metrics_port", self.worker_metrics_port),
        ] {
            if port == 0 {
                return invalid(field, "must be a port above 0");
            }
        }
        if self.workers_min == 0 {
            return invalid(
                "workers_min",
                "must be at least 1: the workers themselves export the queue-depth metric the \
                 autoscaler reads, so from 0 nothing would scale them up",
            );
        }
        if self.workers_min > self.workers_max {
            return invalid(
                "workers_min",
                format!(
                    "({}) is above workers_max ({})",
                    self.workers_min, self.workers_max
                ),
            );
        }
        if i32::try_from(self.workers_max).is_err() || i32::try_from(self.api_replicas).is_err() {
            return invalid("workers_max", "is too large");
        }
        if self.jobs_per_worker == 0 {
            return invalid("jobs_per_worker", "must be above 0");
        }
        if let Some(q) = self.queues.iter().find(|q| !is_label_value(q)) {
            return invalid(
                "queues",
                format!("{q:?} is not a queue name (letters, digits, '_', '-', '.')"),
            );
        }
        let h = &self.probes;
        if h.interval_secs == 0 || h.timeout_secs == 0 || h.retries == 0 {
            return invalid("probes", "interval, timeout and retries must be above 0");
        }
        if i32::try_from(h.interval_secs + h.timeout_secs + h.start_period_secs).is_err()
            || i32::try_from(h.retries).is_err()
        {
            return invalid("probes", "a value is too large");
        }
        if self.autoscaler == K8sAutoscaler::Keda
            && !(self.prometheus_url.starts_with("http://")
                || self.prometheus_url.starts_with("https://"))
        {
            return invalid("prometheus_url", "must start with http:// or https://");
        }
        match &self.redis {
            K8sRedis::InCluster { image, storage } => {
                if image.trim().is_empty() {
                    return invalid("redis.image", "is empty");
                }
                if !is_quantity(storage) {
                    return invalid("redis.storage", format!("{storage:?} is not a quantity"));
                }
            }
            K8sRedis::External { url } => {
                let Some(rest) = url
                    .strip_prefix("redis://")
                    .or_else(|| url.strip_prefix("rediss://"))
                else {
                    return invalid("redis.url", "must start with redis:// or rediss://");
                };
                let authority = rest.split('/').next().unwrap_or("");
                if authority.contains('@') {
                    return invalid(
                        "redis.url",
                        "carries credentials, which would land in the ConfigMap; the manifest \
                         holds no secrets (use a Redis reachable without a password in the URL)",
                    );
                }
                if authority.is_empty() {
                    return invalid("redis.url", "has no host");
                }
            }
        }
        let r = &self.resources;
        for (name, spec) in [
            ("api", &r.api),
            ("worker", &r.worker),
            ("scheduler", &r.scheduler),
            ("redis", &r.redis),
        ] {
            for (field, value) in [
                ("requests_cpu", Some(&spec.requests_cpu)),
                ("requests_memory", Some(&spec.requests_memory)),
                ("limits_cpu", spec.limits_cpu.as_ref()),
                ("limits_memory", spec.limits_memory.as_ref()),
            ] {
                if let Some(v) = value.filter(|v| !is_quantity(v)) {
                    return invalid(
                        format!("resources.{name}.{field}"),
                        format!("{v:?} is not a quantity such as 250m or 256Mi"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The objects, validated first, in apply order.
    pub fn objects(&self) -> Result<Vec<K8sObject>, K8sError> {
        self.validate()?;
        Ok(objects::build(self))
    }

    /// The manifest: a header comment (what to create first), then one YAML document per
    /// object, every string double-quoted (see the `yaml` module: Kubernetes reads YAML 1.1).
    pub fn to_yaml(&self) -> Result<String, K8sError> {
        let objects = self.objects()?;
        let mut out = self.header();
        for object in &objects {
            let value = serde_json::to_value(object).map_err(|e| K8sError::Serialize {
                kind: object.kind(),
                message: e.to_string(),
            })?;
            out.push_str("---\n");
            out.push_str(&yaml::document(&value));
        }
        Ok(out)
    }

    fn header(&self) -> String {
        let ns = &self.namespace;
        let mut h = format!(
            "# sadomap on Kubernetes, written by `sadomap deploy k8s`. It holds no secret values:\n\
             # create the Secret `{secret}` first (postgres-url is required; admin-token and\n\
             # google-api-key are optional):\n\
             #   kubectl create namespace {ns}\n\
             #   kubectl -n {ns} create secret generic {secret} \\\n\
             #     --from-literal=postgres-url='postgres://USER:PASSWORD@HOST/DB' \\\n\
             #     --from-literal=admin-token=\"$(openssl rand -hex 32)\"\n\
             #   kubectl apply -f THIS_FILE\n",
            secret = self.secret_name,
        );
        h.push_str(match self.autoscaler {
            K8sAutoscaler::Hpa => {
                "# The worker HPA reads the External metric sadomap_queue_depth_jobs: install an\n\
                 # external-metrics adapter (e.g. prometheus-adapter) whose rule takes\n\
                 # `max by (queue, state)` over the workers' /metrics (they all report the same\n\
                 # broker-wide gauge).\n"
            }
            K8sAutoscaler::Keda => {
                "# The worker ScaledObject needs KEDA and a Prometheus that scrapes the workers'\n\
                 # /metrics (pods are annotated prometheus.io/scrape).\n"
            }
        });
        h
    }
}

/// Writes the manifest for `config` to `path` (temporary file, then rename).
pub fn write_k8s(config: &K8sConfig, path: &Path) -> Result<(), K8sError> {
    let text = config.to_yaml()?;
    let err = |source| K8sError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

#[cfg(test)]
mod tests;
