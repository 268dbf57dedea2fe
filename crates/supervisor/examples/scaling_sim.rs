//! Replays a day-shaped load trace through the discrete-event queue model with reactive and with
//! predictive scaling and prints p95 queue wait, worker-seconds and the forecaster's MAPE.
//!
//! `cargo run --release -p sadomap-supervisor --example scaling_sim -- [--seed N] [--util F]
//! [--lead-secs N] [--json]`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sadomap_supervisor::sim::{run, SimConfig, SimReport};

fn main() -> ExitCode {
    let mut cfg = SimConfig::day_shaped(42);
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| args.next().unwrap_or_default();
        match a.as_str() {
            "--seed" => match value(&mut args).parse() {
                Ok(v) => cfg.seed = v,
                Err(e) => return usage(&format!("--seed: {e}")),
            },
            "--util" => match value(&mut args).parse() {
                Ok(v) => cfg.policy.target_utilisation = v,
                Err(e) => return usage(&format!("--util: {e}")),
            },
            "--lead-secs" => match value(&mut args).parse() {
                Ok(v) => cfg.policy.lead = Duration::from_secs(v),
                Err(e) => return usage(&format!("--lead-secs: {e}")),
            },
            "--json" => json = true,
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let started = Instant::now();
    let reactive = run(&cfg, false);
    let predictive = run(&cfg, true);
    if json {
        let out =
            serde_json::json!({ "config": cfg, "reactive": reactive, "predictive": predictive });
        println!("{out}");
    } else {
        println!(
            "scenario: {} days ({} warm-up), base {} jobs/s, peaks {:?} jobs/s, jobs {:.0} s, worker start-up {:.0} s, workers {}..={}, seed {}",
            cfg.days,
            cfg.warmup_days,
            cfg.base_rate,
            cfg.peaks.iter().map(|p| p.height).collect::<Vec<_>>(),
            cfg.service_secs,
            cfg.startup_secs,
            cfg.min_workers,
            cfg.max_workers,
            cfg.seed
        );
        println!(
            "policy: target {} jobs/worker, windows up {:?} / down {:?}, bucket {:?}, lead {:?}, utilisation {}",
            cfg.policy.target_jobs_per_worker,
            cfg.policy.up_window,
            cfg.policy.down_window,
            cfg.policy.bucket,
            cfg.policy.lead,
            cfg.policy.target_utilisation
        );
        println!(
            "{:<11} {:>9} {:>12} {:>10} {:>15} {:>12} {:>9} {:>8}",
            "mode",
            "jobs",
            "p95 wait s",
            "mean s",
            "worker-seconds",
            "max workers",
            "scalings",
            "MAPE"
        );
        for r in [&reactive, &predictive] {
            row(r);
        }
        println!(
            "ratio predictive/reactive: p95 wait {:.3}, worker-seconds {:.3} (simulated in {:.1?})",
            predictive.p95_wait_secs / reactive.p95_wait_secs.max(f64::EPSILON),
            predictive.worker_seconds / reactive.worker_seconds.max(f64::EPSILON),
            started.elapsed()
        );
    }
    let ok = predictive.p95_wait_secs < reactive.p95_wait_secs
        && predictive.worker_seconds <= reactive.worker_seconds;
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("predictive scaling did not beat reactive on both wait and worker-seconds");
        ExitCode::FAILURE
    }
}

fn row(r: &SimReport) {
    let mode = if r.predictive {
        "predictive"
    } else {
        "reactive"
    };
    let mape = r
        .mape
        .map(|m| format!("{:.1} %", m * 100.0))
        .unwrap_or_else(|| "-".into());
    println!(
        "{:<11} {:>9} {:>12.1} {:>10.2} {:>15.0} {:>12} {:>9} {:>8}",
        mode,
        r.jobs,
        r.p95_wait_secs,
        r.mean_wait_secs,
        r.worker_seconds,
        r.max_workers,
        r.scale_decisions,
        mape
    );
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("{msg}\nusage: scaling_sim [--seed N] [--util F] [--lead-secs N] [--json]");
    ExitCode::from(2)
}
