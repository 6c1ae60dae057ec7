//! hibari's acoustic model on candle: phoneme ids → five spectral parts per 12.5 ms frame and an
//! F0 curve, which the vocoder (`vocoder.rs`) turns into audio. Two text encoders share one
//! shape (embedding, two ConvNeXt blocks, one Transformer layer applied several times with the
//! same weights, LayerNorm): the prosody network's predicts each phoneme's duration and, after the
//! phonemes are expanded to frames, F0 and energy at twice the frame rate; the decoder's is
//! expanded the same way, joined with log-F0 and energy and decoded by eight ConvNeXt blocks.
//! Ported from the graph of hibari-tts 0.2.1's hibari.onnx (its int8 weights kept as integers and
//! scales at install, and run with the graph's 8-bit activation arithmetic).

use std::path::Path;

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use crate::error::{Error, Result};

/// Spectrum bins per frame (n_fft 1200 / 2 + 1).
pub const BINS: usize = 601;
const HEADS: usize = 2;
const LN_EPS: f64 = 1e-5;

/// The network's outputs for one utterance, each `[BINS, frames]` row-major, and F0 in Hz.
pub struct AcousticFrames {
    pub frames: usize,
    pub log_harmonic: Vec<f32>,
    pub theta: Vec<f32>,
    pub log_noise: Vec<f32>,
    pub log_residual: Vec<f32>,
    pub phi: Vec<f32>,
    pub f0: Vec<f32>,
}

impl AcousticFrames {
    /// Makes the one voice sound like another speaker: F0 times `pitch_factor`, and every
    /// spectral branch stretched along frequency by `formant_factor` (> 1 moves the formants up,
    /// as a shorter vocal tract does; < 1 down). Used to vary the synthetic training corpus.
    pub fn reshape_voice(&mut self, pitch_factor: f32, formant_factor: f32) {
        self.f0.iter_mut().for_each(|f| *f *= pitch_factor);
        if (formant_factor - 1.0).abs() < 1e-6 {
            return;
        }
        let frames = self.frames;
        for branch in [
            &mut self.log_harmonic,
            &mut self.theta,
            &mut self.log_noise,
            &mut self.log_residual,
            &mut self.phi,
        ] {
            let source = branch.clone();
            for bin in 0..BINS {
                // What sounded at bin / factor now sounds at bin (linear between bins).
                let from = (bin as f32 / formant_factor).min((BINS - 1) as f32);
                let (low, frac) = (from.floor() as usize, from.fract());
                let high = (low + 1).min(BINS - 1);
                for k in 0..frames {
                    branch[bin * frames + k] =
                        source[low * frames + k] * (1.0 - frac) + source[high * frames + k] * frac;
                }
            }
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    /// The C library's erff: the same Sun algorithm as the `libm` crate's, on glibc's faster expf.
    fn erff(x: f32) -> f32;
}

fn erf(x: f32) -> f32 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: a pure function of one float.
    return unsafe { erff(x) };
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    return candle_core::cpu::erf::erf_f32(x);
}

/// GELU (erf form), candle's `gelu_erf` arithmetic spread over the cores: in this model it runs
/// on the largest tensors, and candle's element-wise ops use one thread.
pub fn gelu(x: &Tensor) -> candle_core::Result<Tensor> {
    use rayon::prelude::*;
    let mut values = x.flatten_all()?.to_vec1::<f32>()?;
    values.par_chunks_mut(8192).for_each(|chunk| {
        for v in chunk {
            *v = (erf(*v * std::f32::consts::FRAC_1_SQRT_2) + 1.) * 0.5 * *v;
        }
    });
    Tensor::from_vec(values, x.shape(), x.device())
}

pub fn layer_norm(vb: &VarBuilder, name: &str) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm::new(
        vb.get_unchecked(&format!("{name}.weight"))?,
        vb.get_unchecked(&format!("{name}.bias"))?,
        LN_EPS,
    ))
}

/// A linear layer as the exported graph runs it: the input quantised to 8 bits per tensor
/// (ONNX `DynamicQuantizeLinear`), multiplied by the int8 weight, the product scaled back, plus the
/// bias. Emulated in f32 (the integer products and sums are exact), so durations and spectra
/// follow the reference model instead of drifting by the quantisation error.
struct QuantLinear {
    /// Integer values `[out, in]`, zero point removed.
    weight: Tensor,
    scale: f32,
    bias: Tensor,
}

