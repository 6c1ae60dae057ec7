//! `hark train`: the transducer's head (25 Hz subsampling, joiner, predictor) trained with the
//! RNN-T loss on top of a frozen encoder (Whisper tiny.en's, run in a fixed lookahead mode).
//!
//! Because the encoder is frozen, its outputs are computed once per utterance and cached, so a
//! training step only runs the head. Scheduler training, encoder fine-tuning, distillation and
//! augmentation are not here yet (see models/README.md).

pub mod rnnt;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::asr::transducer::init::{Rng, load_whisper_encoder, random_tensors, save_model};
use crate::asr::transducer::recognizer::RunningNorm;
use crate::asr::transducer::search::SearchMode;
use crate::asr::transducer::{Lookahead, TransducerConfig, TransducerEngine, TransducerModel, TransducerOptions, Vocabulary};
use crate::audio::FileSource;
use crate::eval::{read_manifest, wer_counts};
use crate::features::MelFrontend;
use crate::pipeline::{Recognizer, transcribe_files};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Where the trained model folder is written (checkpoints go beside it).
    pub output: PathBuf,
    /// Whisper model whose encoder is used (frozen); absent = a random encoder (tests).
    #[serde(default)]
    pub init_whisper: Option<String>,
    /// Lookahead mode the frozen encoder runs in, in training and by default at inference.
    pub lookahead: String,
    /// Training manifests (paths relative to this config file's folder, or absolute).
    pub train: Vec<PathBuf>,
    /// Dev manifest for periodic WER (never trained on).
    #[serde(default)]
    pub dev: Option<PathBuf>,
    #[serde(default = "default_dev_files")]
    pub dev_files: usize,
    pub steps: usize,
    #[serde(default = "default_batch")]
    pub batch: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    #[serde(default = "default_clip")]
    pub clip_norm: f64,
    #[serde(default = "default_every")]
    pub checkpoint_every: usize,
    #[serde(default = "default_every")]
    pub dev_every: usize,
    #[serde(default)]
    pub seed: u64,
    /// Use at most this many utterances per manifest (0 = all).
    #[serde(default)]
    pub max_utterances: usize,
    /// Model shape when there is no Whisper encoder (tests).
    #[serde(default)]
    pub model: Option<TransducerConfig>,
}

fn default_dev_files() -> usize {
    40
}
fn default_batch() -> usize {
    16
}
fn default_lr() -> f64 {
    2e-3
}
fn default_warmup() -> usize {
    200
}
fn default_wd() -> f64 {
    0.01
}
fn default_clip() -> f64 {
    5.0
}
fn default_every() -> usize {
    500
}

/// A training example: frozen encoder output (after the final LayerNorm, 50 Hz) and labels.
struct Example {
    feats: Tensor,
    labels: Vec<u32>,
}

/// The trainable tensors, by their names in the model file.
const HEAD: [&str; 9] = [
    "subsample.weight",
    "subsample.bias",
    "enc_proj.weight",
    "enc_proj.bias",
    "embedding",
    "pred_proj.weight",
    "pred_proj.bias",
    "joiner_out.weight",
    "joiner_out.bias",
];

struct Head {
    vars: HashMap<&'static str, Var>,
    cfg: TransducerConfig,
}

fn linear(x: &Tensor, w: &Var, b: &Var) -> candle_core::Result<Tensor> {
    x.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())
}

impl Head {
    fn var(&self, name: &str) -> &Var {
        &self.vars[name]
    }

