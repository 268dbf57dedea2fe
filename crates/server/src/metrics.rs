//! Prometheus metrics, kept by hand: a few counters and one latency histogram per route, rendered
//! in the text exposition format by [`Metrics::render`].
//!
//! Concurrency contract: counters are atomics; the per-(route, method, status) table is a mutex
//! held only to bump or copy a counter, never across an `.await`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Response-cache hits.
    pub cache_hits: AtomicU64,
    /// Response-cache misses.
    pub cache_misses: AtomicU64,
    /// Requests refused by the rate limit.
    pub rate_limited: AtomicU64,
    /// Index rebuilds that swapped in a new data version.
    pub index_refreshes: AtomicU64,
    /// Index refreshes that failed.
    pub index_refresh_errors: AtomicU64,
    /// Places in the current index.
    pub index_places: AtomicU64,
    /// Bytes of the current index structures.
    pub index_bytes: AtomicU64,
    /// The current index's data version.
    pub data_version: AtomicU64,
    /// TLS certificate reloads.
    pub tls_reloads: AtomicU64,
}

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &'static str, status: u16, took: Duration) {
        {
            // Look up before inserting so the hot path allocates no key.
            let mut m = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
            match m
                .iter_mut()
                .find(|((r, me, st), _)| r == route && *me == method && *st == status)
            {
                Some((_, n)) => *n += 1,
                None => {
                    m.insert((route.to_owned(), method, status), 1);
                }
            }
        }
        let secs = took.as_secs_f64();
        let mut m = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        if !m.contains_key(route) {
            m.insert(route.to_owned(), Histogram::default());
        }
        let Some(h) = m.get_mut(route) else { return };
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The index gauges, after a (re)load.
    pub fn set_index(&self, places: usize, bytes: usize, version: u64) {
        self.index_places.store(places as u64, Ordering::Relaxed);
        self.index_bytes.store(bytes as u64, Ordering::Relaxed);
        self.data_version.store(version, Ordering::Relaxed);
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        s.push_str("# HELP sadomap_http_requests_total HTTP requests answered, by route, method and status.\n# TYPE sadomap_http_requests_total counter\n");
        for ((route, method, status), n) in &requests {
            let _ = writeln!(
                s,
                "sadomap_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let latency = self
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        s.push_str("# HELP sadomap_http_request_duration_seconds Time to answer a request, by route.\n# TYPE sadomap_http_request_duration_seconds histogram\n");
        for (route, h) in &latency {
            let r = escape(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "sadomap_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                s,
                "sadomap_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}\nsadomap_http_request_duration_seconds_sum{{route=\"{r}\"}} {}\nsadomap_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (name, kind, help, v) in [
            (
                "sadomap_response_cache_hits_total",
                "counter",
                "Data responses served from the response cache.",
                load(&self.cache_hits),
            ),
            (
                "sadomap_response_cache_misses_total",
                "counter",
                "Data responses built because the cache did not hold them.",
                load(&self.cache_misses),
            ),
            (
                "sadomap_rate_limited_requests_total",
                "counter",
                "Requests refused with 429 by the per-client rate limit.",
                load(&self.rate_limited),
            ),
            (
                "sadomap_index_refreshes_total",
                "counter",
                "Index rebuilds that swapped in a new data version.",
                load(&self.index_refreshes),
            ),
            (
                "sadomap_index_refresh_errors_total",
                "counter",
                "Index refreshes that failed (the old index stays).",
                load(&self.index_refresh_errors),
            ),
            (
                "sadomap_tls_reloads_total",
                "counter",
                "Times the TLS certificate was reloaded from its files.",
                load(&self.tls_reloads),
            ),
            (
                "sadomap_index_places",
                "gauge",
                "Places in the current index.",
                load(&self.index_places),
            ),
            (
                "sadomap_index_size_bytes",
                "gauge",
                "Bytes of the current index structures.",
                load(&self.index_bytes),
            ),
            (
                "sadomap_index_data_version",
                "gauge",
                "The store data version the current index was built from.",
                load(&self.data_version),
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("/v1/places", "GET", 200, Duration::from_micros(300));
        m.observe("/v1/places", "GET", 200, Duration::from_millis(3));
        m.observe("/v1/places", "GET", 400, Duration::from_micros(50));
        let s = m.render();
        assert!(s.contains(
            "sadomap_http_requests_total{route=\"/v1/places\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(s.contains(
            "sadomap_http_request_duration_seconds_bucket{route=\"/v1/places\",le=\"0.0005\"} 2"
        ));
        assert!(s.contains(
            "sadomap_http_request_duration_seconds_bucket{route=\"/v1/places\",le=\"+Inf\"} 3"
        ));
        assert!(s.contains("sadomap_index_data_version 0"));
    }
}
