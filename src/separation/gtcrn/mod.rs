//! The GTCRN denoiser (16 kHz): the model ([`model`]) run frame by frame inside a streaming STFT
//! (512-point frames, hop 256, square-root Hann), so its algorithmic latency is one window, 32 ms.

pub mod convert;
pub mod model;

use std::path::Path;
use std::sync::Arc;

pub use model::{Gtcrn, GtcrnState};

use super::Enhancer;
use super::stft::StreamingStft;
use crate::error::Result;

pub const SAMPLE_RATE: u32 = 16_000;
const N_FFT: usize = 512;
const HOP: usize = 256;

/// One stream through GTCRN.
pub struct GtcrnEnhancer {
    model: Arc<Gtcrn>,
    state: GtcrnState,
    stft: StreamingStft,
}

impl GtcrnEnhancer {
    pub fn new(model: Arc<Gtcrn>) -> Self {
        let state = model.state();
        Self { model, state, stft: StreamingStft::new(N_FFT, HOP, StreamingStft::sqrt_hann_symmetric(N_FFT)) }
    }

    pub fn load(dir: &Path) -> Result<Self> {
        Ok(Self::new(Arc::new(Gtcrn::load(dir)?)))
    }
}

impl Enhancer for GtcrnEnhancer {
    fn process(&mut self, input: &[f32]) -> Vec<f32> {
        let (model, state) = (&self.model, &mut self.state);
        self.stft.process(input, |spectrum| model.frame(state, spectrum))
    }

    fn finish(&mut self) -> Vec<f32> {
        let (model, state) = (&self.model, &mut self.state);
        let out = self.stft.finish(|spectrum| model.frame(state, spectrum));
        *state = model.state();
        out
    }

    fn latency_samples(&self) -> usize {
        self.stft.latency_samples()
    }
}
