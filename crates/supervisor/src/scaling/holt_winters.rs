//! Additive Holt-Winters (triple exponential smoothing) with one season, written out here: it is a
//! dozen lines and the supervisor needs only one-step updates, h-step forecasts and the error.

/// An additive Holt-Winters forecaster of a series with a season of `season_len` observations.
///
/// The first full season initialises the level (its mean), a zero trend and the seasonal offsets;
/// forecasts are available after that. Every later observation is first compared with its
/// one-step-ahead forecast, which gives the running MAPE.
#[derive(Debug, Clone)]
pub struct HoltWinters {
    alpha: f64,
    beta: f64,
    gamma: f64,
    season_len: usize,
    level: f64,
    trend: f64,
    season: Vec<f64>,
    observed: usize,
    warmup: Vec<f64>,
    ape_sum: f64,
    ape_count: u64,
}

/// Observations below this are left out of the MAPE (a percentage error of a near-zero value says
/// nothing).
const MAPE_FLOOR: f64 = 1e-6;

impl HoltWinters {
    /// A forecaster with smoothing factors `alpha` (level), `beta` (trend), `gamma` (season), each
    /// clamped to [0, 1], and a season of at least 2 observations.
    pub fn new(alpha: f64, beta: f64, gamma: f64, season_len: usize) -> Self {
        let season_len = season_len.max(2);
        HoltWinters {
            alpha: alpha.clamp(0.0, 1.0),
            beta: beta.clamp(0.0, 1.0),
            gamma: gamma.clamp(0.0, 1.0),
            season_len,
            level: 0.0,
            trend: 0.0,
            season: vec![0.0; season_len],
            observed: 0,
            warmup: Vec::with_capacity(season_len),
            ape_sum: 0.0,
            ape_count: 0,
        }
    }

    /// Whether a full season has been seen and forecasts are available.
    pub fn ready(&self) -> bool {
        self.warmup.len() == self.season_len
    }

    /// Adds the next observation.
    pub fn observe(&mut self, x: f64) {
        let x = if x.is_finite() { x } else { 0.0 };
        if !self.ready() {
            self.warmup.push(x);
            if self.ready() {
                self.level = self.warmup.iter().sum::<f64>() / self.season_len as f64;
                for (s, w) in self.season.iter_mut().zip(&self.warmup) {
                    *s = w - self.level;
                }
                self.observed = self.season_len;
            }
            return;
        }
        if x > MAPE_FLOOR {
            if let Some(f) = self.forecast(1) {
                self.ape_sum += (x - f).abs() / x;
                self.ape_count += 1;
            }
        }
        let i = self.observed % self.season_len;
        let prev_level = self.level;
        self.level =
            self.alpha * (x - self.season[i]) + (1.0 - self.alpha) * (self.level + self.trend);
        self.trend = self.beta * (self.level - prev_level) + (1.0 - self.beta) * self.trend;
        self.season[i] = self.gamma * (x - self.level) + (1.0 - self.gamma) * self.season[i];
        self.observed += 1;
    }

    /// Forecast `h >= 1` steps ahead (never negative), once ready.
    pub fn forecast(&self, h: usize) -> Option<f64> {
        if !self.ready() || h == 0 {
            return None;
        }
        let i = (self.observed + h - 1) % self.season_len;
        Some((self.level + h as f64 * self.trend + self.season[i]).max(0.0))
    }

    /// Mean absolute percentage error of the one-step forecasts so far, as a fraction (0.1 = 10 %).
    pub fn mape(&self) -> Option<f64> {
        (self.ape_count > 0).then(|| self.ape_sum / self.ape_count as f64)
    }

    /// Observations the MAPE is based on.
    pub fn mape_samples(&self) -> u64 {
        self.ape_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_pure_season_exactly() {
        let season = [1.0, 5.0, 9.0, 5.0];
        let mut hw = HoltWinters::new(0.3, 0.0, 0.3, 4);
        assert_eq!(hw.forecast(1), None);
        for _ in 0..10 {
            for x in season {
                hw.observe(x);
            }
        }
        for (h, want) in season.iter().enumerate() {
            let f = hw.forecast(h + 1).expect("ready");
            assert!((f - want).abs() < 1e-9, "h={} f={f}", h + 1);
        }
        assert!(hw.mape().expect("has error") < 1e-9);
    }

    #[test]
    fn follows_a_trend_and_never_forecasts_below_zero() {
        let mut hw = HoltWinters::new(0.5, 0.3, 0.1, 2);
        for t in 0..50 {
            hw.observe(10.0 + t as f64);
        }
        let f = hw.forecast(1).expect("ready");
        assert!((f - 60.0).abs() < 2.0, "{f}");
        let mut down = HoltWinters::new(0.9, 0.9, 0.1, 2);
        for t in 0..20 {
            down.observe(100.0 - 5.0 * t as f64);
        }
        assert_eq!(down.forecast(100), Some(0.0));
    }

    #[test]
    fn mape_reports_the_error() {
        let mut hw = HoltWinters::new(0.0, 0.0, 0.0, 2);
        hw.observe(10.0);
        hw.observe(10.0);
        hw.observe(20.0); // forecast 10: 50 % error
        assert_eq!(hw.mape(), Some(0.5));
        assert_eq!(hw.mape_samples(), 1);
    }
}
