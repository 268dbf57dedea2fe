//! `sadomap.toml`: the one configuration file, and how its keys are layered.
//!
//! The file is `--config FILE` (or `SADOMAP_CONFIG`), else `./sadomap.toml` when it exists;
//! without one, every key keeps its default. It holds top-level `data_dir`, `postgres_url` and
//! `redis_url`, a `[serve]` table (the server's configuration, every key of
//! `sadomap_server::ServerConfig`) and an `[up]` table (the supervisor's: `listen`, `workers`,
//! `[up.health]`, `[up.restart]`, `[up.cascade]`, `[up.scaling]`, `[up.memory]`). Unknown keys are
//! errors that name the key.
//!
//! Layers, each overriding the one before: the built-in defaults, the file, one environment
//! variable per key (`SADOMAP_` + table + key path, upper case, `-` and `.` as `_`: e.g.
//! `SADOMAP_SERVE_RATE_LIMIT_PER_SECOND`, `SADOMAP_UP_HEALTH_INTERVAL_MS`), and last the command
//! line, whose flags also read their own short variables (`--rate-limit` reads
//! `SADOMAP_RATE_LIMIT`). `sadomap config` prints the result and where each overridden key came
//! from. Secrets (the admin token, passwords in URLs) are never read from here or printed: the
//! token comes from `SADOMAP_ADMIN_TOKEN` or a token file, and URLs are printed with the password
//! masked.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The file name looked for in the working directory.
pub const FILE_NAME: &str = "sadomap.toml";

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The configuration file.
    File,
    /// This environment variable.
    Env(String),
}

/// The file as read, before layering.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    data_dir: Option<PathBuf>,
    postgres_url: Option<String>,
    redis_url: Option<String>,
    #[serde(default)]
    serve: toml::Table,
    #[serde(default)]
    up: toml::Table,
}

/// The configuration file, read and checked for its shape.
#[derive(Debug, Default)]
pub struct Settings {
    path: Option<PathBuf>,
    file: FileShape,
}

impl Settings {
    /// Reads `explicit` (which must exist), else `./sadomap.toml` if there is one.
    pub fn load(explicit: Option<&Path>) -> Result<Settings> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(FILE_NAME);
                if !p.is_file() {
                    return Ok(Settings::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        let file: FileShape =
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
        let path = path.canonicalize().unwrap_or(path);
        Ok(Settings {
            path: Some(path),
            file,
        })
    }

    /// The file read, if any (absolute).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// `data_dir` from the file.
    pub fn data_dir(&self) -> Option<&Path> {
        self.file.data_dir.as_deref()
    }

    /// `postgres_url` from the file.
    pub fn postgres_url(&self) -> Option<&str> {
        self.file.postgres_url.as_deref()
    }

    /// `redis_url` from the file.
    pub fn redis_url(&self) -> Option<&str> {
        self.file.redis_url.as_deref()
    }

    /// The `[serve]` table over `default`, then its environment variables.
    pub fn serve<T: Serialize + DeserializeOwned>(&self, default: &T) -> Result<Layered<T>> {
        layered(default, &self.file.serve, "serve", self.describe())
    }

    /// The `[up]` table over `default`, then its environment variables.
    pub fn up<T: Serialize + DeserializeOwned>(&self, default: &T) -> Result<Layered<T>> {
        layered(default, &self.file.up, "up", self.describe())
    }

    fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("config file {}", p.display()),
            None => "built-in defaults".into(),
        }
    }
}

/// A table's value after layering, with the source of each key that is not a default.
#[derive(Debug)]
pub struct Layered<T> {
    /// The value.
    pub value: T,
    /// `(key path, source)` of every key set by the file or the environment.
    pub sources: Vec<(String, Source)>,
}

fn layered<T: Serialize + DeserializeOwned>(
    default: &T,
    file: &toml::Table,
    table: &str,
    origin: String,
) -> Result<Layered<T>> {
    let mut merged = toml::Table::try_from(default)
        .with_context(|| format!("the defaults of [{table}] as TOML"))?;
    let mut sources = Vec::new();
    merge(&mut merged, file, table, &mut sources);
    let prefix = format!("SADOMAP_{}", table.to_uppercase());
    overlay_env(&mut merged, &prefix, table, &mut sources, &|k| {
        std::env::var(k).ok()
    })?;
    let value: T = toml::Value::Table(merged).try_into().with_context(|| {
        let from_env: Vec<&str> = sources
            .iter()
            .filter_map(|(_, s)| match s {
                Source::Env(v) => Some(v.as_str()),
                Source::File => None,
            })
            .collect();
        if from_env.is_empty() {
            format!("[{table}] of the {origin}")
        } else {
            format!("[{table}] of the {origin} with {}", from_env.join(", "))
        }
    })?;
    Ok(Layered { value, sources })
}

/// Deep-merges `over` into `base`, recording each leaf it sets.
fn merge(
    base: &mut toml::Table,
    over: &toml::Table,
    path: &str,
    sources: &mut Vec<(String, Source)>,
) {
    for (k, v) in over {
        let key = format!("{path}.{k}");
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o, &key, sources),
            _ => {
                base.insert(k.clone(), v.clone());
                sources.push((key, Source::File));
            }
        }
    }
}