impl QuantLinear {
    fn load(vb: &VarBuilder, weight: &str, bias: &str) -> candle_core::Result<Self> {
        let scale = vb.get_unchecked(&format!("{weight}_scale"))?.flatten_all()?.to_vec1::<f32>()?[0];
        Ok(Self { weight: vb.get_unchecked(weight)?, scale, bias: vb.get_unchecked(bias)? })
    }
}

impl Module for QuantLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let rows = x.flatten_to(dims.len() - 2)?;
        let values = rows.flatten_all()?.to_vec1::<f32>()?;
        let (lo, hi) = values.iter().fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        // DynamicQuantizeLinear: uint8 over [min(x, 0), max(x, 0)], round half to even.
        let x_scale = (hi - lo) / 255.0;
        let x_scale = if x_scale == 0.0 { 1.0 } else { x_scale };
        let zero = (-lo / x_scale).round_ties_even().clamp(0.0, 255.0);
        let rounder = HalfEvenRounder::new();
        // |x / scale| ≤ 255 here, inside the rounder's range.
        let centred: Vec<f32> =
            values.iter().map(|v| (rounder.round(v / x_scale) + zero).clamp(0.0, 255.0) - zero).collect();
        let q = Tensor::from_vec(centred, rows.shape(), rows.device())?;
        let y = (q.broadcast_matmul(&self.weight.t()?)? * f64::from(x_scale * self.scale))?
            .broadcast_add(&self.bias)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("a linear input has dimensions") = self.weight.dim(0)?;
        y.reshape(out_dims)
    }
}

/// `x.round_ties_even()` for |x| < 2^22 without a libm call (the default x86-64 target has no
/// rounding instruction, and rintf was 9% of a sentence): adding and removing 1.5·2^23 leaves no
/// fraction bits, and the FPU rounds half to even. The constant is hidden from the optimiser,
/// which otherwise recognises the idiom and calls rintf after all.
struct HalfEvenRounder {
    shift: f32,
}

impl HalfEvenRounder {
    fn new() -> Self {
        Self { shift: std::hint::black_box(12_582_912.0f32) }
    }

    #[inline]
    fn round(&self, x: f32) -> f32 {
        (x + self.shift) - self.shift
    }
}

fn linear(vb: &VarBuilder, name: &str) -> candle_core::Result<QuantLinear> {
    QuantLinear::load(vb, &format!("{name}.weight"), &format!("{name}.bias"))
}

/// A 1-d convolution with "same" padding: `[B, C, T]` → `[B, C_out, T]`.
struct Conv {
    weight: Tensor,
    bias: Tensor,
    dilation: usize,
    groups: usize,
}

