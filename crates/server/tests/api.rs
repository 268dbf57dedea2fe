//! The HTTP API through `oneshot` (no socket) over a store of demo places, plus real sockets
//! (plain and TLS with certificate reload) in `socket`.

#[path = "api/socket.rs"]
mod socket;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use sadomap_core::{demo_places, Kind, Place, Region, WeekTime};
use sadomap_server::{app, AppState, RateLimitConfig, ServerConfig, ROUTES};
use sadomap_store::{import_places, SqliteStore, Store};
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "test-admin-token-0123456789";

/// A store of `n` demo places plus a few named for the synonym tests.
fn store(n: u64) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open_in_memory().expect("in-memory store"));
    let mut places: Vec<Place> = demo_places(Region::sado(), n, 1).collect();
    for (i, name) in ["蕎麦処 山", "寿司 一", "長三郎鮨"].iter().enumerate() {
        let mut p = Place::new(Kind::Restaurant, *name, format!("test:{i}"));
        p.address = Some("新潟県佐渡市両津湊1".into());
        places.push(p);
    }
    import_places(&*store, places, Region::sado(), Utc::now()).expect("demo import");
    store
}

fn config() -> ServerConfig {
    ServerConfig {
        rate_limit: RateLimitConfig {
            per_second: 0.0,
            burst: 1,
        },
        ..ServerConfig::default()
    }
}

fn setup_with(config: ServerConfig, token: Option<&str>) -> (Router, AppState, Arc<SqliteStore>) {
    let st = store(1000);
    let state = AppState::new(
        st.clone(),
        config,
        token.and_then(sadomap_server::AdminToken::new),
    )
    .expect("state");
    (app(state.clone()), state, st)
}

fn setup() -> Router {
    setup_with(config(), Some(TOKEN)).0
}

