//! RNNoise (Valin 2018) through the nnnoiseless crate: a recurrent network that predicts gains for
//! 22 bands of 48 kHz audio in 10 ms frames. hark's audio is 16 kHz, so the stream is resampled
//! up (×3) and back around it in 10 ms blocks, and the network's one-frame delay is trimmed so the
//! output stays aligned with the input.

use nnnoiseless::DenoiseState;

use super::Enhancer;
use crate::audio::Resampler;
use crate::audio::SAMPLE_RATE;

const RATE: u32 = 48_000;
const FRAME: usize = DenoiseState::FRAME_SIZE;
/// RNNoise works on 16-bit sample values.
const SCALE: f32 = 32_768.0;
/// Resampling block: 10 ms of 16 kHz input.
const BLOCK: usize = 160;

pub struct RnnoiseEnhancer {
    state: Box<DenoiseState<'static>>,
    up: Resampler,
    down: Resampler,
    /// 48 kHz input not yet a whole frame.
    pending: Vec<f32>,
    /// 48 kHz output samples still to drop: the network's frame of delay.
    to_trim: usize,
    received: usize,
    emitted: usize,
}

impl Default for RnnoiseEnhancer {
    fn default() -> Self {
        Self::new()
    }
}

impl RnnoiseEnhancer {
    pub fn new() -> Self {
        Self {
            state: DenoiseState::new(),
            up: Resampler::with_chunk(SAMPLE_RATE, RATE, BLOCK).expect("fixed rates"),
            down: Resampler::with_chunk(RATE, SAMPLE_RATE, BLOCK * 3).expect("fixed rates"),
            pending: Vec::new(),
            to_trim: FRAME,
            received: 0,
            emitted: 0,
        }
    }

    /// Denoises whole frames of `pending`, returning 48 kHz output with the delay trimmed.
    fn frames(&mut self) -> Vec<f32> {
        let mut out = Vec::new();
        let mut frame_out = [0f32; FRAME];
        let whole = self.pending.len() / FRAME * FRAME;
        for frame in self.pending[..whole].chunks_exact(FRAME) {
            let scaled: Vec<f32> = frame.iter().map(|s| s * SCALE).collect();
            self.state.process_frame(&mut frame_out, &scaled);
            out.extend(frame_out.iter().map(|s| s / SCALE));
        }
        self.pending.drain(..whole);
        let trim = self.to_trim.min(out.len());
        self.to_trim -= trim;
        out.drain(..trim);
        out
    }
}

impl Enhancer for RnnoiseEnhancer {
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
        // Silence after the end pushes the last real samples through the network's delay.
        let padding = (FRAME - self.pending.len() % FRAME) % FRAME + FRAME;
        self.pending.extend(std::iter::repeat_n(0.0, padding));
        let high = self.frames();
        let mut out = Vec::new();
        self.down.process(&high, &mut out).expect("resampling");
        self.down.finish(&mut out).expect("resampling");
        let missing = self.received.saturating_sub(self.emitted);
        out.resize(missing, 0.0);
        *self = Self::new();
        out
    }

    fn latency_samples(&self) -> usize {
        // One 10 ms block waited for at 16 kHz, a frame at 48 kHz, and the resamplers' blocks.
        BLOCK + FRAME / 3 + BLOCK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_length_and_alignment_of_a_tone() {
        // A steady tone with a sharp onset: RNNoise leaves some of it, and the onset must not move.
        let mut x = vec![0f32; 8000];
        x.extend((0..16_000).map(|i| 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 16_000.0).sin()));
        let mut e = RnnoiseEnhancer::new();
        let mut out = Vec::new();
        for chunk in x.chunks(333) {
            out.extend(e.process(chunk));
        }
        out.extend(e.finish());
        assert_eq!(out.len(), x.len());
        let onset = out.iter().position(|v| v.abs() > 0.01).unwrap();
        assert!((7990..8100).contains(&onset), "onset at {onset}");
    }
}
