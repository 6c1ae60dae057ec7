//! Whisper's encoder–decoder on candle, loaded from the safetensors `hark models install`
//! writes (CTranslate2's variable names, `/` turned into `.`). Unlike candle-transformers'
//! version, the decoder keeps a self-attention key/value cache (one step costs one token, not
//! the whole prefix) and the encoder accepts fewer than 1500 frames, so short audio is not padded.

use std::path::Path;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear, VarBuilder};

use super::config::WhisperConfig;

fn linear(vb: &VarBuilder, name: &str) -> Result<Linear> {
    let w = vb.get_unchecked(&format!("{name}.weight"))?;
    let b = vb.get_unchecked(&format!("{name}.bias")).ok();
    Ok(Linear::new(w, b))
}

fn layer_norm(vb: &VarBuilder, name: &str) -> Result<LayerNorm> {
    Ok(LayerNorm::new(
        vb.get_unchecked(&format!("{name}.gamma"))?,
        vb.get_unchecked(&format!("{name}.beta"))?,
        1e-5,
    ))
}

fn conv(vb: &VarBuilder, name: &str, stride: usize) -> Result<Conv1d> {
    let cfg = Conv1dConfig { padding: 1, stride, ..Default::default() };
    Ok(Conv1d::new(
        vb.get_unchecked(&format!("{name}.weight"))?,
        vb.get_unchecked(&format!("{name}.bias")).ok(),
        cfg,
    ))
}

/// [B, T, H*Dh] -> [B, H, T, Dh], contiguous for the batched matmuls.
fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    x.reshape((b, t, heads, d / heads))?.transpose(1, 2)?.contiguous()
}

fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, h, t, dh) = x.dims4()?;
    x.transpose(1, 2)?.reshape((b, t, h * dh))
}

fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    attend_kt(q, &k.t()?, v, mask)
}

/// Attention with the keys already transposed (`[B, H, Dh, T]`), as cached for cross-attention.
fn attend_kt(q: &Tensor, k_t: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let scale = 1.0 / (q.dim(D::Minus1)? as f64).sqrt();
    let mut scores = (q.matmul(k_t)? * scale)?;
    if let Some(m) = mask {
        scores = scores.broadcast_add(m)?;
    }
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(v)
}

