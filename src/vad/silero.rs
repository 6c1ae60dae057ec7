//! Silero VAD v6 on candle: an STFT as a strided convolution, four conv + ReLU layers, one LSTM
//! cell carried across chunks, and a sigmoid head; one speech probability per 512 samples (32 ms
//! at 16 kHz). Weights: `silero_vad_16k.safetensors` from the pinned silero-vad package.

use std::path::Path;
use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor};

use crate::error::{Error, Result};

/// Samples per decision at 16 kHz.
pub const CHUNK: usize = 512;
/// Samples of the previous chunk each decision also sees (as the package's wrapper does).
const CONTEXT: usize = 64;
/// Right reflection padding before the STFT.
const PAD: usize = 64;
const HIDDEN: usize = 128;

struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.conv1d(&self.weight, 1, self.stride, 1, 1)?.broadcast_add(&self.bias)?.relu()?)
    }
}

/// The weights, loaded once and shared by every stream.
pub struct SileroModel {
    stft: Tensor,
    convs: [Conv; 4],
    /// LSTM input and recurrent weights, transposed for `x · W`: [128, 512] each.
    w_ih: Tensor,
    w_hh: Tensor,
    /// b_ih + b_hh, [1, 512].
    lstm_bias: Tensor,
    /// Head: [128, 1] and [1].
    head_w: Tensor,
    head_b: Tensor,
}

impl SileroModel {
    /// Loads an installed `silero-vad` model folder.
    pub fn load(dir: &Path) -> Result<Arc<Self>> {
        let path = dir.join("model.safetensors");
        let t = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        let get = |name: &str| {
            t.get(name).cloned().ok_or_else(|| {
                Error::Model(format!("{}: no tensor {name}; not a Silero VAD v6 model", path.display()))
            })
        };
        let conv = |i: usize, stride: usize| -> Result<Conv> {
            let bias = get(&format!("conv{i}.bias"))?;
            let n = bias.dim(0)?;
            Ok(Conv { weight: get(&format!("conv{i}.weight"))?, bias: bias.reshape((1, n, 1))?, stride })
        };
        let stft = get("stft_conv.weight")?;
        if stft.dims() != [2 * (256 / 2 + 1), 1, 256] {
            return Err(Error::Model(format!("{}: unexpected STFT shape {:?}", path.display(), stft.dims())));
        }
        Ok(Arc::new(Self {
            stft,
            convs: [conv(1, 1)?, conv(2, 2)?, conv(3, 2)?, conv(4, 1)?],
            w_ih: get("lstm_cell.weight_ih")?.t()?.contiguous()?,
            w_hh: get("lstm_cell.weight_hh")?.t()?.contiguous()?,
            lstm_bias: (get("lstm_cell.bias_ih")? + get("lstm_cell.bias_hh")?)?.unsqueeze(0)?,
            head_w: get("final_conv.weight")?.reshape((1, HIDDEN))?.t()?.contiguous()?,
            head_b: get("final_conv.bias")?,
        }))
    }
}

/// One stream's VAD: the model plus its LSTM state and the last samples of the previous chunk.
pub struct SileroVad {
    model: Arc<SileroModel>,
    h: Tensor,
    c: Tensor,
    /// `CONTEXT` samples of history followed by the samples of the chunk being filled.
    window: Vec<f32>,
}

impl SileroVad {
    pub fn new(model: Arc<SileroModel>) -> Self {
        let zeros = Tensor::zeros((1, HIDDEN), DType::F32, &Device::Cpu).expect("allocating the VAD state");
        let mut window = Vec::with_capacity(CONTEXT + CHUNK + PAD);
        window.resize(CONTEXT, 0.0);
        Self { model, h: zeros.clone(), c: zeros, window }
    }

    /// Forgets the recurrent state (the audio context is kept: it is only 4 ms).
    pub fn reset(&mut self) {
        self.h = self.h.zeros_like().expect("zeroing the VAD state");
        self.c = self.h.clone();
    }

    /// Feeds 16 kHz samples; appends one speech probability (0–1) per completed 512-sample chunk.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (CONTEXT + CHUNK - self.window.len()).min(rest.len());
            self.window.extend(rest[..take].iter().map(|s| if s.is_finite() { *s } else { 0.0 }));
            rest = &rest[take..];
            if self.window.len() == CONTEXT + CHUNK {
                out.push(self.decide()?);
                self.window.drain(..CHUNK);
            }
        }
        Ok(())
    }

    fn decide(&mut self) -> Result<f32> {
        let m = &self.model;
        let n = self.window.len();
        // Reflection padding on the right, as torch's `reflect` (the edge sample is not repeated).
        let mut x = self.window.clone();
        x.extend((0..PAD).map(|i| self.window[n - 2 - i]));
        let x = Tensor::from_vec(x, (1, 1, n + PAD), &Device::Cpu)?;
        let spec = x.conv1d(&m.stft, 0, 128, 1, 1)?; // [1, 258, 4]: real parts then imaginary parts
        let bins = spec.dim(1)? / 2;
        let mag = (spec.narrow(1, 0, bins)?.sqr()? + spec.narrow(1, bins, bins)?.sqr()?)?.sqrt()?;
        let mut y = mag;
        for conv in &m.convs {
            y = conv.forward(&y)?;
        }
        let y = y.squeeze(D::Minus1)?; // [1, 128]: the convolutions reduce 4 frames to 1
        let gates = (y.matmul(&m.w_ih)? + self.h.matmul(&m.w_hh)?)?.broadcast_add(&m.lstm_bias)?;
        let gate = |i: usize| gates.narrow(1, i * HIDDEN, HIDDEN);
        let (i, f, g, o) = (
            candle_nn::ops::sigmoid(&gate(0)?)?,
            candle_nn::ops::sigmoid(&gate(1)?)?,
            gate(2)?.tanh()?,
            candle_nn::ops::sigmoid(&gate(3)?)?,
        );
        self.c = ((f * &self.c)? + (i * g)?)?;
        self.h = (o * self.c.tanh()?)?;
        let logit = self.h.relu()?.matmul(&m.head_w)?.broadcast_add(&m.head_b)?;
        Ok(candle_nn::ops::sigmoid(&logit)?.flatten_all()?.to_vec1::<f32>()?[0])
    }
}
