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

fn resamplers() -> (Resampler, Resampler) {
    (
        Resampler::with_chunk(SAMPLE_RATE, RATE, BLOCK).expect("fixed rates"),
        Resampler::with_chunk(RATE, SAMPLE_RATE, BLOCK * 3).expect("fixed rates"),
    )
}

pub struct At48k<D> {
    denoiser: D,
    up: Resampler,
    down: Resampler,
    /// 48 kHz input not yet a whole frame.
    pending: Vec<f32>,
    /// 48 kHz output samples still to drop: the denoiser's delay.
    to_trim: usize,
    received: usize,
    emitted: usize,
}

impl<D: FrameDenoiser> At48k<D> {
    pub fn new(denoiser: D) -> Self {
        let to_trim = denoiser.delay();
        let (up, down) = resamplers();
        Self { denoiser, up, down, pending: Vec::new(), to_trim, received: 0, emitted: 0 }
    }

    /// Denoises whole frames of `pending`, returning 48 kHz output with the delay trimmed.
    fn frames(&mut self) -> Vec<f32> {
        let whole = self.pending.len() / FRAME * FRAME;
        let mut out = vec![0f32; whole];
        for (frame, frame_out) in self.pending[..whole].chunks_exact(FRAME).zip(out.chunks_exact_mut(FRAME)) {
            self.denoiser.frame(frame, frame_out);
        }
        self.pending.drain(..whole);
        let trim = self.to_trim.min(out.len());
        self.to_trim -= trim;
        out.drain(..trim);
        out
    }
}

impl<D: FrameDenoiser> Enhancer for At48k<D> {
    fn process(&mut self, input: &[f32]) -> Vec<f32> {
        self.received += input.len();
        // Resampling fixed, finite rates cannot fail.
        self.up.process(input, &mut self.pending).expect("resampling");
        let high = self.frames();
        let mut out = Vec::new();
        self.down.process(&high, &mut out).expect("resampling");
        self.emitted += out.len();
        out
    }

    fn finish(&mut self) -> Vec<f32> {
        self.up.finish(&mut self.pending).expect("resampling");
        // Silence after the end pushes the last real samples through the denoiser's delay.
        let delay = self.denoiser.delay();
        let padding = (FRAME - self.pending.len() % FRAME) % FRAME + delay.div_ceil(FRAME) * FRAME;
        self.pending.extend(std::iter::repeat_n(0.0, padding));
        let high = self.frames();
        let mut out = Vec::new();
        self.down.process(&high, &mut out).expect("resampling");
        self.down.finish(&mut out).expect("resampling");
        let missing = self.received.saturating_sub(self.emitted);
        out.resize(missing, 0.0);
        self.denoiser.reset();
        (self.up, self.down) = resamplers();
        self.pending.clear();
        (self.to_trim, self.received, self.emitted) = (delay, 0, 0);
        out
    }

    fn latency_samples(&self) -> usize {
        // A 10 ms block waited for at 16 kHz; the up-sampler's delay, and the wait for the rest
        // of a frame that delay leaves (the 48 kHz frames start that much after the blocks);
        // the denoiser's delay; the down-sampler's.
        let up = self.up.delay();
        let misaligned = (FRAME - up % FRAME) % FRAME;
        BLOCK + (up + misaligned + self.denoiser.delay()).div_ceil(3) + self.down.delay()
    }
}
