//! A discrete-event model of a queue served by scaled workers, to compare reactive and predictive
//! scaling on the same day-shaped load trace (deterministic: one seed gives one trace).
//!
//! Jobs arrive by a non-homogeneous Poisson process whose rate follows a day with a morning and an
//! evening peak (each day's peaks jittered by the seed); each job has an exponential service time.
//! Workers take `startup_secs` to become ready; scale-in cancels starting workers first, then
//! idle ones, then lets busy ones finish their job. Every `interval` the [`ScalingManager`] sees
//! the queue depth, the arrival rate of the last interval and the mean service time, exactly as
//! the supervisor would. Waits and worker-seconds are measured after the warm-up days (the
//! forecaster needs one day to learn).
//!
//! Concurrency: single-threaded and pure; [`run`] owns all its state.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use super::ScalingManager;
use crate::clock::Moment;
use crate::plan::ScalingPolicy;
use crate::signals::LoadSample;

/// A small, seeded pseudo-random generator (SplitMix64): deterministic across platforms.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }
}

/// One peak of the day: a Gaussian bump on the base rate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Peak {
    /// Centre, as a fraction of the day (0.375 = 09:00).
    pub at: f64,
    /// Standard deviation in seconds.
    pub width_secs: f64,
    /// Extra jobs per second at the centre.
    pub height: f64,
}

/// The simulated scenario.
#[derive(Debug, Clone, Serialize)]
pub struct SimConfig {
    /// Seed of the trace.
    pub seed: u64,
    /// Days simulated.
    pub days: u32,
    /// Days before measuring starts.
    pub warmup_days: u32,
    /// Length of a day in seconds (86 400; shorter in fast tests).
    pub day_secs: f64,
    /// Jobs per second outside the peaks.
    pub base_rate: f64,
    /// The peaks.
    pub peaks: Vec<Peak>,
    /// Each day's peak heights vary by up to ± this fraction.
    pub jitter: f64,
    /// Mean job service time in seconds.
    pub service_secs: f64,
    /// Worker start-up delay in seconds.
    pub startup_secs: f64,
    /// Fewest workers.
    pub min_workers: u32,
    /// Most workers.
    pub max_workers: u32,
    /// Scaling policy (its `interval` is the decision interval; `predictive` is set per run).
    #[serde(skip)]
    pub policy: ScalingPolicy,
}

impl SimConfig {
    /// The reference scenario: four real days (one to learn), morning and evening peaks, 4 s jobs,
    /// 60 s worker start-up, 1..=60 workers, the default policy.
    pub fn day_shaped(seed: u64) -> Self {
        SimConfig {
            seed,
            days: 4,
            warmup_days: 1,
            day_secs: 86_400.0,
            base_rate: 0.5,
            peaks: vec![
                Peak {
                    at: 0.375,
                    width_secs: 3_600.0,
                    height: 4.0,
                },
                Peak {
                    at: 0.80,
                    width_secs: 2_400.0,
                    height: 6.0,
                },
            ],
            jitter: 0.1,
            service_secs: 4.0,
            startup_secs: 60.0,
            min_workers: 1,
            max_workers: 60,
            policy: ScalingPolicy::default(),
        }
    }

    /// Arrival rate at `t` seconds on a day whose peaks are scaled by `scale`.
    pub fn rate_at(&self, t: f64, scale: f64) -> f64 {
        let day_t = t.rem_euclid(self.day_secs);
        let mut r = self.base_rate;
        for p in &self.peaks {
            let centre = p.at * self.day_secs;
            // The nearest copy of the peak, so a bump near midnight wraps round.
            let mut d = (day_t - centre).abs();
            d = d.min(self.day_secs - d);
            r += scale * p.height * (-0.5 * (d / p.width_secs).powi(2)).exp();
        }
        r
    }

    fn peak_rate(&self) -> f64 {
        self.base_rate + self.peaks.iter().map(|p| p.height).sum::<f64>() * (1.0 + self.jitter)
    }
}

/// What one run measured (after the warm-up days).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimReport {
    /// Predictive scaling was on.
    pub predictive: bool,
    /// Jobs measured.
    pub jobs: usize,
    /// 95th percentile of queue wait, seconds.
    pub p95_wait_secs: f64,
    /// Mean queue wait, seconds.
    pub mean_wait_secs: f64,
    /// Integral of provisioned workers (starting, idle or busy) over time.
    pub worker_seconds: f64,
    /// Most workers at once.
    pub max_workers: u32,
    /// Scaling decisions taken.
    pub scale_decisions: u32,
    /// The forecaster's MAPE of the 5-minute arrival rate (a fraction), if it produced forecasts.
    pub mape: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Worker {
    Starting { ready_at: f64 },
    Idle,
    Busy { until: f64, retiring: bool },
}

