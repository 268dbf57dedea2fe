//! Builds the typed objects of a validated [`K8sConfig`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, Namespace,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodAffinityTerm, PodAntiAffinity, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SecretKeySelector, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::keda::{KedaScaleTarget, KedaTrigger, ScaledObject, ScaledObjectSpec};
use super::{
    K8sAutoscaler, K8sConfig, K8sRedis, ResourceSpec, K8S_SECRET_KEYS, QUEUE_DEPTH_METRIC,
};
use crate::compose::HealthcheckConfig;
use crate::config::Role;
use crate::runtime::labels;

/// One document of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum K8sObject {
    /// The namespace.
    Namespace(Box<Namespace>),
    /// The non-secret settings.
    ConfigMap(Box<ConfigMap>),
    /// The in-cluster Redis's volume.
    PersistentVolumeClaim(Box<PersistentVolumeClaim>),
    /// api, worker, scheduler, redis.
    Deployment(Box<Deployment>),
    /// api, redis.
    Service(Box<Service>),
    /// Keeps an api pod through voluntary disruptions.
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    /// Scales the workers on queue depth.
    HorizontalPodAutoscaler(Box<HorizontalPodAutoscaler>),
    /// Scales the workers on queue depth, through KEDA.
    ScaledObject(Box<ScaledObject>),
}

impl K8sObject {
    /// The object's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            K8sObject::Namespace(_) => "Namespace",
            K8sObject::ConfigMap(_) => "ConfigMap",
            K8sObject::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            K8sObject::Deployment(_) => "Deployment",
            K8sObject::Service(_) => "Service",
            K8sObject::PodDisruptionBudget(_) => "PodDisruptionBudget",
            K8sObject::HorizontalPodAutoscaler(_) => "HorizontalPodAutoscaler",
            K8sObject::ScaledObject(_) => "ScaledObject",
        }
    }

    /// The object's `metadata.name`.
    pub fn name(&self) -> &str {
        let meta = match self {
            K8sObject::Namespace(o) => &o.metadata,
            K8sObject::ConfigMap(o) => &o.metadata,
            K8sObject::PersistentVolumeClaim(o) => &o.metadata,
            K8sObject::Deployment(o) => &o.metadata,
            K8sObject::Service(o) => &o.metadata,
            K8sObject::PodDisruptionBudget(o) => &o.metadata,
            K8sObject::HorizontalPodAutoscaler(o) => &o.metadata,
            K8sObject::ScaledObject(o) => &o.metadata,
        };
        meta.name.as_deref().unwrap_or("")
    }
}

const PART_OF: &str = "sadomap";
const CONFIG_MAP: &str = "sadomap-config";
const DATA_DIR: &str = "/data";
const REDIS_PORT: u16 = 6379;
/// Period of the startup probe; its failure threshold covers `start_period_secs`.
const STARTUP_PERIOD_SECS: u64 = 10;
/// A worker pod's grace beyond its own shutdown deadline (for the endpoint and the exit).
const WORKER_GRACE_MARGIN_SECS: u32 = 15;

/// One component: its Deployment name, `component` label, `sadomap.service` and role.
#[derive(Clone, Copy)]
struct Component {
    service: &'static str,
    role: Role,
}

const API: Component = Component {
    service: "api",
    role: Role::Api,
};
const WORKER: Component = Component {
    service: "worker",
    role: Role::Worker,
};
const SCHEDULER: Component = Component {
    service: "scheduler",
    role: Role::Scheduler,
};
const REDIS: Component = Component {
    service: "redis",
    role: Role::Other,
};

impl Component {
    fn name(self) -> String {
        format!("sadomap-{}", self.service)
    }

    /// What selects the component's pods (stable across upgrades: selectors are immutable).
    fn selector(self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), PART_OF.into()),
            ("app.kubernetes.io/component".into(), self.service.into()),
        ])
    }

    /// Every label of the component's objects and pods.
    fn labels(self) -> BTreeMap<String, String> {
        let mut l = self.selector();
        l.insert("app.kubernetes.io/part-of".into(), PART_OF.into());
        l.insert(labels::SERVICE.into(), self.service.into());
        l.insert(labels::ROLE.into(), self.role.as_str().into());
        l
    }

    fn meta(self, ns: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name()),
            namespace: Some(ns.into()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }
}

fn secs(v: u64) -> i32 {
    // Validated to fit.
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn http_probe(path: &str, port: &str, h: &HealthcheckConfig) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(secs(h.interval_secs)),
        timeout_seconds: Some(secs(h.timeout_secs)),
        failure_threshold: Some(secs(u64::from(h.retries))),
        ..Probe::default()
    }
}

