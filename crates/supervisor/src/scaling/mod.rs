//! The scaling manager for one worker service.
//!
//! Reactive: desired = ceil(queue depth / target jobs per worker), bounded by min and max, with
//! stabilisation windows: a scale-up goes to the lowest recommendation of the last `up_window`
//! (15 s), a scale-in to the highest of the last `down_window` (300 s), so a blip moves nothing.
//!
//! Predictive (optional): the arrival rate is bucketed (5 min) and fed to a Holt-Winters
//! forecaster with a daily season. The workers needed for the highest rate forecast within the
//! lead time, ceil(rate × service time / target utilisation), become a floor that scales up
//! *ahead* of a peak (rates between bucket centres are interpolated). A forecast never scales in:
//! a scale-in needs the reactive rule to ask for it, and never goes below the workers the
//! (smoothed) rate observed now needs. The
//! forecaster runs in both modes, so its MAPE is reported either way.
//!
//! Concurrency: [`ScalingManager`] is plain data owned by the supervisor thread (or a simulation);
//! `now` is passed in.

mod holt_winters;
pub mod sim;

use std::collections::VecDeque;

use serde::Serialize;

use crate::clock::Moment;
use crate::plan::ScalingPolicy;
use crate::signals::LoadSample;

pub use holt_winters::HoltWinters;

/// Why the replica count changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleReason {
    /// Queue depth.
    Reactive,
    /// A forecast peak within the lead time.
    Predictive,
    /// An instance ran out of a resource while load was high.
    Exhaustion,
}

impl ScaleReason {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleReason::Reactive => "reactive",
            ScaleReason::Predictive => "predictive",
            ScaleReason::Exhaustion => "exhaustion",
        }
    }
}

/// A change of the replica count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScaleDecision {
    /// Replicas before.
    pub from: u32,
    /// Replicas after.
    pub to: u32,
    /// What drove it.
    pub reason: ScaleReason,
}

/// Decides the replica count of one scaled service from its load.
#[derive(Debug, Clone)]
pub struct ScalingManager {
    policy: ScalingPolicy,
    min: u32,
    max: u32,
    current: u32,
    recommendations: VecDeque<(Moment, u32)>,
    forecaster: HoltWinters,
    bucket_start: Option<Moment>,
    bucket_arrivals: f64,
    last_sample_at: Option<Moment>,
    smoothed_rate: Option<f64>,
}

/// Time constant of the smoothing of the observed arrival rate (one sample is noisy).
const RATE_SMOOTHING_SECS: f64 = 60.0;

impl ScalingManager {
    /// A manager for a service between `min` and `max` replicas, currently at `current`.
    pub fn new(policy: ScalingPolicy, min: u32, max: u32, current: u32) -> Self {
        let (a, b, g) = policy.smoothing;
        let season = policy.season_buckets;
        let max = max.max(min).max(1);
        ScalingManager {
            policy,
            min,
            max,
            current: current.clamp(min, max),
            recommendations: VecDeque::new(),
            forecaster: HoltWinters::new(a, b, g, season),
            bucket_start: None,
            bucket_arrivals: 0.0,
            last_sample_at: None,
            smoothed_rate: None,
        }
    }

    /// Current replica count.
    pub fn current(&self) -> u32 {
        self.current
    }

    /// Tells the manager the count was changed outside it (a scale-up on resource exhaustion).
    pub fn set_current(&mut self, n: u32) {
        self.current = n.clamp(self.min, self.max);
    }

    /// The forecaster (for its MAPE).
    pub fn forecaster(&self) -> &HoltWinters {
        &self.forecaster
    }

    /// Feeds the arrival rate into rate buckets and closes finished ones into the forecaster.
    fn track_rate(&mut self, now: Moment, rate: f64) {
        let bucket = self.policy.bucket;
        let start = *self.bucket_start.get_or_insert(now);
        let rate = rate.max(0.0);
        if let Some(prev) = self.last_sample_at {
            let dt = now.since(prev).as_secs_f64();
            self.bucket_arrivals += rate * dt;
            let k = (dt / RATE_SMOOTHING_SECS).min(1.0);
            self.smoothed_rate = self.smoothed_rate.map(|s| s + k * (rate - s));
        }
        self.smoothed_rate.get_or_insert(rate);
        self.last_sample_at = Some(now);
        let mut start = start;
        while now.since(start) >= bucket {
            // A sample spanning two buckets is credited to the first: at most one interval of
            // smearing, small against a 5-minute bucket.
            self.forecaster
                .observe(self.bucket_arrivals / bucket.as_secs_f64());
            self.bucket_arrivals = 0.0;
            start = start + bucket;
        }
        self.bucket_start = Some(start);
    }

