//! What every handler shares: the store, the live index, configuration, metrics, the response
//! cache, the rate limiter and the admin jobs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sadomap_core::Region;
use sadomap_store::{Index, LiveIndex, Store, StoreError};

use crate::admin::{AdminToken, Jobs};
use crate::cache::ResponseCache;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

/// The state of a running server; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    live: LiveIndex,
    config: ServerConfig,
    metrics: Metrics,
    cache: ResponseCache,
    limiter: RateLimiter,
    jobs: Jobs,
    admin: Option<AdminToken>,
}

impl AppState {
    /// Loads the store's places into an index and builds the state. Blocking: call it before
    /// the runtime serves, or from `spawn_blocking`.
    pub fn new(
        store: Arc<dyn Store>,
        config: ServerConfig,
        admin: Option<AdminToken>,
    ) -> Result<AppState, StoreError> {
        let live = LiveIndex::load(&*store, Region::sado())?;
        let metrics = Metrics::default();
        let ix = live.current();
        metrics.set_index(ix.len(), ix.memory_bytes(), ix.data_version());
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                live,
                cache: ResponseCache::new(config.response_cache_bytes),
                limiter: RateLimiter::new(&config.rate_limit),
                config,
                metrics,
                jobs: Jobs::default(),
                admin,
            }),
        })
    }

    /// The index as of the last refresh.
    pub fn index(&self) -> Arc<Index> {
        self.inner.live.current()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn cache(&self) -> &ResponseCache {
        &self.inner.cache
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    pub(crate) fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    pub(crate) fn admin_token(&self) -> Option<&AdminToken> {
        self.inner.admin.as_ref()
    }

    /// Rebuilds the index if the store's data version moved; returns whether it did.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let s = self.clone();
        let r = tokio::task::spawn_blocking(move || s.inner.live.refresh(&*s.inner.store))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Config {
                    message: format!("index refresh task failed: {e}"),
                })
            });
        let m = &self.inner.metrics;
        match &r {
            Ok(true) => {
                let ix = self.index();
                m.set_index(ix.len(), ix.memory_bytes(), ix.data_version());
                m.index_refreshes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    places = ix.len(),
                    data_version = ix.data_version(),
                    "index refreshed"
                );
            }
            Ok(false) => {}
            Err(e) => {
                m.index_refresh_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "index refresh failed; keeping the current index");
            }
        }
        r
    }

    /// Refreshes every `refresh_interval_ms` until `shutdown` resolves.
    pub async fn refresh_loop(self, shutdown: impl std::future::Future<Output = ()>) {
        let every = Duration::from_millis(self.config().refresh_interval_ms);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {
                    // Errors are counted and logged inside; the loop goes on.
                    let _ = self.refresh().await;
                }
            }
        }
    }
}
