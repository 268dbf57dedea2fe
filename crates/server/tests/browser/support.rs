//! Helpers of the browser test: the server on a demo store, chromedriver, a plain HTTP
//! client, what the page shows, and poll-until-condition waits.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::Utc;
use fantoccini::{Client, ClientBuilder};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sadomap_core::{demo_places, Region};
use sadomap_server::{AppState, RateLimitConfig, ServerConfig};
use sadomap_store::{import_places, SqliteStore};
use serde_json::{json, Value};

/// Demo places in the store: enough for clusters.
pub(crate) const PLACES: u64 = 400;
/// The server's largest page, below [`PLACES`] so that the page must follow the cursor.
pub(crate) const PAGE: usize = 150;

/// Kills and reaps a child process when dropped.
pub(crate) struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

/// chromedriver and the browser, or `None` (skip) when either is missing.
pub(crate) fn tools() -> Option<(PathBuf, PathBuf)> {
    let driver = which(&["chromedriver"]);
    let browser = which(&["chromium", "chromium-browser", "google-chrome"]);
    match (driver, browser) {
        (Some(d), Some(b)) => Some((d, b)),
        (d, b) => {
            let why = format!(
                "the browser test needs chromedriver ({}) and chromium ({}); install Debian's chromium and chromium-driver",
                if d.is_some() { "found" } else { "missing" },
                if b.is_some() { "found" } else { "missing" },
            );
            assert!(
                std::env::var("SADOMAP_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{why}"
            );
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// Polls `f` every 100 ms until it gives `Some`, or panics after `secs` naming `what`.
pub(crate) async fn until<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running server; stops when dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

pub(crate) fn start_server(leaflet_dir: Option<PathBuf>) -> Server {
    start_server_with(leaflet_dir, None)
}

pub(crate) fn start_server_with(leaflet_dir: Option<PathBuf>, tile_url: Option<String>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let places = demo_places(Region::sado(), PLACES, 7).collect();
    import_places(&*store, places, Region::sado(), Utc::now()).unwrap();
    let config = ServerConfig {
        rate_limit: RateLimitConfig {
            per_second: 0.0,
            burst: 1,
        },
        leaflet_dir,
        tile_url,
        tile_attribution: Some("<b>tiles</b> & test".into()),
        max_limit: PAGE,
        ..ServerConfig::default()
    };
    let state = AppState::new(store, config, None).unwrap();
    serve_state(state, dir)
}

/// A server with the admin token `token` showing `supervision` at `/admin/status`.
pub(crate) fn start_supervised_server(
    token: &str,
    supervision: Arc<dyn sadomap_server::Supervision>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let state = AppState::new(
        store,
        ServerConfig::default(),
        sadomap_server::AdminToken::new(token),
    )
    .unwrap();
    assert!(state.set_supervision(supervision));
    serve_state(state, dir)
}

fn serve_state(state: AppState, dir: tempfile::TempDir) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sadomap_server::serve(state, listener, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        _stop: tx,
        _dir: dir,
    }
}

/// GETs JSON from the server with a plain HTTP client.
pub(crate) async fn api(addr: SocketAddr, path_and_query: &str) -> Value {
    let (status, _, body) = get(addr, path_and_query, None).await;
    assert_eq!(status, 200, "{path_and_query}");
    serde_json::from_slice(&body).unwrap()
}

/// A plain GET, optionally with `If-None-Match`: (status, headers, body).
pub(crate) async fn get(
    addr: SocketAddr,
    path_and_query: &str,
    if_none_match: Option<&str>,
) -> (u16, axum::http::HeaderMap, Bytes) {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, Empty<Bytes>>(HttpConnector::new());
    let mut req = axum::http::Request::get(format!("http://{addr}{path_and_query}"));
    if let Some(tag) = if_none_match {
        req = req.header("if-none-match", tag);
    }
    let res = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

/// with a location, the places).
pub(crate) async fn api_counts(addr: SocketAddr, query: &str) -> (u64, u64, Vec<Value>) {
    let sep = if query.is_empty() { "" } else { "&" };
    let base = format!("/v1/places?{query}{sep}limit={PAGE}&total=true");
    let first = api(addr, &base).await;
    let total = first["total"].as_u64().unwrap();
    let mut places = first["places"].as_array().unwrap().clone();
    let mut next = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(cursor) = next {
        let v = api(addr, &format!("{base}&cursor={cursor}")).await;
        places.extend(v["places"].as_array().unwrap().iter().cloned());
        next = v["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(places.len() as u64, total, "the pages add up to the total");
    let located = places.iter().filter(|p| !p["location"].is_null()).count() as u64;
    (total, located, places)
}

pub(crate) async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, Vec::new()).await.unwrap()
}

/// What the page shows now: its last query, list items, the places the markers stand for.
pub(crate) struct Shown {
    pub(crate) query: String,
    pub(crate) loaded: u64,
    pub(crate) list: u64,
    pub(crate) on_map: u64,
    pub(crate) count_text: String,
}

pub(crate) async fn shown(c: &Client) -> Option<Shown> {
    let v = js(
        c,
        "const p = document.getElementById('results-panel');
         if (!p.dataset.loaded || p.getAttribute('aria-busy') !== 'false') return null;
         const sum = [...document.querySelectorAll('.leaflet-marker-icon[data-count]')]
             .reduce((s, e) => s + Number(e.dataset.count), 0);
         return {query: p.dataset.query, loaded: Number(p.dataset.loaded),
                 list: document.querySelectorAll('#results > li').length, on_map: sum,
                 count: document.getElementById('count').textContent};",
    )
    .await;
    if v.is_null() {
        return None;
    }
    Some(Shown {
        query: v["query"].as_str()?.to_owned(),
        loaded: v["loaded"].as_u64()?,
        list: v["list"].as_u64()?,
        on_map: v["on_map"].as_u64()?,
        count_text: v["count"].as_str()?.to_owned(),
    })
}

/// Waits until the page has loaded a query holding every pair of `want` (and, when given,
/// a load newer than `after`).
pub(crate) async fn loaded(c: &Client, want: &[(&str, &str)], after: Option<u64>) -> Shown {
    until(20, &format!("the page to load {want:?}"), || async {
        let s = shown(c).await?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&s.query).ok()?;
        let has = want
            .iter()
            .all(|(k, v)| pairs.iter().any(|(pk, pv)| pk == k && pv == v));
        (has && after.is_none_or(|a| s.loaded > a)).then_some(s)
    })
    .await
}

/// Checks that the list and the markers show what the API answers for the page's query.
pub(crate) async fn same_as_api(addr: SocketAddr, s: &Shown) -> Vec<Value> {
    let (total, located, v) = api_counts(addr, &s.query).await;
    assert_eq!(s.list, total, "list items for {:?}", s.query);
    assert_eq!(s.on_map, located, "places on the map for {:?}", s.query);
    assert!(
        s.count_text.contains(&total.to_string()),
        "{:?} announces {total}",
        s.count_text
    );
    v
}

pub(crate) fn shots_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn screenshot(c: &Client, name: &str) {
    let errors = js(c, "return document.documentElement.dataset.jsErrors || '0'").await;
    assert_eq!(errors, "0", "script errors on the page before {name}");
    let png = c.screenshot().await.unwrap();
    let path = shots_dir().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

pub(crate) async fn connect(driver: &Path, browser: &Path) -> (Reaped, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Reaped(child);
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": browser,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,860", "--lang=ja",
                     "--no-first-run", "--disable-extensions"],
        },
    }))
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let client = until(30, "chromedriver to start a session", || {
        let caps = caps.clone();
        let url = url.clone();
        async move {
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
                .ok()
        }
    })
    .await;
    (guard, client)
}
