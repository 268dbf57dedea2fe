//! Progress display and output helpers shared by the commands.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sadomap_core::Locality;
use sadomap_store::Stage;

/// A spinner naming the current stage when stderr is a terminal; plain log lines otherwise.
pub struct StageProgress {
    bar: Option<ProgressBar>,
}

impl StageProgress {
    /// Starts the display.
    pub fn new() -> StageProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        StageProgress { bar }
    }

    /// Shows that `stage` started.
    pub fn stage(&mut self, stage: Stage) {
        let msg = match stage {
            Stage::Read => "reading files",
            Stage::Prepare => "normalising, validating, assigning districts",
            Stage::Store => "writing to the store (one transaction)",
            Stage::Index => "building the index",
        };
        self.message(msg);
    }

    /// Shows a free-form message.
    pub fn message(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_owned()),
            None => eprintln!("sadomap: {msg}"),
        }
    }

    /// Removes the spinner.
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// Seconds with millisecond precision, for timings.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The district name, `outside`, or `-` for an unknown district, as the text outputs print it.
pub fn locality_label(l: &Locality) -> &str {
    match l {
        Locality::District(d) => d,
        Locality::Outside => "outside",
        Locality::Unknown => "-",
    }
}
