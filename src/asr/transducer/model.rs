//! The ANCAT encoder and the transducer head, on candle.
//!
//! Encoder: Whisper's conv front end (conv1d k3 + GELU, conv1d k3 stride 2 + GELU → 50 frames/s),
//! sinusoidal positions, L pre-LN Transformer blocks, a final LayerNorm, then pairs of frames
//! concatenated and projected (→ 25 frames/s). Each block has an attention *scheduler*: a linear
//! layer on the block's input at frame t whose sign gates whether query t may see the next
//! `lookahead_frames[l]` frames. Keys before t are capped at `left_context`.
//!
//! This file holds the whole-sequence forward with explicit masks (what training uses and what
//! the streaming engine must reproduce). Convolutions are written as im2col matmuls so that both
//! paths share every kernel.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::LayerNorm;

/// A linear layer holding its weight transposed (`[in, out]`, contiguous): small-batch matmuls
/// then skip re-packing the weight on every call, which dominated streaming (2× faster at 5 rows).
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight_t: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// From a weight in the usual `[out, in]` layout.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Self { weight_t: weight.t()?.contiguous()?, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight_t)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

use super::Lookahead;
use super::config::TransducerConfig;

pub struct Block {
    pub ln1: LayerNorm,
    pub qkv: Linear,
    pub out: Linear,
    pub ln2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    /// d_model → 1: the gate's logit; the gate is on when it is above `gate_threshold`.
    pub scheduler: Linear,
    /// 0 as trained; raised (lowered) at run time to wait for future frames less (more) often.
    pub gate_threshold: f32,
}

pub struct TransducerModel {
    pub config: TransducerConfig,
    /// conv1 as a linear map of [x(i−1) | x(i) | x(i+1)] (3·n_mels → d).
    pub conv1: Linear,
    /// conv2 (stride 2) as a linear map of [h(2t−1) | h(2t) | h(2t+1)] (3·d → d).
    pub conv2: Linear,
    pub blocks: Vec<Block>,
    pub ln_post: LayerNorm,
    /// [x(2k) | x(2k+1)] → d: the ×2 subsampling to 25 frames/s.
    pub subsample: Linear,
    /// Joiner's encoder projection, d → joiner_dim.
    pub enc_proj: Linear,
    /// Predictor: token embeddings `[vocab, joiner_dim]`.
    pub embedding: Tensor,
    /// Predictor: context_size·joiner_dim → joiner_dim.
    pub pred_proj: Linear,
    /// Joiner output: joiner_dim → vocab.
    pub joiner_out: Linear,
    pub device: Device,
}

/// What the whole-sequence forward returns besides the output frames.
pub struct EncoderTrace {
    /// `[K, joiner_dim]`: the joiner's encoder projection per output frame (25 frames/s).
    pub frames: Tensor,
    /// Gate per layer per 50 Hz frame (all false in causal mode, all true in fixed and full).
    pub gates: Vec<Vec<bool>>,
    /// Per output frame: the last mel frame it depends on.
    pub ready_mel: Vec<usize>,
}

/// Whisper's sinusoidal position embedding, for any position.
pub fn position_embedding(pos: usize, d: usize) -> Vec<f32> {
    let half = d / 2;
    let inc = (10_000f64).ln() / (half as f64 - 1.0);
    let mut v = vec![0f32; d];
    for i in 0..half {
        let angle = pos as f64 * (-inc * i as f64).exp();
        v[i] = angle.sin() as f32;
        v[half + i] = angle.cos() as f32;
    }
    v
}

pub fn positions(start: usize, n: usize, d: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (start..start + n).flat_map(|p| position_embedding(p, d)).collect();
    Tensor::from_vec(data, (n, d), device)
}

/// Is key `s` visible to query `t`? (`end` = the number of frames in the segment.)
pub fn visible(
    mode: Lookahead,
    cfg: &TransducerConfig,
    layer: usize,
    gate: bool,
    t: usize,
    s: usize,
) -> bool {
    match future_frames(mode, cfg, layer, gate) {
        None => true,
        Some(w) => s + cfg.left_context >= t && s <= t + w,
    }
}