    /// Workers a rate needs at the target utilisation.
    fn workers_for(&self, rate: f64, service_secs: f64) -> u32 {
        let w = (rate * service_secs / self.policy.target_utilisation).ceil();
        if w.is_finite() && w > 0.0 {
            w.min(f64::from(u32::MAX)) as u32
        } else {
            0
        }
    }

    /// The forecast rate at `at`, interpolated linearly between bucket centres (bucket `k` after
    /// the last closed one is `forecast(k + 1)`).
    fn forecast_at(&self, at: Moment) -> Option<f64> {
        let bucket = self.policy.bucket.as_secs_f64();
        let open_centre = self.bucket_start?.since_origin().as_secs_f64() + bucket / 2.0;
        let pos = ((at.since_origin().as_secs_f64() - open_centre) / bucket).max(0.0);
        let i = pos.floor();
        let frac = pos - i;
        let i = i as usize;
        let a = self.forecaster.forecast(i + 1)?;
        let b = self.forecaster.forecast(i + 2)?;
        Some(a + frac * (b - a))
    }

    /// Predictive bounds, if predictive scaling is on and the forecaster is ready: a floor of
    /// workers for the highest rate forecast between now and the lead time, and a hold of workers
    /// for the (smoothed) rate observed now, below which a scale-in never goes.
    fn predictive_bounds(&self, now: Moment, sample: &LoadSample) -> Option<(u32, u32)> {
        if !self.policy.predictive {
            return None;
        }
        let service_secs = sample.mean_service_secs?;
        const POINTS: u32 = 8;
        let peak = (0..=POINTS)
            .filter_map(|k| self.forecast_at(now + self.policy.lead * k / POINTS))
            .fold(None, |m: Option<f64>, f| Some(m.map_or(f, |m| m.max(f))))?;
        // The hold errs high: the smoothed rate lags a rise, the last sample is noisy.
        let observed = self
            .smoothed_rate
            .unwrap_or(0.0)
            .max(sample.arrivals_per_sec);
        Some((
            self.workers_for(peak, service_secs),
            self.workers_for(observed, service_secs),
        ))
    }

