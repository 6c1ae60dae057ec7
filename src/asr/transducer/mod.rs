//! The streaming transducer with adaptive lookahead attention (ANCAT).
//!
//! - [`model`]: the encoder (Whisper-style front end, Transformer blocks with attention
//!   schedulers, 25 Hz output) and the whole-sequence masked forward;
//! - [`stream`]: the streaming engine that reproduces that forward frame by frame;
//! - [`search`]: greedy and modified beam search, partials, word times and confidences;
//! - [`recognizer`]: the stage that ties them to log-mel frames.

pub mod config;
pub mod init;
pub mod model;
pub mod recognizer;
pub mod search;
pub mod stream;
pub mod vocab;

pub use config::TransducerConfig;
pub use model::TransducerModel;
pub use recognizer::{TransducerEngine, TransducerOptions, TransducerStage};
pub use stream::{EncoderFrame, StreamingEncoder};
pub use vocab::Vocabulary;

/// How far each encoder layer may look into the future, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookahead {
    /// The model's schedulers decide per layer and frame.
    Adaptive,
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
            _ => s
                .strip_prefix("fixed:")
                .and_then(|n| n.parse().ok())
                .map(Self::Fixed)
                .ok_or_else(|| format!("unknown lookahead mode '{s}' (adaptive, causal, fixed:N, full)")),
        }
    }
}

impl std::fmt::Display for Lookahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Adaptive => write!(f, "adaptive"),
            Self::Causal => write!(f, "causal"),
            Self::Fixed(n) => write!(f, "fixed:{n}"),
            Self::Full => write!(f, "full"),
        }
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
    pub fn of(values: &[f32]) -> Self {
        if values.is_empty() {
            return Self { mean_ms: 0.0, p50_ms: 0.0, p90_ms: 0.0 };
        }
        let mut v = values.to_vec();
        v.sort_by(f32::total_cmp);
        // Nearest-rank percentiles.
        let pct = |p: f32| v[((p / 100.0 * v.len() as f32).ceil() as usize).clamp(1, v.len()) - 1];
        Self { mean_ms: v.iter().sum::<f32>() / v.len() as f32, p50_ms: pct(50.0), p90_ms: pct(90.0) }
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
        let s = LookaheadStats::of(&[12.5, 12.5, 52.5, 92.5]);
        assert_eq!(s, LookaheadStats { mean_ms: 42.5, p50_ms: 12.5, p90_ms: 92.5 });
    }
}
