//! `sadomap deploy compose`: writes a Docker Compose file for the same topology (api-primary,
//! api-backup, worker × N, scheduler, redis) with health checks, restart policies, named volumes
//! that are mounted, one network, and `depends_on` with `condition: service_healthy` only on
//! services that exist and have a health check.
//!
//! The file is JSON, which every YAML 1.2 parser (and so every Compose tool) reads; it has no
//! top-level `version` or `name`, so both `docker compose` (v2) and `docker-compose` (1.27+)
//! accept it. It is written to a temporary file and renamed, so a failure leaves nothing behind.
//!
//! Concurrency: pure functions plus one file write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

/// A Compose file that could not be made.
#[derive(Debug, Error)]
pub enum ComposeError {
    /// A config value is out of range.
    #[error("compose config: `{field}` {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
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

impl ComposeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ComposeError::Invalid { .. } => "invalid_compose_config",
            ComposeError::Write { .. } => "compose_write_failed",
        }
    }
}

/// Compose health-check timing (defaults 30 s / 10 s / 3 retries / 40 s start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthcheckConfig {
    /// Time between checks.
    pub interval_secs: u64,
    /// Time a check may take.
    pub timeout_secs: u64,
    /// Failures before unhealthy.
    pub retries: u32,
    /// Grace period after start.
    pub start_period_secs: u64,
}

impl Default for HealthcheckConfig {
    fn default() -> Self {
        HealthcheckConfig {
            interval_secs: 30,
            timeout_secs: 10,
            retries: 3,
            start_period_secs: 40,
        }
    }
}

/// What `sadomap deploy compose` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComposeConfig {
    /// Image of sadomap (entrypoint: the `sadomap` binary).
    pub image: String,
    /// Host port of api-primary.
    pub api_port: u16,
    /// Host port of api-backup.
    pub backup_port: u16,
    /// Port the api listens on inside its container.
    pub container_port: u16,
    /// Worker replicas.
    pub workers: u32,
    /// Run a scheduler.
    pub scheduler: bool,
    /// Run Redis for the queue and shared cache.
    pub redis: bool,
    /// Redis image.
    pub redis_image: String,
    /// The api's health-check command, run inside its container (an image built `FROM scratch`
    /// has no shell or curl: the sadomap binary probes itself).
    pub api_health_command: Vec<String>,
    /// Health-check timing.
    pub healthcheck: HealthcheckConfig,
    /// Restart policy: `no`, `always`, `on-failure` or `unless-stopped`.
    pub restart: String,
    /// Named volume with sadomap's data, mounted at `/data`.
    pub data_volume: String,
    /// Named volume with Redis's data.
    pub redis_volume: String,
    /// The one network.
    pub network: String,
}

impl Default for ComposeConfig {
    fn default() -> Self {
        ComposeConfig {
            image: "sadomap:latest".into(),
            api_port: 8080,
            backup_port: 8081,
            container_port: 8080,
            workers: 2,
            scheduler: true,
            redis: true,
            redis_image: "redis:7-alpine".into(),
            api_health_command: vec![
                "/sadomap".into(),
                "probe".into(),
                "http://127.0.0.1:8080/health".into(),
            ],
            healthcheck: HealthcheckConfig::default(),
            restart: "unless-stopped".into(),
            data_volume: "sadomap-data".into(),
            redis_volume: "redis-data".into(),
            network: "sadomap".into(),
        }
    }
}

fn healthcheck(test: Vec<String>, h: &HealthcheckConfig) -> Value {
    let mut t = vec!["CMD".to_string()];
    t.extend(test);
    json!({
        "test": t,
        "interval": format!("{}s", h.interval_secs),
        "timeout": format!("{}s", h.timeout_secs),
        "retries": h.retries,
        "start_period": format!("{}s", h.start_period_secs),
    })
}

