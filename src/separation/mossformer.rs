//! hark's blind two-speaker separator: a small MossFormer-style network (Zhao & Ma, "MossFormer:
//! pushing the performance limit of monaural speech separation using gated single-head
//! transformer with convolution-augmented joint self-attentions", ICASSP 2023), trained by
//! `hark train separation` (see `crate::train::separation`).
//!
//! Waveform (8 kHz) → learned encoder (frames of `window` samples, half overlapping, ReLU) →
//! mask network: `blocks` gated single-head attention units, each with a depthwise convolution
//! module and *joint* attention — quadratic attention inside chunks of `chunk` frames (local)
//! plus linear attention over the whole input (global), as MossFormer; the attention output is
//! gated by a SiLU branch → one ReLU mask per speaker over the encoder output → learned decoder
//! and overlap-add. The same code runs training (on `Var`s) and inference.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
// The differentiable LayerNorm the training code uses (candle's fused one has no backward).
use crate::asr::transducer::init::Rng;
use crate::models;
use crate::train::layers::layer_norm;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeparatorConfig {
    pub sample_rate: u32,
    /// Encoder frame length in samples (hop: half of it).
    pub window: usize,
    /// Encoder filters.
    pub filters: usize,
    /// Width of the mask network.
    pub dim: usize,
    /// Width of the gated value branch.
    pub expand: usize,
    /// Width of the shared query/key projection.
    pub qk_dim: usize,
    pub blocks: usize,
    /// Frames per local-attention chunk.
    pub chunk: usize,
    /// Depthwise convolution kernel (frames).
    pub conv_kernel: usize,
    pub speakers: usize,
}

impl Default for SeparatorConfig {
    fn default() -> Self {
        Self {
            sample_rate: 8000,
            window: 16,
            filters: 256,
            dim: 128,
            expand: 256,
            qk_dim: 64,
            blocks: 4,
            chunk: 100,
            conv_kernel: 17,
            speakers: 2,
        }
    }
}

/// Tensor names and shapes of a model with this configuration.
pub fn parameter_shapes(c: &SeparatorConfig) -> Vec<(String, Vec<usize>)> {
    let mut p = vec![
        ("encoder.weight".to_string(), vec![c.filters, c.window]),
        ("in_norm.weight".into(), vec![c.filters]),
        ("in_norm.bias".into(), vec![c.filters]),
        ("in_proj.weight".into(), vec![c.dim, c.filters]),
        ("in_proj.bias".into(), vec![c.dim]),
    ];
    for b in 0..c.blocks {
        let n = |s: &str| format!("blocks.{b}.{s}");
        p.extend([
            (n("norm.weight"), vec![c.dim]),
            (n("norm.bias"), vec![c.dim]),
            (n("conv.weight"), vec![c.conv_kernel, c.dim]),
            (n("to_u.weight"), vec![c.expand, c.dim]),
            (n("to_u.bias"), vec![c.expand]),
            (n("to_v.weight"), vec![c.expand, c.dim]),
            (n("to_v.bias"), vec![c.expand]),
            (n("to_z.weight"), vec![c.qk_dim, c.dim]),
            (n("to_z.bias"), vec![c.qk_dim]),
            // Per-dimension scale and offset turning z into the local and global queries and keys.
            (n("qk_scale"), vec![4, c.qk_dim]),
            (n("qk_offset"), vec![4, c.qk_dim]),
            (n("out.weight"), vec![c.dim, c.expand]),
            (n("out.bias"), vec![c.dim]),
        ]);
    }
    p.extend([
        ("mask.weight".to_string(), vec![c.speakers * c.filters, c.dim]),
        ("mask.bias".into(), vec![c.speakers * c.filters]),
        ("decoder.weight".into(), vec![c.window, c.filters]),
    ]);
    p
}

