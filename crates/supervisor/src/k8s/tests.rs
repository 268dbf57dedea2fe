use super::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn deployment<'a>(objects: &'a [K8sObject], name: &str) -> &'a Deployment {
    objects
        .iter()
        .find_map(|o| match o {
            K8sObject::Deployment(d) if o.name() == name => Some(&**d),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Deployment {name}"))
}

fn field_of(e: &K8sError) -> &str {
    match e {
        K8sError::Invalid { field, .. } => field,
        other => panic!("not an Invalid error: {other}"),
    }
}

fn rejected(cfg: K8sConfig) -> K8sError {
    let e = cfg.objects().expect_err("invalid config");
    assert_eq!(e.code(), "invalid_k8s_config");
    e
}

#[test]
fn default_objects_are_the_topology_in_apply_order() {
    let objects = K8sConfig::default().objects().expect("valid");
    let got: Vec<(&str, &str)> = objects.iter().map(|o| (o.kind(), o.name())).collect();
    assert_eq!(
        got,
        [
            ("Namespace", "sadomap"),
            ("ConfigMap", "sadomap-config"),
            ("PersistentVolumeClaim", "sadomap-redis-data"),
            ("Deployment", "sadomap-redis"),
            ("Service", "sadomap-redis"),
            ("Deployment", "sadomap-api"),
            ("Service", "sadomap-api"),
            ("PodDisruptionBudget", "sadomap-api"),
            ("Deployment", "sadomap-worker"),
            ("Deployment", "sadomap-scheduler"),
            ("HorizontalPodAutoscaler", "sadomap-worker"),
        ]
    );
}

#[test]
fn api_is_two_replicas_rolled_one_at_a_time_with_compose_probe_timing() {
    let objects = K8sConfig::default().objects().expect("valid");
    let api = deployment(&objects, "sadomap-api");
    let spec = api.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let rolling = spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .expect("rolling update");
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let c = &pod.containers[0];
    let live = c.liveness_probe.as_ref().expect("liveness");
    assert_eq!(
        (
            live.period_seconds,
            live.timeout_seconds,
            live.failure_threshold
        ),
        (Some(30), Some(10), Some(3))
    );
    let path =
        |p: &k8s_openapi::api::core::v1::Probe| p.http_get.as_ref().and_then(|h| h.path.clone());
    assert_eq!(path(live).as_deref(), Some("/health"));
    let ready = c.readiness_probe.as_ref().expect("readiness");
    assert_eq!(path(ready).as_deref(), Some("/ready"));
    // start_period 40 s: the startup probe may fail 4 times, 10 s apart.
    let startup = c.startup_probe.as_ref().expect("startup");
    assert_eq!(
        (startup.period_seconds, startup.failure_threshold),
        (Some(10), Some(4))
    );
    assert_eq!(
        c.args.as_deref(),
        Some(
            &[
                "serve".to_string(),
                "--listen".into(),
                "0.0.0.0:8080".into()
            ][..]
        )
    );
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .expect("labels");
    assert_eq!(labels[crate::labels::SERVICE], "api");
    assert_eq!(labels[crate::labels::ROLE], "api");
    assert_eq!(labels["app.kubernetes.io/part-of"], "sadomap");
    assert!(pod.affinity.is_some(), "api pods spread over nodes");
}

#[test]
fn workers_expose_health_and_metrics_and_scheduler_is_recreated() {
    let cfg = K8sConfig {
        queues: vec!["normal".into(), "background".into()],
        ..K8sConfig::default()
    };
    let objects = cfg.objects().expect("valid");
    let worker = deployment(&objects, "sadomap-worker");
    let spec = worker.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(1));
    let pod = spec.template.spec.as_ref().expect("pod");
    let args = pod.containers[0].args.clone().unwrap_or_default().join(" ");
    assert!(
        args.starts_with("worker --health-listen 0.0.0.0:9310 --shutdown-deadline 30s"),
        "{args}"
    );
    assert!(args.ends_with("--queues normal,background"), "{args}");
    assert_eq!(pod.termination_grace_period_seconds, Some(45));
    let scheduler = deployment(&objects, "sadomap-scheduler");
    let spec = scheduler.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate")
    );
    let hpa = objects
        .iter()
        .find_map(|o| match o {
            K8sObject::HorizontalPodAutoscaler(h) => h.spec.clone(),
            _ => None,
        })
        .expect("hpa");
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(1), 4));
    let ext = hpa.metrics.expect("metrics")[0]
        .external
        .clone()
        .expect("external");
    assert_eq!(ext.metric.name, QUEUE_DEPTH_METRIC);
    let sel = ext.metric.selector.expect("selector");
    assert_eq!(
        sel.match_expressions.expect("queues")[0].values,
        Some(cfg.queues.clone())
    );
    assert_eq!(ext.target.average_value.map(|q| q.0).as_deref(), Some("20"));
}

