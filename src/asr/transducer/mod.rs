//! The streaming transducer with adaptive lookahead attention (ANCAT).
//!
//! - [`model`]: the encoder (Whisper-style front end, Transformer blocks with attention
//!   schedulers, 25 Hz output) and the whole-sequence masked forward;
//! - [`stream`]: the streaming engine that reproduces that forward frame by frame;
//! - [`search`]: greedy and modified beam search, partials, word times and confidences;
//! - [`recognizer`]: the stage that ties them to log-mel frames.

pub mod config;
pub mod init;
pub mod lm;
pub mod model;
pub mod recognizer;
pub mod search;
pub mod stream;
pub mod vocab;

pub use config::TransducerConfig;
pub use model::TransducerModel;
pub use recognizer::{Decoding, TransducerEngine, TransducerOptions, TransducerStage};
pub use stream::{EncoderFrame, StreamingEncoder};
pub use vocab::Vocabulary;

/// How far each encoder layer may look into the future, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookahead {
    /// The model's schedulers decide per layer and frame.
    Adaptive,
    /// The schedulers with their gate thresholds moved to give this mean lookahead (ms), read
    /// off the latency curve measured at calibration.
    AdaptiveAt(u32),
    /// No future frames.
    Causal,
    /// N future encoder frames (20 ms each) at every layer.
    Fixed(usize),
    /// The whole segment.
    Full,
}

impl std::str::FromStr for Lookahead {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "adaptive" => Ok(Self::Adaptive),
            "causal" => Ok(Self::Causal),
            "full" => Ok(Self::Full),
            _ => {
                let fixed = s.strip_prefix("fixed:").and_then(|n| n.parse().ok()).map(Self::Fixed);
                let at = || {
                    s.strip_prefix("adaptive:")
                        .map(|ms| ms.trim_end_matches("ms"))
                        .and_then(|ms| ms.parse().ok())
                        .map(Self::AdaptiveAt)
                };
                fixed.or_else(at).ok_or_else(|| {
                    format!("unknown lookahead mode '{s}' (adaptive, adaptive:MS, causal, fixed:N, full)")
                })
            }
        }
    }
}

impl std::fmt::Display for Lookahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Adaptive => write!(f, "adaptive"),
            Self::AdaptiveAt(ms) => write!(f, "adaptive:{ms}"),
            Self::Causal => write!(f, "causal"),
            Self::Fixed(n) => write!(f, "fixed:{n}"),
            Self::Full => write!(f, "full"),
        }
    }
}

/// Per-frame lookaheads counted exactly in constant memory: every value is a multiple of 2.5 ms
/// (10 ms mel frames, 12.5 ms STFT reach, 40 ms output frames), so they are kept as counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LookaheadHistogram {
    counts: std::collections::BTreeMap<u32, u64>,
}

impl LookaheadHistogram {
    pub fn add(&mut self, ms: f32) {
        *self.counts.entry((ms / 2.5).round() as u32).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &Self) {
        for (&k, &n) in &other.counts {
            *self.counts.entry(k).or_insert(0) += n;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn stats(&self) -> LookaheadStats {
        let n = self.count();
        if n == 0 {
            return LookaheadStats { mean_ms: 0.0, p50_ms: 0.0, p90_ms: 0.0 };
        }
        let sum: f64 = self.counts.iter().map(|(&k, &c)| k as f64 * 2.5 * c as f64).sum();
        let pct = |p: f64| {
            let rank = ((p / 100.0 * n as f64).ceil() as u64).clamp(1, n);
            let mut seen = 0;
            for (&k, &c) in &self.counts {
                seen += c;
                if seen >= rank {
                    return k as f32 * 2.5;
                }
            }
            unreachable!("rank ≤ count")
        };
        LookaheadStats { mean_ms: (sum / n as f64) as f32, p50_ms: pct(50.0), p90_ms: pct(90.0) }
    }
}

/// Mean, median and 90th percentile of per-frame lookaheads, in ms.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LookaheadStats {
    pub mean_ms: f32,
    pub p50_ms: f32,
    pub p90_ms: f32,
}

impl LookaheadStats {
    /// Nearest-rank percentiles and the mean.
    pub fn of(values: &[f32]) -> Self {
        let mut h = LookaheadHistogram::default();
        values.iter().for_each(|&v| h.add(v));
        h.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transducer_lookahead_modes_parse_and_stats() {
        assert_eq!("adaptive".parse::<Lookahead>().unwrap(), Lookahead::Adaptive);
        assert_eq!("fixed:3".parse::<Lookahead>().unwrap(), Lookahead::Fixed(3));
        assert_eq!(Lookahead::Fixed(3).to_string(), "fixed:3");
        assert!("fixed:x".parse::<Lookahead>().is_err());
        assert_eq!("adaptive:120".parse::<Lookahead>().unwrap(), Lookahead::AdaptiveAt(120));
        assert_eq!("adaptive:80ms".parse::<Lookahead>().unwrap(), Lookahead::AdaptiveAt(80));
        assert_eq!(Lookahead::AdaptiveAt(120).to_string(), "adaptive:120");
        assert!("adaptive:soon".parse::<Lookahead>().is_err());
        let s = LookaheadStats::of(&[12.5, 12.5, 52.5, 92.5]);
        assert_eq!(s, LookaheadStats { mean_ms: 42.5, p50_ms: 12.5, p90_ms: 92.5 });
    }
}
