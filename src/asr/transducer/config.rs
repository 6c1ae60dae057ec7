//! The transducer's shape, stored as `config.json` in a model folder.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TransducerConfig {
    pub n_mels: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    pub ffn_dim: usize,
    /// Keys a query may see in the past, in encoder frames (50 per second), itself excluded.
    pub left_context: usize,
    /// Future encoder frames a query at layer l may see when its scheduler gate is on.
    pub lookahead_frames: Vec<usize>,
    /// Width of the predictor's and joiner's hidden layers.
    pub joiner_dim: usize,
    /// Stateless predictor: how many previous tokens it sees.
    pub context_size: usize,
    pub vocab_size: usize,
    pub blank_id: u32,
    /// False until a training run has produced the head (the weights are then random).
    pub trained: bool,
    /// Free text on where the weights come from.
    pub origin: String,
    /// The blocks whose schedulers were calibrated: the ones a run-time latency target moves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibrated_layers: Vec<usize>,
    /// Mean lookahead at a range of gate-threshold offsets on the calibrated blocks, measured on
    /// training utterances at calibration (offsets ascending), so `--lookahead adaptive:MS` can
    /// pick a latency at run time without audio to measure on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_curve: Vec<LatencyPoint>,
}

/// One point of a model's latency curve.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LatencyPoint {
    /// Raised by this much, every calibrated block's gate opens less often.
    pub threshold_offset: f32,
    pub mean_lookahead_ms: f64,
}

impl TransducerConfig {
    /// Whisper tiny's encoder shape with a character vocabulary.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            n_mels: 80,
            d_model: 384,
            n_heads: 6,
            n_layers: 4,
            ffn_dim: 1536,
            left_context: 150,
            lookahead_frames: vec![4; 4],
            joiner_dim: 320,
            context_size: 2,
            vocab_size,
            blank_id: 0,
            trained: false,
            origin: String::new(),
            calibrated_layers: Vec::new(),
            latency_curve: Vec::new(),
        }
    }

    /// The gate-threshold offset whose mean lookahead is `target_ms`, interpolated linearly
    /// between the two measured points around it.
    pub fn threshold_for_latency(&self, target_ms: f64) -> Result<f32, String> {
        let curve = &self.latency_curve;
        let (Some(most), Some(least)) = (curve.first(), curve.last()) else {
            return Err(
                "this model has no latency curve: recalibrate it with `hark train --calibrate --config FILE`"
                    .into(),
            );
        };
        if target_ms > most.mean_lookahead_ms || target_ms < least.mean_lookahead_ms {
            return Err(format!(
                "this model's adaptive lookahead reaches {:.0}-{:.0} ms, not {target_ms} ms",
                least.mean_lookahead_ms, most.mean_lookahead_ms
            ));
        }
        // The lookahead falls as the offset rises; take the first step that crosses the target.
        for pair in curve.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if target_ms <= a.mean_lookahead_ms && target_ms >= b.mean_lookahead_ms {
                let span = a.mean_lookahead_ms - b.mean_lookahead_ms;
                let t = if span > 0.0 { ((a.mean_lookahead_ms - target_ms) / span) as f32 } else { 0.0 };
                return Ok(a.threshold_offset + t * (b.threshold_offset - a.threshold_offset));
            }
        }
        Ok(most.threshold_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_target_interpolates_the_measured_curve() {
        let mut config = TransducerConfig::tiny(29);
        assert!(config.threshold_for_latency(100.0).unwrap_err().contains("no latency curve"));
        config.latency_curve = [(-1.0, 300.0), (0.0, 190.0), (2.0, 90.0), (8.0, 20.0)]
            .map(|(threshold_offset, mean_lookahead_ms)| LatencyPoint { threshold_offset, mean_lookahead_ms })
            .to_vec();
        assert_eq!(config.threshold_for_latency(190.0).unwrap(), 0.0);
        assert!((config.threshold_for_latency(140.0).unwrap() - 1.0).abs() < 1e-6);
        assert!((config.threshold_for_latency(300.0).unwrap() + 1.0).abs() < 1e-6);
        assert!((config.threshold_for_latency(20.0).unwrap() - 8.0).abs() < 1e-6);
        let err = config.threshold_for_latency(10.0).unwrap_err();
        assert!(err.contains("20-300 ms"), "{err}");
        assert!(config.threshold_for_latency(400.0).is_err());
    }
}