impl Conv {
    fn load(vb: &VarBuilder, name: &str, dilation: usize, groups: usize) -> candle_core::Result<Self> {
        Ok(Self {
            weight: vb.get_unchecked(&format!("{name}.weight"))?,
            bias: vb.get_unchecked(&format!("{name}.bias"))?,
            dilation,
            groups,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let k = self.weight.dim(2)?;
        let padding = (k - 1) / 2 * self.dilation;
        if self.groups > 1 && self.groups == x.dim(1)? && self.weight.dim(0)? == self.groups {
            return self.depthwise(x, padding);
        }
        x.conv1d(&self.weight, padding, 1, self.dilation, self.groups)?
            .broadcast_add(&self.bias.reshape((1, (), 1))?)
    }

    /// One filter per channel, computed directly: candle runs a grouped convolution as one
    /// convolution per group (hundreds of tiny ones here), which was most of the model's time.
    fn depthwise(&self, x: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
        use rayon::prelude::*;
        let (b, c, t) = x.dims3()?;
        let k = self.weight.dim(2)?;
        let input = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let weight = self.weight.flatten_all()?.to_vec1::<f32>()?;
        let bias = self.bias.to_vec1::<f32>()?;
        let mut out = vec![0f32; b * c * t];
        out.par_chunks_mut(t).enumerate().for_each(|(row, out)| {
            let ch = row % c;
            let x = &input[row * t..(row + 1) * t];
            let w = &weight[ch * k..(ch + 1) * k];
            for (i, o) in out.iter_mut().enumerate() {
                let mut acc = 0f32;
                for (j, wj) in w.iter().enumerate() {
                    let at = i + j * self.dilation;
                    if at >= padding && at - padding < t {
                        acc += wj * x[at - padding];
                    }
                }
                *o = acc + bias[ch];
            }
        });
        Tensor::from_vec(out, (b, c, t), x.device())
    }
}

/// ConvNeXt block: depthwise conv, LayerNorm, pointwise up, GELU, pointwise down, scaled residual.
struct ConvNeXt {
    dw: Conv,
    norm: LayerNorm,
    pw1: QuantLinear,
    pw2: QuantLinear,
    gamma: Tensor,
}

impl ConvNeXt {
    fn load(vb: &VarBuilder, p: &str, dilation: usize) -> candle_core::Result<Self> {
        let gamma = vb.get_unchecked(&format!("{p}.gamma"))?;
        let channels = gamma.dim(0)?;
        Ok(Self {
            dw: Conv::load(vb, &format!("{p}.dw"), dilation, channels)?,
            norm: layer_norm(vb, &format!("{p}.norm"))?,
            pw1: linear(vb, &format!("{p}.pw1"))?,
            pw2: linear(vb, &format!("{p}.pw2"))?,
            gamma,
        })
    }

    /// `[B, C, T]` → `[B, C, T]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.dw.forward(x)?.transpose(1, 2)?;
        let h = self.pw2.forward(&gelu(&self.pw1.forward(&self.norm.forward(&h)?)?)?)?;
        x + h.broadcast_mul(&self.gamma)?.transpose(1, 2)?
    }
}

/// A pre-norm Transformer encoder layer (PyTorch's `TransformerEncoderLayer(norm_first=True)`,
/// GELU), over any kind of linear layer (the acoustic model's are quantised, the OOV model's not).
pub struct EncoderLayer<L> {
    in_proj: L,
    out_proj: L,
    linear1: L,
    linear2: L,
    norm1: LayerNorm,
    norm2: LayerNorm,
    heads: usize,
}

impl<L: Module> EncoderLayer<L> {
    pub fn load(
        vb: &VarBuilder,
        p: &str,
        heads: usize,
        linear: impl Fn(&str, &str) -> candle_core::Result<L>,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            in_proj: linear(
                &format!("{p}.self_attn.in_proj_weight"),
                &format!("{p}.self_attn.in_proj_bias"),
            )?,
            out_proj: linear(
                &format!("{p}.self_attn.out_proj.weight"),
                &format!("{p}.self_attn.out_proj.bias"),
            )?,
            linear1: linear(&format!("{p}.linear1.weight"), &format!("{p}.linear1.bias"))?,
            linear2: linear(&format!("{p}.linear2.weight"), &format!("{p}.linear2.bias"))?,
            norm1: layer_norm(vb, &format!("{p}.norm1"))?,
            norm2: layer_norm(vb, &format!("{p}.norm2"))?,
            heads,
        })
    }

    /// `[B, L, C]` → `[B, L, C]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, l, c) = x.dims3()?;
        let heads = self.heads;
        let qkv = self.in_proj.forward(&self.norm1.forward(x)?)?;
        let head = |i: usize| {
            qkv.narrow(D::Minus1, i * c, c)?.reshape((b, l, heads, c / heads))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (head(0)?, head(1)?, head(2)?);
        let scores = (q.matmul(&k.t()?)? / ((c / heads) as f64).sqrt())?;
        let attended =
            candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?.transpose(1, 2)?.reshape((b, l, c))?;
        let x = (x + self.out_proj.forward(&attended)?)?;
        let h = self.linear2.forward(&gelu(&self.linear1.forward(&self.norm2.forward(&x)?)?)?)?;
        x + h
    }
}

/// Embedding → 2 ConvNeXt → the shared Transformer layer `repeats` times → LayerNorm.
struct TextEncoder {
    embedding: Tensor,
    convs: Vec<ConvNeXt>,
    attention: EncoderLayer<QuantLinear>,
    repeats: usize,
    norm: LayerNorm,
}

