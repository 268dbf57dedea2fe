//! Running the app on a socket: plain HTTP or TLS (rustls), the index refresh task, certificate
//! reloads, and a graceful drain when the shutdown signal comes.
//!
//! Concurrency contract: [`serve`] owns three tasks besides the server: the index refresh loop,
//! the certificate watcher (TLS only) and the shutdown waiter. All stop when the shutdown future
//! resolves; connections then drain as [`crate::accept`] describes, within `shutdown_grace_ms`.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use tokio::sync::watch;

use crate::config::{ConfigError, TlsConfig};
use crate::state::AppState;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The certificate or key could not be loaded.
    #[error("cannot load the TLS certificate {cert} and key {key}: {source} (give PEM files; the key must be PKCS#8, PKCS#1 or SEC1)")]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The listening socket failed.
    #[error("the server socket failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves `state`'s app on `listener` until `shutdown` resolves, then drains for the configured
/// grace period. The listener may come from a parent process (the supervisor binds it).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = state.config().clone();
    config.validate()?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which also means stop.
        let _ = rx.wait_for(|s| *s).await;
    };

    tokio::spawn(state.clone().refresh_loop(stopped(stop_rx.clone())));
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: draining requests"
        );
        let _ = stop_tx.send(true);
    });

    let listener = tokio::net::TcpListener::from_std(listener)?;
    let app = crate::app(state.clone());
    let tls = match &config.tls {
        Some(tls) => {
            // One process-wide provider; a second install (tests, restarts) is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rustls = RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|source| ServeError::Tls {
                    cert: tls.cert.clone(),
                    key: tls.key.clone(),
                    source,
                })?;
            tokio::spawn(watch_certificates(
                tls.clone(),
                rustls.clone(),
                state.clone(),
                stopped(stop_rx.clone()),
            ));
            tracing::info!(%local, "serving HTTPS");
            Some(rustls)
        }
        None => {
            tracing::info!(%local, "serving HTTP");
            None
        }
    };
    crate::accept::run(listener, app, tls, stop_rx, grace).await;
    tracing::info!("server stopped");
    Ok(())
}

fn modified(tls: &TlsConfig) -> Option<(SystemTime, SystemTime)> {
    let m = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((m(&tls.cert)?, m(&tls.key)?))
}

/// Reloads the certificate when either file's modification time changes. A pair that does not
/// load (say, the key written after the certificate) is retried at the next poll; the old
/// certificate stays in use meanwhile.
async fn watch_certificates(
    tls: TlsConfig,
    rustls: RustlsConfig,
    state: AppState,
    stop: impl Future<Output = ()>,
) {
    let mut seen = modified(&tls);
    let mut tick = tokio::time::interval(Duration::from_millis(tls.poll_interval_ms));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let now = modified(&tls);
        if now.is_none() || now == seen {
            continue;
        }
        match rustls.reload_from_pem_file(&tls.cert, &tls.key).await {
            Ok(()) => {
                seen = now;
                state.metrics().tls_reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::warn!(cert = %tls.cert.display(), error = %e, "TLS certificate did not load; keeping the old one");
            }
        }
    }
}
