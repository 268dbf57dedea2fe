//! A small Prometheus registry (counters and gauges with labels) and its text renderer.
//!
//! Concurrency: [`Metrics`] is `Send + Sync` behind one mutex held only for a map update or a
//! render; share it in an `Arc` with the HTTP server that serves `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: MetricKind,
    series: BTreeMap<Labels, f64>,
}

/// The registry.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    let mut v: Labels = pairs.iter().map(|&(k, v)| (k, v.to_string())).collect();
    v.sort();
    v
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Family>> {
        // Every update is a single map write, so a poisoned lock still holds consistent data.
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(
        &self,
        name: &'static str,
        help: &'static str,
        kind: MetricKind,
        pairs: &[(&'static str, &str)],
        f: impl FnOnce(&mut f64),
    ) {
        let mut families = self.lock();
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        f(family.series.entry(labels(pairs)).or_insert(0.0));
    }

    /// Adds `by` to a counter.
    pub fn inc(
        &self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&'static str, &str)],
        by: f64,
    ) {
        self.update(name, help, MetricKind::Counter, pairs, |v| {
            *v += by.max(0.0)
        });
    }

    /// Sets a gauge.
    pub fn set(
        &self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&'static str, &str)],
        value: f64,
    ) {
        self.update(name, help, MetricKind::Gauge, pairs, |v| *v = value);
    }

    /// Drops every gauge series with label `key` = `value` (an instance that is gone).
    pub fn forget(&self, key: &str, value: &str) {
        for family in self.lock().values_mut() {
            if family.kind == MetricKind::Gauge {
                family
                    .series
                    .retain(|l, _| !l.iter().any(|(k, v)| *k == key && v == value));
            }
        }
    }

    /// The value of one series, if present.
    pub fn get(&self, name: &str, pairs: &[(&'static str, &str)]) -> Option<f64> {
        self.lock().get(name)?.series.get(&labels(pairs)).copied()
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, family) in self.lock().iter() {
            let kind = match family.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_escaped_labels() {
        let m = Metrics::new();
        m.inc(
            "sadomap_supervisor_restarts_total",
            "Restarts.",
            &[("service", "api"), ("reason", "exited")],
            1.0,
        );
        m.inc(
            "sadomap_supervisor_restarts_total",
            "Restarts.",
            &[("reason", "exited"), ("service", "api")],
            2.0,
        );
        m.set(
            "sadomap_supervisor_memory_bytes",
            "Memory.",
            &[("instance", "a\"b")],
            42.0,
        );
        let text = m.render();
        assert!(
            text.contains("# TYPE sadomap_supervisor_restarts_total counter"),
            "{text}"
        );
        assert!(
            text.contains("sadomap_supervisor_restarts_total{reason=\"exited\",service=\"api\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("sadomap_supervisor_memory_bytes{instance=\"a\\\"b\"} 42"),
            "{text}"
        );
        m.forget("instance", "a\"b");
        assert!(!m.render().contains("instance="));
        assert_eq!(
            m.get(
                "sadomap_supervisor_restarts_total",
                &[("service", "api"), ("reason", "exited")]
            ),
            Some(3.0)
        );
    }
}
