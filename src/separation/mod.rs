//! Speech enhancement and separation stages, run before recognition: denoisers (GTCRN, RNNoise)
//! that stream, target-speaker extraction, and blind two-speaker separation. Each is a plain
//! struct; `pipeline` runs them as nodes.

pub mod gtcrn;
pub mod metrics;
pub mod stft;

/// A streaming enhancer of 16 kHz mono audio. Output sample i corresponds to input sample i:
/// `process` hands out what is final (it lags the input by at most the latency) and `finish`
/// the rest, so the whole output is exactly as long as the input. After `finish` the enhancer
/// starts a new stream.
pub trait Enhancer: Send {
    fn process(&mut self, input: &[f32]) -> Vec<f32>;
    fn finish(&mut self) -> Vec<f32>;
    /// How far the output can lag the input, in samples (the algorithmic latency).
    fn latency_samples(&self) -> usize;

    /// A whole recording at once.
    fn enhance_all(&mut self, input: &[f32]) -> Vec<f32> {
        let mut out = self.process(input);
        out.extend(self.finish());
        out
    }
}