impl TextEncoder {
    fn load(vb: &VarBuilder, p: &str, repeats: usize) -> candle_core::Result<Self> {
        Ok(Self {
            embedding: vb.get_unchecked(&format!("{p}.emb.weight"))?,
            convs: (0..2)
                .map(|i| ConvNeXt::load(vb, &format!("{p}.convs.{i}"), 1))
                .collect::<candle_core::Result<_>>()?,
            attention: EncoderLayer::load(vb, &format!("{p}.attn"), HEADS, |w, b| {
                QuantLinear::load(vb, w, b)
            })?,
            repeats,
            norm: layer_norm(vb, &format!("{p}.norm"))?,
        })
    }

    /// Phoneme ids `[L]` → `[1, C, L]`.
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = self.embedding.embedding(ids)?.unsqueeze(0)?.transpose(1, 2)?;
        for c in &self.convs {
            x = c.forward(&x)?;
        }
        let mut x = x.transpose(1, 2)?;
        for _ in 0..self.repeats {
            x = self.attention.forward(&x)?;
        }
        self.norm.forward(&x)?.transpose(1, 2)?.contiguous()
    }
}

pub struct Hibari {
    decoder_text: TextEncoder,
    prosody_text: TextEncoder,
    duration_conv: Conv,
    duration_out: Conv,
    prosody_in: Conv,
    prosody: Vec<ConvNeXt>,
    prosody_out: Conv,
    decoder_in: Conv,
    decoder: Vec<ConvNeXt>,
    decoder_norm: LayerNorm,
    head: QuantLinear,
    device: Device,
}

/// Dilations of the prosody network's six ConvNeXt blocks.
const PROSODY_DILATIONS: [usize; 6] = [1, 2, 4, 8, 1, 2];