/// The trace: arrival times and service times, generated once per seed.
fn trace(cfg: &SimConfig) -> Vec<(f64, f64)> {
    let mut rng = SplitMix64::new(cfg.seed);
    let scales: Vec<f64> = (0..cfg.days)
        .map(|_| 1.0 + cfg.jitter * (2.0 * rng.unit() - 1.0))
        .collect();
    let end = f64::from(cfg.days) * cfg.day_secs;
    let lambda_max = cfg.peak_rate();
    let mut jobs = Vec::new();
    let mut t = 0.0;
    loop {
        // Thinning: candidates at the peak rate, kept with probability rate(t) / peak.
        t += rng.exp(1.0 / lambda_max);
        if t >= end {
            break;
        }
        let day = ((t / cfg.day_secs) as usize).min(scales.len().saturating_sub(1));
        let keep = rng.unit() <= cfg.rate_at(t, scales[day]) / lambda_max;
        let service = rng.exp(cfg.service_secs);
        if keep {
            jobs.push((t, service));
        }
    }
    jobs
}

/// Runs the scenario with predictive scaling on or off.
pub fn run(cfg: &SimConfig, predictive: bool) -> SimReport {
    let jobs = trace(cfg);
    let policy = ScalingPolicy {
        predictive,
        ..cfg.policy.clone()
    };
    let interval = policy.interval.as_secs_f64().max(0.001);
    let mut scaler = ScalingManager::new(policy, cfg.min_workers, cfg.max_workers, cfg.min_workers);
    let measure_from = f64::from(cfg.warmup_days) * cfg.day_secs;
    let end = f64::from(cfg.days) * cfg.day_secs;

    let mut workers: Vec<Worker> = (0..cfg.min_workers.max(1)).map(|_| Worker::Idle).collect();
    let mut queue: VecDeque<(f64, f64)> = VecDeque::new();
    let mut waits = Vec::new();
    let mut next_job = 0usize;
    let mut next_tick = interval;
    let mut arrivals_since_tick = 0u64;
    let mut now = 0.0f64;
    let mut worker_seconds = 0.0;
    let mut max_workers = 0u32;
    let mut decisions = 0u32;

    while now < end {
        // The next event: an arrival, a tick, a worker becoming ready or finishing.
        let mut t_next = next_tick.min(end);
        if let Some(&(a, _)) = jobs.get(next_job) {
            t_next = t_next.min(a);
        }
        for w in &workers {
            match *w {
                Worker::Starting { ready_at } => t_next = t_next.min(ready_at),
                Worker::Busy { until, .. } => t_next = t_next.min(until),
                Worker::Idle => {}
            }
        }
        let t_next = t_next.max(now);
        // Worker-seconds of the measured part of [now, t_next).
        let span = (t_next.min(end) - now.max(measure_from)).max(0.0);
        worker_seconds += span * workers.len() as f64;
        now = t_next;

        // Finish jobs and start-ups due now; retiring workers leave.
        workers.retain_mut(|w| match *w {
            Worker::Starting { ready_at } if ready_at <= now => {
                *w = Worker::Idle;
                true
            }
            Worker::Busy { until, retiring } if until <= now => {
                *w = Worker::Idle;
                !retiring
            }
            _ => true,
        });
        while let Some(&(a, s)) = jobs.get(next_job) {
            if a > now {
                break;
            }
            queue.push_back((a, s));
            arrivals_since_tick += 1;
            next_job += 1;
        }
        // Dispatch FIFO to idle workers.
        for w in workers.iter_mut() {
            if *w != Worker::Idle {
                continue;
            }
            let Some((a, s)) = queue.pop_front() else {
                break;
            };
            if a >= measure_from {
                waits.push(now - a);
            }
            *w = Worker::Busy {
                until: now + s,
                retiring: false,
            };
        }
        if now >= next_tick {
            let sample = LoadSample {
                depth: queue.len() as u64,
                arrivals_per_sec: arrivals_since_tick as f64 / interval,
                mean_service_secs: Some(cfg.service_secs),
            };
            arrivals_since_tick = 0;
            let at = Moment::from_duration(Duration::from_secs_f64(now));
            if let Some(d) = scaler.observe(at, sample) {
                decisions += 1;
                resize(&mut workers, d.to as usize, now + cfg.startup_secs);
            }
            next_tick += interval;
        }
        if now >= measure_from {
            max_workers = max_workers.max(workers.len() as u32);
        }
    }
    // Jobs still queued at the end count with their wait so far.
    for &(a, _) in &queue {
        if a >= measure_from {
            waits.push(end - a);
        }
    }
    waits.sort_by(f64::total_cmp);
    let p95 = if waits.is_empty() {
        0.0
    } else {
        waits[((waits.len() as f64 * 0.95).ceil() as usize).clamp(1, waits.len()) - 1]
    };
    let mean = if waits.is_empty() {
        0.0
    } else {
        waits.iter().sum::<f64>() / waits.len() as f64
    };
    SimReport {
        predictive,
        jobs: waits.len(),
        p95_wait_secs: p95,
        mean_wait_secs: mean,
        worker_seconds,
        max_workers,
        scale_decisions: decisions,
        mape: scaler.forecaster().mape(),
    }
}