impl ComposeConfig {
    fn validate(&self) -> Result<(), ComposeError> {
        let invalid = |field, reason: &str| {
            Err(ComposeError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        if !matches!(
            self.restart.as_str(),
            "no" | "always" | "on-failure" | "unless-stopped"
        ) {
            return invalid(
                "restart",
                "must be no, always, on-failure or unless-stopped",
            );
        }
        let h = &self.healthcheck;
        if h.interval_secs == 0 || h.timeout_secs == 0 || h.retries == 0 {
            return invalid(
                "healthcheck",
                "interval, timeout and retries must be above 0",
            );
        }
        if self.api_port == self.backup_port {
            return invalid("backup_port", "must differ from api_port");
        }
        if self.api_health_command.is_empty() {
            return invalid("api_health_command", "is empty");
        }
        for (field, v) in [
            ("image", &self.image),
            ("data_volume", &self.data_volume),
            ("network", &self.network),
        ] {
            if v.trim().is_empty() {
                return invalid(field, "is empty");
            }
        }
        if self.redis && (self.redis_image.trim().is_empty() || self.redis_volume.trim().is_empty())
        {
            return invalid(
                "redis_image",
                "and redis_volume must be set when redis is on",
            );
        }
        Ok(())
    }

    /// The Compose document.
    pub fn document(&self) -> Result<Value, ComposeError> {
        self.validate()?;
        let mut services = BTreeMap::<String, Value>::new();
        let mut volumes = BTreeMap::<String, Value>::new();
        volumes.insert(self.data_volume.clone(), json!({}));
        let data_mount = format!("{}:/data", self.data_volume);
        let mut env = BTreeMap::from([("SADOMAP_DATA_DIR".to_string(), "/data".to_string())]);
        if self.redis {
            env.insert("SADOMAP_REDIS_URL".into(), "redis://redis:6379".into());
            volumes.insert(self.redis_volume.clone(), json!({}));
            services.insert(
                "redis".into(),
                json!({
                    "image": self.redis_image,
                    // Reachable from the other containers (as the official image runs it): the
                    // network is private and Redis's protected mode would refuse them.
                    "command": ["redis-server", "--appendonly", "yes", "--protected-mode", "no"],
                    "healthcheck": healthcheck(vec!["redis-cli".into(), "ping".into()], &self.healthcheck),
                    "restart": self.restart,
                    "volumes": [format!("{}:/data", self.redis_volume)],
                    "networks": [self.network],
                }),
            );
        }
        let listen = format!("0.0.0.0:{}", self.container_port);
        let app = |command: Vec<&str>| {
            json!({
                "image": self.image,
                "command": command,
                "environment": env,
                "restart": self.restart,
                "volumes": [data_mount],
                "networks": [self.network],
            })
        };
        for (name, host_port) in [
            ("api-primary", self.api_port),
            ("api-backup", self.backup_port),
        ] {
            let mut s = app(vec!["serve", "--listen", &listen]);
            s["ports"] = json!([format!("{host_port}:{}", self.container_port)]);
            s["healthcheck"] = healthcheck(self.api_health_command.clone(), &self.healthcheck);
            services.insert(name.into(), s);
        }
        let mut worker = app(vec!["worker"]);
        worker["deploy"] = json!({ "replicas": self.workers });
        services.insert("worker".into(), worker);
        if self.scheduler {
            services.insert("scheduler".into(), app(vec!["scheduler"]));
        }
        // depends_on only on services that exist and have a health check.
        let healthy: Vec<String> = services
            .iter()
            .filter(|(_, s)| s.get("healthcheck").is_some())
            .map(|(n, _)| n.clone())
            .collect();
        let wants: [(&str, &[&str]); 4] = [
            ("api-primary", &["redis"]),
            ("api-backup", &["redis"]),
            ("worker", &["redis", "api-primary"]),
            ("scheduler", &["redis", "api-primary"]),
        ];
        for (name, deps) in wants {
            let on: BTreeMap<&str, Value> = deps
                .iter()
                .filter(|d| healthy.iter().any(|h| h == *d))
                .map(|d| (*d, json!({ "condition": "service_healthy" })))
                .collect();
            if let Some(s) = services.get_mut(name) {
                if !on.is_empty() {
                    s["depends_on"] = json!(on);
                }
            }
        }
        Ok(json!({
            "services": services,
            "volumes": volumes,
            "networks": { self.network.clone(): {} },
        }))
    }
}

/// Writes the Compose file for `config` to `path` (temporary file, then rename).
pub fn write_compose(config: &ComposeConfig, path: &Path) -> Result<(), ComposeError> {
    let doc = config.document()?;
    let err = |source| ComposeError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| err(std::io::Error::other(e)))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text + "\n").map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_has_the_topology() {
        let doc = ComposeConfig::default().document().expect("valid");
        let s = &doc["services"];
        for name in ["redis", "api-primary", "api-backup", "worker", "scheduler"] {
            assert!(s.get(name).is_some(), "{name} missing");
        }
        assert_eq!(s["worker"]["deploy"]["replicas"], 2);
        assert_eq!(s["api-primary"]["healthcheck"]["interval"], "30s");
        assert_eq!(s["api-primary"]["healthcheck"]["timeout"], "10s");
        assert_eq!(s["api-primary"]["healthcheck"]["retries"], 3);
        assert_eq!(s["api-primary"]["healthcheck"]["start_period"], "40s");
        assert_eq!(
            s["worker"]["depends_on"]["redis"]["condition"],
            "service_healthy"
        );
        assert_eq!(
            s["worker"]["depends_on"]["api-primary"]["condition"],
            "service_healthy"
        );
        assert_eq!(s["api-primary"]["volumes"][0], "sadomap-data:/data");
        assert!(doc["volumes"].get("redis-data").is_some());
        assert!(doc["networks"].get("sadomap").is_some());
    }

    #[test]
    fn no_dependency_on_a_missing_service() {
        let cfg = ComposeConfig {
            redis: false,
            scheduler: false,
            ..ComposeConfig::default()
        };
        let doc = cfg.document().expect("valid");
        let s = &doc["services"];
        assert!(s.get("redis").is_none() && s.get("scheduler").is_none());
        assert!(s["api-primary"].get("depends_on").is_none());
        assert_eq!(
            s["worker"]["depends_on"],
            json!({"api-primary": {"condition": "service_healthy"}})
        );
        assert!(doc["volumes"].get("redis-data").is_none());
        assert!(s["api-primary"]["environment"]
            .get("SADOMAP_REDIS_URL")
            .is_none());
    }

    #[test]
    fn bad_values_are_rejected() {
        let e = ComposeConfig {
            restart: "sometimes".into(),
            ..ComposeConfig::default()
        }
        .document()
        .expect_err("bad restart");
        assert!(e.to_string().contains("restart"));
        let e = ComposeConfig {
            backup_port: 8080,
            ..ComposeConfig::default()
        }
        .document()
        .expect_err("same ports");
        assert_eq!(e.code(), "invalid_compose_config");
        assert!(serde_json::from_str::<ComposeConfig>(r#"{"worker":3}"#).is_err());
    }
}