/// Sets every leaf of `t` whose variable (`prefix` + `_` + its path) is set, parsed as the
/// leaf's type.
fn overlay_env(
    t: &mut toml::Table,
    prefix: &str,
    path: &str,
    sources: &mut Vec<(String, Source)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    for (k, v) in t.iter_mut() {
        let name = format!("{prefix}_{}", k.to_uppercase().replace(['-', '.'], "_"));
        let key = format!("{path}.{k}");
        if let toml::Value::Table(inner) = v {
            overlay_env(inner, &name, &key, sources, env)?;
            continue;
        }
        let Some(raw) = env(&name) else { continue };
        let raw = raw.trim();
        let bad = |what: &str| format!("{name}={raw:?}: expected {what} for {key}");
        *v = match v {
            toml::Value::String(_) => toml::Value::String(raw.to_string()),
            toml::Value::Integer(_) => match raw.parse() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => bail!(bad("a whole number")),
            },
            toml::Value::Float(_) => match raw.parse() {
                Ok(n) => toml::Value::Float(n),
                Err(_) => bail!(bad("a number")),
            },
            toml::Value::Boolean(_) => match raw {
                "true" | "1" => toml::Value::Boolean(true),
                "false" | "0" => toml::Value::Boolean(false),
                _ => bail!(bad("true or false")),
            },
            toml::Value::Array(_) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            toml::Value::Datetime(_) | toml::Value::Table(_) => continue,
        };
        sources.push((key, Source::Env(name)));
    }
    Ok(())
}

/// `url` with any password replaced by `***`, for printing.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        rate: f64,
        port: u16,
        on: bool,
        origins: Vec<String>,
        name: String,
        inner: Inner,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        interval_ms: u64,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo {
                rate: 50.0,
                port: 80,
                on: true,
                origins: Vec::new(),
                name: "x".into(),
                inner: Inner::default(),
            }
        }
    }

    impl Default for Inner {
        fn default() -> Self {
            Inner { interval_ms: 2000 }
        }
    }

    fn layer(file: &str, env: &[(&str, &str)]) -> Result<(Demo, Vec<(String, Source)>)> {
        let file: toml::Table = toml::from_str(file)?;
        let mut merged = toml::Table::try_from(Demo::default())?;
        let mut sources = Vec::new();
        merge(&mut merged, &file, "serve", &mut sources);
        let env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        overlay_env(&mut merged, "SADOMAP_SERVE", "serve", &mut sources, &|k| {
            env.get(k).cloned()
        })?;
        Ok((toml::Value::Table(merged).try_into()?, sources))
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let (d, s) = layer("", &[]).expect("defaults");
        assert_eq!(d, Demo::default());
        assert!(s.is_empty());
        let (d, s) = layer(
            "port = 8081\nname = \"file\"\n[inner]\ninterval_ms = 500\n",
            &[
                ("SADOMAP_SERVE_NAME", "env"),
                ("SADOMAP_SERVE_RATE", "2.5"),
                ("SADOMAP_SERVE_ON", "false"),
                (
                    "SADOMAP_SERVE_ORIGINS",
                    "https://a.example, https://b.example",
                ),
                ("SADOMAP_SERVE_INNER_INTERVAL_MS", "250"),
            ],
        )
        .expect("layers");
        assert_eq!(d.port, 8081, "from the file");
        assert_eq!(d.name, "env", "the environment wins over the file");
        assert_eq!(d.rate, 2.5);
        assert!(!d.on);
        assert_eq!(d.origins, ["https://a.example", "https://b.example"]);
        assert_eq!(d.inner.interval_ms, 250);
        assert!(s.contains(&("serve.port".into(), Source::File)));
        assert!(s.contains(&(
            "serve.inner.interval_ms".into(),
            Source::Env("SADOMAP_SERVE_INNER_INTERVAL_MS".into())
        )));
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        let e = layer("", &[("SADOMAP_SERVE_PORT", "eighty")]).expect_err("not a number");
        assert!(e.to_string().contains("SADOMAP_SERVE_PORT"), "{e}");
        let e = layer("", &[("SADOMAP_SERVE_ON", "yes please")]).expect_err("not a bool");
        assert!(e.to_string().contains("true or false"), "{e}");
        let e = layer("prot = 1\n", &[]).expect_err("unknown key");
        assert!(format!("{e:#}").contains("prot"), "{e:#}");
        let e = layer("port = 70000\n", &[]).expect_err("out of range");
        assert!(format!("{e:#}").contains("70000"), "{e:#}");
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/sado"),
            "postgres://app:***@db:5432/sado"
        );
        assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(redact_url("redis://:pw@h:6379"), "redis://:***@h:6379");
    }

    #[test]
    fn the_file_shape_rejects_unknown_tables() {
        assert!(toml::from_str::<FileShape>("[serve]\nrate = 1\n[up]\n").is_ok());
        assert!(toml::from_str::<FileShape>("[server]\n").is_err());
    }
}
