//! Real sockets on the loopback: plain HTTP with a graceful stop, and HTTPS whose certificate is
//! reloaded when its files change (self-signed certificates made here with rcgen).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sadomap_server::{serve, AppState, ServerConfig, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::{config, store};

/// Starts `serve` on an ephemeral port; returns the address, the stop sender and the task.
fn start(
    config: ServerConfig,
) -> (
    SocketAddr,
    AppState,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), sadomap_server::ServeError>>,
) {
    let state = AppState::new(store(50), config, None).expect("state");
    start_with(state)
}

fn start_with(
    state: AppState,
) -> (
    SocketAddr,
    AppState,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), sadomap_server::ServeError>>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(state.clone(), listener, async {
        let _ = rx.await;
    }));
    (addr, state, tx, task)
}

async fn http_get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    path: &str,
) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// Retries `f` until it gives `Some`, or panics after `secs`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_serves_follows_the_store_and_stops_gracefully() {
    let st = store(50);
    let c = ServerConfig {
        refresh_interval_ms: 50,
        ..config()
    };
    let (addr, _, stop, task) = start_with(AppState::new(st.clone(), c, None).expect("state"));
    let body = until(10, "the server to answer", || async {
        let s = TcpStream::connect(addr).await.ok()?;
        Some(http_get(s, "/v1/stats").await)
    })
    .await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"total\":53"), "{body}");
    // The background refresh picks up new data without a restart.
    let more: Vec<sadomap_core::Place> =
        sadomap_core::demo_places(sadomap_core::Region::sado(), 7, 42).collect();
    sadomap_store::import_places(&*st, more, sadomap_core::Region::sado(), chrono::Utc::now())
        .expect("import");
    until(10, "the index to follow the store", || async {
        let s = TcpStream::connect(addr).await.ok()?;
        http_get(s, "/v1/stats")
            .await
            .contains("\"total\":60")
            .then_some(())
    })
    .await;
    stop.send(()).expect("server alive");
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("stops within the grace period")
        .expect("task")
        .expect("serve ok");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

/// The drain answers what clients already sent: a connection accepted before the stop whose
/// request comes after it, and a keep-alive connection idle at the stop, are both served (with
/// `connection: close`); no new connection is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_answers_requests_on_connections_open_at_the_stop() {
    let (addr, _, stop, task) = start(config());
    let mut warm = until(10, "the server to answer", || async {
        TcpStream::connect(addr).await.ok()
    })
    .await;
    // Keep-alive: one answered request, then idle.
    warm.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 4096];
    let n = warm.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Accepted, nothing sent yet.
    let fresh = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).expect("server alive");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = http_get(fresh, "/v1/stats").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let again = http_get(warm, "/health").await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert!(
        again.to_ascii_lowercase().contains("connection: close"),
        "{again}"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no new connection after the stop"
    );
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("stops within the grace period")
        .expect("task")
        .expect("serve ok");
}

fn write_cert(dir: &Path) -> Vec<u8> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    // Key first: the watcher loads when both files are in place.
    std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).expect("write key");
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).expect("write cert");
    ck.cert.der().to_vec()
}

/// Connects trusting only `cert`; `Some(presented certificate)` when the handshake succeeds.
async fn handshake(addr: SocketAddr, cert: &[u8]) -> Option<(Vec<u8>, String)> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(cert.to_vec())).ok()?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.ok()?;
    let name = ServerName::try_from("localhost").ok()?;
    let tls = TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .ok()?;
    let presented = tls.get_ref().1.peer_certificates()?.first()?.to_vec();
    Some((presented, http_get(tls, "/health").await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_and_reloads_changed_certificate_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = write_cert(dir.path());
    let c = ServerConfig {
        tls: Some(TlsConfig {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            poll_interval_ms: 50,
        }),
        shutdown_grace_ms: 1000,
        ..config()
    };
    let (addr, state, stop, task) = start(c);
    let (presented, body) = until(10, "the TLS server", || handshake(addr, &first)).await;
    assert_eq!(presented, first);
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"ok\""), "{body}");

    // Different modification times even on coarse clocks.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = write_cert(dir.path());
    assert_ne!(first, second);
    let (presented, _) = until(20, "the new certificate", || handshake(addr, &second)).await;
    assert_eq!(presented, second);
    assert!(
        handshake(addr, &first).await.is_none(),
        "the old one is gone"
    );
    assert!(state.metrics().tls_reloads.load(Ordering::Relaxed) >= 1);

    stop.send(()).expect("server alive");
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("stops")
        .expect("task")
        .expect("serve ok");
}