/// Compose's `start_period`: a startup probe on the liveness check that may fail for that long;
/// liveness and readiness only start once it passes.
fn startup_probe(liveness: &Probe, h: &HealthcheckConfig) -> Option<Probe> {
    (h.start_period_secs > 0).then(|| Probe {
        period_seconds: Some(secs(STARTUP_PERIOD_SECS)),
        failure_threshold: Some(secs(h.start_period_secs.div_ceil(STARTUP_PERIOD_SECS))),
        ..liveness.clone()
    })
}

fn resources(spec: &ResourceSpec) -> ResourceRequirements {
    let map = |cpu: Option<&String>, memory: Option<&String>| {
        let m: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), Quantity(v.clone()))))
            .collect();
        (!m.is_empty()).then_some(m)
    };
    ResourceRequirements {
        requests: map(Some(&spec.requests_cpu), Some(&spec.requests_memory)),
        limits: map(spec.limits_cpu.as_ref(), spec.limits_memory.as_ref()),
        ..ResourceRequirements::default()
    }
}

fn secret_env(secret: &str, keys: &[&str]) -> Vec<EnvVar> {
    K8S_SECRET_KEYS
        .iter()
        .filter(|(key, _, _)| keys.contains(key))
        .map(|(key, env, required)| EnvVar {
            name: (*env).into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.into(),
                    key: (*key).into(),
                    optional: Some(!required),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        })
        .collect()
}