/// Future frames a query at `layer` may see, or None for the whole segment (full context).
pub fn future_frames(mode: Lookahead, cfg: &TransducerConfig, layer: usize, gate: bool) -> Option<usize> {
    match mode {
        Lookahead::Full => None,
        Lookahead::Fixed(n) => Some(n),
        Lookahead::Adaptive | Lookahead::AdaptiveAt(_) if gate => Some(cfg.lookahead_frames[layer]),
        _ => Some(0),
    }
}

/// Each frame's gate at one block for the inputs `x`: the scheduler decides in adaptive mode;
/// the other modes fix every gate (off when causal, on otherwise).
pub fn gates(mode: Lookahead, block: &Block, x: &Tensor) -> Result<Vec<bool>> {
    let n = x.dim(0)?;
    Ok(match mode {
        Lookahead::Adaptive | Lookahead::AdaptiveAt(_) => {
            block.gate_logits(x)?.iter().map(|&g| g > block.gate_threshold).collect()
        }
        Lookahead::Causal => vec![false; n],
        Lookahead::Fixed(_) | Lookahead::Full => vec![true; n],
    })
}

/// Mel frames a 50 Hz front-end frame depends on: conv2 output t reads conv1 2t+1, which reads
/// mel 2t+2 (clipped to the segment).
pub fn front_end_ready(t: usize, n_mel: usize) -> usize {
    (2 * t + 2).min(n_mel.saturating_sub(1))
}

/// Algorithmic lookahead of output frame k (25 Hz, covering audio [40k, 40k+40) ms) that had to
/// wait for mel frame `ready_mel`: the mel frame is centred on 10·ready ms and its window reaches
/// 12.5 ms further.
pub fn lookahead_ms(k: usize, ready_mel: usize) -> f32 {
    let needed_ms = ready_mel as f32 * 10.0 + 12.5;
    (needed_ms - 40.0 * (k as f32 + 1.0)).max(0.0)
}

/// Per 25 Hz output frame (a pair of 50 Hz frames), the last mel frame it depends on.
pub fn output_ready(ready: &[usize]) -> Vec<usize> {
    (0..ready.len().div_ceil(2)).map(|k| ready[2 * k].max(*ready.get(2 * k + 1).unwrap_or(&0))).collect()
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7): several times faster than the
/// libm erf candle's `gelu_erf` calls, which took 12% of streaming time.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -y } else { y }
}

/// Exact-form GELU, x·Φ(x), with the fast erf above (inference only: it has no gradient).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    let v: Vec<f32> = x.flatten_all()?.to_vec1::<f32>()?;
    let out: Vec<f32> =
        v.iter().map(|&x| 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))).collect();
    Tensor::from_vec(out, x.shape(), x.device())
}

/// [T, c] → [T, 3c] rows [x(i−1) | x(i) | x(i+1)] with zeros outside.
pub fn im2col3(x: &Tensor, stride: usize) -> Result<Tensor> {
    let (t, c) = x.dims2()?;
    let zero = Tensor::zeros((1, c), x.dtype(), x.device())?;
    let padded = Tensor::cat(&[&zero, x, &zero], 0)?; // padded[i+1] = x[i]
    let n_out = if stride == 1 { t } else { (t - 1) / stride + 1 };
    let idx = |off: usize| -> Result<Tensor> {
        let ids: Vec<u32> = (0..n_out).map(|o| (o * stride + off) as u32).collect();
        Tensor::new(ids.as_slice(), x.device())
    };
    Tensor::cat(
        &[
            padded.index_select(&idx(0)?, 0)?,
            padded.index_select(&idx(1)?, 0)?,
            padded.index_select(&idx(2)?, 0)?,
        ],
        1,
    )
}

impl Block {
    /// The gate logits for block inputs `x` `[T, d]`.
    pub fn gate_logits(&self, x: &Tensor) -> Result<Vec<f32>> {
        self.scheduler.forward(x)?.flatten_all()?.to_vec1()
    }

