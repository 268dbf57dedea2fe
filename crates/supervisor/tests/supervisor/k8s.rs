//! The written Kubernetes manifest, read back: every document deserialises into its
//! `k8s-openapi` type and serialises back to the same value (so no field is unknown to the
//! schema), and the objects fit together (selectors, ports, the autoscaler's target, secrets).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, Probe, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sadomap_supervisor::{
    write_k8s, K8sAutoscaler, K8sConfig, K8sRedis, ScaledObject, K8S_SECRET_KEYS,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every object of one manifest, typed.
#[derive(Default)]
struct Manifest {
    namespaces: Vec<Namespace>,
    config_maps: Vec<ConfigMap>,
    claims: Vec<PersistentVolumeClaim>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    budgets: Vec<PodDisruptionBudget>,
    hpas: Vec<HorizontalPodAutoscaler>,
    scaled: Vec<ScaledObject>,
}

/// Deserialises `doc` as `T` and checks that serialising it gives `doc` back.
fn typed<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let t: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} does not deserialise: {e}\n{doc:#}", doc["kind"]));
    let back = serde_json::to_value(&t).expect("serialises");
    assert_eq!(
        &back, doc,
        "{} {} lost or changed fields in the round trip",
        doc["kind"], doc["metadata"]["name"]
    );
    t
}

fn read(text: &str) -> Manifest {
    let mut m = Manifest::default();
    for document in serde_norway::Deserializer::from_str(text) {
        let doc = Value::deserialize(document).expect("a YAML document");
        match doc["kind"].as_str().expect("every document has a kind") {
            "Namespace" => m.namespaces.push(typed(&doc)),
            "ConfigMap" => m.config_maps.push(typed(&doc)),
            "PersistentVolumeClaim" => m.claims.push(typed(&doc)),
            "Deployment" => m.deployments.push(typed(&doc)),
            "Service" => m.services.push(typed(&doc)),
            "PodDisruptionBudget" => m.budgets.push(typed(&doc)),
            "HorizontalPodAutoscaler" => m.hpas.push(typed(&doc)),
            "ScaledObject" => m.scaled.push(typed(&doc)),
            other => panic!("unexpected kind {other}"),
        }
    }
    m
}

fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// Whether every pair of `selector` is in `labels`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn pod_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn containers(d: &Deployment) -> &[Container] {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| &p.containers[..])
        .unwrap_or_default()
}

/// Whether `port` (a number or a name) is a declared containerPort of `c`.
fn declared(c: &Container, port: &IntOrString) -> bool {
    c.ports.iter().flatten().any(|p| match port {
        IntOrString::Int(n) => p.container_port == *n,
        IntOrString::String(s) => p.name.as_deref() == Some(s),
    })
}

fn probe_port(p: &Probe) -> Option<&IntOrString> {
    p.http_get
        .as_ref()
        .map(|h| &h.port)
        .or(p.tcp_socket.as_ref().map(|t| &t.port))
}

/// Kubernetes reads YAML 1.1, where plain `yes`, `on`, `1:20` or `2001-12-14` are not strings:
/// every plain (unquoted) scalar of the file must be a number, a boolean or an empty collection.
fn yaml11_safe(text: &str) {
    for line in text.lines().filter(|l| !l.starts_with('#') && *l != "---") {
        let body = line.trim_start().trim_start_matches("- ");
        let value = match body.split_once(": ") {
            Some((_, v)) => v,
            None if body.ends_with(':') => continue,
            None => body,
        };
        let plain_ok = value.starts_with('"')
            || value == "true"
            || value == "false"
            || value == "{}"
            || value == "[]"
            || value.parse::<i64>().is_ok();
        assert!(plain_ok, "ambiguous plain scalar in {line:?}");
    }
}

