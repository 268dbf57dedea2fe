//! The map page: `/` (the HTML, answered by [`index`], which the operations routes call),
//! `/assets/{file}` (its scripts, style sheet, the island outline and the page configuration)
//! and Leaflet under `/vendor/leaflet/{*path}`.
//!
//! Everything is compiled into the binary, Leaflet included (1.6.0 as Debian's `libjs-leaflet`
//! builds it, BSD-2-Clause, see `NOTICE`), so the page works on a machine with nothing
//! installed; a configured Leaflet directory replaces the built-in copy. Each answer carries an
//! ETag (304 when the client holds it) and `Cache-Control: no-cache` for the page's own files
//! (they are not fingerprinted, so browsers revalidate) or a day for Leaflet. Files from a
//! Leaflet directory are read per request after a lexical check of the path: plain names (`[A-Za-z0-9._-]`, never starting with
//! a dot) joined by `/`, with a known extension, so no request reaches outside the directory.
//! The page holds no secret: its configuration (`/assets/config.json`) is the tile URL, its
//! attribution and the API's largest page. `/` carries a Content-Security-Policy that allows
//! scripts, styles and requests from this origin only (images also from the tile host), so
//! nothing the API returns can run as script. Without tiles the map draws the island outline
//! from `data/regions/sado/island.geojson` (Natural Earth), so it works with no network.

use std::path::{Path as FsPath, PathBuf};
use std::time::UNIX_EPOCH;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;

/// The page itself.
const INDEX_HTML: &[u8] = include_bytes!("../assets/index.html");

/// One compiled-in file under `/assets/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page's own files.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "map.js",
        content_type: JS,
        body: include_bytes!("../assets/map.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: JS,
        body: include_bytes!("../assets/i18n.js"),
    },
    Asset {
        name: "status.js",
        content_type: JS,
        body: include_bytes!("../assets/status.js"),
    },
    Asset {
        name: "status.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/status.css"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/style.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/favicon.svg"),
    },
    Asset {
        name: "island.geojson",
        content_type: "application/geo+json",
        body: include_bytes!("../../../data/regions/sado/island.geojson"),
    },
];

/// The built-in Leaflet, served when no directory is configured.
const LEAFLET: &[Asset] = &[
    Asset {
        name: "leaflet.js",
        content_type: JS,
        body: include_bytes!("../assets/vendor/leaflet/leaflet.js"),
    },
    Asset {
        name: "leaflet.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/vendor/leaflet/leaflet.css"),
    },
    Asset {
        name: "images/layers.png",
        content_type: "image/png",
        body: include_bytes!("../assets/vendor/leaflet/images/layers.png"),
    },
    Asset {
        name: "images/layers-2x.png",
        content_type: "image/png",
        body: include_bytes!("../assets/vendor/leaflet/images/layers-2x.png"),
    },
    Asset {
        name: "images/marker-icon.png",
        content_type: "image/png",
        body: include_bytes!("../assets/vendor/leaflet/images/marker-icon.png"),
    },
    Asset {
        name: "images/marker-icon-2x.png",
        content_type: "image/png",
        body: include_bytes!("../assets/vendor/leaflet/images/marker-icon-2x.png"),
    },
    Asset {
        name: "images/marker-shadow.png",
        content_type: "image/png",
        body: include_bytes!("../assets/vendor/leaflet/images/marker-shadow.png"),
    },
];

/// Extensions served from the Leaflet directory, with their content types.
const LEAFLET_TYPES: &[(&str, &str)] = &[
    ("js", JS),
    ("css", "text/css; charset=utf-8"),
    ("png", "image/png"),
    ("svg", "image/svg+xml"),
    ("map", "application/json"),
];

/// The page's routes (`/` itself is routed by the operations module through [`index`]).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/assets/config.json", get(config_get))
        .route("/assets/{file}", get(assets_get))
        .route("/vendor/leaflet/{*path}", get(leaflet_get))
}

