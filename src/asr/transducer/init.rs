//! Building transducer weights: seeded random initialisation, and the encoder taken from an
//! installed Whisper model (same shape as Whisper's encoder).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::config::TransducerConfig;
use super::vocab::Vocabulary;
use crate::error::{Error, Result};

/// A small deterministic generator (SplitMix64), so that a seed gives the same model everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }

    /// Two independent standard normals (both of Box–Muller's outputs).
    pub fn normal_pair(&mut self) -> (f32, f32) {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (2.0 * std::f32::consts::PI * u2).sin_cos();
        (r * cos, r * sin)
    }
}

fn normal(rng: &mut Rng, shape: &[usize], std: f32) -> Result<Tensor> {
    let n = shape.iter().product();
    Ok(Tensor::from_vec((0..n).map(|_| rng.normal() * std).collect::<Vec<_>>(), shape, &Device::Cpu)?)
}

fn fill(shape: &[usize], v: f32) -> Result<Tensor> {
    Ok(Tensor::full(v, shape, &Device::Cpu)?)
}

/// Every tensor of a transducer, randomly initialised (scaled like PyTorch's defaults).
pub fn random_tensors(c: &TransducerConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = Rng::new(seed);
    let mut t = HashMap::new();
    let linear =
        |t: &mut HashMap<String, Tensor>, rng: &mut Rng, name: &str, out: usize, inp: usize| -> Result<()> {
            t.insert(format!("{name}.weight"), normal(rng, &[out, inp], 1.0 / (inp as f32).sqrt())?);
            t.insert(format!("{name}.bias"), fill(&[out], 0.0)?);
            Ok(())
        };
    let d = c.d_model;
    linear(&mut t, &mut rng, "conv1", d, 3 * c.n_mels)?;
    linear(&mut t, &mut rng, "conv2", d, 3 * d)?;
    for i in 0..c.n_layers {
        let p = format!("blocks.{i}");
        for ln in ["ln1", "ln2"] {
            t.insert(format!("{p}.{ln}.weight"), fill(&[d], 1.0)?);
            t.insert(format!("{p}.{ln}.bias"), fill(&[d], 0.0)?);
        }
        linear(&mut t, &mut rng, &format!("{p}.qkv"), 3 * d, d)?;
        linear(&mut t, &mut rng, &format!("{p}.out"), d, d)?;
        linear(&mut t, &mut rng, &format!("{p}.fc1"), c.ffn_dim, d)?;
        linear(&mut t, &mut rng, &format!("{p}.fc2"), d, c.ffn_dim)?;
        linear(&mut t, &mut rng, &format!("{p}.scheduler"), 1, d)?;
    }
    t.insert("ln_post.weight".into(), fill(&[d], 1.0)?);
    t.insert("ln_post.bias".into(), fill(&[d], 0.0)?);
    linear(&mut t, &mut rng, "subsample", d, 2 * d)?;
    linear(&mut t, &mut rng, "enc_proj", c.joiner_dim, d)?;
    t.insert("embedding".into(), normal(&mut rng, &[c.vocab_size, c.joiner_dim], 1.0)?);
    linear(&mut t, &mut rng, "pred_proj", c.joiner_dim, c.context_size * c.joiner_dim)?;
    linear(&mut t, &mut rng, "joiner_out", c.vocab_size, c.joiner_dim)?;
    Ok(t)
}

/// Replaces the encoder tensors with Whisper's (conv front end, blocks, final LayerNorm).
pub fn load_whisper_encoder(
    tensors: &mut HashMap<String, Tensor>,
    whisper_dir: &Path,
    c: &TransducerConfig,
) -> Result<()> {
    let w = candle_core::safetensors::load(whisper_dir.join("model.safetensors"), &Device::Cpu)?;
    let get = |n: &str| w.get(n).cloned().ok_or_else(|| Error::Model(format!("Whisper model lacks {n}")));
    let conv = |n: &str| -> Result<Tensor> {
        let k = get(n)?; // [out, in, 3] → [out, 3·in], tap-major like im2col rows
        let (o, i, taps) = k.dims3()?;
        Ok(k.permute((0, 2, 1))?.contiguous()?.reshape((o, taps * i))?)
    };
    let dims = get("encoder.conv1.weight")?.dims().to_vec();
    if dims[0] != c.d_model || dims[1] != c.n_mels {
        return Err(Error::Model(format!(
            "Whisper encoder is {dims:?}, the transducer needs d={} mels={}",
            c.d_model, c.n_mels
        )));
    }
    tensors.insert("conv1.weight".into(), conv("encoder.conv1.weight")?);
    tensors.insert("conv1.bias".into(), get("encoder.conv1.bias")?);
    tensors.insert("conv2.weight".into(), conv("encoder.conv2.weight")?);
    tensors.insert("conv2.bias".into(), get("encoder.conv2.bias")?);
    for i in 0..c.n_layers {
        let (p, q) = (format!("blocks.{i}"), format!("encoder.layer_{i}"));
        let pairs = [
            ("ln1.weight", "self_attention.layer_norm.gamma"),
            ("ln1.bias", "self_attention.layer_norm.beta"),
            ("qkv.weight", "self_attention.linear_0.weight"),
            ("qkv.bias", "self_attention.linear_0.bias"),
            ("out.weight", "self_attention.linear_1.weight"),
            ("out.bias", "self_attention.linear_1.bias"),
            ("ln2.weight", "ffn.layer_norm.gamma"),
            ("ln2.bias", "ffn.layer_norm.beta"),
            ("fc1.weight", "ffn.linear_0.weight"),
            ("fc1.bias", "ffn.linear_0.bias"),
            ("fc2.weight", "ffn.linear_1.weight"),
            ("fc2.bias", "ffn.linear_1.bias"),
        ];
        for (ours, theirs) in pairs {
            tensors.insert(format!("{p}.{ours}"), get(&format!("{q}.{theirs}"))?);
        }
    }
    tensors.insert("ln_post.weight".into(), get("encoder.layer_norm.gamma")?);
    tensors.insert("ln_post.bias".into(), get("encoder.layer_norm.beta")?);
    Ok(())
}

/// Writes a model folder: config.json, model.safetensors, vocabulary.txt. Weights are stored
/// in f16 (half the size; Whisper's own weights come as f16) and read back as f32.
pub fn save_model(
    dir: &Path,
    c: &TransducerConfig,
    tensors: &HashMap<String, Tensor>,
    vocab: &Vocabulary,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cfg = dir.join("config.json");
    std::fs::write(&cfg, serde_json::to_string_pretty(c).unwrap()).map_err(|e| Error::io(&cfg, e))?;
    let half = tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), t.to_dtype(DType::F16)?)))
        .collect::<candle_core::Result<HashMap<_, _>>>()?;
    // Written under a temporary name and renamed, so an interrupted save leaves the old model.
    let tmp = dir.join("model.safetensors.part");
    candle_core::safetensors::save(&half, &tmp)?;
    let weights = dir.join("model.safetensors");
    std::fs::rename(&tmp, &weights).map_err(|e| Error::io(&weights, e))?;
    vocab.save(&dir.join("vocabulary.txt"))
}