/// Seeded initial weights (uniform ±1/√fan_in for matrices; norms at 1/0; q/k scales near 1).
pub fn init(c: &SeparatorConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = Rng::new(seed);
    let mut out = HashMap::new();
    for (name, shape) in parameter_shapes(c) {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = if name.ends_with("norm.weight") {
            vec![1.0; n]
        } else if name.ends_with(".bias") || name.ends_with("qk_offset") {
            vec![0.0; n]
        } else if name.ends_with("qk_scale") {
            (0..n).map(|_| 1.0 + 0.02 * rng.normal()).collect()
        } else {
            let fan_in = *shape.last().unwrap() as f32;
            let scale =
                if name.ends_with("conv.weight") { 1.0 / c.conv_kernel as f32 } else { 1.0 / fan_in.sqrt() };
            (0..n).map(|_| (rng.uniform() * 2.0 - 1.0) * scale).collect()
        };
        out.insert(name, Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?);
    }
    Ok(out)
}

fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    // One [rows, in] × [in, out] product rather than a broadcast batch of them: not every GPU
    // kernel accepts a broadcast (zero-stride) operand.
    let (bsz, t, d) = x.dims3()?;
    let y = x.reshape((bsz * t, d))?.matmul(&w.t()?)?.reshape((bsz, t, w.dim(0)?))?;
    Ok(match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

fn silu(x: &Tensor) -> Result<Tensor> {
    Ok((x * candle_nn::ops::sigmoid(x)?)?)
}

/// Depthwise convolution over time, "same" padding: Σ_k w_k ⊙ x[t + k − K/2] (as shifted sums,
/// which candle differentiates; its grouped convolution would run one convolution per channel).
fn depthwise_conv(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let k = w.dim(0)?;
    let half = k / 2;
    let padded = Tensor::cat(
        &[
            &Tensor::zeros((b, half, d), x.dtype(), x.device())?,
            x,
            &Tensor::zeros((b, k - 1 - half, d), x.dtype(), x.device())?,
        ],
        1,
    )?;
    let mut acc = padded.narrow(1, 0, t)?.broadcast_mul(&w.get(0)?)?;
    for i in 1..k {
        acc = (acc + padded.narrow(1, i, t)?.broadcast_mul(&w.get(i)?)?)?;
    }
    Ok(acc)
}

/// The separator over a set of weights (plain tensors or a training run's variables).
pub struct Separator<'a> {
    pub config: &'a SeparatorConfig,
    pub weights: &'a HashMap<String, Tensor>,
}