struct EncoderBlock {
    attn_ln: LayerNorm,
    qkv: Linear,
    out: Linear,
    ffn_ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl EncoderBlock {
    fn load(vb: &VarBuilder, p: &str) -> Result<Self> {
        Ok(Self {
            attn_ln: layer_norm(vb, &format!("{p}.self_attention.layer_norm"))?,
            qkv: linear(vb, &format!("{p}.self_attention.linear_0"))?,
            out: linear(vb, &format!("{p}.self_attention.linear_1"))?,
            ffn_ln: layer_norm(vb, &format!("{p}.ffn.layer_norm"))?,
            fc1: linear(vb, &format!("{p}.ffn.linear_0"))?,
            fc2: linear(vb, &format!("{p}.ffn.linear_1"))?,
        })
    }

    fn forward(&self, x: &Tensor, heads: usize) -> Result<Tensor> {
        let h = self.attn_ln.forward(x)?;
        let qkv = self.qkv.forward(&h)?;
        let d = x.dim(D::Minus1)?;
        let q = split_heads(&qkv.narrow(D::Minus1, 0, d)?, heads)?;
        let k = split_heads(&qkv.narrow(D::Minus1, d, d)?, heads)?;
        let v = split_heads(&qkv.narrow(D::Minus1, 2 * d, d)?, heads)?;
        let x = (x + self.out.forward(&merge_heads(&attend(&q, &k, &v, None)?)?)?)?;
        let h = self.fc2.forward(&self.fc1.forward(&self.ffn_ln.forward(&x)?)?.gelu_erf()?)?;
        x + h
    }
}

struct DecoderBlock {
    self_ln: LayerNorm,
    self_qkv: Linear,
    self_out: Linear,
    cross_ln: LayerNorm,
    cross_q: Linear,
    cross_kv: Linear,
    cross_out: Linear,
    ffn_ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl DecoderBlock {
    fn load(vb: &VarBuilder, p: &str) -> Result<Self> {
        Ok(Self {
            self_ln: layer_norm(vb, &format!("{p}.self_attention.layer_norm"))?,
            self_qkv: linear(vb, &format!("{p}.self_attention.linear_0"))?,
            self_out: linear(vb, &format!("{p}.self_attention.linear_1"))?,
            cross_ln: layer_norm(vb, &format!("{p}.attention.layer_norm"))?,
            cross_q: linear(vb, &format!("{p}.attention.linear_0"))?,
            cross_kv: linear(vb, &format!("{p}.attention.linear_1"))?,
            cross_out: linear(vb, &format!("{p}.attention.linear_2"))?,
            ffn_ln: layer_norm(vb, &format!("{p}.ffn.layer_norm"))?,
            fc1: linear(vb, &format!("{p}.ffn.linear_0"))?,
            fc2: linear(vb, &format!("{p}.ffn.linear_1"))?,
        })
    }
}

/// Per-sequence decoder state: cross-attention keys/values of one audio window, and the growing
/// self-attention cache. Batch dimension = number of beams.
pub struct DecoderState {
    cross: Vec<(Tensor, Tensor)>,
    cache: Vec<Option<(Tensor, Tensor)>>,
    /// Tokens already in the cache (the position of the next token).
    pub offset: usize,
}

impl DecoderState {
    /// Keeps only the given rows (beams), in that order, of every cache.
    pub fn select(&mut self, rows: &[u32]) -> Result<()> {
        let idx = Tensor::new(rows, self.cross[0].0.device())?;
        let pick = |t: &Tensor| t.index_select(&idx, 0);
        for c in self.cache.iter_mut().flatten() {
            *c = (pick(&c.0)?, pick(&c.1)?);
        }
        if self.cross[0].0.dim(0)? != rows.len() {
            let zeros = Tensor::zeros(rows.len(), DType::U32, self.cross[0].0.device())?;
            for c in self.cross.iter_mut() {
                *c = (c.0.index_select(&zeros, 0)?, c.1.index_select(&zeros, 0)?);
            }
        }
        Ok(())
    }
}

/// How many of the best tokens of each kind get exact logits (see `Whisper::refine_logits`).
const REFINED_LOGITS: usize = 32;

pub struct Whisper {
    pub config: WhisperConfig,
    conv1: Conv1d,
    conv2: Conv1d,
    enc_pos: Tensor,
    enc_blocks: Vec<EncoderBlock>,
    enc_ln: LayerNorm,
    embed: Tensor,
    /// The output projection (the embedding matrix, 51864 × d) in 8-bit blocks: with one token
    /// per step it is the largest read of the step, and 4× fewer bytes make the step 2× faster.
    logits: QMatMul,
    dec_pos: Tensor,
    dec_blocks: Vec<DecoderBlock>,
    dec_ln: LayerNorm,
    device: Device,
}

impl Whisper {
    pub fn load(dir: &Path, device: &Device) -> crate::error::Result<Self> {
        let cfg_path = dir.join("config.json");
        let config: WhisperConfig = serde_json::from_slice(
            &std::fs::read(&cfg_path).map_err(|e| crate::error::Error::io(&cfg_path, e))?,
        )
        .map_err(|e| crate::error::Error::Model(format!("{}: {e}", cfg_path.display())))?;
        // SAFETY: the file is only read; hark never modifies an installed model in place.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, device)?
        };
        let load = || -> Result<Self> {
            Ok(Self {
                conv1: conv(&vb, "encoder.conv1", 1)?,
                conv2: conv(&vb, "encoder.conv2", 2)?,
                enc_pos: vb.get_unchecked("encoder.position_encodings.encodings")?,
                enc_blocks: (0..config.encoder_layers)
                    .map(|i| EncoderBlock::load(&vb, &format!("encoder.layer_{i}")))
                    .collect::<Result<_>>()?,
                enc_ln: layer_norm(&vb, "encoder.layer_norm")?,
                embed: vb.get_unchecked("decoder.embeddings.weight")?,
                logits: QMatMul::from_qtensor(QTensor::quantize(
                    &vb.get_unchecked("decoder.embeddings.weight")?,
                    GgmlDType::Q8_0,
                )?)?,
                dec_pos: vb.get_unchecked("decoder.position_encodings.encodings")?,
                dec_blocks: (0..config.decoder_layers)
                    .map(|i| DecoderBlock::load(&vb, &format!("decoder.layer_{i}")))
                    .collect::<Result<_>>()?,
                dec_ln: layer_norm(&vb, "decoder.layer_norm")?,
                device: device.clone(),
                config: config.clone(),
            })
        };
        Ok(load()?)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Normalised log-mel `[1, n_mels, T]` (T even, ≤ 3000) -> audio features `[1, T/2, d_model]`.
    pub fn encode(&self, mel: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(mel)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?.transpose(1, 2)?;
        let t = x.dim(1)?;
        let mut x = x.broadcast_add(&self.enc_pos.narrow(0, 0, t)?)?;
        for b in &self.enc_blocks {
            x = b.forward(&x, self.config.n_heads)?;
        }
        self.enc_ln.forward(&x)
    }

