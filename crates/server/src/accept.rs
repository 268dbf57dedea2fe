//! The accept loop: one task per connection (plain or TLS, HTTP/1.1 or HTTP/2), and a drain that
//! loses no request a client has already sent.
//!
//! Why not `axum::serve` or `axum_server`: both close every idle connection the moment the
//! drain starts, and "idle" includes a connection accepted a moment ago whose request is still in
//! the socket buffer, unread. On a socket shared by two processes (`sadomap up`), a client's
//! request sent just before a restart then fails with a reset although the other process was
//! ready to answer. Here the drain stops accepting at once (connections still in the backlog go
//! to the other process), then gives each open connection that has no request in hand up to
//! [`IDLE_WAIT`] to send one: it is answered with `Connection: close` (HTTP/2: GOAWAY) and the
//! connection closed. A connection with a request in hand closes after its response. Nothing
//! outlives the grace period.
//!
//! Concurrency contract: [`run`] returns once the listener is closed and every connection task
//! has ended (at the latest `grace` after the stop).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long a draining connection with no request in hand waits for one.
pub(crate) const IDLE_WAIT: Duration = Duration::from_millis(1_000);

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and serves `app` on each until `stop` turns true, then
/// drains (see the module docs) for at most `grace`.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut conns = JoinSet::new();
    let mut stopping = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stopping) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Small responses go out at once rather than waiting for more to send.
                    let _ = tcp.set_nodelay(true);
                    let (app, tls, stop) = (app.clone(), tls.clone(), stop.clone());
                    conns.spawn(async move {
                        match tls {
                            None => connection(tcp, peer, app, stop, grace).await,
                            Some(tls) => {
                                let acceptor = tokio_rustls::TlsAcceptor::from(tls.get_inner());
                                let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                                match shake.await {
                                    Ok(Ok(stream)) => connection(stream, peer, app, stop, grace).await,
                                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                }
                            }
                        }
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::timeout_at(deadline, conns.join_next())
        .await
        .is_ok_and(|c| c.is_some())
    {}
    // Past the grace period: whatever is left is cut off.
    conns.abort_all();
}

/// Serves one connection; see the module docs for the drain.
async fn connection<S>(
    io: S,
    peer: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let (on_request, on_response) = (activity.clone(), activity.clone());
    let service = app
        .map_request(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            on_request.in_flight.fetch_add(1, Ordering::SeqCst);
            on_request.arrived.notify_waiters();
            req
        })
        .map_response(move |res| {
            on_response.in_flight.fetch_sub(1, Ordering::SeqCst);
            res
        });
    let builder = Builder::new(TokioExecutor::new());
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = stopped(&mut stop) => {}
    }
    let deadline = tokio::time::Instant::now() + grace;
    // With a request in hand, close after its response. Otherwise read on until a request comes
    // (registered before looking, so one arriving in between is not missed) or the wait ends.
    let arrived = activity.arrived.notified();
    tokio::pin!(arrived);
    arrived.as_mut().enable();
    if activity.in_flight.load(Ordering::SeqCst) == 0 {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = arrived => {}
            _ = tokio::time::sleep(IDLE_WAIT.min(grace)) => {}
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout_at(deadline, conn).await;
}

/// What a connection is doing, as its service sees it.
#[derive(Default)]
struct Activity {
    /// Requests whose response head has not been produced yet.
    in_flight: AtomicUsize,
    /// Woken (waiters only, no stored permit) when a request arrives.
    arrived: Notify,
}

/// Resolves once `rx` says stop (or its sender is gone). Drops the borrow guard before
/// returning, so the future stays `Send`.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