    /// Joiner logits `[K, U+1, V]` for one utterance.
    fn logits(&self, feats: &Tensor, labels: &[u32]) -> candle_core::Result<Tensor> {
        let (t, d) = feats.dims2()?;
        let x = if t % 2 == 1 { Tensor::cat(&[feats, &Tensor::zeros((1, d), DType::F32, feats.device())?], 0)? } else { feats.clone() };
        let pairs = x.reshape((t.div_ceil(2), 2 * d))?;
        let enc = linear(&linear(&pairs, self.var("subsample.weight"), self.var("subsample.bias"))?, self.var("enc_proj.weight"), self.var("enc_proj.bias"))?;
        let c = self.cfg.context_size;
        let blank = self.cfg.blank_id;
        let mut ids = Vec::with_capacity((labels.len() + 1) * c);
        for u in 0..=labels.len() {
            for j in (1..=c).rev() {
                ids.push(if u >= j { labels[u - j] } else { blank });
            }
        }
        let ids = Tensor::new(ids.as_slice(), feats.device())?;
        let emb = self.var("embedding").as_tensor().index_select(&ids, 0)?.reshape((labels.len() + 1, c * self.cfg.joiner_dim))?;
        let pred = linear(&emb, self.var("pred_proj.weight"), self.var("pred_proj.bias"))?;
        let (k, u1, j) = (enc.dim(0)?, pred.dim(0)?, self.cfg.joiner_dim);
        let h = enc.unsqueeze(1)?.broadcast_add(&pred.unsqueeze(0)?)?.tanh()?.reshape((k * u1, j))?;
        linear(&h, self.var("joiner_out.weight"), self.var("joiner_out.bias"))?.reshape((k, u1, self.cfg.vocab_size))
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn mel_of(path: &Path) -> anyhow::Result<Vec<f32>> {
    Ok(RunningNorm::normalize_all(&MelFrontend::compute(&FileSource::open(path)?.read_all()?)))
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(ProgressStyle::with_template(&format!("{what} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {{msg}}")).expect("template"));
    pb
}

/// Runs a training job. Returns the per-step losses (for tests).
pub fn train(config_path: &Path, resume: bool) -> anyhow::Result<Vec<f32>> {
    let text = std::fs::read_to_string(config_path).with_context(|| format!("reading {}", config_path.display()))?;
    let cfg: TrainConfig = toml::from_str(&text).with_context(|| format!("parsing {}", config_path.display()))?;
    let base = config_path.parent().unwrap_or(Path::new("."));
    let mode: Lookahead = cfg.lookahead.parse().map_err(anyhow::Error::msg)?;
    if mode == Lookahead::Adaptive {
        bail!("training the attention schedulers (adaptive mode) needs the encoder unfrozen, which `hark train` does not do yet; use causal, fixed:N or full");
    }
    let device = Device::Cpu;
    let vocab = Vocabulary::characters();
    let mut model_cfg = cfg.model.clone().unwrap_or_else(|| TransducerConfig::tiny(vocab.len()));
    model_cfg.vocab_size = vocab.len();
    let mut tensors = random_tensors(&model_cfg, cfg.seed)?;
    if let Some(w) = &cfg.init_whisper {
        let dir = crate::models::resolve(w)?;
        load_whisper_encoder(&mut tensors, &dir, &model_cfg)?;
    }
    let encoder = TransducerModel::from_tensors(model_cfg.clone(), &tensors, &device)?;

    // Frozen encoder outputs, once per utterance.
    let mut entries = Vec::new();
    for m in &cfg.train {
        let mut e = read_manifest(&resolve(base, m))?;
        if cfg.max_utterances > 0 {
            e.truncate(cfg.max_utterances);
        }
        entries.extend(e);
    }
    if entries.is_empty() {
        bail!("the training manifests list no utterances");
    }
    let pb = bar(entries.len() as u64, "encoding");
    let mut data = Vec::new();
    for e in &entries {
        pb.inc(1);
        let labels = vocab.encode(&e.reference);
        let mel = match mel_of(&e.path) {
            Ok(m) if !m.is_empty() && !labels.is_empty() => m,
            Ok(_) => continue,
            Err(err) => {
                pb.suspend(|| eprintln!("hark: skipping {}: {err:#}", e.path.display()));
                continue;
            }
        };
        let mel = Tensor::from_vec(mel.clone(), (mel.len() / 80, 80), &device)?;
        let (x, _, _) = encoder.encode_hidden(&mel, mode)?;
        data.push(Example { feats: encoder.ln_post.forward(&x)?, labels });
    }
    pb.finish_and_clear();
    eprintln!("hark: {} training utterances encoded", data.len());

    let output = resolve(base, &cfg.output);
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let checkpoint = output.with_extension("checkpoint.safetensors");
    let state_path = output.with_extension("checkpoint.json");
    let mut start = 0;
    if resume && checkpoint.is_file() {
        let saved = candle_core::safetensors::load(&checkpoint, &device)?;
        for name in HEAD {
            tensors.insert(name.to_string(), saved.get(name).with_context(|| format!("checkpoint lacks {name}"))?.clone());
        }
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_path)?)?;
        start = state["step"].as_u64().unwrap_or(0) as usize;
        eprintln!("hark: resuming at step {start} (optimizer moments restart)");
    }
    let head = Head {
        vars: HEAD.iter().map(|&n| Ok((n, Var::from_tensor(&tensors[n])?))).collect::<candle_core::Result<_>>()?,
        cfg: model_cfg.clone(),
    };
    let mut opt = AdamW::new(
        HEAD.iter().map(|n| head.vars[n].clone()).collect(),
        ParamsAdamW { lr: cfg.lr, weight_decay: cfg.weight_decay, ..Default::default() },
    )?;
    let save_head = |step: usize| -> anyhow::Result<()> {
        let map: HashMap<String, Tensor> = HEAD.iter().map(|&n| (n.to_string(), head.vars[n].as_tensor().clone())).collect();
        candle_core::safetensors::save(&map, &checkpoint)?;
        std::fs::write(&state_path, serde_json::json!({ "step": step }).to_string())?;
        Ok(())
    };
    let export = |step: usize, note: &str| -> anyhow::Result<()> {
        let mut all = tensors.clone();
        for &n in &HEAD {
            all.insert(n.to_string(), head.vars[n].as_tensor().clone());
        }
        let mut c = model_cfg.clone();
        c.trained = true;
        if let Lookahead::Fixed(n) = mode {
            // The schedulers are not trained yet: every gate on, with the window the head was
            // trained for, so that adaptive mode runs this model exactly as fixed:N.
            c.lookahead_frames = vec![n; c.n_layers];
            for l in 0..c.n_layers {
                let w = &all[&format!("blocks.{l}.scheduler.weight")];
                all.insert(format!("blocks.{l}.scheduler.weight"), w.zeros_like()?);
                all.insert(format!("blocks.{l}.scheduler.bias"), Tensor::new(&[10f32], &device)?);
            }
        }
        c.origin = format!(
            "hark train {}: frozen encoder ({}) in {} mode, head trained {step} steps{note}",
            config_path.display(),
            cfg.init_whisper.as_deref().unwrap_or("random"),
            cfg.lookahead
        );
        save_model(&output, &c, &all, &vocab)?;
        Ok(())
    };