    /// Takes one load sample at `now` and returns a change of the replica count, if any.
    pub fn observe(&mut self, now: Moment, sample: LoadSample) -> Option<ScaleDecision> {
        self.track_rate(now, sample.arrivals_per_sec);
        let target = u64::from(self.policy.target_jobs_per_worker.max(1));
        let raw = u32::try_from(sample.depth.div_ceil(target))
            .unwrap_or(u32::MAX)
            .clamp(self.min, self.max);
        self.recommendations.push_back((now, raw));
        let keep = self.policy.down_window.max(self.policy.up_window);
        while self
            .recommendations
            .front()
            .is_some_and(|&(t, _)| now.since(t) > keep)
        {
            self.recommendations.pop_front();
        }
        let within = |w| {
            self.recommendations
                .iter()
                .filter(move |&&(t, _)| now.since(t) <= w)
                .map(|&(_, r)| r)
        };
        let reactive = if raw > self.current {
            within(self.policy.up_window)
                .min()
                .unwrap_or(raw)
                .max(self.current)
        } else if raw < self.current {
            within(self.policy.down_window)
                .max()
                .unwrap_or(raw)
                .min(self.current)
        } else {
            self.current
        };
        let (floor, hold) = self.predictive_bounds(now, &sample).unwrap_or((0, 0));
        let (mut to, reason) = if floor > reactive {
            (floor, ScaleReason::Predictive)
        } else {
            (reactive, ScaleReason::Reactive)
        };
        if to < self.current {
            // A scale-in must also leave enough workers for the rate seen now.
            to = to.max(hold.min(self.current));
        }
        let to = to.clamp(self.min, self.max);
        if to == self.current {
            return None;
        }
        let decision = ScaleDecision {
            from: self.current,
            to,
            reason,
        };
        self.current = to;
        Some(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy(predictive: bool) -> ScalingPolicy {
        ScalingPolicy {
            interval: Duration::from_secs(5),
            target_jobs_per_worker: 10,
            up_window: Duration::from_secs(15),
            down_window: Duration::from_secs(300),
            predictive,
            bucket: Duration::from_secs(60),
            season_buckets: 10,
            lead: Duration::from_secs(120),
            target_utilisation: 0.5,
            smoothing: (0.3, 0.0, 0.5),
        }
    }

    fn depth(depth: u64) -> LoadSample {
        LoadSample {
            depth,
            arrivals_per_sec: 0.0,
            mean_service_secs: None,
        }
    }

    #[test]
    fn scales_up_after_the_up_window_and_bounded_by_max() {
        let mut m = ScalingManager::new(policy(false), 1, 8, 1);
        assert_eq!(m.observe(Moment::from_secs(0), depth(5)), None);
        // Depth 45 wants 5 workers, but only once it has lasted the 15 s window.
        assert_eq!(m.observe(Moment::from_secs(5), depth(45)), None);
        assert_eq!(m.observe(Moment::from_secs(10), depth(45)), None);
        assert_eq!(m.observe(Moment::from_secs(15), depth(45)), None);
        let d = m
            .observe(Moment::from_secs(20), depth(45))
            .expect("scales up");
        assert_eq!((d.from, d.to, d.reason), (1, 5, ScaleReason::Reactive));
        for t in [25, 30, 35, 40] {
            m.observe(Moment::from_secs(t), depth(1000));
        }
        assert_eq!(m.current(), 8);
    }

    #[test]
    fn scales_in_only_after_the_down_window() {
        let mut m = ScalingManager::new(policy(false), 1, 8, 6);
        m.observe(Moment::from_secs(0), depth(60));
        let mut t = 5;
        while t < 300 {
            assert_eq!(m.observe(Moment::from_secs(t), depth(0)), None, "t={t}");
            t += 5;
        }
        let d = m
            .observe(Moment::from_secs(305), depth(0))
            .expect("scales in");
        assert_eq!((d.from, d.to), (6, 1));
    }

    #[test]
    fn min_bounds_from_below() {
        let mut m = ScalingManager::new(policy(false), 2, 8, 5);
        let mut last = None;
        for t in (0..=400).step_by(5) {
            last = m.observe(Moment::from_secs(t), depth(0)).or(last);
        }
        assert_eq!(m.current(), 2);
        assert_eq!(last.map(|d| d.to), Some(2));
    }

    #[test]
    fn predictive_scales_up_ahead_of_a_learned_peak_but_never_in_on_a_forecast() {
        // A 10-minute "day": quiet, then a peak in minutes 6-7. Rates are jobs/s, jobs take 2 s.
        let rate = |minute: u64| {
            if (6..8).contains(&(minute % 10)) {
                10.0
            } else {
                1.0
            }
        };
        let sample = |t: u64| LoadSample {
            depth: 0,
            arrivals_per_sec: rate(t / 60),
            mean_service_secs: Some(2.0),
        };
        let mut m = ScalingManager::new(policy(true), 1, 50, 1);
        let mut t = 0;
        // Three seasons to learn (the depth stays 0: reactive alone would never scale).
        while t < 3 * 600 {
            m.observe(Moment::from_secs(t), sample(t));
            t += 5;
        }
        assert!(m.forecaster().ready());
        // Run up to the start of the fourth day's peak: the count must already be up, by the
        // forecast (the depth is 0 throughout, so the reactive rule never asks for more).
        let peak_start = 3 * 600 + 6 * 60;
        let mut last_up = None;
        while t < peak_start {
            if let Some(d) = m.observe(Moment::from_secs(t), sample(t)) {
                if d.to > d.from {
                    last_up = Some(d);
                }
            }
            t += 5;
        }
        assert!(
            m.current() >= 30,
            "10 jobs/s × 2 s / 0.5 = 40 workers wanted, got {}",
            m.current()
        );
        assert_eq!(last_up.map(|d| d.reason), Some(ScaleReason::Predictive));
        // During the peak the reactive rule asks for 1 worker (depth 0) and the forecast for
        // the next minutes falls, but a scale-in never goes below what the observed rate needs.
        let peak_end = 3 * 600 + 8 * 60;
        while t < peak_end {
            if let Some(d) = m.observe(Moment::from_secs(t), sample(t)) {
                assert!(d.to >= 40, "scaled to {} at {t} during the peak", d.to);
            }
            t += 5;
        }
        // After the peak it does scale in.
        while t < 4 * 600 {
            m.observe(Moment::from_secs(t), sample(t));
            t += 5;
        }
        assert!(m.current() < 10, "still at {} after the peak", m.current());
    }

    #[test]
    fn a_low_forecast_alone_does_not_scale_in() {
        // The forecaster learned a quiet season; now the observed rate is high and the queue is
        // empty. A scale-in never goes below what the observed rate needs, so the count holds.
        let mut m = ScalingManager::new(policy(true), 1, 50, 20);
        let mut t = 0;
        while t < 3 * 600 {
            m.observe(
                Moment::from_secs(t),
                LoadSample {
                    depth: 200,
                    arrivals_per_sec: 0.1,
                    mean_service_secs: Some(2.0),
                },
            );
            t += 5;
        }
        assert_eq!(m.current(), 20);
        for _ in 0..100 {
            let d = m.observe(
                Moment::from_secs(t),
                LoadSample {
                    depth: 0,
                    arrivals_per_sec: 5.0,
                    mean_service_secs: Some(2.0),
                },
            );
            assert!(d.is_none_or(|d| d.to >= 20), "{d:?}");
            t += 5;
        }
    }
}
