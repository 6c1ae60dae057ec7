//! Denoisers built for 48 kHz audio in 10 ms frames (RNNoise, DeepFilterNet3) inside hark's
//! 16 kHz streams: the input is resampled up (×3) in 10 ms blocks, run frame by frame, resampled
//! back, and the denoiser's own delay trimmed so the output stays aligned with the input.

use super::Enhancer;
use crate::audio::Resampler;
use crate::audio::SAMPLE_RATE;

pub const RATE: u32 = 48_000;
/// Samples per frame at 48 kHz (10 ms).
pub const FRAME: usize = 480;
/// Resampling block: 10 ms of 16 kHz input.
const BLOCK: usize = 160;

/// A 48 kHz frame-by-frame denoiser.
pub trait FrameDenoiser: Send {
    /// Denoises one [`FRAME`] of `input` into `output`.
    fn frame(&mut self, input: &[f32], output: &mut [f32]);
    /// How many 48 kHz samples the output lags the input.
    fn delay(&self) -> usize;
    /// Forgets the stream (a new one starts).
    fn reset(&mut self);
}

/// FFT blocks of a quarter of a 10 ms block: 1.25 ms of delay each way.
const SUB_BLOCKS: usize = 4;

/// The up-sampler keeps its delay in its output, so 48 kHz frames start with the 16 kHz blocks
/// (no wait for a frame's rest); it is trimmed with the denoiser's, after the denoiser.
fn resamplers() -> (Resampler, Resampler) {
    (
        Resampler::low_delay(SAMPLE_RATE, RATE, BLOCK, SUB_BLOCKS).expect("fixed rates").keeping_delay(),
        Resampler::low_delay(RATE, SAMPLE_RATE, BLOCK * 3, SUB_BLOCKS).expect("fixed rates"),
    )
}

pub struct At48k<D> {
    denoiser: D,
    up: Resampler,
    down: Resampler,
    /// 48 kHz input not yet a whole frame.
    pending: Vec<f32>,
    /// 16 kHz output samples still to drop: the up-sampler's and the denoiser's delays, trimmed
    /// after the down-sampler so that its blocks, too, stay aligned with the frames.
    to_trim: usize,
    received: usize,
    emitted: usize,
}

impl<D: FrameDenoiser> At48k<D> {
    pub fn new(denoiser: D) -> Self {
        let (up, down) = resamplers();
        let to_trim = Self::kept_delay(&up, &denoiser);
        Self { denoiser, up, down, pending: Vec::new(), to_trim, received: 0, emitted: 0 }
    }

    /// The delays the output carries until trimmed, in 16 kHz samples.
    fn kept_delay(up: &Resampler, denoiser: &D) -> usize {
        (up.delay() + denoiser.delay()) / 3
    }

    /// Denoises whole frames of `pending` and resamples them down, trimming the delays.
    fn frames(&mut self, out: &mut Vec<f32>) {
        let whole = self.pending.len() / FRAME * FRAME;
        let mut high = vec![0f32; whole];
        for (frame, frame_out) in self.pending[..whole].chunks_exact(FRAME).zip(high.chunks_exact_mut(FRAME))
        {
            self.denoiser.frame(frame, frame_out);
        }
        self.pending.drain(..whole);
        let start = out.len();
        // Resampling fixed, finite rates cannot fail.
        self.down.process(&high, out).expect("resampling");
        let trim = self.to_trim.min(out.len() - start);
        self.to_trim -= trim;
        out.drain(start..start + trim);
    }
}

impl<D: FrameDenoiser> Enhancer for At48k<D> {
    fn process(&mut self, input: &[f32]) -> Vec<f32> {
        self.received += input.len();
        self.up.process(input, &mut self.pending).expect("resampling");
        let mut out = Vec::new();
        self.frames(&mut out);
        self.emitted += out.len();
        out
    }

    fn finish(&mut self) -> Vec<f32> {
        self.up.finish(&mut self.pending).expect("resampling");
        // Silence after the end pushes the last real samples through the denoiser's delay.
        let delay = self.denoiser.delay();
        let padding = (FRAME - self.pending.len() % FRAME) % FRAME + delay.div_ceil(FRAME) * FRAME;
        self.pending.extend(std::iter::repeat_n(0.0, padding));
        let mut out = Vec::new();
        self.frames(&mut out);
        let start = out.len();
        self.down.finish(&mut out).expect("resampling");
        let trim = self.to_trim.min(out.len() - start);
        out.drain(start..start + trim);
        let missing = self.received.saturating_sub(self.emitted);
        out.resize(missing, 0.0);
        self.denoiser.reset();
        (self.up, self.down) = resamplers();
        self.pending.clear();
        (self.to_trim, self.received, self.emitted) = (Self::kept_delay(&self.up, &self.denoiser), 0, 0);
        out
    }

    fn latency_samples(&self) -> usize {
        // A 10 ms block waited for at 16 kHz, then the up-sampler's, the denoiser's and the
        // down-sampler's delays.
        BLOCK + (self.up.delay() + self.denoiser.delay()).div_ceil(3) + self.down.delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::separation::metrics::si_sdr;

    /// Passes its input through, `delay` samples late.
    struct Delayed {
        delay: usize,
        line: std::collections::VecDeque<f32>,
    }

    impl FrameDenoiser for Delayed {
        fn frame(&mut self, input: &[f32], output: &mut [f32]) {
            self.line.extend(input);
            for out in output.iter_mut() {
                *out = self.line.pop_front().unwrap_or(0.0);
            }
        }

        fn delay(&self) -> usize {
            self.delay
        }

        fn reset(&mut self) {
            self.line = std::iter::repeat_n(0.0, self.delay).collect();
        }
    }

    #[test]
    fn a_pass_through_comes_back_aligned_and_unchanged() {
        // Speech-like: a few harmonics under 4 kHz with a slow envelope.
        let x: Vec<f32> = (0..32_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let env = (std::f32::consts::PI * t * 3.0).sin().abs();
                env * [220.0, 660.0, 1500.0, 3100.0]
                    .iter()
                    .map(|f| (2.0 * std::f32::consts::PI * f * t).sin() * 0.2)
                    .sum::<f32>()
            })
            .collect();
        for delay in [0, 480, 1440] {
            let mut d = Delayed { delay, line: Default::default() };
            d.reset();
            let mut e = At48k::new(d);
            let mut out = Vec::new();
            for chunk in x.chunks(160) {
                out.extend(e.process(chunk));
            }
            out.extend(e.finish());
            assert_eq!(out.len(), x.len());
            let quality = si_sdr(&out, &x);
            assert!(quality > 30.0, "delay {delay}: SI-SDR {quality:.1} dB");
        }
    }
}