fn check(cfg: &K8sConfig, text: &str) -> Manifest {
    yaml11_safe(text);
    let m = read(text);
    let ns = cfg.namespace.as_str();
    assert_eq!(m.namespaces.len(), 1);
    assert_eq!(name(&m.namespaces[0].metadata), ns);

    // Deployments: selector picks the template's labels; api/worker/scheduler as configured.
    for d in &m.deployments {
        assert_eq!(d.metadata.namespace.as_deref(), Some(ns));
        let spec = d.spec.as_ref().expect("deployment spec");
        let sel = spec.selector.match_labels.clone().unwrap_or_default();
        assert!(selects(&sel, &pod_labels(d)), "{}", name(&d.metadata));
        for c in containers(d) {
            for p in [&c.liveness_probe, &c.readiness_probe, &c.startup_probe]
                .into_iter()
                .flatten()
            {
                if let Some(port) = probe_port(p) {
                    assert!(declared(c, port), "{}: probe port {port:?}", c.name);
                }
                assert!(p.exec.is_some() || probe_port(p).is_some(), "{}", c.name);
            }
        }
    }
    let deployment = |n: &str| {
        m.deployments
            .iter()
            .find(|d| name(&d.metadata) == n)
            .unwrap_or_else(|| panic!("no Deployment {n}"))
    };
    let api = deployment("sadomap-api");
    assert_eq!(
        api.spec.as_ref().and_then(|s| s.replicas),
        Some(2),
        "the primary/backup pair"
    );
    let api_c = &containers(api)[0];
    assert!(api_c.liveness_probe.is_some() && api_c.readiness_probe.is_some());
    let worker = deployment("sadomap-worker");
    let worker_c = &containers(worker)[0];
    let args = worker_c.args.clone().unwrap_or_default();
    assert!(args.contains(&"--health-listen".to_string()), "{args:?}");
    assert!(worker_c.liveness_probe.is_some() && worker_c.readiness_probe.is_some());
    if cfg.scheduler {
        let s = deployment("sadomap-scheduler");
        let spec = s.spec.as_ref().expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(
            spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
            Some("Recreate")
        );
    }

    // Services select a Deployment's pods, and their target port is declared there.
    for s in &m.services {
        let spec = s.spec.as_ref().expect("service spec");
        let sel = spec.selector.clone().unwrap_or_default();
        let targets: Vec<&Deployment> = m
            .deployments
            .iter()
            .filter(|d| selects(&sel, &pod_labels(d)))
            .collect();
        assert_eq!(
            targets.len(),
            1,
            "Service {} selects one Deployment",
            name(&s.metadata)
        );
        for p in spec.ports.iter().flatten() {
            let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
            assert!(
                containers(targets[0]).iter().any(|c| declared(c, &target)),
                "Service {} port {target:?}",
                name(&s.metadata)
            );
        }
    }
    assert!(m
        .services
        .iter()
        .any(|s| name(&s.metadata) == "sadomap-api"));

    // The PodDisruptionBudget keeps one api pod and selects exactly the api pods.
    assert_eq!(m.budgets.len(), 1);
    let pdb = m.budgets[0].spec.as_ref().expect("pdb spec");
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
    let sel = pdb
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    let picked: Vec<&str> = m
        .deployments
        .iter()
        .filter(|d| selects(&sel, &pod_labels(d)))
        .map(|d| name(&d.metadata))
        .collect();
    assert_eq!(picked, ["sadomap-api"]);

    // The autoscaler targets the worker Deployment within min..max.
    match cfg.autoscaler {
        K8sAutoscaler::Hpa => {
            assert!(m.scaled.is_empty());
            assert_eq!(m.hpas.len(), 1);
            let spec = m.hpas[0].spec.as_ref().expect("hpa spec");
            assert_eq!(spec.scale_target_ref.kind, "Deployment");
            assert_eq!(spec.scale_target_ref.name, "sadomap-worker");
            let min = spec.min_replicas.unwrap_or(1);
            assert!(1 <= min && min <= spec.max_replicas);
            let metric = spec.metrics.as_ref().expect("metrics")[0]
                .external
                .as_ref()
                .expect("external metric");
            assert_eq!(metric.metric.name, "sadomap_queue_depth_jobs");
            assert_eq!(metric.target.type_, "AverageValue");
        }
        K8sAutoscaler::Keda => {
            assert!(m.hpas.is_empty(), "KEDA makes its own HPA");
            assert_eq!(m.scaled.len(), 1);
            let spec = &m.scaled[0].spec;
            assert_eq!(spec.scale_target_ref.name, "sadomap-worker");
            assert!(
                1 <= spec.min_replica_count && spec.min_replica_count <= spec.max_replica_count
            );
            assert!(spec.triggers[0].metadata["query"].contains("sadomap_queue_depth_jobs"));
        }
    }

    // Secrets: only references, to the documented Secret and keys; the ConfigMap exists.
    assert!(!text.contains("kind: \"Secret\""));
    assert!(text.contains(&format!("create secret generic {}", cfg.secret_name)));
    let cm = name(&m.config_maps[0].metadata);
    for d in &m.deployments {
        for c in containers(d) {
            for e in c.env.iter().flatten() {
                let r = e
                    .value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .unwrap_or_else(|| panic!("{}: env {} is not a secret ref", c.name, e.name));
                assert!(e.value.is_none());
                assert_eq!(r.name, cfg.secret_name);
                let (_, env, required) = K8S_SECRET_KEYS
                    .iter()
                    .find(|(k, _, _)| *k == r.key)
                    .unwrap_or_else(|| panic!("undocumented secret key {}", r.key));
                assert_eq!(e.name, *env);
                assert_eq!(r.optional, Some(!required));
            }
            for f in c.env_from.iter().flatten() {
                assert_eq!(f.config_map_ref.as_ref().map(|r| r.name.as_str()), Some(cm));
                assert!(f.secret_ref.is_none(), "no whole-Secret import");
            }
        }
        // Volumes from claims name a claim of the manifest.
        let volumes = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        for v in volumes
            .and_then(|p| p.volumes.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(c) = &v.persistent_volume_claim {
                assert!(m.claims.iter().any(|p| name(&p.metadata) == c.claim_name));
            }
        }
    }
    let data = m.config_maps[0].data.clone().unwrap_or_default();
    for key in data.keys() {
        assert!(
            !K8S_SECRET_KEYS.iter().any(|(_, env, _)| env == key),
            "secret {key} in the ConfigMap"
        );
    }
    m
}

