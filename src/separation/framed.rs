//! Denoisers that work in 10 ms frames at their own rate (RNNoise and DeepFilterNet3's reference
//! stream at 48 kHz, DeepFilterNet3's 16 kHz stream) inside hark's 16 kHz streams: the input is
//! resampled to the denoiser's rate (when it is not 16 kHz) in 10 ms blocks, run frame by frame,
//! resampled back, and the denoiser's own delay trimmed so the output stays aligned with the
//! input.

use super::Enhancer;
use crate::audio::Resampler;
use crate::audio::SAMPLE_RATE;

/// Resampling block: 10 ms of 16 kHz input.
const BLOCK: usize = 160;

/// A denoiser that works in 10 ms frames at [`rate`](FrameDenoiser::rate).
pub trait FrameDenoiser: Send {
    /// Its sample rate: 16 kHz, or a multiple of it.
    fn rate(&self) -> u32;
    /// Samples per 10 ms frame.
    fn frame_len(&self) -> usize {
        self.rate() as usize / 100
    }
    /// Denoises one frame of `input` into `output`.
    fn frame(&mut self, input: &[f32], output: &mut [f32]);
    /// How many samples (at its rate) the output lags the input.
    fn delay(&self) -> usize;
    /// Forgets the stream (a new one starts).
    fn reset(&mut self);
}

/// FFT blocks of a quarter of a 10 ms block: 1.25 ms of delay each way.
const SUB_BLOCKS: usize = 4;

/// The up-sampler keeps its delay in its output, so frames start with the 16 kHz blocks (no
/// wait for a frame's rest); it is trimmed with the denoiser's, after the denoiser. At 16 kHz
/// both pass the audio through with no delay.
fn resamplers(rate: u32) -> (Resampler, Resampler) {
    let ratio = (rate / SAMPLE_RATE) as usize;
    (
        Resampler::low_delay(SAMPLE_RATE, rate, BLOCK, SUB_BLOCKS).expect("fixed rates").keeping_delay(),
        Resampler::low_delay(rate, SAMPLE_RATE, BLOCK * ratio, SUB_BLOCKS).expect("fixed rates"),
    )
}

pub struct Framed<D> {
    denoiser: D,
    up: Resampler,
    down: Resampler,
    /// Input at the denoiser's rate not yet a whole frame.
    pending: Vec<f32>,
    /// 16 kHz output samples still to drop: the up-sampler's and the denoiser's delays, trimmed
    /// after the down-sampler so that its blocks, too, stay aligned with the frames.
    to_trim: usize,
    received: usize,
    emitted: usize,
}

impl<D: FrameDenoiser> Framed<D> {
    pub fn new(denoiser: D) -> Self {
        let rate = denoiser.rate();
        assert!(
            rate.is_multiple_of(SAMPLE_RATE),
            "a frame denoiser's rate is a multiple of 16 kHz, not {rate}"
        );
        let (up, down) = resamplers(rate);
        let mut framed =
            Self { denoiser, up, down, pending: Vec::new(), to_trim: 0, received: 0, emitted: 0 };
        framed.to_trim = framed.kept_delay();
        framed
    }

    /// The denoiser's rate over 16 kHz.
    fn ratio(&self) -> usize {
        (self.denoiser.rate() / SAMPLE_RATE) as usize
    }

    /// The delays the output carries until trimmed, in 16 kHz samples.
    fn kept_delay(&self) -> usize {
        (self.up.delay() + self.denoiser.delay()) / self.ratio()
    }

    /// Denoises whole frames of `pending` and resamples them down, trimming the delays.
    fn frames(&mut self, out: &mut Vec<f32>) {
        let frame = self.denoiser.frame_len();
        let whole = self.pending.len() / frame * frame;
        let mut denoised = vec![0f32; whole];
        for (input, output) in self.pending[..whole].chunks_exact(frame).zip(denoised.chunks_exact_mut(frame))
        {
            self.denoiser.frame(input, output);
        }
        self.pending.drain(..whole);
        let start = out.len();
        // Resampling fixed, finite rates cannot fail.
        self.down.process(&denoised, out).expect("resampling");
        let trim = self.to_trim.min(out.len() - start);
        self.to_trim -= trim;
        out.drain(start..start + trim);
    }
}

impl<D: FrameDenoiser> Enhancer for Framed<D> {
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
        let (frame, delay) = (self.denoiser.frame_len(), self.denoiser.delay());
        let padding = (frame - self.pending.len() % frame) % frame + delay.div_ceil(frame) * frame;
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
        (self.up, self.down) = resamplers(self.denoiser.rate());
        self.pending.clear();
        (self.to_trim, self.received, self.emitted) = (self.kept_delay(), 0, 0);
        out
    }

    fn latency_samples(&self) -> usize {
        // A 10 ms block waited for at 16 kHz, then the up-sampler's, the denoiser's and the
        // down-sampler's delays.
        BLOCK + (self.up.delay() + self.denoiser.delay()).div_ceil(self.ratio()) + self.down.delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::separation::metrics::si_sdr;

    /// Passes its input through, `delay` samples late.
    struct Delayed {
        rate: u32,
        delay: usize,
        line: std::collections::VecDeque<f32>,
    }

    impl FrameDenoiser for Delayed {
        fn rate(&self) -> u32 {
            self.rate
        }

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
        for (rate, delay) in [(48_000, 0), (48_000, 480), (48_000, 1440), (16_000, 0), (16_000, 480)] {
            let mut d = Delayed { rate, delay, line: Default::default() };
            d.reset();
            let mut e = Framed::new(d);
            let mut out = Vec::new();
            for chunk in x.chunks(160) {
                out.extend(e.process(chunk));
            }
            out.extend(e.finish());
            assert_eq!(out.len(), x.len());
            let quality = si_sdr(&out, &x);
            assert!(quality > 30.0, "{rate} Hz, delay {delay}: SI-SDR {quality:.1} dB");
            let latency = e.latency_samples();
            assert!(
                latency >= 160 + delay * 16_000 / rate as usize,
                "{rate} Hz, delay {delay}: latency {latency}"
            );
        }
    }
}
