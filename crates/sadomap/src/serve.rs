//! `sadomap serve`: the HTTP API on a socket until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use sadomap_server::{AdminToken, AppState, ServerConfig, TlsConfig};

use crate::cli::Global;
use crate::open_store;
use crate::settings::Settings;

/// Arguments of `serve`. Options left out keep the server's defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SADOMAP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM); serves HTTPS, reloading the files when they change.
    #[arg(long, env = "SADOMAP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "SADOMAP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// File holding the admin bearer token (else the SADOMAP_ADMIN_TOKEN environment variable;
    /// without either, admin routes are off).
    #[arg(long, env = "SADOMAP_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Requests per second per client (0: no limit) [default: 50].
    #[arg(long, env = "SADOMAP_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Requests a client may send at once before the limit applies [default: 200].
    #[arg(long, env = "SADOMAP_RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Origins allowed by CORS (repeatable or comma-separated; `*` for any).
    #[arg(long, env = "SADOMAP_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origin: Vec<String>,
    /// How often the index follows the store, in milliseconds [default: 2000].
    #[arg(long, env = "SADOMAP_REFRESH_MS")]
    pub refresh_ms: Option<u64>,
    /// Longest time a request may take, in milliseconds [default: 10000].
    #[arg(long, env = "SADOMAP_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// How long requests may finish after SIGTERM, in milliseconds [default: 10000].
    #[arg(long, env = "SADOMAP_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// Directory holding Leaflet for the map page, e.g. /usr/share/javascript/leaflet
    /// [default: the copy built into the binary].
    #[arg(long, env = "SADOMAP_LEAFLET_DIR")]
    pub leaflet_dir: Option<PathBuf>,
    /// Base-map tile URL template for the map page, e.g. `https://host/{z}/{x}/{y}.png`
    /// [default: none: the page draws the island outline and needs no network].
    #[arg(long, env = "SADOMAP_TILE_URL")]
    pub tile_url: Option<String>,
    /// Attribution shown with the tiles.
    #[arg(long, env = "SADOMAP_TILE_ATTRIBUTION", requires = "tile_url")]
    pub tile_attribution: Option<String>,
    /// Also serve the API in plain HTTP on this address, for this instance alone: under `sadomap
    /// up` two instances share the main socket, so a probe there would reach either. Bound with
    /// SO_REUSEPORT so a replacement can start while its predecessor drains.
    #[arg(long, value_name = "ADDR", conflicts_with = "tls_cert")]
    pub health_listen: Option<SocketAddr>,
    /// The control socket of the supervisor running this server, shown at `/admin/status` and
    /// in `/metrics` (set by `sadomap up`).
    #[arg(long, env = "SADOMAP_SUPERVISOR_SOCKET", value_name = "PATH")]
    pub supervisor_socket: Option<PathBuf>,
}

/// `base` (defaults, `[serve]` of sadomap.toml, its variables) with the flags given.
pub(crate) fn config(args: &ServeArgs, base: ServerConfig) -> ServerConfig {
    let mut c = base;
    if let Some(l) = args.listen {
        c.listen = l;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        c.tls = Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            poll_interval_ms: 2_000,
        });
    }
    if let Some(r) = args.rate_limit {
        c.rate_limit.per_second = r;
    }
    if let Some(b) = args.rate_burst {
        c.rate_limit.burst = b;
    }
    if !args.cors_origin.is_empty() {
        c.cors_origins.clone_from(&args.cors_origin);
    }
    if let Some(v) = args.refresh_ms {
        c.refresh_interval_ms = v;
    }
    if let Some(v) = args.request_timeout_ms {
        c.request_timeout_ms = v;
    }
    if let Some(v) = args.shutdown_grace_ms {
        c.shutdown_grace_ms = v;
    }
    if let Some(d) = &args.leaflet_dir {
        c.leaflet_dir = Some(d.clone());
    }
    if args.tile_url.is_some() {
        c.tile_url.clone_from(&args.tile_url);
        c.tile_attribution.clone_from(&args.tile_attribution);
    }
    c
}

fn admin_token(args: &ServeArgs) -> Result<Option<AdminToken>> {
    if let Some(path) = &args.admin_token_file {
        return AdminToken::from_file(path)
            .with_context(|| format!("reading the admin token file {}", path.display()));
    }
    Ok(std::env::var("SADOMAP_ADMIN_TOKEN")
        .ok()
        .and_then(|t| AdminToken::new(&t)))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// `sadomap serve`
pub fn serve(g: &Global, args: &ServeArgs, settings: &Settings) -> Result<ExitCode> {
    let config = config(args, settings.serve(&ServerConfig::default())?.value);
    config.validate()?;
    let token = admin_token(args)?;
    let store: Arc<dyn sadomap_store::Store> = Arc::from(open_store(g)?);
    let state = AppState::new(store, config.clone(), token).context("loading the index")?;
    if let Some(socket) = &args.supervisor_socket {
        state.set_supervision(Arc::new(crate::supervision::SocketSupervision::new(
            socket.clone(),
            g,
        )));
    }
    // Under `sadomap up` the supervisor's socket comes as fd 3; else bind --listen.
    let listener = match sadomap_supervisor::inherited_listener()
        .context("adopting the listening socket passed by the supervisor")?
    {
        Some(l) => l,
        None => std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("listening on {}", config.listen))?,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!(
        "serving {} places on {scheme}://{} (data version {})",
        state.index().len(),
        listener.local_addr().unwrap_or(config.listen),
        state.index().data_version()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.health_listen {
        None => rt.block_on(sadomap_server::serve(state, listener, shutdown_signal()))?,
        Some(addr) => {
            let health = rt
                .block_on(health_listener(addr))
                .with_context(|| format!("listening for health probes on {addr}"))?;
            // One signal stops both listeners.
            let (tx, rx) = tokio::sync::watch::channel(false);
            let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            rt.block_on(async {
                tokio::spawn(async move {
                    shutdown_signal().await;
                    let _ = tx.send(true);
                });
                let (main, probe) = tokio::join!(
                    sadomap_server::serve(state.clone(), listener, stopped(rx.clone())),
                    sadomap_server::serve(state, health, stopped(rx)),
                );
                main.and(probe)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Binds `addr` with SO_REUSEPORT (see `--health-listen`).
async fn health_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(128)?.into_std()
}