/// Moves the active worker count (retiring ones excluded) to `target`.
fn resize(workers: &mut Vec<Worker>, target: usize, ready_at: f64) {
    let mut active = workers
        .iter()
        .filter(|w| !matches!(w, Worker::Busy { retiring: true, .. }))
        .count();
    // Up: first keep retiring workers, then start new ones.
    for w in workers.iter_mut() {
        if active >= target {
            break;
        }
        if let Worker::Busy {
            until,
            retiring: true,
        } = *w
        {
            *w = Worker::Busy {
                until,
                retiring: false,
            };
            active += 1;
        }
    }
    while active < target {
        workers.push(Worker::Starting { ready_at });
        active += 1;
    }
    // Down: cancel starting ones, then idle ones, then retire busy ones.
    while active > target {
        if let Some(i) = workers
            .iter()
            .rposition(|w| matches!(w, Worker::Starting { .. }))
        {
            workers.remove(i);
        } else if let Some(i) = workers.iter().rposition(|w| *w == Worker::Idle) {
            workers.remove(i);
        } else if let Some(w) = workers.iter_mut().find(|w| {
            matches!(
                w,
                Worker::Busy {
                    retiring: false,
                    ..
                }
            )
        }) {
            if let Worker::Busy { until, .. } = *w {
                *w = Worker::Busy {
                    until,
                    retiring: true,
                };
            }
        } else {
            break;
        }
        active -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> SimConfig {
        // A 6-hour "day" so the test runs fast in debug builds; peaks and buckets scaled to
        // match, the rest as in the reference scenario.
        let mut c = SimConfig::day_shaped(seed);
        c.day_secs = 21_600.0;
        for p in &mut c.peaks {
            p.width_secs /= 4.0;
        }
        c.policy.bucket = Duration::from_secs(75);
        c.policy.season_buckets = 288;
        c
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let u = SplitMix64::new(1).unit();
        assert!(u > 0.0 && u <= 1.0);
    }

    #[test]
    fn trace_follows_the_day_shape() {
        let c = small(3);
        let jobs = trace(&c);
        assert_eq!(jobs, trace(&c), "same seed, same trace");
        let per_hour = |from: f64, to: f64| {
            jobs.iter().filter(|&&(a, _)| a >= from && a < to).count() as f64 / (to - from)
        };
        let quiet = per_hour(0.0, 1_000.0);
        let peak = per_hour(0.8 * 21_600.0 - 100.0, 0.8 * 21_600.0 + 100.0);
        assert!(peak > 4.0 * quiet, "peak {peak}/s vs quiet {quiet}/s");
    }

    #[test]
    fn predictive_waits_less_for_no_more_worker_seconds() {
        let c = small(42);
        let reactive = run(&c, false);
        let predictive = run(&c, true);
        assert_eq!(reactive.jobs, predictive.jobs);
        assert!(
            predictive.p95_wait_secs < reactive.p95_wait_secs,
            "p95 predictive {} vs reactive {}",
            predictive.p95_wait_secs,
            reactive.p95_wait_secs
        );
        assert!(
            predictive.worker_seconds <= reactive.worker_seconds,
            "worker-seconds predictive {} vs reactive {}",
            predictive.worker_seconds,
            reactive.worker_seconds
        );
        assert!(predictive.mape.is_some());
    }
}