#[test]
fn k8s_manifest_round_trips_through_the_typed_objects_and_fits_together() {
    let dir = tempfile_dir("round-trip");
    let cases = [
        ("default", K8sConfig::default()),
        (
            "keda-external-redis",
            K8sConfig {
                namespace: "sado-prod".into(),
                autoscaler: K8sAutoscaler::Keda,
                redis: K8sRedis::External {
                    url: "rediss://cache.example:6380/1".into(),
                },
                queues: vec!["normal".into(), "high_priority".into()],
                workers_min: 2,
                workers_max: 10,
                scheduler: false,
                ..K8sConfig::default()
            },
        ),
    ];
    for (label, cfg) in cases {
        let path = dir.join(format!("{label}.yaml"));
        write_k8s(&cfg, &path).expect("written");
        let text = std::fs::read_to_string(&path).expect("read back");
        let m = check(&cfg, &text);
        let redis = m
            .deployments
            .iter()
            .any(|d| name(&d.metadata) == "sadomap-redis");
        assert_eq!(
            redis,
            matches!(cfg.redis, K8sRedis::InCluster { .. }),
            "{label}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn k8s_invalid_config_writes_nothing() {
    let dir = tempfile_dir("invalid");
    let path = dir.join("bad.yaml");
    let e = write_k8s(
        &K8sConfig {
            workers_min: 5,
            workers_max: 2,
            ..K8sConfig::default()
        },
        &path,
    )
    .expect_err("min above max");
    assert_eq!(e.code(), "invalid_k8s_config");
    assert!(e.to_string().contains("workers_min"), "{e}");
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sadomap-sup-k8s-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