struct Res {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Res {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn send(app: &Router, req: Request<Body>) -> Res {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Res {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, uri: &str) -> Res {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.,:".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn places_filters_and_shape() {
    let app = setup();
    let r = get(
        &app,
        "/v1/places?kind=restaurant&district=両津&cuisine=sushi,ramen&total=true&limit=1000",
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let places = v["places"].as_array().unwrap();
    assert!(!places.is_empty());
    assert_eq!(v["total"].as_u64(), Some(places.len() as u64));
    for p in places {
        assert_eq!(p["kind"], "restaurant");
        assert_eq!(p["district"], "両津");
        assert!(["sushi", "ramen"].contains(&p["cuisine"].as_str().unwrap()));
        assert_eq!(p["demo"], true);
    }
    // Price range and rating.
    let v = get(
        &app,
        "/v1/places?price_min=2&price_max=3&min_rating=4&limit=1000",
    )
    .await
    .json();
    for p in v["places"].as_array().unwrap() {
        let lvl = p["price_level"].as_u64().unwrap();
        assert!((2..=3).contains(&lvl));
        assert!(p["rating"].as_f64().unwrap() >= 4.0);
    }
    // Near with a radius: sorted by distance, all within it.
    let v = get(&app, "/v1/places?near=38.08,138.44&radius=3000&limit=50")
        .await
        .json();
    let d: Vec<f64> = v["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["distance_m"].as_f64().unwrap())
        .collect();
    assert!(!d.is_empty() && d.windows(2).all(|w| w[0] <= w[1]) && d.iter().all(|&x| x <= 3000.0));
    // Bounding box and feature.
    let v = get(
        &app,
        "/v1/places?bbox=38.0,138.3,38.1,138.5&feature=free_parking&limit=1000",
    )
    .await
    .json();
    for p in v["places"].as_array().unwrap() {
        let (lat, lng) = (
            p["location"]["lat"].as_f64().unwrap(),
            p["location"]["lng"].as_f64().unwrap(),
        );
        assert!((38.0..=38.1).contains(&lat) && (138.3..=138.5).contains(&lng));
        assert!(p["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "free_parking"));
    }
}

#[tokio::test]
async fn text_search_folds_kana_and_expands_food_words() {
    let app = setup();
    let find = |q: &str| {
        let app = app.clone();
        let uri = format!("/v1/places?q={}&limit=1000", enc(q));
        async move { names(&get(&app, &uri).await.json()) }
    };
    let sushi = find("すし").await;
    assert!(sushi.iter().any(|n| n.contains('鮨')), "{sushi:?}");
    assert!(sushi.iter().any(|n| n.contains("寿司")), "{sushi:?}");
    assert_eq!(find("スシ").await, sushi);
    let soba = find("そば").await;
    assert!(soba.iter().any(|n| n.contains("蕎麦")), "{soba:?}");
    assert!(soba.iter().any(|n| n.contains("そば")), "{soba:?}");
    let ryotsu = get(
        &app,
        &format!("/v1/places?q={}&limit=5&total=true", enc("りょうつ")),
    )
    .await
    .json();
    assert!(ryotsu["total"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn open_at_is_tokyo_time_and_open_now_works() {
    let app = setup();
    // Monday 12:30 in Tokyo is Monday 03:30 UTC.
    let v = get(
        &app,
        "/v1/places?open_at=2026-05-04T12:30&limit=1000&total=true",
    )
    .await
    .json();
    let t: DateTime<Utc> = "2026-05-04T03:30:00Z".parse().unwrap();
    let week = WeekTime::from_utc(t);
    assert!(v["total"].as_u64().unwrap() > 0);
    let same = get(
        &app,
        "/v1/places?open_at=2026-05-04T12:30:00%2B09:00&limit=1000&total=true",
    )
    .await
    .json();
    assert_eq!(same["total"], v["total"]);
    let utc = get(
        &app,
        "/v1/places?open_at=2026-05-04T03:30:00Z&limit=1000&total=true",
    )
    .await
    .json();
    assert_eq!(utc["total"], v["total"]);
    assert_eq!(week.day.number(), 1);
    for p in v["places"].as_array().unwrap() {
        assert!(p["hours"].is_object(), "only places with hours match");
    }
    let now = get(&app, "/v1/places?open_now=true&limit=1000")
        .await
        .json();
    for p in now["places"].as_array().unwrap() {
        assert_eq!(p["open_now"], true);
    }
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_naming_it() {
    let app = setup();
    let cases = [
        ("nope=1", "nope"),
        ("limit=1&limit=2", "limit"),
        ("kind=bus", "kind"),
        ("district=%E6%9D%B1%E4%BA%AC", "district"),
        ("cuisine=pizza", "cuisine"),
        ("price_min=0", "price_min"),
        ("price_max=x", "price_max"),
        ("price_min=4&price_max=1", "price_max"),
        ("min_rating=5.5", "min_rating"),
        ("min_rating=NaN", "min_rating"),
        ("open_now=perhaps", "open_now"),
        ("open_at=2026-13-01T10:00", "open_at"),
        ("open_now=true&open_at=2026-05-04T12:30", "open_at"),
        ("feature=pool", "feature"),
        ("q=", "q"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=38.1,138,38.0,139", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("near=38", "near"),
        ("near=91,138", "near"),
        ("near=38,138&radius=-5", "radius"),
        ("near=38,138&radius=inf", "radius"),
        ("radius=100", "radius"),
        ("sort=height", "sort"),
        ("sort=distance", "sort"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=1001", "limit"),
        ("cursor=AAAA", "cursor"),
        ("total=maybe", "total"),
        ("format=xml", "format"),
    ];
    for (query, field) in cases {
        let r = get(&app, &format!("/v1/places?{query}")).await;
        if query == "q=" {
            // An empty text is no filter, not an error.
            assert_eq!(r.status, 200, "{query}");
            continue;
        }
        assert_eq!(
            r.status,
            400,
            "{query}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert_eq!(v["field"], field, "{query}: {v}");
        assert!(v["error"].is_string() && v["message"].is_string());
    }
    // A cursor from another sort order names the cursor too.
    let v = get(&app, "/v1/places?sort=rating&limit=3").await.json();
    let c = v["next_cursor"].as_str().unwrap();
    let r = get(&app, &format!("/v1/places?sort=price&cursor={c}")).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["field"].clone()),
        (400, "cursor".into())
    );
    // Every other route rejects unknown parameters.
    for path in [
        "/v1/places/1",
        "/v1/districts",
        "/v1/cuisines",
        "/v1/stats",
        "/v1/export.geojson",
        "/v1/export/toilet.csv",
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
    ] {
        let r = get(&app, &format!("{path}?x=1")).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["field"], "x", "{path}");
    }
    let r = get(&app, "/v1/places/abc").await;
    assert_eq!(
        (r.status.as_u16(), r.json()["field"].clone()),
        (400, "id".into())
    );
    let r = get(&app, "/v1/places?%ZZ=1").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn cursor_paging_is_stable_and_complete() {
    let app = setup();
    for sort in ["id", "name", "rating", "price", "distance"] {
        let filter = format!("kind=restaurant,toilet&sort={sort}&near=38.02,138.36");
        let base = format!("/v1/places?{filter}&limit=97");
        let count = format!("/v1/places?{filter}&total=true&limit=0");
        let total = get(&app, &count).await.json()["total"].as_u64().unwrap();
        let mut seen = Vec::new();
        let mut uri = base.clone();
        loop {
            let v = get(&app, &uri).await.json();
            seen.extend(
                v["places"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_i64().unwrap()),
            );
            match v["next_cursor"].as_str() {
                Some(c) => uri = format!("{base}&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen.len() as u64, total, "{sort}");
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{sort}: no place twice");
    }
}

#[tokio::test]
async fn geojson_by_format_and_by_accept() {
    let app = setup();
    let r = get(&app, "/v1/places?format=geojson&limit=5&kind=toilet").await;
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/geo+json");
    let v = r.json();
    assert_eq!(v["type"], "FeatureCollection");
    let f = &v["features"][0];
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["geometry"]["type"], "Point");
    let c = f["geometry"]["coordinates"].as_array().unwrap();
    assert!(c[0].as_f64().unwrap() > 137.0, "longitude first");
    assert_eq!(f["properties"]["kind"], "toilet");
    let req = Request::get("/v1/places?limit=5&kind=toilet")
        .header(header::ACCEPT, "application/geo+json")
        .body(Body::empty())
        .unwrap();
    let r2 = send(&app, req).await;
    assert_eq!(r2.headers[header::CONTENT_TYPE], "application/geo+json");
    assert_eq!(r2.json(), v);
}

#[tokio::test]
async fn etag_304_and_the_response_cache_follow_the_data_version() {
    let (app, state, store) = setup_with(config(), None);
    let uri = "/v1/places?kind=parking&limit=10";
    let r = get(&app, uri).await;
    let etag = r.headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(r.headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let req = Request::get(uri)
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    let r2 = send(&app, req).await;
    assert_eq!(r2.status, StatusCode::NOT_MODIFIED);
    assert!(r2.body.is_empty());
    let m = get(&app, "/metrics").await;
    let text = String::from_utf8(m.body).unwrap();
    assert!(
        !text.contains("sadomap_response_cache_hits_total 0\n"),
        "the second request hit the cache"
    );
    // New data: a new version, a new ETag, the old one no longer matches.
    let extra: Vec<Place> = demo_places(Region::sado(), 20, 99).collect();
    import_places(&*store, extra, Region::sado(), Utc::now()).unwrap();
    assert!(state.refresh().await.unwrap());
    let req = Request::get(uri)
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    let r3 = send(&app, req).await;
    assert_eq!(r3.status, 200);
    assert_ne!(r3.headers[header::ETAG].to_str().unwrap(), etag);
    assert_eq!(
        r3.json()["data_version"].as_u64(),
        Some(store.data_version().unwrap())
    );
    let r = get(&app, "/v1/places/1").await;
    assert!(r.headers.contains_key(header::ETAG));
}

#[tokio::test]
async fn summaries_and_exports() {
    let app = setup();
    let v = get(&app, "/v1/districts").await.json();
    let sum: u64 = v["districts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["count"].as_u64().unwrap())
        .sum::<u64>()
        + v["unknown"].as_u64().unwrap()
        + v["outside"].as_u64().unwrap();
    let stats = get(&app, "/v1/stats").await.json();
    assert_eq!(sum, stats["total"].as_u64().unwrap());
    assert_eq!(stats["total"], 1003);
    assert_eq!(v["districts"][0]["name"], "両津");
    let c = get(&app, "/v1/cuisines").await.json();
    assert_eq!(c["cuisines"].as_array().unwrap().len(), 18);
    assert_eq!(c["marker_groups"].as_array().unwrap().len(), 8);
    let g = get(&app, "/v1/export.geojson").await;
    assert_eq!(g.headers[header::CONTENT_TYPE], "application/geo+json");
    assert_eq!(g.json()["features"].as_array().unwrap().len(), 1003);
    let csv = get(&app, "/v1/export/toilet.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = String::from_utf8(csv.body).unwrap();
    let toilets = stats["by_kind"]["toilet"].as_u64().unwrap() as usize;
    let header_cols = text.lines().next().unwrap().split(',').count();
    assert_eq!(header_cols, 20, "the toilets sheet layout");
    assert!(
        text.lines().count() > toilets,
        "a header and a row per toilet"
    );
    assert_eq!(get(&app, "/v1/export/bus.csv").await.status, 404);
    assert_eq!(get(&app, "/v1/places/999999").await.status, 404);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let c = ServerConfig {
        rate_limit: RateLimitConfig {
            per_second: 0.5,
            burst: 3,
        },
        ..ServerConfig::default()
    };
    let (app, _, _) = setup_with(c, None);
    for _ in 0..3 {
        assert_eq!(get(&app, "/v1/stats").await.status, 200);
    }
    let r = get(&app, "/v1/stats").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers[header::RETRY_AFTER], "2");
    assert_eq!(r.json()["error"], "rate_limited");
    assert_eq!(
        get(&app, "/health").await.status,
        200,
        "probes are never limited"
    );
    let m = String::from_utf8(get(&app, "/metrics").await.body).unwrap();
    assert!(m.contains("sadomap_rate_limited_requests_total 1"));
    assert!(m.contains("route=\"/v1/stats\",method=\"GET\",status=\"429\"} 1"));
}

async fn post_import(app: &Router, auth: Option<&str>, body: &str) -> Res {
    let mut req =
        Request::post("/v1/admin/imports").header(header::CONTENT_TYPE, "application/json");
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    send(app, req.body(Body::from(body.to_owned())).unwrap()).await
}

#[tokio::test]
async fn admin_needs_the_token_and_imports_in_the_background() {
    let (app, state, _) = setup_with(config(), Some(TOKEN));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("more.jsonl");
    let mut w =
        sadomap_store::JsonLinesWriter::new(std::fs::File::create(&file).unwrap(), "more.jsonl");
    for p in demo_places(Region::sado(), 25, 7) {
        w.write(&p).unwrap();
    }
    w.finish().unwrap();
    let body = serde_json::json!({"path": file}).to_string();

    let r = post_import(&app, None, &body).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
    let r = post_import(&app, Some("Bearer wrong"), &body).await;
    assert_eq!(r.status, 403);
    assert!(
        !String::from_utf8_lossy(&r.body).contains(TOKEN),
        "the token is never echoed"
    );
    let auth = format!("Bearer {TOKEN}");
    let r = post_import(&app, Some(&auth), "{\"path\": 1}").await;
    assert_eq!(r.status, 400);
    let huge = format!("{{\"path\": \"{}\"}}", "x".repeat(100 * 1024));
    let r = post_import(&app, Some(&auth), &huge).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].clone()),
        (413, "payload_too_large".into())
    );
    let req = Request::post("/v1/admin/imports")
        .header(header::AUTHORIZATION, &auth)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(send(&app, req).await.status, 415);
    let before = state.index().len();
    let r = post_import(&app, Some(&auth), &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let link = r.headers[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(link, r.json()["href"]);
    // Poll until the job ends (no fixed sleep).
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let req = Request::get(&link)
            .header(header::AUTHORIZATION, &auth)
            .body(Body::empty())
            .unwrap();
        let j = send(&app, req).await.json();
        if j["state"] == "succeeded" || j["state"] == "failed" {
            break j;
        }
        assert!(Instant::now() < deadline, "job did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["report"]["read"], 25);
    assert_eq!(
        state.index().len(),
        before + 25,
        "the index follows the import"
    );
    let req = Request::get("/v1/admin/jobs")
        .header(header::AUTHORIZATION, &auth)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, req).await.json()["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Without a configured token, admin is off.
    let (off, _, _) = setup_with(config(), None);
    let r = post_import(&off, Some(&auth), &body).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].clone()),
        (403, "admin_disabled".into())
    );
}

/// A supervisor stand-in: knows the service `api`, or is down.
struct FakeSupervision {
    down: bool,
}

impl sadomap_server::Supervision for FakeSupervision {
    fn overview(&self) -> Result<Value, sadomap_server::SupervisionError> {
        if self.down {
            return Err(sadomap_server::SupervisionError::Unavailable(
                "connection refused".into(),
            ));
        }
        Ok(serde_json::json!({
            "status": {"runtime": "local", "services": [{"name": "api", "instances": []}]},
            "events": [{"event": "scaled", "service": "worker", "from": 1, "to": 2}],
        }))
    }

    fn metrics(&self) -> Result<String, sadomap_server::SupervisionError> {
        if self.down {
            return Err(sadomap_server::SupervisionError::Unavailable("down".into()));
        }
        Ok("sadomap_supervisor_restarts_total{service=\"api\",reason=\"exited\"} 2\n".into())
    }

    fn restart(&self, service: &str) -> Result<(), sadomap_server::SupervisionError> {
        match (self.down, service) {
            (true, _) => Err(sadomap_server::SupervisionError::Unavailable("down".into())),
            (false, "api") => Ok(()),
            (false, s) => Err(sadomap_server::SupervisionError::UnknownService(s.into())),
        }
    }
}

async fn admin_req(app: &Router, method: &str, uri: &str, auth: bool) -> Res {
    let mut req = Request::builder().method(method).uri(uri);
    if auth {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn admin_status_shows_the_supervisor_behind_the_token() {
    let (alone, _, _) = setup_with(config(), Some(TOKEN));
    let r = admin_req(&alone, "GET", "/v1/admin/status", true).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].clone()),
        (404, "not_supervised".into())
    );
    // The page is a shell without data or secrets, so it needs no token.
    let page = get(&alone, "/admin/status").await;
    assert_eq!(page.status, 200);
    assert!(page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("/assets/status.js") && !html.contains(TOKEN));
    assert_eq!(get(&alone, "/assets/status.js").await.status, 200);
    let m = String::from_utf8(get(&alone, "/metrics").await.body).unwrap();
    assert!(
        !m.contains("sadomap_server_supervisor_up"),
        "not supervised"
    );

    let (app, state, _) = setup_with(config(), Some(TOKEN));
    assert!(state.set_supervision(Arc::new(FakeSupervision { down: false })));
    assert!(!state.set_supervision(Arc::new(FakeSupervision { down: true })));
    let r = admin_req(&app, "GET", "/v1/admin/status", false).await;
    assert_eq!(r.status, 401);
    let r = admin_req(&app, "GET", "/v1/admin/status?x=1", true).await;
    assert_eq!(r.json()["field"], "x");
    let r = admin_req(&app, "GET", "/v1/admin/status", true).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let v = r.json();
    assert_eq!(v["status"]["services"][0]["name"], "api");
    assert_eq!(v["events"][0]["to"], 2);
    assert_eq!(v["queues"], serde_json::json!([]), "filled in when missing");
    assert!(v["generated_at"]
        .as_str()
        .is_some_and(|t| DateTime::parse_from_rfc3339(t).is_ok()));

    let r = admin_req(&app, "POST", "/v1/admin/services/api/restart", false).await;
    assert_eq!(r.status, 401);
    let r = admin_req(&app, "POST", "/v1/admin/services/api/restart", true).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["accepted"], "rolling restart of api");
    let r = admin_req(&app, "POST", "/v1/admin/services/nope/restart", true).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].clone()),
        (404, "unknown_service".into())
    );
    let m = String::from_utf8(get(&app, "/metrics").await.body).unwrap();
    assert!(m.contains("sadomap_server_supervisor_up 1"), "{m}");
    assert!(m.contains("sadomap_supervisor_restarts_total{service=\"api\",reason=\"exited\"} 2"));

    let (down, state, _) = setup_with(config(), Some(TOKEN));
    state.set_supervision(Arc::new(FakeSupervision { down: true }));
    let r = admin_req(&down, "GET", "/v1/admin/status", true).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].clone()),
        (503, "supervisor_unavailable".into())
    );
    let r = admin_req(&down, "POST", "/v1/admin/services/api/restart", true).await;
    assert_eq!(r.status, 503);
    let m = String::from_utf8(get(&down, "/metrics").await.body).unwrap();
    assert!(m.contains("sadomap_server_supervisor_up 0"), "{m}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_they_answer() {
    let (app, state, _) = setup_with(config(), Some(TOKEN));
    state.set_supervision(Arc::new(FakeSupervision { down: false }));
    let doc = get(&app, "/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), ROUTES.len());
    for (method, path) in ROUTES {
        assert!(paths[*path][*method].is_object(), "{method} {path}");
        let uri = path
            .replace("{id}", "1")
            .replace("{kind}", "parking")
            .replace("{service}", "api");
        let req = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let r = send(&app, req).await;
        assert!(
            ![404, 405].contains(&r.status.as_u16()) || uri.contains("jobs/1"),
            "{method} {uri}: {}",
            r.status
        );
    }
    let r = get(&app, "/nowhere").await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].clone()),
        (404, "not_found".into())
    );
    let r = send(
        &app,
        Request::delete("/v1/places").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"], "method_not_allowed");
    assert!(r.headers.contains_key(header::ALLOW));
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let app = setup();
    assert_eq!(get(&app, "/health").await.json()["status"], "ok");
    let ready = get(&app, "/ready").await.json();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["places"], 1003);
    get(&app, "/v1/places?limit=1").await;
    let r = get(&app, "/metrics").await;
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let m = String::from_utf8(r.body).unwrap();
    for needle in [
        "sadomap_http_requests_total{route=\"/v1/places\",method=\"GET\",status=\"200\"} 1",
        "sadomap_http_request_duration_seconds_bucket{route=\"/v1/places\",le=\"+Inf\"} 1",
        "sadomap_index_places 1003",
        "sadomap_index_data_version 1",
        "sadomap_response_cache_misses_total",
        "# TYPE sadomap_index_size_bytes gauge",
    ] {
        assert!(m.contains(needle), "{needle} in\n{m}");
    }
}

#[tokio::test]
async fn compression_and_cors_when_configured() {
    let c = ServerConfig {
        cors_origins: vec!["https://map.example".into()],
        ..config()
    };
    let (app, _, _) = setup_with(c, None);
    let req = Request::get("/v1/export.geojson")
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(header::ORIGIN, "https://map.example")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://map.example"
    );
    let req = Request::get("/v1/stats")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .unwrap();
    assert!(!send(&app, req)
        .await
        .headers
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}