fn fnv64(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Whether the client already holds `etag`.
fn holds(headers: &HeaderMap, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let want = strip(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || strip(t) == want)
}

/// 200 with `body`, or 304 when the client holds it; ETag and Cache-Control either way.
fn respond(
    headers: &HeaderMap,
    content_type: &'static str,
    etag: &str,
    cache_control: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let mut r = if holds(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(body.into());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub(crate) fn static_response(
    headers: &HeaderMap,
    content_type: &'static str,
    body: &'static [u8],
) -> Response {
    let etag = format!("\"{:016x}\"", fnv64(body));
    respond(headers, content_type, &etag, "no-cache", body)
}

/// Checks a tile URL template: http(s), with `{z}`, `{x}` and `{y}`, and nothing that could
/// break out of the Content-Security-Policy or an attribute.
pub(crate) fn check_tile_url(u: &str) -> Result<(), String> {
    if tile_origin(u).is_none() {
        return Err(format!(
            "{u:?} is not an http(s) URL template with a plain host (e.g. https://tile.example/{{z}}/{{x}}/{{y}}.png)"
        ));
    }
    for part in ["{z}", "{x}", "{y}"] {
        if !u.contains(part) {
            return Err(format!("{u:?} has no {part}"));
        }
    }
    if u.chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\;,`".contains(c))
    {
        return Err(format!("{u:?} holds a character not allowed in a tile URL"));
    }
    Ok(())
}

/// The CSP source of a tile URL template: `https://host[:port]`, `{s}` as a `*.` wildcard.
fn tile_origin(u: &str) -> Option<String> {
    let (scheme, rest) = u.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split('/').next().unwrap_or("");
    let host = host.replace("{s}.", "*.");
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-:".contains(c);
    let ok = !host.is_empty()
        && host.trim_start_matches("*.").chars().all(plain)
        && !host.trim_start_matches("*.").is_empty();
    ok.then(|| format!("{scheme}://{host}"))
}

/// The page's Content-Security-Policy: only this origin (and the tile host, when configured).
pub(crate) fn csp(s: &AppState) -> String {
    let tiles = s
        .config()
        .tile_url
        .as_deref()
        .and_then(tile_origin)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:{tiles}; connect-src 'self'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The map page at `/`.
pub(crate) fn index(s: &AppState, headers: &HeaderMap) -> Response {
    let mut r = static_response(headers, "text/html; charset=utf-8", INDEX_HTML);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp(s)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    r
}

async fn assets_get(
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let a = ASSETS
        .iter()
        .find(|a| a.name == file)
        .ok_or_else(|| ApiError::not_found(format!("no asset named {file:?}")))?;
    Ok(static_response(&headers, a.content_type, a.body))
}

/// Whether Leaflet can be served: the built-in copy, or a configured directory holding
/// `leaflet.js`.
fn leaflet_present(dir: Option<&FsPath>) -> bool {
    dir.is_none_or(|d| d.join("leaflet.js").is_file())
}

async fn config_get(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let c = s.config();
    let body = json!({
        "leaflet": leaflet_present(c.leaflet_dir.as_deref()),
        "tile_url": c.tile_url,
        "tile_attribution": c.tile_attribution,
        "max_limit": c.max_limit,
    })
    .to_string();
    let etag = format!("\"{:016x}\"", fnv64(body.as_bytes()));
    Ok(respond(
        &headers,
        "application/json",
        &etag,
        "no-cache",
        body,
    ))
}

/// `path` as a relative path of plain names with a served extension, or `None`.
fn safe_relative(path: &str) -> Option<(PathBuf, &'static str)> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 4 {
        return None;
    }
    let plain = |p: &&str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.len() <= 100
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if !parts.iter().all(plain) {
        return None;
    }
    let ext = parts.last()?.rsplit_once('.')?.1;
    let ctype = LEAFLET_TYPES.iter().find(|(e, _)| *e == ext)?.1;
    Some((parts.iter().collect(), ctype))
}

async fn leaflet_get(
    State(s): State<AppState>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let missing = || ApiError::not_found(format!("no map library file {path:?}"));
    let Some(dir) = s.config().leaflet_dir.as_ref() else {
        let a = LEAFLET
            .iter()
            .find(|a| a.name == path)
            .ok_or_else(missing)?;
        let etag = format!("\"{:016x}\"", fnv64(a.body));
        return Ok(respond(
            &headers,
            a.content_type,
            &etag,
            "public, max-age=86400",
            a.body,
        ));
    };
    let (rel, ctype) = safe_relative(&path).ok_or_else(missing)?;
    let file = dir.join(rel);
    let meta = tokio::fs::metadata(&file).await.map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(missing());
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{mtime:x}\"", meta.len());
    if holds(&headers, &etag) {
        return Ok(respond(&headers, ctype, &etag, "public, max-age=86400", ""));
    }
    let body = tokio::fs::read(&file).await.map_err(|e| {
        tracing::warn!(file = %file.display(), error = %e, "reading a Leaflet file");
        missing()
    })?;
    Ok(respond(
        &headers,
        ctype,
        &etag,
        "public, max-age=86400",
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_with_known_extensions_pass() {
        let (p, t) = safe_relative("leaflet.js").unwrap();
        assert_eq!((p, t), (PathBuf::from("leaflet.js"), JS));
        assert_eq!(safe_relative("images/layers.png").unwrap().1, "image/png");
        for bad in [
            "../secret.js",
            "images/../../x.js",
            ".hidden.js",
            "/etc/passwd",
            "a//b.js",
            "leaflet",
            "leaflet.js.gz",
            "a\\b.js",
            "a b.js",
            "",
            "images/",
            "a/b/c/d/e.js",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn tile_urls_are_checked_and_give_a_csp_origin() {
        let u = "https://{s}.tile.example.org/{z}/{x}/{y}.png";
        assert!(check_tile_url(u).is_ok());
        assert_eq!(
            tile_origin(u).as_deref(),
            Some("https://*.tile.example.org")
        );
        assert_eq!(
            tile_origin("http://127.0.0.1:8081/{z}/{x}/{y}.png").as_deref(),
            Some("http://127.0.0.1:8081")
        );
        for bad in [
            "ftp://x/{z}/{x}/{y}",
            "https://x/{z}/{x}.png",
            "https://x/{z}/{x}/{y}.png; script-src *",
            "https:///{z}/{x}/{y}",
            "https://a'b/{z}/{x}/{y}",
        ] {
            assert!(check_tile_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_asset_is_named_once_and_the_page_links_them() {
        // Each script and style sheet is linked by the map page or the status page.
        let pages = [
            std::str::from_utf8(INDEX_HTML).unwrap(),
            include_str!("../assets/status.html"),
        ];
        for a in ASSETS {
            assert_eq!(ASSETS.iter().filter(|b| b.name == a.name).count(), 1);
            if a.name.ends_with(".js") || a.name.ends_with(".css") {
                let link = format!("/assets/{}", a.name);
                assert!(pages.iter().any(|p| p.contains(&link)), "{}", a.name);
            }
        }
        let mut h = HeaderMap::new();
        let etag = format!("\"{:016x}\"", fnv64(INDEX_HTML));
        assert!(!holds(&h, &etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&etag).unwrap());
        assert!(holds(&h, &etag));
    }
}