impl Separator<'_> {
    fn w(&self, name: &str) -> Result<&Tensor> {
        self.weights.get(name).ok_or_else(|| Error::Model(format!("separator weights: {name} is missing")))
    }

    fn block(&self, b: usize, x: &Tensor, frame_mask: &Tensor, frames: usize) -> Result<Tensor> {
        let c = self.config;
        let w = |s: &str| self.w(&format!("blocks.{b}.{s}"));
        let h = layer_norm(x, w("norm.weight")?, w("norm.bias")?)?;
        let h = (&h + depthwise_conv(&h, w("conv.weight")?)?)?;
        let u = silu(&linear(&h, w("to_u.weight")?, Some(w("to_u.bias")?))?)?;
        let v = silu(&linear(&h, w("to_v.weight")?, Some(w("to_v.bias")?))?)?.broadcast_mul(frame_mask)?;
        let z = silu(&linear(&h, w("to_z.weight")?, Some(w("to_z.bias")?))?)?;
        let (scale, offset) = (w("qk_scale")?, w("qk_offset")?);
        let qk = |i: usize| -> Result<Tensor> {
            Ok(z.broadcast_mul(&scale.get(i)?)?.broadcast_add(&offset.get(i)?)?)
        };
        let (q_local, k_local) = (qk(0)?, qk(1)?.broadcast_mul(frame_mask)?);
        let (q_global, k_global) = (qk(2)?, qk(3)?.broadcast_mul(frame_mask)?);
        let (bsz, t, _) = x.dims3()?;
        // Local: squared-ReLU attention inside each chunk (FLASH's quadratic part).
        let chunks = t / c.chunk;
        let split = |a: &Tensor| a.reshape((bsz * chunks, c.chunk, a.dim(2)?));
        let scores = split(&q_local)?.matmul(&split(&k_local)?.t()?)?;
        let attn = (scores / c.qk_dim as f64)?.relu()?.sqr()?;
        let local = (attn.matmul(&split(&v)?)? / c.chunk as f64)?.reshape((bsz, t, c.expand))?;
        // Global: linear attention over every real frame.
        let kv = (k_global.t()?.matmul(&v)? / frames as f64)?;
        let global = q_global.matmul(&kv)?;
        let gated = (u * (local + global)?)?;
        Ok((x + linear(&gated, w("out.weight")?, Some(w("out.bias")?))?)?)
    }

    /// `[batch, samples]` mixtures → `[batch, speakers, samples]` estimates.
    pub fn forward(&self, mixture: &Tensor) -> Result<Tensor> {
        let c = self.config;
        let (bsz, len) = mixture.dims2()?;
        let hop = c.window / 2;
        // Frames t cover samples [t·hop − hop, t·hop + hop): half a window of zeros at the start,
        // and enough at the end for whole frames and whole attention chunks.
        let frames = len.div_ceil(hop) + 1;
        let padded_frames = frames.div_ceil(c.chunk) * c.chunk;
        let total = (padded_frames + 1) * hop;
        let x = Tensor::cat(
            &[
                &Tensor::zeros((bsz, hop), DType::F32, mixture.device())?,
                mixture,
                &Tensor::zeros((bsz, total - hop - len), DType::F32, mixture.device())?,
            ],
            1,
        )?;
        let halves = x.reshape((bsz, padded_frames + 1, hop))?;
        let windows =
            Tensor::cat(&[&halves.narrow(1, 0, padded_frames)?, &halves.narrow(1, 1, padded_frames)?], 2)?;
        let encoded = linear(&windows, self.w("encoder.weight")?, None)?.relu()?; // [B, T, N]
        let frame_mask = Tensor::from_vec(
            (0..padded_frames).map(|i| if i < frames { 1f32 } else { 0.0 }).collect::<Vec<_>>(),
            (1, padded_frames, 1),
            mixture.device(),
        )?;
        let mut h = linear(
            &layer_norm(&encoded, self.w("in_norm.weight")?, self.w("in_norm.bias")?)?,
            self.w("in_proj.weight")?,
            Some(self.w("in_proj.bias")?),
        )?;
        for b in 0..c.blocks {
            h = self.block(b, &h, &frame_mask, frames)?;
        }
        let masks = linear(&h, self.w("mask.weight")?, Some(self.w("mask.bias")?))?.relu()?;
        let masks = masks.reshape((bsz, padded_frames, c.speakers, c.filters))?;
        let mut outputs = Vec::with_capacity(c.speakers);
        for s in 0..c.speakers {
            let masked = (masks.narrow(2, s, 1)?.squeeze(2)? * &encoded)?;
            let decoded = linear(&masked, self.w("decoder.weight")?, None)?; // [B, T, window]
            // Overlap-add: frame t's halves land on hop slots t and t + 1.
            let zeros = Tensor::zeros((bsz, 1, hop), DType::F32, mixture.device())?;
            let first = Tensor::cat(&[&decoded.narrow(2, 0, hop)?, &zeros], 1)?;
            let second = Tensor::cat(&[&zeros, &decoded.narrow(2, hop, hop)?], 1)?;
            let wave = (first + second)?.reshape((bsz, (padded_frames + 1) * hop))?;
            outputs.push(wave.narrow(1, hop, len)?);
        }
        Ok(Tensor::stack(&outputs, 1)?)
    }
}

/// A trained separator loaded from a model folder (config.json + model.safetensors).
pub struct TwoSpeakerSeparator {
    pub config: SeparatorConfig,
    weights: HashMap<String, Tensor>,
}

impl TwoSpeakerSeparator {
    pub fn load(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: {e}", config_path.display())))?;
        let config: SeparatorConfig = serde_json::from_value(value["separator"].clone())
            .map_err(|e| Error::Model(format!("{}: {e}", config_path.display())))?;
        let path = dir.join("model.safetensors");
        let weights = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        let weights = weights
            .into_iter()
            .map(|(k, v)| v.to_dtype(DType::F32).map(|v| (k, v)))
            .collect::<candle_core::Result<HashMap<String, Tensor>>>()?;
        for (name, shape) in parameter_shapes(&config) {
            match weights.get(&name) {
                Some(t) if t.dims() == shape.as_slice() => {}
                _ => {
                    return Err(Error::Model(format!(
                        "{}: {name} is missing or has the wrong shape",
                        path.display()
                    )));
                }
            }
        }
        Ok(Self { config, weights })
    }