    /// Queries `q_rows` of `x_q` attend over keys/values built from `x_k` with an additive `mask`.
    pub fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize) -> Result<Tensor> {
        let (tq, d) = q.dims2()?;
        let tk = k.dim(0)?;
        let dh = d / heads;
        let q = q.reshape((tq, heads, dh))?.transpose(0, 1)?.contiguous()?;
        let k = k.reshape((tk, heads, dh))?.transpose(0, 1)?.contiguous()?;
        let v = v.reshape((tk, heads, dh))?.transpose(0, 1)?.contiguous()?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (dh as f64).sqrt()))?.broadcast_add(mask)?;
        let att = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?;
        att.transpose(0, 1)?.reshape((tq, d))
    }

    /// LayerNorm + fused q|k|v projection of block inputs.
    pub fn qkv(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let d = x.dim(D::Minus1)?;
        let qkv = self.qkv.forward(&self.ln1.forward(x)?)?;
        Ok((qkv.narrow(1, 0, d)?, qkv.narrow(1, d, d)?, qkv.narrow(1, 2 * d, d)?))
    }

    /// Residual attention output + FFN for the query rows.
    pub fn finish(&self, x_q: &Tensor, att: &Tensor) -> Result<Tensor> {
        let x = (x_q + self.out.forward(att)?)?;
        let h = self.fc2.forward(&gelu(&self.fc1.forward(&self.ln2.forward(&x)?)?)?)?;
        x + h
    }
}

impl TransducerModel {
    pub fn heads(&self) -> usize {
        self.config.n_heads
    }

    /// Mel `[T, n_mels]` (normalised) → 50 Hz front-end frames `[ceil(T/2), d]`, positions added.
    pub fn front_end(&self, mel: &Tensor) -> Result<Tensor> {
        let h = gelu(&self.conv1.forward(&im2col3(mel, 1)?)?)?;
        let x = gelu(&self.conv2.forward(&im2col3(&h, 2)?)?)?;
        let n = x.dim(0)?;
        x + positions(0, n, self.config.d_model, &self.device)?
    }

    /// Final LayerNorm, 25 Hz subsampling and the joiner's encoder projection of 50 Hz frames
    /// (an odd last frame is paired with zeros).
    pub fn output_frames(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.ln_post.forward(x)?;
        let (t, d) = x.dims2()?;
        let x = if t % 2 == 1 {
            Tensor::cat(&[&x, &Tensor::zeros((1, d), x.dtype(), x.device())?], 0)?
        } else {
            x
        };
        let pairs = x.reshape((t.div_ceil(2), 2 * d))?;
        self.enc_proj.forward(&self.subsample.forward(&pairs)?)
    }

    /// The whole-sequence forward of one segment with ANCAT masks.
    pub fn encode(&self, mel: &Tensor, mode: Lookahead) -> Result<EncoderTrace> {
        let (x, gates, ready_mel) = self.encode_hidden(mel, mode)?;
        Ok(EncoderTrace { frames: self.output_frames(&x)?, gates, ready_mel })
    }

    /// The blocks' output at 50 frames/s (before the final LayerNorm), the gates, and per 25 Hz
    /// output frame the last mel frame it depends on.
    pub fn encode_hidden(
        &self,
        mel: &Tensor,
        mode: Lookahead,
    ) -> Result<(Tensor, Vec<Vec<bool>>, Vec<usize>)> {
        let (x, gates, ready) = self.encode_layers(mel, mode, self.blocks.len())?;
        Ok((x, gates, output_ready(&ready)))
    }

    /// The front end and the first `n_layers` blocks: their output at 50 frames/s, the gates, and
    /// per 50 Hz frame the last mel frame it depends on.
    pub fn encode_layers(
        &self,
        mel: &Tensor,
        mode: Lookahead,
        n_layers: usize,
    ) -> Result<(Tensor, Vec<Vec<bool>>, Vec<usize>)> {
        let n_mel = mel.dim(0)?;
        let mut x = self.front_end(mel)?;
        let t = x.dim(0)?;
        let mut ready: Vec<usize> = (0..t).map(|i| front_end_ready(i, n_mel)).collect();
        let mut all_gates = Vec::new();
        for (l, block) in self.blocks.iter().enumerate().take(n_layers) {
            let gates = gates(mode, block, &x)?;
            let mut mask = vec![f32::NEG_INFINITY; t * t];
            let mut next_ready = vec![0; t];
            for q in 0..t {
                for s in 0..t {
                    if visible(mode, &self.config, l, gates[q], q, s) {
                        mask[q * t + s] = 0.0;
                        next_ready[q] = next_ready[q].max(ready[s]);
                    }
                }
            }
            let mask = Tensor::from_vec(mask, (t, t), &self.device)?;
            let (q, k, v) = block.qkv(&x)?;
            let att = block.attend(&q, &k, &v, &mask, self.heads())?;
            x = block.finish(&x, &att)?;
            ready = next_ready;
            all_gates.push(gates);
        }
        Ok((x, all_gates, ready))
    }

