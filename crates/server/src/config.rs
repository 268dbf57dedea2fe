//! The server's configuration: one struct, every default in [`Default`], checked once by
//! [`ServerConfig::validate`] before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sadomap_store::MAX_LIMIT;
use serde::{Deserialize, Serialize};

/// How the HTTP server behaves. Unknown keys are rejected when deserialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// How often the index checks the store's data version, in milliseconds.
    pub refresh_interval_ms: u64,
    /// Longest time one request may take, in milliseconds (then 503 `timeout`).
    pub request_timeout_ms: u64,
    /// Largest request body accepted, in bytes (then 413).
    pub max_body_bytes: usize,
    /// Largest `limit` a page may ask for (at most the index's own maximum).
    pub max_limit: usize,
    /// `Cache-Control: max-age` of data responses, in seconds.
    pub cache_max_age_s: u32,
    /// Bytes of response bodies the response cache may hold (0 turns it off).
    pub response_cache_bytes: usize,
    /// Bytes of prerendered place JSON kept per index snapshot (places past it, in id order,
    /// are serialised per request; 0 turns prerendering off). About 1.2 KB per place.
    pub fragment_cache_bytes: usize,
    /// Let the allocator back the heap with transparent huge pages (Linux). Off by default: the
    /// heap of a Sado-sized server is small and churns per request, and huge pages rounded it
    /// up to about twice its size in RSS; worth turning on for very large indexes.
    pub transparent_huge_pages: bool,
    /// Per-client rate limit.
    pub rate_limit: RateLimitConfig,
    /// Origins allowed by CORS: empty for none, `["*"]` for any.
    pub cors_origins: Vec<String>,
    /// Compress responses (gzip) when the client accepts it.
    pub compression: bool,
    /// Serve HTTPS from these files instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// How long in-flight requests may finish after SIGTERM or Ctrl-C, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Directory holding Leaflet (`leaflet.js`, `leaflet.css`, `images/`; e.g. Debian's
    /// `libjs-leaflet` at `/usr/share/javascript/leaflet`), served to the map page under
    /// `/vendor/leaflet/` instead of the copy built into the binary (`None`, the default). A
    /// directory without `leaflet.js`: the page says the map is unavailable and keeps its list.
    pub leaflet_dir: Option<PathBuf>,
    /// Base-map tile URL template for the map page (`https://host/{z}/{x}/{y}.png`); `None`
    /// draws no tiles (the island outline only), so the page needs no network.
    pub tile_url: Option<String>,
    /// Attribution shown with those tiles (plain text).
    pub tile_attribution: Option<String>,
}

/// A token bucket per client address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per second per client; 0 turns the limit off.
    pub per_second: f64,
    /// Requests a client may send at once before being limited.
    pub burst: u32,
}

/// Certificate and key files (PEM); reloaded when either file changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
    /// How often the files are checked for changes, in milliseconds.
    #[serde(default = "default_tls_poll")]
    pub poll_interval_ms: u64,
}

fn default_tls_poll() -> u64 {
    2_000
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            refresh_interval_ms: 2_000,
            request_timeout_ms: 10_000,
            max_body_bytes: 64 * 1024,
            max_limit: MAX_LIMIT,
            cache_max_age_s: 60,
            response_cache_bytes: 8 * 1024 * 1024,
            fragment_cache_bytes: 32 * 1024 * 1024,
            transparent_huge_pages: false,
            rate_limit: RateLimitConfig::default(),
            cors_origins: Vec::new(),
            compression: true,
            tls: None,
            shutdown_grace_ms: 10_000,
            leaflet_dir: None,
            tile_url: None,
            tile_attribution: None,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: 50.0,
            burst: 200,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server configuration: {key}: {message}")]
pub struct ConfigError {
    /// The key at fault.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ServerConfig {
    /// Checks values that would make the server misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: String| Err(ConfigError { key, message });
        if self.max_limit == 0 || self.max_limit > MAX_LIMIT {
            return bad("max_limit", format!("must be within 1..={MAX_LIMIT}"));
        }
        if self.request_timeout_ms == 0 {
            return bad("request_timeout_ms", "must be positive".into());
        }
        if self.refresh_interval_ms == 0 {
            return bad("refresh_interval_ms", "must be positive".into());
        }
        let r = &self.rate_limit;
        if !(r.per_second.is_finite() && r.per_second >= 0.0) {
            return bad(
                "rate_limit.per_second",
                "must be a non-negative number".into(),
            );
        }
        if r.per_second > 0.0 && r.burst == 0 {
            return bad("rate_limit.burst", "must be at least 1".into());
        }
        for o in &self.cors_origins {
            if o != "*" && axum::http::HeaderValue::from_str(o).is_err() {
                return bad("cors_origins", format!("{o:?} is not a valid origin"));
            }
        }
        if let Some(t) = &self.tls {
            if t.poll_interval_ms == 0 {
                return bad("tls.poll_interval_ms", "must be positive".into());
            }
        }
        if let Some(u) = &self.tile_url {
            if let Err(m) = crate::page::check_tile_url(u) {
                return bad("tile_url", m);
            }
        }
        Ok(())
    }

    /// [`ServerConfig::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(ServerConfig::default().validate().is_ok());
        let c = ServerConfig {
            max_limit: 0,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "max_limit");
        let c = ServerConfig {
            rate_limit: RateLimitConfig {
                per_second: f64::NAN,
                burst: 1,
            },
            ..ServerConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "rate_limit.per_second");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = serde_json::from_str::<ServerConfig>(r#"{"listen":"127.0.0.1:1","nope":1}"#);
        assert!(e.is_err());
        let c: ServerConfig = serde_json::from_str(r#"{"max_limit":10}"#).unwrap();
        assert_eq!(c.max_limit, 10);
        assert_eq!(c.listen, ServerConfig::default().listen);
    }
}