    /// Prepares decoding against one window's audio features, for `batch` parallel hypotheses.
    pub fn start(&self, audio: &Tensor, batch: usize) -> Result<DecoderState> {
        let d = self.config.d_model;
        let mut cross = Vec::with_capacity(self.dec_blocks.len());
        for b in &self.dec_blocks {
            let kv = b.cross_kv.forward(audio)?;
            let k_t = split_heads(&kv.narrow(D::Minus1, 0, d)?, self.config.n_heads)?.t()?.contiguous()?;
            let v = split_heads(&kv.narrow(D::Minus1, d, d)?, self.config.n_heads)?;
            cross.push((k_t, v));
        }
        let mut state = DecoderState { cross, cache: vec![None; self.dec_blocks.len()], offset: 0 };
        if batch > 1 {
            state.select(&vec![0; batch])?;
        }
        Ok(state)
    }

    /// Feeds `tokens` ([B, L]) and returns the logits of the last position, one row per batch item.
    pub fn step(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Vec<Vec<f32>>> {
        let (_, l) = tokens.dims2()?;
        let heads = self.config.n_heads;
        let d = self.config.d_model;
        let pos = self.dec_pos.narrow(0, state.offset, l)?;
        let mut x = self
            .embed
            .embedding(&tokens.flatten_all()?)?
            .reshape((tokens.dim(0)?, l, d))?
            .broadcast_add(&pos)?;
        let mask = if l > 1 {
            let offset = state.offset;
            let total = offset + l;
            let m: Vec<f32> = (0..l)
                .flat_map(|i| (0..total).map(move |j| if j > offset + i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(m, (l, total), &self.device)?)
        } else {
            None
        };
        for (i, b) in self.dec_blocks.iter().enumerate() {
            let h = b.self_ln.forward(&x)?;
            let qkv = b.self_qkv.forward(&h)?;
            let q = split_heads(&qkv.narrow(D::Minus1, 0, d)?, heads)?;
            let mut k = split_heads(&qkv.narrow(D::Minus1, d, d)?, heads)?;
            let mut v = split_heads(&qkv.narrow(D::Minus1, 2 * d, d)?, heads)?;
            if let Some((pk, pv)) = &state.cache[i] {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            state.cache[i] = Some((k.clone(), v.clone()));
            x = (x + b.self_out.forward(&merge_heads(&attend(&q, &k, &v, mask.as_ref())?)?)?)?;
            let h = b.cross_ln.forward(&x)?;
            let q = split_heads(&b.cross_q.forward(&h)?, heads)?;
            let (ck_t, cv) = &state.cross[i];
            x = (x + b.cross_out.forward(&merge_heads(&attend_kt(&q, ck_t, cv, None)?)?)?)?;
            let h = b.fc2.forward(&b.fc1.forward(&b.ffn_ln.forward(&x)?)?.gelu_erf()?)?;
            x = (x + h)?;
        }
        state.offset += l;
        let last = self.dec_ln.forward(&x.i((.., l - 1, ..))?)?;
        let mut rows = self.logits.forward(&last)?.to_vec2::<f32>()?;
        for (b, row) in rows.iter_mut().enumerate() {
            self.refine_logits(&last.i(b)?, row)?;
        }
        Ok(rows)
    }

    /// The 8-bit logits are within about 1 of the exact ones; the exact values of the best
    /// `REFINED_LOGITS` text tokens and timestamps make the choice of token exactly the f32 model's.
    fn refine_logits(&self, hidden: &Tensor, row: &mut [f32]) -> Result<()> {
        let split = (self.config.tokens.timestamp_begin as usize).min(row.len());
        let mut ids = Vec::with_capacity(2 * REFINED_LOGITS);
        for (from, to) in [(0, split), (split, row.len())] {
            let mut range: Vec<u32> = (from as u32..to as u32).collect();
            if range.len() > REFINED_LOGITS {
                range.select_nth_unstable_by(REFINED_LOGITS - 1, |&a, &b| {
                    row[b as usize].total_cmp(&row[a as usize])
                });
                range.truncate(REFINED_LOGITS);
            }
            ids.extend(range);
        }
        // The no-speech probability is read from this logit, so it must be exact too.
        ids.push(self.config.tokens.no_speech());
        let weights = self.embed.index_select(&Tensor::new(ids.as_slice(), &self.device)?, 0)?;
        let exact = weights.matmul(&hidden.unsqueeze(1)?)?.flatten_all()?.to_vec1::<f32>()?;
        for (id, value) in ids.into_iter().zip(exact) {
            row[id as usize] = value;
        }
        Ok(())
    }
}
