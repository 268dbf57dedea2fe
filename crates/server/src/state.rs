//! What every handler shares: the store, the live index, configuration, metrics, the response
//! cache, the rate limiter and the admin jobs.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use sadomap_core::Region;
use sadomap_store::{Index, LiveIndex, Store, StoreError};

use crate::admin::{AdminToken, Jobs};
use crate::cache::ResponseCache;
use crate::config::ServerConfig;
use crate::fragments::Fragments;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::supervision::Supervision;

/// Allows or forbids transparent huge pages for this process (before the index is loaded, so
/// it applies to the heap). Process-wide: the server is the process's one big user of memory.
fn huge_pages(allow: bool) {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(!allow) {
        tracing::warn!(error = %e, "cannot change the transparent huge page setting");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = allow;
}

/// The state of a running server; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    live: LiveIndex,
    /// The prerendered JSON of the current index's places; rebuilt with the index.
    fragments: RwLock<Arc<Fragments>>,
    config: ServerConfig,
    metrics: Metrics,
    cache: ResponseCache,
    limiter: RateLimiter,
    jobs: Jobs,
    admin: Option<AdminToken>,
    /// The supervisor running this server, when the binary injected one.
    supervision: OnceLock<Arc<dyn Supervision>>,
}

impl AppState {
    /// Loads the store's places into an index and builds the state. Blocking: call it before
    /// the runtime serves, or from `spawn_blocking`.
    pub fn new(
        store: Arc<dyn Store>,
        config: ServerConfig,
        admin: Option<AdminToken>,
    ) -> Result<AppState, StoreError> {
        huge_pages(config.transparent_huge_pages);
        let live = LiveIndex::load(&*store, Region::sado())?;
        let metrics = Metrics::default();
        let ix = live.current();
        metrics.set_index(ix.len(), ix.memory_bytes(), ix.data_version());
        let fragments = Fragments::build(&ix, config.fragment_cache_bytes);
        tracing::info!(
            places = fragments.len(),
            bytes = fragments.bytes(),
            "place JSON prerendered"
        );
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                live,
                fragments: RwLock::new(Arc::new(fragments)),
                cache: ResponseCache::new(config.response_cache_bytes),
                limiter: RateLimiter::new(&config.rate_limit),
                config,
                metrics,
                jobs: Jobs::default(),
                admin,
                supervision: OnceLock::new(),
            }),
        })
    }

    /// The index as of the last refresh.
    pub fn index(&self) -> Arc<Index> {
        self.inner.live.current()
    }

    /// The prerendered place JSON; its version may lag the index's for the moment of a swap,
    /// so callers check it.
    pub(crate) fn fragments(&self) -> Arc<Fragments> {
        Arc::clone(
            &self
                .inner
                .fragments
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
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

    /// Shows the supervisor that runs this server at `/admin/status` and in `/metrics`. Set
    /// once, before serving; a second call is ignored and returns false.
    pub fn set_supervision(&self, s: Arc<dyn Supervision>) -> bool {
        self.inner.supervision.set(s).is_ok()
    }

    pub(crate) fn supervision(&self) -> Option<Arc<dyn Supervision>> {
        self.inner.supervision.get().cloned()
    }

    /// Rebuilds the index if the store's data version moved; returns whether it did.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let s = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            let i = &s.inner;
            let changed = i.live.refresh(&*i.store)?;
            if changed {
                // Rendered off the request path; until the swap, requests on the new index
                // see a version mismatch and serialise per request.
                let f = Fragments::build(&i.live.current(), i.config.fragment_cache_bytes);
                let mut slot = i.fragments.write().unwrap_or_else(PoisonError::into_inner);
                // Two refreshes may race; the newer data version wins, as in `LiveIndex`.
                if f.version() >= slot.version() {
                    *slot = Arc::new(f);
                }
            }
            Ok(changed)
        })
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