fn port(name: &str, number: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(number),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn label_selector(c: Component) -> LabelSelector {
    LabelSelector {
        match_labels: Some(c.selector()),
        ..LabelSelector::default()
    }
}

/// A sadomap container: the image, args, the ConfigMap as environment, secrets, `/data`.
fn sadomap_container(
    cfg: &K8sConfig,
    c: Component,
    args: Vec<String>,
    secrets: &[&str],
    spec: &ResourceSpec,
) -> Container {
    Container {
        name: c.service.into(),
        image: Some(cfg.image.clone()),
        image_pull_policy: Some(cfg.image_pull_policy.clone()),
        args: Some(args),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: CONFIG_MAP.into(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(secret_env(&cfg.secret_name, secrets)),
        resources: Some(resources(spec)),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: DATA_DIR.into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

struct PodParts {
    container: Container,
    volume: Volume,
    annotations: Option<BTreeMap<String, String>>,
    affinity: Option<Affinity>,
    grace_secs: Option<i64>,
}

fn deployment(
    ns: &str,
    c: Component,
    replicas: u32,
    strategy: DeploymentStrategy,
    pod: PodParts,
) -> Deployment {
    Deployment {
        metadata: c.meta(ns),
        spec: Some(DeploymentSpec {
            replicas: Some(i32::try_from(replicas).unwrap_or(i32::MAX)),
            selector: label_selector(c),
            strategy: Some(strategy),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(c.labels()),
                    annotations: pod.annotations,
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![pod.container],
                    volumes: Some(vec![pod.volume]),
                    affinity: pod.affinity,
                    termination_grace_period_seconds: pod.grace_secs,
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn scratch_volume() -> Volume {
    Volume {
        name: "data".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn recreate() -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("Recreate".into()),
        ..DeploymentStrategy::default()
    }
}

fn rolling(max_surge: i32, max_unavailable: i32) -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(max_surge)),
            max_unavailable: Some(IntOrString::Int(max_unavailable)),
        }),
    }
}

fn service(ns: &str, c: Component, port_name: &str, port: u16) -> Service {
    Service {
        metadata: c.meta(ns),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(c.selector()),
            ports: Some(vec![ServicePort {
                name: Some(port_name.into()),
                port: i32::from(port),
                target_port: Some(IntOrString::String(port_name.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn redis_objects(cfg: &K8sConfig, image: &str, storage: &str) -> Vec<K8sObject> {
    let ns = &cfg.namespace;
    let claim = format!("{}-data", REDIS.name());
    let ping = Probe {
        exec: Some(ExecAction {
            command: Some(vec!["redis-cli".into(), "ping".into()]),
        }),
        period_seconds: Some(secs(cfg.probes.interval_secs)),
        timeout_seconds: Some(secs(cfg.probes.timeout_secs)),
        failure_threshold: Some(secs(u64::from(cfg.probes.retries))),
        ..Probe::default()
    };
    let container = Container {
        name: REDIS.service.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        // Reachable from the other pods through its Service (no password in-cluster: protected
        // mode would refuse them), as in the Compose file.
        args: Some(
            [
                "redis-server",
                "--appendonly",
                "yes",
                "--protected-mode",
                "no",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![port("redis", REDIS_PORT)]),
        startup_probe: startup_probe(&ping, &cfg.probes),
        liveness_probe: Some(ping.clone()),
        readiness_probe: Some(ping),
        resources: Some(resources(&cfg.resources.redis)),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: "/data".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let pvc = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim.clone()),
            ..REDIS.meta(ns)
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    let pod = PodParts {
        container,
        volume: Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim,
                read_only: None,
            }),
            ..Volume::default()
        },
        annotations: None,
        affinity: None,
        grace_secs: None,
    };
    vec![
        K8sObject::PersistentVolumeClaim(Box::new(pvc)),
        // One pod on a ReadWriteOnce volume: the old one goes before the new one starts.
        K8sObject::Deployment(Box::new(deployment(ns, REDIS, 1, recreate(), pod))),
        K8sObject::Service(Box::new(service(ns, REDIS, "redis", REDIS_PORT))),
    ]
}

/// Spread the api pods over nodes when there are several (preferred, so one node still works).
fn spread(c: Component) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(label_selector(c)),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

fn api_objects(cfg: &K8sConfig) -> Vec<K8sObject> {
    let ns = &cfg.namespace;
    let args = vec![
        "serve".into(),
        "--listen".into(),
        format!("0.0.0.0:{}", cfg.api_port),
    ];
    let mut container = sadomap_container(
        cfg,
        API,
        args,
        &["postgres-url", "admin-token"],
        &cfg.resources.api,
    );
    let liveness = http_probe("/health", "http", &cfg.probes);
    container.ports = Some(vec![port("http", cfg.api_port)]);
    container.startup_probe = startup_probe(&liveness, &cfg.probes);
    container.readiness_probe = Some(http_probe("/ready", "http", &cfg.probes));
    container.liveness_probe = Some(liveness);
    let pod = PodParts {
        container,
        volume: scratch_volume(),
        annotations: None,
        affinity: Some(spread(API)),
        grace_secs: None,
    };
    let pdb = PodDisruptionBudget {
        metadata: API.meta(ns),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(label_selector(API)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    };
    vec![
        // Like `sadomap restart api`: a new pod is ready before an old one goes.
        K8sObject::Deployment(Box::new(deployment(
            ns,
            API,
            cfg.api_replicas,
            rolling(1, 0),
            pod,
        ))),
        K8sObject::Service(Box::new(service(ns, API, "http", cfg.api_port))),
        K8sObject::PodDisruptionBudget(Box::new(pdb)),
    ]
}

fn worker_deployment(cfg: &K8sConfig) -> Deployment {
    let mut args = vec![
        "worker".to_string(),
        "--health-listen".into(),
        format!("0.0.0.0:{}", cfg.worker_metrics_port),
        "--shutdown-deadline".into(),
        format!("{}s", cfg.worker_shutdown_secs),
    ];
    if !cfg.queues.is_empty() {
        args.extend(["--queues".into(), cfg.queues.join(",")]);
    }
    let mut container = sadomap_container(
        cfg,
        WORKER,
        args,
        &["postgres-url", "google-api-key"],
        &cfg.resources.worker,
    );
    // `/health` answers 503 while the broker is unreachable, which a restart cannot fix: it
    // gates readiness only. Liveness asks `/metrics`, served while the process lives.
    let liveness = http_probe("/metrics", "metrics", &cfg.probes);
    container.ports = Some(vec![port("metrics", cfg.worker_metrics_port)]);
    container.startup_probe = startup_probe(&liveness, &cfg.probes);
    container.readiness_probe = Some(http_probe("/health", "metrics", &cfg.probes));
    container.liveness_probe = Some(liveness);
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        (
            "prometheus.io/port".into(),
            cfg.worker_metrics_port.to_string(),
        ),
        ("prometheus.io/path".into(), "/metrics".into()),
    ]);
    let pod = PodParts {
        container,
        volume: scratch_volume(),
        annotations: Some(annotations),
        affinity: None,
        grace_secs: Some(i64::from(cfg.worker_shutdown_secs) + i64::from(WORKER_GRACE_MARGIN_SECS)),
    };
    // The autoscaler owns the replica count from here on; the Deployment starts at the minimum.
    deployment(&cfg.namespace, WORKER, cfg.workers_min, rolling(1, 0), pod)
}

fn scheduler_deployment(cfg: &K8sConfig) -> Deployment {
    // The scheduler has no health endpoint: Kubernetes restarts it when it exits.
    let container = sadomap_container(
        cfg,
        SCHEDULER,
        vec!["scheduler".into()],
        &["postgres-url", "google-api-key"],
        &cfg.resources.scheduler,
    );
    let pod = PodParts {
        container,
        volume: scratch_volume(),
        annotations: None,
        affinity: None,
        grace_secs: None,
    };
    deployment(&cfg.namespace, SCHEDULER, 1, recreate(), pod)
}

/// The external metric's selector: ready jobs, of the configured queues if any.
fn depth_selector(cfg: &K8sConfig) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([("state".into(), "ready".into())])),
        match_expressions: (!cfg.queues.is_empty()).then(|| {
            vec![LabelSelectorRequirement {
                key: "queue".into(),
                operator: "In".into(),
                values: Some(cfg.queues.clone()),
            }]
        }),
    }
}

fn hpa(cfg: &K8sConfig) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: WORKER.meta(&cfg.namespace),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: WORKER.name(),
            },
            min_replicas: Some(i32::try_from(cfg.workers_min).unwrap_or(1)),
            max_replicas: i32::try_from(cfg.workers_max).unwrap_or(i32::MAX),
            metrics: Some(vec![MetricSpec {
                type_: "External".into(),
                external: Some(ExternalMetricSource {
                    metric: MetricIdentifier {
                        name: QUEUE_DEPTH_METRIC.into(),
                        selector: Some(depth_selector(cfg)),
                    },
                    target: MetricTarget {
                        type_: "AverageValue".into(),
                        average_value: Some(Quantity(cfg.jobs_per_worker.to_string())),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    }
}

/// The PromQL KEDA runs: ready jobs of the namespace's queues, deduplicated across the workers
/// (each reports the same broker-wide gauge), summed over queues.
pub(super) fn depth_query(cfg: &K8sConfig) -> String {
    let mut matchers = format!("namespace=\"{}\",state=\"ready\"", cfg.namespace);
    if !cfg.queues.is_empty() {
        matchers.push_str(&format!(",queue=~\"{}\"", cfg.queues.join("|")));
    }
    format!("sum(max by (queue) ({QUEUE_DEPTH_METRIC}{{{matchers}}})) or vector(0)")
}

fn scaled_object(cfg: &K8sConfig) -> ScaledObject {
    ScaledObject {
        api_version: ScaledObject::API_VERSION.into(),
        kind: ScaledObject::KIND.into(),
        metadata: WORKER.meta(&cfg.namespace),
        spec: ScaledObjectSpec {
            scale_target_ref: KedaScaleTarget {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: WORKER.name(),
            },
            polling_interval: 30,
            cooldown_period: 300,
            min_replica_count: cfg.workers_min,
            max_replica_count: cfg.workers_max,
            triggers: vec![KedaTrigger {
                kind: "prometheus".into(),
                metric_type: "AverageValue".into(),
                metadata: BTreeMap::from([
                    ("serverAddress".into(), cfg.prometheus_url.clone()),
                    ("query".into(), depth_query(cfg)),
                    ("threshold".into(), cfg.jobs_per_worker.to_string()),
                ]),
            }],
        },
    }
}

fn config_map(cfg: &K8sConfig) -> ConfigMap {
    let redis_url = match &cfg.redis {
        K8sRedis::InCluster { .. } => format!("redis://{}:{REDIS_PORT}", REDIS.name()),
        K8sRedis::External { url } => url.clone(),
    };
    let mut labels = API.labels();
    labels.retain(|k, _| k == "app.kubernetes.io/name" || k == "app.kubernetes.io/part-of");
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.into()),
            namespace: Some(cfg.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("SADOMAP_DATA_DIR".to_string(), DATA_DIR.to_string()),
            ("SADOMAP_REDIS_URL".into(), redis_url),
        ])),
        ..ConfigMap::default()
    }
}

/// Every object of a validated config, in apply order.
pub(super) fn build(cfg: &K8sConfig) -> Vec<K8sObject> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(cfg.namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/part-of".to_string(),
                PART_OF.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let mut out = vec![
        K8sObject::Namespace(Box::new(namespace)),
        K8sObject::ConfigMap(Box::new(config_map(cfg))),
    ];
    if let K8sRedis::InCluster { image, storage } = &cfg.redis {
        out.extend(redis_objects(cfg, image, storage));
    }
    out.extend(api_objects(cfg));
    out.push(K8sObject::Deployment(Box::new(worker_deployment(cfg))));
    if cfg.scheduler {
        out.push(K8sObject::Deployment(Box::new(scheduler_deployment(cfg))));
    }
    out.push(match cfg.autoscaler {
        K8sAutoscaler::Hpa => K8sObject::HorizontalPodAutoscaler(Box::new(hpa(cfg))),
        K8sAutoscaler::Keda => K8sObject::ScaledObject(Box::new(scaled_object(cfg))),
    });
    out
}