#[test]
fn keda_replaces_the_hpa() {
    let cfg = K8sConfig {
        autoscaler: K8sAutoscaler::Keda,
        jobs_per_worker: 7,
        workers_min: 2,
        workers_max: 9,
        ..K8sConfig::default()
    };
    let objects = cfg.objects().expect("valid");
    assert!(!objects
        .iter()
        .any(|o| matches!(o, K8sObject::HorizontalPodAutoscaler(_))));
    let so = objects
        .iter()
        .find_map(|o| match o {
            K8sObject::ScaledObject(s) => Some(s),
            _ => None,
        })
        .expect("scaled object");
    assert_eq!(so.api_version, "keda.sh/v1alpha1");
    assert_eq!(so.spec.scale_target_ref.name, "sadomap-worker");
    assert_eq!(
        (so.spec.min_replica_count, so.spec.max_replica_count),
        (2, 9)
    );
    let t = &so.spec.triggers[0];
    assert_eq!(t.kind, "prometheus");
    assert_eq!(t.metadata["threshold"], "7");
    assert_eq!(
        t.metadata["query"],
        "sum(max by (queue) (sadomap_queue_depth_jobs{namespace=\"sadomap\",state=\"ready\"})) \
         or vector(0)"
    );
    let yaml = cfg.to_yaml().expect("yaml");
    assert!(yaml.contains("kind: \"ScaledObject\""), "{yaml}");
}

#[test]
fn external_redis_has_no_redis_objects() {
    let cfg = K8sConfig {
        redis: K8sRedis::External {
            url: "redis://cache.example:6379/0".into(),
        },
        scheduler: false,
        ..K8sConfig::default()
    };
    let objects = cfg.objects().expect("valid");
    assert!(objects.iter().all(|o| !o.name().contains("redis")));
    assert!(objects.iter().all(|o| o.name() != "sadomap-scheduler"));
    let cm = objects
        .iter()
        .find_map(|o| match o {
            K8sObject::ConfigMap(c) => c.data.clone(),
            _ => None,
        })
        .expect("config map");
    assert_eq!(cm["SADOMAP_REDIS_URL"], "redis://cache.example:6379/0");
}

#[test]
fn yaml_has_a_header_and_one_document_per_object_and_no_secret_values() {
    let cfg = K8sConfig::default();
    let yaml = cfg.to_yaml().expect("yaml");
    assert!(yaml.starts_with("# sadomap on Kubernetes"));
    assert_eq!(
        yaml.matches("\n---\n").count() + usize::from(yaml.starts_with("---")),
        cfg.objects().expect("valid").len()
    );
    assert!(yaml.contains("secretKeyRef"));
    assert!(!yaml.contains("kind: \"Secret\""));
    // Redis's `--appendonly yes`: a YAML 1.1 reader (Kubernetes') must see a string.
    assert!(yaml.contains("- \"yes\"\n"), "{yaml}");
}

#[test]
fn bad_values_name_their_field() {
    let cases: Vec<(K8sConfig, &str)> = vec![
        (
            K8sConfig {
                workers_min: 5,
                workers_max: 2,
                ..K8sConfig::default()
            },
            "workers_min",
        ),
        (
            K8sConfig {
                workers_min: 0,
                ..K8sConfig::default()
            },
            "workers_min",
        ),
        (
            K8sConfig {
                image: " ".into(),
                ..K8sConfig::default()
            },
            "image",
        ),
        (
            K8sConfig {
                api_port: 0,
                ..K8sConfig::default()
            },
            "api_port",
        ),
        (
            K8sConfig {
                worker_metrics_port: 0,
                ..K8sConfig::default()
            },
            "worker_metrics_port",
        ),
        (
            K8sConfig {
                namespace: "Sado_Map".into(),
                ..K8sConfig::default()
            },
            "namespace",
        ),
        (
            K8sConfig {
                api_replicas: 1,
                ..K8sConfig::default()
            },
            "api_replicas",
        ),
        (
            K8sConfig {
                image_pull_policy: "Sometimes".into(),
                ..K8sConfig::default()
            },
            "image_pull_policy",
        ),
        (
            K8sConfig {
                queues: vec!["a b".into()],
                ..K8sConfig::default()
            },
            "queues",
        ),
        (
            K8sConfig {
                redis: K8sRedis::External {
                    url: "redis://:hunter2@cache:6379".into(),
                },
                ..K8sConfig::default()
            },
            "redis.url",
        ),
        (
            K8sConfig {
                redis: K8sRedis::External {
                    url: "http://cache:6379".into(),
                },
                ..K8sConfig::default()
            },
            "redis.url",
        ),
    ];
    for (cfg, field) in cases {
        let e = rejected(cfg);
        assert_eq!(field_of(&e), field, "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
    let mut cfg = K8sConfig::default();
    cfg.resources.api.limits_memory = Some("lots".into());
    assert_eq!(field_of(&rejected(cfg)), "resources.api.limits_memory");
    assert!(serde_json::from_str::<K8sConfig>(r#"{"worker":3}"#).is_err());
}

#[test]
fn quantities() {
    for ok in ["250m", "0.5", "1", "128Mi", "1Gi", "2G", "1.5Gi"] {
        assert!(is_quantity(ok), "{ok}");
    }
    for bad in ["", "Mi", "1.", ".5", "1 Gi", "1GB", "-1", "lots"] {
        assert!(!is_quantity(bad), "{bad}");
    }
}

#[test]
fn writing_is_atomic_and_invalid_config_writes_nothing() {
    let dir = std::env::temp_dir().join(format!("sadomap-k8s-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("sadomap.yaml");
    let bad = K8sConfig {
        workers_min: 3,
        workers_max: 1,
        ..K8sConfig::default()
    };
    assert!(write_k8s(&bad, &path).is_err());
    assert!(!path.exists());
    write_k8s(&K8sConfig::default(), &path).expect("written");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("sadomap.yaml")]);
    let _ = std::fs::remove_dir_all(&dir);
}