    let mut rng = Rng::new(cfg.seed ^ 0x5eed);
    let mut losses = Vec::new();
    let pb = bar(cfg.steps as u64, "training");
    pb.set_position(start as u64);
    let t0 = Instant::now();
    let mut utts = 0usize;
    for step in start..cfg.steps {
        let lr = if step < cfg.warmup {
            cfg.lr * (step + 1) as f64 / cfg.warmup as f64
        } else {
            let p = (step - cfg.warmup) as f64 / (cfg.steps - cfg.warmup).max(1) as f64;
            cfg.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
        };
        opt.set_learning_rate(lr);
        let mut total = Tensor::zeros((), DType::F32, &device)?;
        let mut tokens = 0;
        for _ in 0..cfg.batch {
            let ex = &data[(rng.next_u64() % data.len() as u64) as usize];
            let logits = head.logits(&ex.feats, &ex.labels)?;
            total = (total + rnnt::rnnt_loss(&logits, &ex.labels, model_cfg.blank_id)?)?;
            tokens += ex.labels.len();
        }
        utts += cfg.batch;
        let loss = (total / tokens as f64)?;
        let value: f32 = loss.to_scalar()?;
        if !value.is_finite() {
            bail!("the loss became {value} at step {step}; lower the learning rate");
        }
        let mut grads = loss.backward()?;
        // Clip the global gradient norm.
        let mut sq = 0f64;
        for n in HEAD {
            if let Some(g) = grads.get(head.vars[n].as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        let norm = sq.sqrt();
        if norm > cfg.clip_norm {
            for n in HEAD {
                let t = head.vars[n].as_tensor();
                if let Some(g) = grads.remove(t) {
                    grads.insert(t, (g * (cfg.clip_norm / norm))?);
                }
            }
        }
        opt.step(&grads)?;
        losses.push(value);
        pb.inc(1);
        let msg = format!("loss/token {value:.3}  {:.1} utt/s  lr {lr:.1e}", utts as f64 / t0.elapsed().as_secs_f64());
        let done = step + 1;
        if pb.is_hidden() && done % 50 == 0 {
            eprintln!("hark: step {done}/{}: {msg}", cfg.steps); // a log line where no bar is drawn
        }
        pb.set_message(msg);
        if done % cfg.checkpoint_every == 0 || done == cfg.steps {
            save_head(done)?;
            export(done, "")?;
        }
        if let Some(dev) = cfg.dev.as_ref().filter(|_| done % cfg.dev_every == 0 || done == cfg.steps) {
            let wer = dev_wer(&output, &resolve(base, dev), mode, cfg.dev_files)?;
            pb.suspend(|| eprintln!("hark: step {done}: loss/token {value:.3}, dev WER {wer:.2}% ({} files)", cfg.dev_files));
        }
    }
    pb.finish();
    Ok(losses)
}

/// WER of the exported model on the first `n` files of a dev manifest, streaming, greedy.
fn dev_wer(model_dir: &Path, manifest: &Path, mode: Lookahead, n: usize) -> anyhow::Result<f64> {
    let mut entries = read_manifest(manifest)?;
    entries.truncate(n.max(1));
    let engine = TransducerEngine::load(model_dir)?;
    let rec = Recognizer::Transducer(engine, TransducerOptions { lookahead: mode, search: SearchMode::Greedy { max_symbols: 3 }, ..Default::default() });
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let mut hyps = vec![String::new(); paths.len()];
    transcribe_files(&paths, &rec, 2, |o| {
        if let Ok(t) = o.result {
            hyps[o.index] = t.text;
        }
    });
    let (mut errors, mut words) = (0, 0);
    for (e, h) in entries.iter().zip(&hyps) {
        let (err, w) = wer_counts(&e.reference, h);
        errors += err;
        words += w;
    }
    Ok(100.0 * errors as f64 / words.max(1) as f64)
}

