//! Prometheus text exposition of the queue: broker-wide gauges and counters (any process can
//! render them: the API server, a worker, the CLI) plus, for a worker process, its own state
//! and enqueue-to-start latency histogram. No HTTP here: the server serves this text.

use std::fmt::Write as _;
use std::time::Duration;

use crate::broker::{Broker, Result};
use crate::job::WorkerStatus;
use crate::worker::{WorkerHealth, WorkerState, LATENCY_BUCKETS_MS};

/// Heartbeats older than this are not reported (the worker is gone).
const WORKER_MAX_AGE: Duration = Duration::from_secs(300);

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the metrics as Prometheus text: queue depth per state and oldest ready age per queue,
/// job counters, lease expirations, per-worker heartbeat age, and, when `worker` is given, that
/// worker's state and latency histogram. Names: `sadomap_queue_<thing>_<unit>[_total]`.
pub fn render_metrics(broker: &dyn Broker, worker: Option<&WorkerHealth>) -> Result<String> {
    let now = broker.now();
    let stats = broker.stats()?;
    let counters = broker.counters()?;
    let workers = broker.workers(WORKER_MAX_AGE)?;
    let mut out = String::new();

    header(
        &mut out,
        "sadomap_queue_depth_jobs",
        "gauge",
        "Jobs per queue and state.",
    );
    for s in &stats {
        for (state, n) in [
            ("ready", s.ready),
            ("scheduled", s.scheduled),
            ("running", s.running),
            ("dead", s.dead),
        ] {
            let _ = writeln!(
                out,
                "sadomap_queue_depth_jobs{{queue=\"{}\",state=\"{state}\"}} {n}",
                s.queue
            );
        }
    }
    header(
        &mut out,
        "sadomap_queue_oldest_job_age_seconds",
        "gauge",
        "How long the oldest ready job of each queue has waited.",
    );
    for s in &stats {
        let _ = writeln!(
            out,
            "sadomap_queue_oldest_job_age_seconds{{queue=\"{}\"}} {}",
            s.queue,
            s.oldest_ready_ms as f64 / 1000.0
        );
    }
    type Pick = fn(&crate::job::QueueCounters) -> u64;
    let series: [(&str, &str, Pick); 7] = [
        ("sadomap_queue_jobs_enqueued_total", "Jobs added.", |c| {
            c.enqueued
        }),
        ("sadomap_queue_jobs_started_total", "Runs started.", |c| {
            c.started
        }),
        (
            "sadomap_queue_jobs_succeeded_total",
            "Runs that succeeded.",
            |c| c.succeeded,
        ),
        (
            "sadomap_queue_jobs_failed_total",
            "Runs that failed.",
            |c| c.failed,
        ),
        (
            "sadomap_queue_jobs_retried_total",
            "Failed runs scheduled again.",
            |c| c.retried,
        ),
        (
            "sadomap_queue_jobs_dead_total",
            "Jobs moved to the dead-letter queue.",
            |c| c.dead,
        ),
        (
            "sadomap_queue_lease_expirations_total",
            "Leases that ran out or were released because their worker died.",
            |c| c.lease_expired,
        ),
    ];
    for (name, help, pick) in series {
        header(&mut out, name, "counter", help);
        for c in &counters {
            let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", c.queue, pick(c));
        }
    }
    header(
        &mut out,
        "sadomap_queue_worker_heartbeat_age_seconds",
        "gauge",
        "Time since each worker's last heartbeat.",
    );
    for w in &workers {
        let _ = writeln!(
            out,
            "sadomap_queue_worker_heartbeat_age_seconds{{worker=\"{}\"}} {}",
            w.id,
            now.since(w.last_beat).as_secs_f64()
        );
    }
    header(
        &mut out,
        "sadomap_queue_workers",
        "gauge",
        "Live workers per state, from their heartbeats.",
    );
    for state in WorkerStatus::ALL {
        let n = workers.iter().filter(|w| w.state == state).count();
        let _ = writeln!(out, "sadomap_queue_workers{{state=\"{state}\"}} {n}");
    }
    if let Some(h) = worker {
        render_worker(&mut out, h);
    }
    Ok(out)
}

/// Renders only what a worker process knows by itself (its state, lost leases, latency
/// histogram): what its `/metrics` serves while the broker is unreachable.
pub fn render_worker_metrics(worker: &WorkerHealth) -> String {
    let mut out = String::new();
    render_worker(&mut out, worker);
    out
}