    /// The weights, f32 on the CPU (to start a training run from them).
    pub fn into_weights(self) -> HashMap<String, Tensor> {
        self.weights
    }

    /// Separates a mixture at the model's rate into one signal per speaker, each as long as the
    /// mixture. The whole recording is one input: the global attention sees all of it, and the
    /// memory grows linearly with its length.
    pub fn separate(&self, mixture: &[f32]) -> Result<Vec<Vec<f32>>> {
        if mixture.is_empty() {
            return Err(Error::EmptyAudio);
        }
        let model = Separator { config: &self.config, weights: &self.weights };
        let x = Tensor::from_slice(mixture, (1, mixture.len()), &Device::Cpu)?;
        let y = model.forward(&x)?.squeeze(0)?;
        Ok((0..self.config.speakers)
            .map(|s| y.get(s).and_then(|t| t.to_vec1::<f32>()))
            .collect::<candle_core::Result<_>>()?)
    }
}

/// Where the shipped separator lives: `$HARK_MODELS/separator-2spk` if installed there, else the
/// repository's `models/separator-2spk` (committed, as the training issue asks).
pub const DEFAULT_SEPARATOR: &str = "separator-2spk";

pub fn resolve_separator() -> Result<std::path::PathBuf> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(DEFAULT_SEPARATOR);
    for dir in [models::model_root().join(DEFAULT_SEPARATOR), shipped] {
        if dir.join("config.json").is_file() && dir.join("model.safetensors").is_file() {
            return Ok(dir);
        }
    }
    Err(Error::Model(format!(
        "the two-speaker separator is missing: train it with models/train/make-separator-2spk.sh (it is written to models/{DEFAULT_SEPARATOR})"
    )))
}

/// Seconds per piece when a long recording is separated piece by piece, and their overlap.
const PIECE_S: usize = 20;
const OVERLAP_S: usize = 2;

impl TwoSpeakerSeparator {
    /// Separates a recording of any length: pieces of 20 s overlapping by 2 s, each piece's two
    /// outputs put in the order that best continues the previous piece (correlation over the
    /// overlap), then cross-faded. Memory stays that of one piece.
    pub fn separate_long(&self, mixture: &[f32]) -> Result<Vec<Vec<f32>>> {
        let rate = self.config.sample_rate as usize;
        let (piece, overlap) = (PIECE_S * rate, OVERLAP_S * rate);
        if mixture.len() <= piece {
            return self.separate(mixture);
        }
        let mut out: Vec<Vec<f32>> = (0..2).map(|_| Vec::with_capacity(mixture.len())).collect();
        let mut start = 0;
        loop {
            let end = (start + piece).min(mixture.len());
            let mut parts = self.separate(&mixture[start..end])?;
            if start > 0 {
                let tail = |x: &Vec<f32>| x[x.len() - overlap..].to_vec();
                let (a0, a1) = (tail(&out[0]), tail(&out[1]));
                let corr = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
                let head = |x: &Vec<f32>| x[..overlap].to_vec();
                let (b0, b1) = (head(&parts[0]), head(&parts[1]));
                if corr(&a0, &b1) + corr(&a1, &b0) > corr(&a0, &b0) + corr(&a1, &b1) {
                    parts.swap(0, 1);
                }
                for (o, p) in out.iter_mut().zip(&parts) {
                    let n = o.len();
                    for i in 0..overlap {
                        let fade = (i as f32 + 0.5) / overlap as f32;
                        o[n - overlap + i] = o[n - overlap + i] * (1.0 - fade) + p[i] * fade;
                    }
                    o.extend_from_slice(&p[overlap..]);
                }
            } else {
                for (o, p) in out.iter_mut().zip(parts) {
                    o.extend(p);
                }
            }
            if end == mixture.len() {
                break;
            }
            start = end - overlap;
        }
        Ok(out)
    }
}
