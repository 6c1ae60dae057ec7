//! RNNoise (Valin 2018) through the nnnoiseless crate: a recurrent network that predicts gains for
//! 22 bands of 48 kHz audio in 10 ms frames. hark's audio is 16 kHz, so the stream is resampled
//! up (×3) and back around it in 10 ms blocks, and the network's one-frame delay is trimmed so the
//! output stays aligned with the input.

use nnnoiseless::DenoiseState;

use super::framed::{FrameDenoiser, Framed};

/// nnnoiseless works at 48 kHz.
const RATE: u32 = 48_000;

/// RNNoise works on 16-bit sample values.
const SCALE: f32 = 32_768.0;

pub struct Rnnoise {
    state: Box<DenoiseState<'static>>,
    scaled: Vec<f32>,
}

impl FrameDenoiser for Rnnoise {
    fn rate(&self) -> u32 {
        RATE
    }

    fn frame(&mut self, input: &[f32], output: &mut [f32]) {
        self.scaled.clear();
        self.scaled.extend(input.iter().map(|s| s * SCALE));
        self.state.process_frame(output, &self.scaled);
        output.iter_mut().for_each(|s| *s /= SCALE);
    }

    fn delay(&self) -> usize {
        DenoiseState::FRAME_SIZE
    }

    fn reset(&mut self) {
        self.state = DenoiseState::new();
    }
}

pub type RnnoiseEnhancer = Framed<Rnnoise>;

impl Default for RnnoiseEnhancer {
    fn default() -> Self {
        Self::new(Rnnoise {
            state: DenoiseState::new(),
            scaled: Vec::with_capacity(DenoiseState::FRAME_SIZE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::separation::Enhancer;

    #[test]
    fn keeps_length_and_alignment_of_a_tone() {
        // A steady tone with a sharp onset: RNNoise leaves some of it, and the onset must not move.
        let mut x = vec![0f32; 8000];
        x.extend((0..16_000).map(|i| 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 16_000.0).sin()));
        let mut e = RnnoiseEnhancer::default();
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