fn render_worker(out: &mut String, h: &WorkerHealth) {
    let id = h.id();
    header(
        out,
        "sadomap_queue_worker_state",
        "gauge",
        "1 for the state this worker is in (starting, running, degraded, draining, stopped).",
    );
    let current = h.state();
    for state in ["starting", "running", "degraded", "draining", "stopped"] {
        let _ = writeln!(
            out,
            "sadomap_queue_worker_state{{worker=\"{id}\",state=\"{state}\"}} {}",
            u8::from(current.as_str() == state)
        );
    }
    header(
        out,
        "sadomap_queue_worker_degraded",
        "gauge",
        "1 while the worker cannot reach its broker and retries with backoff.",
    );
    let degraded = matches!(h.state(), WorkerState::Degraded { .. });
    let _ = writeln!(
        out,
        "sadomap_queue_worker_degraded{{worker=\"{id}\"}} {}",
        u8::from(degraded)
    );
    header(
        out,
        "sadomap_queue_worker_leases_lost_total",
        "counter",
        "Leases this worker lost (cancelled or expired) and abandoned.",
    );
    let lost = h
        .metrics()
        .leases_lost
        .load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(
        out,
        "sadomap_queue_worker_leases_lost_total{{worker=\"{id}\"}} {lost}"
    );
    let name = "sadomap_queue_enqueue_to_start_latency_seconds";
    header(
        out,
        name,
        "histogram",
        "Time from a job becoming ready to its run starting.",
    );
    let (buckets, count, sum_ms) = h.metrics().latency_histogram();
    for (bound, n) in LATENCY_BUCKETS_MS.iter().zip(&buckets) {
        let _ = writeln!(
            out,
            "{name}_bucket{{worker=\"{id}\",le=\"{}\"}} {n}",
            *bound as f64 / 1000.0
        );
    }
    let _ = writeln!(out, "{name}_bucket{{worker=\"{id}\",le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "{name}_sum{{worker=\"{id}\"}} {}",
        sum_ms as f64 / 1000.0
    );
    let _ = writeln!(out, "{name}_count{{worker=\"{id}\"}} {count}");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::clock::ManualClock;
    use crate::job::{NewJob, QueueName, TaskName, Timestamp, WorkerId, WorkerInfo};
    use crate::sqlite::SqliteBroker;

    #[test]
    fn renders_depth_age_counters_and_heartbeats() {
        let clock = ManualClock::at(Timestamp(1_000_000));
        let b = SqliteBroker::open_in_memory(Arc::new(clock.clone())).expect("open");
        let job = NewJob::new(
            TaskName::new("noop").expect("task"),
            Value::Null,
            QueueName::new("normal").expect("queue"),
        );
        b.enqueue(&[job.clone(), job]).expect("enqueue");
        b.heartbeat(&WorkerInfo {
            id: WorkerId::new("w1").expect("id"),
            pid: 1,
            host: "h".into(),
            running: 0,
            last_beat: Timestamp(0),
            state: crate::job::WorkerStatus::Running,
            reason: None,
        })
        .expect("beat");
        clock.advance(Duration::from_millis(2500));
        let text = render_metrics(&b, None).expect("render");
        for line in [
            "sadomap_queue_depth_jobs{queue=\"normal\",state=\"ready\"} 2",
            "sadomap_queue_oldest_job_age_seconds{queue=\"normal\"} 2.5",
            "sadomap_queue_jobs_enqueued_total{queue=\"normal\"} 2",
            "sadomap_queue_lease_expirations_total{queue=\"normal\"} 0",
            "sadomap_queue_worker_heartbeat_age_seconds{worker=\"w1\"} 2.5",
            "# TYPE sadomap_queue_jobs_dead_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn renders_a_workers_state_and_latency_histogram() {
        let flaky = Arc::new(crate::flaky::FlakyBroker::new(Arc::new(
            SqliteBroker::open_in_memory(Arc::new(ManualClock::at(Timestamp(0)))).expect("open"),
        )));
        let config = crate::worker::WorkerConfig {
            id: Some(WorkerId::new("w1").expect("id")),
            ..crate::worker::WorkerConfig::default()
        };
        let (_worker, health) =
            crate::worker::Worker::build(flaky.clone(), crate::worker::Registry::new(), config)
                .expect("build");
        health.metrics().observe_latency(Duration::from_millis(3));
        health.degrade(
            Timestamp(0),
            &crate::error::QueueError::Unavailable {
                message: "down".into(),
            },
        );
        let text = render_metrics(&*flaky, Some(&health)).expect("render");
        for line in [
            "sadomap_queue_worker_degraded{worker=\"w1\"} 1",
            "sadomap_queue_enqueue_to_start_latency_seconds_bucket{worker=\"w1\",le=\"0.002\"} 0",
            "sadomap_queue_enqueue_to_start_latency_seconds_bucket{worker=\"w1\",le=\"0.005\"} 1",
            "sadomap_queue_enqueue_to_start_latency_seconds_bucket{worker=\"w1\",le=\"+Inf\"} 1",
            "sadomap_queue_enqueue_to_start_latency_seconds_count{worker=\"w1\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        // A broker that is down gives an error, not a half-written page.
        flaky.set_down(true);
        assert!(render_metrics(&*flaky, Some(&health)).is_err());
    }
}