impl Hibari {
    pub fn load(dir: &Path) -> Result<Self> {
        let device = Device::Cpu;
        // SAFETY: the file is only read; hark never modifies an installed model in place.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &device)?
        };
        let load = || -> candle_core::Result<Self> {
            Ok(Self {
                decoder_text: TextEncoder::load(&vb, "m.text", 4)?,
                prosody_text: TextEncoder::load(&vb, "pn.text", 6)?,
                duration_conv: Conv::load(&vb, "pn.dur.0", 1, 1)?,
                duration_out: Conv::load(&vb, "pn.dur.2", 1, 1)?,
                prosody_in: Conv::load(&vb, "pn.pro_in", 1, 1)?,
                prosody: PROSODY_DILATIONS
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| ConvNeXt::load(&vb, &format!("pn.pro.{i}"), d))
                    .collect::<candle_core::Result<_>>()?,
                prosody_out: Conv::load(&vb, "pn.pro_out", 1, 1)?,
                decoder_in: Conv::load(&vb, "m.dec_in", 1, 1)?,
                decoder: (0..8)
                    .map(|i| ConvNeXt::load(&vb, &format!("m.dec.{i}"), 1))
                    .collect::<candle_core::Result<_>>()?,
                decoder_norm: layer_norm(&vb, "m.dec_norm")?,
                head: linear(&vb, "m.head")?,
                device: device.clone(),
            })
        };
        load().map_err(|e| Error::Model(format!("{}: not a hibari model: {e}", dir.display())))
    }

    /// Frames each phoneme lasts: the prosody network's log-duration, at `speed` (1.0 = the
    /// model's pace), rounded half to even and at least one frame, as in the exported graph.
    pub fn durations(&self, prosody_text: &Tensor, speed: f32) -> Result<Vec<usize>> {
        let h = gelu(&self.duration_conv.forward(prosody_text)?)?;
        let log_d = self.duration_out.forward(&h)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(log_d.iter().map(|&d| ((d.exp() - 1.0) / speed).round_ties_even().max(1.0) as usize).collect())
    }

    /// Phoneme ids (with the 0 pads at both ends) → the vocoder's inputs.
    pub fn forward(&self, ids: &[u32], speed: f32) -> Result<AcousticFrames> {
        if ids.is_empty() {
            return Err(Error::Model("no phonemes to synthesise".into()));
        }
        let ids_t = Tensor::new(ids, &self.device)?;
        let text = self.decoder_text.forward(&ids_t)?;
        let prosody_text = self.prosody_text.forward(&ids_t)?;
        let durations = self.durations(&prosody_text, speed)?;
        let index: Vec<u32> =
            durations.iter().enumerate().flat_map(|(i, &d)| std::iter::repeat_n(i as u32, d)).collect();
        let frames = index.len();
        let index = Tensor::new(index.as_slice(), &self.device)?;

        // Prosody at twice the phoneme-frame rate: channel 2q + j is quantity q at sub-frame j.
        let mut p = self.prosody_in.forward(&prosody_text.index_select(&index, 2)?)?;
        for block in &self.prosody {
            p = block.forward(&p)?;
        }
        let p = self.prosody_out.forward(&p)?.reshape((1, 2, 2, frames))?.transpose(2, 3)?.reshape((
            1,
            2,
            2 * frames,
        ))?;
        let f0 = (p.narrow(1, 0, 1)? * 100.0)?;
        let energy = ((p.narrow(1, 1, 1)? * 5.0)? / 5.0)?;
        let log_f0 = ((f0.relu()? + 1.0)?.log()? / 5.0)?;

        // Each phoneme frame's text features feed two decoder frames.
        let text =
            text.index_select(&index, 2)?.unsqueeze(3)?.repeat((1, 1, 1, 2))?.reshape((1, (), 2 * frames))?;
        let mut x = self.decoder_in.forward(&Tensor::cat(&[&text, &log_f0, &energy], 1)?)?;
        for block in &self.decoder {
            x = block.forward(&x)?;
        }
        let out = self
            .head
            .forward(&self.decoder_norm.forward(&x.transpose(1, 2)?)?)?
            .transpose(1, 2)?
            .squeeze(0)?;
        let part = |i: usize| -> Result<Vec<f32>> {
            Ok(out.narrow(0, i * BINS, BINS)?.contiguous()?.flatten_all()?.to_vec1::<f32>()?)
        };
        Ok(AcousticFrames {
            frames: 2 * frames,
            log_harmonic: part(0)?,
            theta: part(1)?,
            log_noise: part(2)?,
            log_residual: part(3)?,
            phi: part(4)?,
            f0: f0.flatten_all()?.to_vec1::<f32>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{AcousticFrames, BINS, HalfEvenRounder};

    #[test]
    fn reshaping_a_voice_moves_its_formants_and_scales_its_pitch() {
        // Two frames with a spectral peak at bin 100 in every branch.
        let frames = 2;
        let peaked =
            || (0..BINS * frames).map(|i| if i / frames == 100 { 1.0 } else { 0.0 }).collect::<Vec<f32>>();
        let mut a = AcousticFrames {
            frames,
            log_harmonic: peaked(),
            theta: peaked(),
            log_noise: peaked(),
            log_residual: peaked(),
            phi: peaked(),
            f0: vec![200.0, 0.0],
        };
        a.reshape_voice(0.5, 1.1);
        assert_eq!(a.f0, vec![100.0, 0.0], "unvoiced frames stay unvoiced");
        for branch in [&a.log_harmonic, &a.theta, &a.log_noise, &a.log_residual, &a.phi] {
            let peak =
                (0..BINS).max_by(|&x, &y| branch[x * frames + 1].total_cmp(&branch[y * frames + 1])).unwrap();
            assert_eq!(peak, 110);
        }
        a.reshape_voice(1.0, 1.0 / 1.1);
        let peak = (0..BINS)
            .max_by(|&x, &y| a.log_harmonic[x * frames].total_cmp(&a.log_harmonic[y * frames]))
            .unwrap();
        assert_eq!(peak, 100, "the inverse warp puts it back");
    }

    #[test]
    fn rounding_is_half_to_even() {
        let r = HalfEvenRounder::new();
        for x in [
            0.5f32,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            0.49999997,
            254.5,
            255.5,
            -127.5,
            3.7,
            -3.7,
            4_194_303.5,
            -4_194_303.5,
        ] {
            assert_eq!(r.round(x), x.round_ties_even(), "{x}");
        }
    }
}