    /// Predictor output for a context of previous tokens (oldest first), `[joiner_dim]`.
    pub fn predictor(&self, context: &[u32]) -> Result<Tensor> {
        let ids = Tensor::new(context, &self.device)?;
        let emb = self.embedding.index_select(&ids, 0)?.flatten_all()?.unsqueeze(0)?;
        self.pred_proj.forward(&emb)?.squeeze(0)
    }

    /// Moves the calibrated blocks' gate thresholds so that adaptive mode waits for about
    /// `target_ms` of future audio on average (read off the config's latency curve).
    pub fn set_latency_target(&mut self, target_ms: f64) -> std::result::Result<(), String> {
        let threshold = self.config.threshold_for_latency(target_ms)?;
        let layers = self.config.calibrated_layers.clone();
        self.set_gate_thresholds(&layers, threshold);
        Ok(())
    }

    /// Sets the gate threshold of the blocks `layers` (calibration measures its curve this way,
    /// the same mechanism a run-time latency target uses).
    pub fn set_gate_thresholds(&mut self, layers: &[usize], threshold: f32) {
        for &layer in layers {
            self.blocks[layer].gate_threshold = threshold;
        }
    }

    /// Loads a model folder (config.json + model.safetensors).
    pub fn load(dir: &Path, device: &Device) -> crate::error::Result<Self> {
        let cfg_path = dir.join("config.json");
        let config: TransducerConfig = serde_json::from_slice(
            &std::fs::read(&cfg_path).map_err(|e| crate::error::Error::io(&cfg_path, e))?,
        )
        .map_err(|e| crate::error::Error::Model(format!("{}: {e}", cfg_path.display())))?;
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), device)?;
        Ok(Self::from_tensors(config, &tensors, device)?)
    }

    pub fn from_tensors(
        config: TransducerConfig,
        t: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        let get = |name: &str| -> Result<Tensor> {
            t.get(name)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("model lacks tensor {name}")))?
                .to_dtype(DType::F32)
        };
        let linear = |name: &str| -> Result<Linear> {
            Linear::new(
                get(&format!("{name}.weight"))?,
                t.get(&format!("{name}.bias")).map(|b| b.to_dtype(DType::F32)).transpose()?,
            )
        };
        let ln = |name: &str| -> Result<LayerNorm> {
            Ok(LayerNorm::new(get(&format!("{name}.weight"))?, get(&format!("{name}.bias"))?, 1e-5))
        };
        let blocks = (0..config.n_layers)
            .map(|i| {
                let p = format!("blocks.{i}");
                Ok(Block {
                    ln1: ln(&format!("{p}.ln1"))?,
                    qkv: linear(&format!("{p}.qkv"))?,
                    out: linear(&format!("{p}.out"))?,
                    ln2: ln(&format!("{p}.ln2"))?,
                    fc1: linear(&format!("{p}.fc1"))?,
                    fc2: linear(&format!("{p}.fc2"))?,
                    scheduler: linear(&format!("{p}.scheduler"))?,
                    gate_threshold: 0.0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conv1: linear("conv1")?,
            conv2: linear("conv2")?,
            blocks,
            ln_post: ln("ln_post")?,
            subsample: linear("subsample")?,
            enc_proj: linear("enc_proj")?,
            embedding: get("embedding")?,
            pred_proj: linear("pred_proj")?,
            joiner_out: linear("joiner_out")?,
            device: device.clone(),
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transducer_fast_gelu_matches_exact_gelu() {
        let xs: Vec<f32> = (-800..800).map(|i| i as f32 / 100.0).collect();
        let t = Tensor::from_vec(xs.clone(), xs.len(), &Device::Cpu).unwrap();
        let exact: Vec<f32> = t.gelu_erf().unwrap().to_vec1().unwrap();
        let fast: Vec<f32> = gelu(&t).unwrap().to_vec1().unwrap();
        let worst = exact.iter().zip(&fast).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "{worst}");
    }
}
