//! The map page in headless Chromium, driven through WebDriver (chromedriver + fantoccini):
//! the real server on a socket over a SQLite store of demo places (with a small page size, so
//! the page must follow the cursor). Load the page, apply every filter, compare what the map
//! (markers and cluster counts) and the list show with the API's answer for the same query,
//! open an info window from the list, by mouse and by keyboard on a marker, switch to English,
//! restore the filters from the URL, sort by distance, a phone-sized screen, base tiles from a
//! configured URL, and a server without Leaflet. Screenshots go to `<target>/browser/*.png`.
//! A second test checks the page's files over plain HTTP (types, ETags, path traversal).
//!
//! Without chromedriver or chromium the browser test prints "skipped: …" and passes, unless
//! `SADOMAP_REQUIRE_SERVICES=1`, when it fails.

#[path = "browser/support.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use sadomap_server::ServerConfig;
use serde_json::json;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_with_types_etags_and_no_secret() {
    let server = start_server(ServerConfig::default().leaflet_dir);
    let addr = server.addr;
    let (status, h, body) = get(addr, "/", None).await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(page.contains("<html lang=\"ja\">"));
    let tag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(get(addr, "/", Some(&tag)).await.0, 304);
    assert_eq!(
        get(addr, "/?x=1", None).await.0,
        400,
        "the page takes no query"
    );

    let mut texts = page;
    for (file, ctype) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("map.js", "text/javascript; charset=utf-8"),
        ("i18n.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("island.geojson", "application/geo+json"),
        ("config.json", "application/json"),
    ] {
        let (status, h, body) = get(addr, &format!("/assets/{file}"), None).await;
        assert_eq!(
            (status, h["content-type"].to_str().unwrap()),
            (200, ctype),
            "{file}"
        );
        assert_eq!(h["cache-control"], "no-cache", "{file}");
        let tag = h["etag"].to_str().unwrap().to_owned();
        assert_eq!(
            get(addr, &format!("/assets/{file}"), Some(&tag)).await.0,
            304,
            "{file}"
        );
        texts.push_str(std::str::from_utf8(&body).unwrap());
    }
    // No key of any kind reaches the browser.
    for secret in ["AIza", "key=", "token", "Bearer"] {
        assert!(
            !texts.contains(secret),
            "the page's files contain {secret:?}"
        );
    }
    let config = api(addr, "/assets/config.json").await;
    assert_eq!(config["max_limit"], PAGE);
    assert!(
        config["tile_url"].is_null(),
        "no tiles by default: no network needed"
    );
    assert_eq!(get(addr, "/assets/nope.js", None).await.0, 404);

    // The built-in Leaflet (the default): served with a day's caching and an ETag.
    {
        assert_eq!(config["leaflet"], true);
        let (status, h, _) = get(addr, "/vendor/leaflet/leaflet.js", None).await;
        assert_eq!(
            (status, h["content-type"].to_str().unwrap()),
            (200, "text/javascript; charset=utf-8")
        );
        let tag = h["etag"].to_str().unwrap().to_owned();
        assert_eq!(
            get(addr, "/vendor/leaflet/leaflet.js", Some(&tag)).await.0,
            304
        );
        let (status, h, _) = get(addr, "/vendor/leaflet/images/layers.png", None).await;
        assert_eq!(
            (status, h["content-type"].to_str().unwrap()),
            (200, "image/png")
        );
    }
    for bad in [
        "/vendor/leaflet/../../../../etc/passwd",
        "/vendor/leaflet/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/vendor/leaflet/..%2f..%2f..%2fetc%2fpasswd",
        "/vendor/leaflet/%2fetc%2fpasswd",
        "/vendor/leaflet/leaflet.js.gz",
        "/vendor/leaflet/.hidden.js",
    ] {
        let (status, _, body) = get(addr, bad, None).await;
        assert_eq!(status, 404, "{bad}: {}", String::from_utf8_lossy(&body));
    }
    // A configured directory (Debian's libjs-leaflet, installed by CI) replaces the copy.
    let debian = Path::new("/usr/share/javascript/leaflet");
    if debian.join("leaflet.js").is_file() {
        let from_dir = start_server(Some(debian.to_path_buf()));
        let (status, h, body) = get(from_dir.addr, "/vendor/leaflet/leaflet.js", None).await;
        assert_eq!(status, 200);
        assert_eq!(h["cache-control"], "public, max-age=86400");
        assert_eq!(
            body.len() as u64,
            debian.join("leaflet.js").metadata().unwrap().len()
        );
    }
    let bare = start_server(Some(PathBuf::from("/nonexistent/leaflet")));
    assert_eq!(
        api(bare.addr, "/assets/config.json").await["leaflet"],
        false
    );
    assert_eq!(
        get(bare.addr, "/vendor/leaflet/leaflet.js", None).await.0,
        404
    );
}

/// The API's answer for the query the page last loaded, every page of it: (total, places
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_page_in_headless_chromium() {
    let Some((driver, browser)) = tools() else {
        return;
    };
    let server = start_server(ServerConfig::default().leaflet_dir);
    let bare = start_server(Some(PathBuf::from("/nonexistent/leaflet")));
    let addr = server.addr;
    let (_driver, c) = connect(&driver, &browser).await;
    // Run in a task so that a failed check still closes the browser before the panic goes on.
    let session = c.clone();
    let bare_addr = bare.addr;
    let outcome = tokio::spawn(async move { run(&session, addr, bare_addr).await }).await;
    let _ = c.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn run(c: &Client, addr: SocketAddr, bare: SocketAddr) {
    // Load: every place, in clusters and single markers, and in the list.
    c.goto(&format!("http://{addr}/")).await.unwrap();
    let s = loaded(c, &[], None).await;
    assert_eq!(s.query, "", "no filter at first");
    same_as_api(addr, &s).await;
    assert!(s.list >= PLACES, "{} places listed", s.list);
    let clusters = js(
        c,
        "return document.querySelectorAll('.leaflet-marker-icon.cluster').length",
    )
    .await;
    assert!(clusters.as_u64().unwrap() > 0, "the island view clusters");
    let a11y = js(
        c,
        "return [...document.querySelectorAll('.leaflet-marker-icon[data-count]')]
           .every(e => e.tabIndex === 0 && e.getAttribute('aria-label'))",
    )
    .await;
    assert_eq!(a11y, true, "every marker is focusable and named");
    let outline = js(c, "return document.querySelectorAll('path.leaflet-interactive, .leaflet-overlay-pane path').length").await;
    assert!(
        outline.as_u64().unwrap() >= 1,
        "the island outline is drawn"
    );
    screenshot(c, "map.png").await;

    // A point type: restaurants only.
    for kind in ["parking", "toilet"] {
        c.find(Locator::Css(&format!("input[name=kind][value={kind}]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    let s = loaded(c, &[("kind", "restaurant")], None).await;
    same_as_api(addr, &s).await;
    assert!(s.list > 0 && s.list < PLACES);

    // A cuisine: the commonest one.
    let cuisines = api(addr, "/v1/cuisines").await;
    let cuisine = cuisines["cuisines"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|x| x["count"].as_u64())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.find(Locator::Id("cuisine"))
        .await
        .unwrap()
        .select_by_value(&cuisine)
        .await
        .unwrap();
    let s = loaded(c, &[("kind", "restaurant"), ("cuisine", &cuisine)], None).await;
    let v = same_as_api(addr, &s).await;
    assert!(s.list > 0, "some {cuisine} restaurants");

    // Text: the first word of the first match's name.
    let name = v[0]["name"].as_str().unwrap();
    let word = name.split_whitespace().next().unwrap().to_owned();
    c.find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys(&word)
        .await
        .unwrap();
    let s = loaded(
        c,
        &[("kind", "restaurant"), ("cuisine", &cuisine), ("q", &word)],
        None,
    )
    .await;
    same_as_api(addr, &s).await;
    assert!(s.list > 0, "{word} finds its own place");

    // Open now (evaluated per minute: reload when the minute turned in between).
    c.find(Locator::Id("open_now"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let want = [
        ("kind", "restaurant"),
        ("cuisine", cuisine.as_str()),
        ("q", word.as_str()),
        ("open_now", "true"),
    ];
    let mut s = loaded(c, &want, None).await;
    for attempt in 0.. {
        let (total, located, _) = api_counts(addr, &s.query).await;
        if (s.list, s.on_map) == (total, located) || attempt == 3 {
            same_as_api(addr, &s).await;
            break;
        }
        js(
            c,
            "document.getElementById('filters').dispatchEvent(new Event('change'))",
        )
        .await;
        s = loaded(c, &want, Some(s.loaded)).await;
    }
    screenshot(c, "filtered.png").await;

    // Back to every restaurant of the cuisine, then open an info window from the list.
    c.find(Locator::Id("open_now"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("q"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    c.find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    let s = until(20, "the page to drop q and open_now", || async {
        let s = shown(c).await?;
        (!s.query.contains("q=") && !s.query.contains("open_now")).then_some(s)
    })
    .await;
    let v = same_as_api(addr, &s).await;
    let first = &v[0];
    let first_name = first["name"].as_str().unwrap().to_owned();
    assert_eq!(first["demo"], true);
    c.find(Locator::Css("#results > li:first-child button.item"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let detail = until(10, "the detail panel", || async {
        let e = c.find(Locator::Css("#detail .info-name")).await.ok()?;
        e.text().await.ok().filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(detail, first_name);
    let badge = c.find(Locator::Css("#detail .badge-demo")).await.unwrap();
    assert!(badge.is_displayed().await.unwrap());
    assert!(badge.text().await.unwrap().contains("デモデータ"));
    let popup = until(10, "the popup", || async {
        let e = c
            .find(Locator::Css(".leaflet-popup-content .info-name"))
            .await
            .ok()?;
        e.text().await.ok().filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(popup, first_name);
    let info = c
        .find(Locator::Css(".leaflet-popup-content .info"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for label in [
        "営業状況",
        "営業時間",
        "最終更新",
        "データ出典",
        "デモデータ",
    ] {
        assert!(
            info.contains(label),
            "the info window shows {label}: {info}"
        );
    }
    if let Some(phone) = first["phone"].as_str() {
        let tel = c
            .find(Locator::Css(".leaflet-popup-content a[href^='tel:']"))
            .await
            .unwrap();
        assert_eq!(tel.text().await.unwrap(), phone);
    }
    screenshot(c, "info.png").await;

    // The same info window from the marker itself (zoomed in, the place has its own marker).
    js(
        c,
        "document.querySelector('.leaflet-popup-close-button').click()",
    )
    .await;
    let id = first["id"].as_i64().unwrap();
    until(10, "the popup to close", || async {
        c.find(Locator::Css(".leaflet-popup"))
            .await
            .err()
            .map(|_| ())
    })
    .await;
    c.find(Locator::Css(&format!(
        ".leaflet-marker-icon[data-id='{id}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let popup = until(10, "the marker's popup", || async {
        let e = c
            .find(Locator::Css(".leaflet-popup-content .info-name"))
            .await
            .ok()?;
        e.text().await.ok()
    })
    .await;
    assert_eq!(popup, first_name);

    // By keyboard: Enter on the focused marker opens the popup and moves the focus into it;
    // Escape closes it and gives the focus back to the marker.
    js(
        c,
        "document.querySelector('.leaflet-popup-close-button').click()",
    )
    .await;
    let marker = c
        .find(Locator::Css(&format!(
            ".leaflet-marker-icon[data-id='{id}']"
        )))
        .await
        .unwrap();
    js(
        c,
        &format!("document.querySelector(\".leaflet-marker-icon[data-id='{id}']\").focus()"),
    )
    .await;
    marker.send_keys(&Key::Enter.to_string()).await.unwrap();
    until(10, "the focus in the popup", || async {
        let v = js(c, "const a = document.activeElement; return !!(a && a.closest('.leaflet-popup') && a.classList.contains('info-name'))").await;
        (v == true).then_some(())
    })
    .await;
    c.active_element()
        .await
        .unwrap()
        .send_keys(&Key::Escape.to_string())
        .await
        .unwrap();
    until(10, "the focus back on the marker", || async {
        let v = js(c, &format!("return !document.querySelector('.leaflet-popup') && document.activeElement.dataset.id === '{id}'")).await;
        (v == true).then_some(())
    })
    .await;

    // English.
    c.find(Locator::Id("lang"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(10, "English", || async {
        let v = js(c, "return document.documentElement.lang === 'en' && document.getElementById('results-heading').textContent").await;
        (v == "Results").then_some(())
    })
    .await;
    let badge = c
        .find(Locator::Css("#detail .badge-demo"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(badge.contains("Demo data"), "{badge}");
    let filters = c
        .find(Locator::Id("filters"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        filters.contains("Open now") && filters.contains("Cuisine"),
        "{filters}"
    );
    screenshot(c, "map-en.png").await;

    // The URL holds the filters: a fresh load of it restores them.
    let url = c.current_url().await.unwrap();
    let hash = url.fragment().unwrap_or("").to_owned();
    assert!(
        hash.contains("lang=en") && hash.contains(&format!("cuisine={cuisine}")),
        "{hash}"
    );
    c.goto("about:blank").await.unwrap();
    c.goto(url.as_str()).await.unwrap();
    let s = loaded(c, &[("kind", "restaurant"), ("cuisine", &cuisine)], None).await;
    same_as_api(addr, &s).await;
    let form = js(
        c,
        "return {cuisine: document.getElementById('cuisine').value,
                 parking: document.querySelector('input[name=kind][value=parking]').checked,
                 restaurant: document.querySelector('input[name=kind][value=restaurant]').checked,
                 lang: document.documentElement.lang}",
    )
    .await;
    assert_eq!(
        form,
        json!({"cuisine": cuisine, "parking": false, "restaurant": true, "lang": "en"})
    );

    // A hash edited in place (or followed from a link) applies too, and back again.
    js(c, "location.hash = '#kind=toilet&lang=en'").await;
    let s = loaded(c, &[("kind", "toilet")], None).await;
    assert!(!s.query.contains("cuisine"), "{}", s.query);
    same_as_api(addr, &s).await;
    let toilets_only = js(
        c,
        "return [...document.querySelectorAll('input[name=kind]')].map(b => b.checked)",
    )
    .await;
    assert_eq!(toilets_only, json!([false, false, true]));
    c.goto(url.as_str()).await.unwrap();
    let s = loaded(c, &[("kind", "restaurant"), ("cuisine", &cuisine)], None).await;
    same_as_api(addr, &s).await;

    // Sorted by distance from the map centre, then from the visitor (headless Chromium has no
    // position to give, so the page says so and falls back to the map centre).
    for (sort, notice) in [("distance-centre", false), ("distance-me", true)] {
        let before = shown(c).await.unwrap().loaded;
        c.find(Locator::Id("sort"))
            .await
            .unwrap()
            .select_by_value(sort)
            .await
            .unwrap();
        let s = loaded(c, &[("cuisine", &cuisine)], Some(before)).await;
        assert!(s.query.contains("near="), "{sort}: {}", s.query);
        let v = same_as_api(addr, &s).await;
        let d: Vec<f64> = v.iter().filter_map(|p| p["distance_m"].as_f64()).collect();
        assert_eq!(d.len(), v.len(), "every place has a distance");
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "nearest first");
        let meta = c
            .find(Locator::Css("#results > li:first-child .item-meta"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(meta.ends_with(" m") || meta.ends_with(" km"), "{meta}");
        let shown_notice = c
            .find(Locator::Id("notice"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap();
        if !notice {
            assert!(!shown_notice, "{sort}: no notice");
        }
    }
    let hash = c
        .current_url()
        .await
        .unwrap()
        .fragment()
        .unwrap_or("")
        .to_owned();
    assert!(
        hash.contains("sort=distance") && hash.contains("from=me"),
        "{hash}"
    );

    // The other filters: district, price range, minimum rating and a feature, all at once;
    // then "clear filters" goes back to everything.
    c.find(Locator::Id("sort"))
        .await
        .unwrap()
        .select_by_value("")
        .await
        .unwrap();
    for kind in ["parking", "toilet"] {
        c.find(Locator::Css(&format!("input[name=kind][value={kind}]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    let districts = api(addr, "/v1/districts").await;
    let district = districts["districts"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    for (id, value) in [
        ("district", district.as_str()),
        ("price_min", "1"),
        ("price_max", "3"),
        ("min_rating", "3"),
    ] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }
    c.find(Locator::Css("#features-box summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("input[name=feature][value=takeout]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let s = loaded(
        c,
        &[
            ("district", &district),
            ("price_min", "1"),
            ("price_max", "3"),
            ("min_rating", "3"),
            ("feature", "takeout"),
            ("cuisine", &cuisine),
        ],
        None,
    )
    .await;
    assert!(!s.query.contains("kind="), "every kind again: {}", s.query);
    same_as_api(addr, &s).await;
    let before = s.loaded;
    c.find(Locator::Id("reset"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let s = loaded(c, &[], Some(before)).await;
    assert_eq!(s.query, "");
    same_as_api(addr, &s).await;

    // A phone-sized screen: filters folded away behind a button.
    c.set_window_size(390, 844).await.unwrap();
    c.goto("about:blank").await.unwrap();
    c.goto(&format!("http://{addr}/")).await.unwrap();
    let s = loaded(c, &[], None).await;
    same_as_api(addr, &s).await;
    let toggle = c.find(Locator::Id("filters-toggle")).await.unwrap();
    assert_eq!(
        toggle.attr("aria-expanded").await.unwrap().as_deref(),
        Some("false")
    );
    assert!(!c
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    screenshot(c, "phone.png").await;
    toggle.click().await.unwrap();
    assert!(c
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    screenshot(c, "phone-filters.png").await;

    // Base tiles from a configured URL (here another local server that has none): Leaflet
    // asks for them, the CSP lets it, and the attribution shows as text.
    let tiled = start_server_with(
        ServerConfig::default().leaflet_dir,
        Some(format!("http://{bare}/tiles/{{z}}/{{x}}/{{y}}.png")),
    );
    c.goto(&format!("http://{}/", tiled.addr)).await.unwrap();
    loaded(c, &[], None).await;
    let tiles = until(10, "tiles requested", || async {
        let v = js(
            c,
            "return [...document.querySelectorAll('img.leaflet-tile')].map(i => i.src)",
        )
        .await;
        let srcs: Vec<String> = serde_json::from_value(v).ok()?;
        (!srcs.is_empty()).then_some(srcs)
    })
    .await;
    assert!(
        tiles[0].starts_with(&format!("http://{bare}/tiles/")),
        "{tiles:?}"
    );
    let attribution = c
        .find(Locator::Css(".leaflet-control-attribution"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(attribution.contains("<b>tiles</b> & test"), "{attribution}");
    screenshot(c, "tiles.png").await;

    // Without Leaflet: the page says so and the list still works.
    c.set_window_size(1280, 860).await.unwrap();
    c.goto(&format!("http://{bare}/")).await.unwrap();
    let s = loaded(c, &[], None).await;
    assert_eq!(s.on_map, 0);
    let (total, _, _) = api_counts(bare, "").await;
    assert_eq!(s.list, total);
    let msg = c.find(Locator::Id("map-message")).await.unwrap();
    assert!(msg.is_displayed().await.unwrap());
    assert!(msg.text().await.unwrap().contains("Leaflet"));
    screenshot(c, "no-leaflet.png").await;
}

/// A supervisor that answers with an overview captured from a real `sadomap up` (two workers,
/// one of them SIGKILLed and replaced) and records the restarts asked of it.
struct Captured {
    restarts: std::sync::Mutex<Vec<String>>,
}

impl sadomap_server::Supervision for Captured {
    fn overview(&self) -> Result<serde_json::Value, sadomap_server::SupervisionError> {
        Ok(serde_json::from_str(include_str!("browser/status-overview.json")).unwrap())
    }

    fn metrics(&self) -> Result<String, sadomap_server::SupervisionError> {
        Ok(String::new())
    }

    fn restart(&self, service: &str) -> Result<(), sadomap_server::SupervisionError> {
        self.restarts.lock().unwrap().push(service.to_owned());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_headless_chromium() {
    let Some((driver, browser)) = tools() else {
        return;
    };
    let sup = std::sync::Arc::new(Captured {
        restarts: std::sync::Mutex::new(Vec::new()),
    });
    let server = start_supervised_server("status-token", sup.clone());
    let addr = server.addr;
    let (_driver, c) = connect(&driver, &browser).await;
    let session = c.clone();
    let outcome = tokio::spawn(async move { status_page(&session, addr).await }).await;
    let _ = c.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    assert_eq!(*sup.restarts.lock().unwrap(), ["worker"]);
}

async fn status_page(c: &Client, addr: SocketAddr) {
    let want: serde_json::Value =
        serde_json::from_str(include_str!("browser/status-overview.json")).unwrap();
    c.goto(&format!("http://{addr}/admin/status"))
        .await
        .unwrap();
    // No token yet: the form, no data.
    until(10, "the token form", || async {
        (js(c, "return !document.getElementById('login').hidden").await == true).then_some(())
    })
    .await;
    let token = c.find(Locator::Id("token")).await.unwrap();
    token.send_keys("wrong").await.unwrap();
    token.send_keys(&Key::Enter.to_string()).await.unwrap();
    let said = until(10, "the refusal", || async {
        let m = js(
            c,
            "const m = document.getElementById('message'); return m.hidden ? null : m.textContent",
        )
        .await;
        m.as_str().map(str::to_owned)
    })
    .await;
    assert!(said.contains("not the admin token"), "{said}");
    let token = c.find(Locator::Id("token")).await.unwrap();
    token.send_keys("status-token").await.unwrap();
    token.send_keys(&Key::Enter.to_string()).await.unwrap();
    // Every replica slot of every service is a row, with its state.
    let slots: usize = want["status"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["instances"].as_array().unwrap().len())
        .sum();
    let rows = until(10, "the service rows", || async {
        let n = js(
            c,
            "return document.querySelectorAll('#services tbody tr[data-state]').length",
        )
        .await;
        (n.as_u64() == Some(slots as u64)).then_some(n)
    })
    .await;
    assert_eq!(rows, slots);
    let healthy = js(
        c,
        "return document.querySelectorAll('#services tr[data-state=healthy]').length",
    )
    .await;
    assert_eq!(healthy, slots, "the captured topology was all healthy");
    // The replaced worker: its restart with the reason, in the table and the event list.
    let reasons = js(
        c,
        "return [...document.querySelectorAll('#services tr[data-service=worker] td:nth-child(6)')].map(t => t.textContent)",
    )
    .await;
    assert!(
        reasons.as_array().unwrap().iter().any(|r| r == "exited"),
        "{reasons}"
    );
    let events = js(
        c,
        "return [...document.querySelectorAll('#events li')].map(l => l.dataset.event)",
    )
    .await;
    for e in ["restarted", "leases_released", "failure_detected"] {
        assert!(
            events.as_array().unwrap().iter().any(|x| x == e),
            "{e}: {events}"
        );
    }
    let scaled = js(
        c,
        "return document.querySelector('#scaling li').textContent",
    )
    .await;
    assert!(
        scaled
            .as_str()
            .unwrap()
            .contains("1 → 2 replicas (reactive)"),
        "{scaled}"
    );
    let queue = js(
        c,
        "return document.querySelector('#queues tr[data-queue=normal] td').textContent",
    )
    .await;
    assert_eq!(queue, "0", "ready jobs of the normal queue");
    let history = js(
        c,
        "return document.querySelectorAll('#services .history span.passed').length",
    )
    .await;
    assert!(
        history.as_u64().unwrap() > 10,
        "probe history drawn: {history}"
    );
    assert_eq!(
        js(c, "return document.getElementById('protective').hidden").await,
        true
    );
    // Restart by keyboard: focus the worker's button and press Enter.
    let button = c
        .find(Locator::Css(
            "#services tr.service[data-service=worker] button",
        ))
        .await
        .unwrap();
    button.send_keys(&Key::Enter.to_string()).await.unwrap();
    let said = until(10, "the restart answer", || async {
        let m = js(
            c,
            "const m = document.getElementById('message'); return m.hidden ? null : m.textContent",
        )
        .await;
        m.as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(said, "rolling restart of worker");
    // The page refreshes by itself (every 2 s) and keeps its rows.
    let first = js(c, "return document.getElementById('summary').textContent").await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let later = js(c, "return document.getElementById('summary').textContent").await;
    assert_ne!(first, later, "the summary's time moves with each refresh");
    let session = js(c, "return sessionStorage.getItem('sadomap-admin-token')").await;
    assert_eq!(session, "status-token");
    assert!(!c.current_url().await.unwrap().as_str().contains("token"));
    screenshot(c, "admin-status.png").await;
}
