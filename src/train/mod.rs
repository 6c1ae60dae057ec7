//! `hark train`: the transducer trained with the RNN-T loss on top of Whisper tiny.en's encoder.
//!
//! The lower encoder blocks stay frozen: their outputs (in the training lookahead mode) are
//! computed once per utterance and cached. The top `unfreeze` blocks, their attention schedulers
//! and the head (25 Hz subsampling, stateless predictor, joiner) are trained, with optional
//! regularisers: the expected algorithmic lookahead (propagated through the trained blocks), the
//! gate usage, and distillation to the frozen full-context encoder's output.

pub mod augment;
pub mod calibrate;
pub mod layers;
pub mod lm;
pub mod recipe;
pub mod rnnt;
pub mod separation;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::asr::transducer::init::{Rng, load_whisper_encoder, random_tensors, save_model};
use crate::asr::transducer::model::future_frames;
use crate::asr::transducer::recognizer::RunningNorm;
use crate::asr::transducer::{
    Lookahead, TransducerConfig, TransducerEngine, TransducerModel, TransducerOptions, Vocabulary,
};
use crate::audio::FileSource;
use crate::eval;
use crate::eval::ManifestEntry;
use crate::eval::{read_manifest, wer_counts};
use crate::features::MelFrontend;
use crate::models;
use crate::pipeline::{Recognizer, transcribe_files};
use layers::{
    BLOCK_PARAMS, Params, TrainableBlock, dropout_if, layer_norm, linear, mean_lookahead_ms, propagate_ready,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Where the trained model folder is written (checkpoints go beside it).
    pub output: PathBuf,
    /// Whisper model whose encoder is used (frozen); absent = a random encoder (tests).
    #[serde(default)]
    pub init_whisper: Option<String>,
    /// A trained transducer folder to continue from (path relative to this file): its
    /// vocabulary, head, blocks and schedulers replace the fresh ones; its shape must match.
    /// Distillation targets still come from the pristine `init_whisper` encoder.
    #[serde(default)]
    pub init_model: Option<PathBuf>,
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
    /// How many of the top encoder blocks (and the final LayerNorm) are trained; 0 = head only.
    #[serde(default)]
    pub unfreeze: usize,
    /// Adaptive mode: per block, the future frames a query sees when its gate is on. Frozen
    /// blocks keep their gate always on; the trained blocks' schedulers learn when to open.
    #[serde(default)]
    pub lookahead_frames: Option<Vec<usize>>,
    /// Loss per 100 ms of expected mean algorithmic lookahead above `latency_budget_ms`
    /// (adaptive mode).
    #[serde(default)]
    pub latency_weight: f64,
    /// Mean lookahead the regulariser tolerates for free, ms.
    #[serde(default)]
    pub latency_budget_ms: f64,
    /// Loss per unit of mean gate probability (adaptive mode).
    #[serde(default)]
    pub gate_weight: f64,
    /// Weight of the mean squared distance to the frozen full-context encoder's output.
    #[serde(default)]
    pub distill_weight: f64,
    /// Dropout on the trained blocks' branches and on the head's input.
    #[serde(default)]
    pub dropout: f32,
    /// Learning rate of the pretrained encoder blocks, relative to `lr`.
    #[serde(default = "default_encoder_lr_scale")]
    pub encoder_lr_scale: f64,
    /// Augmented copies of each utterance (speed, noise, SpecAugment); none by default.
    #[serde(default)]
    pub augment: Option<augment::AugmentConfig>,
    /// Adaptive mode: after training, shift the trained schedulers until the mean lookahead on
    /// training utterances is at most this (ms); see [`calibrate`].
    #[serde(default)]
    pub calibrate_lookahead_ms: Option<f64>,
    /// Training utterances (spread evenly over the manifests) used for that calibration.
    #[serde(default = "default_calibrate_files")]
    pub calibrate_files: usize,
    /// Keep the frozen blocks' outputs in the cache folder for the next run with the same data.
    #[serde(default = "default_true")]
    pub keep_encoded: bool,
    /// Output vocabulary size when it is word pieces learnt (by byte-pair encoding) from the
    /// training transcripts; absent = characters.
    #[serde(default)]
    pub word_pieces: Option<usize>,
    /// Initial bias of the trained schedulers (positive = gates start mostly open).
    #[serde(default = "default_gate_bias")]
    pub gate_init_bias: f32,
    /// Wall-clock budget of the run in minutes, from its start (a lent GPU's time is fixed):
    /// after [`BUDGET_PROBE_STEPS`] steps the step count is cut to what fits, keeping a tenth
    /// for export and calibration, and the learning-rate schedule ends at the new count.
    #[serde(default)]
    pub time_budget_minutes: Option<f64>,
}

/// Steps timed before a `time_budget_minutes` run fixes its step count.
pub const BUDGET_PROBE_STEPS: usize = 10;

/// The step count a time budget allows: `done` steps took `per_step_s` each, `left_s` of the
/// budget remains (a tenth of the whole is kept for what follows the loop). Never more than
/// `steps`, never fewer than `done + 1`.
fn steps_within_budget(steps: usize, done: usize, per_step_s: f64, left_s: f64, budget_s: f64) -> usize {
    let usable = left_s - 0.1 * budget_s;
    let more = if per_step_s > 0.0 { (usable / per_step_s).floor().max(0.0) as usize } else { steps };
    (done + more).clamp(done + 1, steps.max(done + 1))
}

fn default_calibrate_files() -> usize {
    200
}
fn default_true() -> bool {
    true
}
fn default_encoder_lr_scale() -> f64 {
    0.1
}
fn default_gate_bias() -> f32 {
    1.0
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

/// A training example: the frozen blocks' output (50 Hz, `[T, d]`), per frame the last mel frame
/// it depends on, the labels, and the distillation target when distilling.
struct Example {
    hidden: Tensor,
    ready: Tensor,
    labels: Vec<u32>,
    target: Option<Tensor>,
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

struct Head<'a> {
    params: &'a Params,
    cfg: &'a TransducerConfig,
}

impl Head<'_> {
    fn var(&self, name: &str) -> &Tensor {
        self.params.get(name)
    }

    /// Joiner logits `[K, U+1, V]` for one utterance.
    fn logits(&self, feats: &Tensor, labels: &[u32]) -> candle_core::Result<Tensor> {
        let (t, d) = feats.dims2()?;
        let x = if t % 2 == 1 {
            Tensor::cat(&[feats, &Tensor::zeros((1, d), DType::F32, feats.device())?], 0)?
        } else {
            feats.clone()
        };
        let pairs = x.reshape((t.div_ceil(2), 2 * d))?;
        let enc = linear(
            &linear(&pairs, self.var("subsample.weight"), self.var("subsample.bias"))?,
            self.var("enc_proj.weight"),
            self.var("enc_proj.bias"),
        )?;
        let c = self.cfg.context_size;
        let blank = self.cfg.blank_id;
        let mut ids = Vec::with_capacity((labels.len() + 1) * c);
        for u in 0..=labels.len() {
            for j in (1..=c).rev() {
                ids.push(if u >= j { labels[u - j] } else { blank });
            }
        }
        let ids = Tensor::new(ids.as_slice(), feats.device())?;
        let emb = self
            .var("embedding")
            .index_select(&ids, 0)?
            .reshape((labels.len() + 1, c * self.cfg.joiner_dim))?;
        let pred = linear(&emb, self.var("pred_proj.weight"), self.var("pred_proj.bias"))?;
        let (k, u1, j) = (enc.dim(0)?, pred.dim(0)?, self.cfg.joiner_dim);
        let h = enc.unsqueeze(1)?.broadcast_add(&pred.unsqueeze(0)?)?.tanh()?.reshape((k * u1, j))?;
        linear(&h, self.var("joiner_out.weight"), self.var("joiner_out.bias"))?.reshape((
            k,
            u1,
            self.cfg.vocab_size,
        ))
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {{msg}}"
        ))
        .expect("template"),
    );
    pb
}

/// Per-step figures besides the loss, for the log and for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStats {
    pub loss: f32,
    /// Expected mean algorithmic lookahead of the batch, ms.
    pub lookahead_ms: f32,
    /// Mean gate probability of the trained blocks (adaptive mode).
    pub gate_rate: f32,
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of the weights the cached hidden states come from: the conv front end and the
/// frozen blocks (not the trained ones, which an `init_model` also carries).
fn frozen_weights_sha256(tensors: &HashMap<String, Tensor>, first_trained: usize) -> anyhow::Result<String> {
    let frozen = |name: &str| match name.strip_prefix("blocks.") {
        Some(rest) => {
            rest.split('.').next().and_then(|l| l.parse::<usize>().ok()).is_some_and(|l| l < first_trained)
        }
        None => name.starts_with("conv"),
    };
    let mut names: Vec<&String> = tensors.keys().filter(|n| frozen(n)).collect();
    names.sort();
    let mut bytes = Vec::new();
    for name in names {
        bytes.extend(name.as_bytes());
        bytes.extend(
            tensors[name]
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .flat_map(|v| v.to_le_bytes()),
        );
    }
    Ok(hex_sha256(&bytes))
}

/// A trained model to continue training from (`init_model`).
struct InitModel {
    dir: PathBuf,
    tensors: HashMap<String, Tensor>,
    vocab: Vocabulary,
}

impl InitModel {
    fn load(dir: &Path) -> anyhow::Result<Self> {
        let weights = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)
            .with_context(|| format!("init_model: {}", weights.display()))?;
        let vocab = Vocabulary::load(&dir.join("vocabulary.txt"))?;
        Ok(Self { dir: dir.to_path_buf(), tensors, vocab })
    }

    /// Replaces the fresh tensors by the model's, which must have the same names and shapes.
    fn overlay(&self, tensors: &mut HashMap<String, Tensor>) -> anyhow::Result<()> {
        for (name, fresh) in tensors.iter_mut() {
            let saved = self
                .tensors
                .get(name)
                .with_context(|| format!("init_model {} lacks {name}", self.dir.display()))?;
            if saved.dims() != fresh.dims() {
                bail!(
                    "init_model {}: {name} is {:?}, this recipe's model needs {:?}",
                    self.dir.display(),
                    saved.dims(),
                    fresh.dims()
                );
            }
            *fresh = saved.to_dtype(DType::F32)?;
        }
        Ok(())
    }
}

/// Runs the front end and the frozen blocks over every utterance and its augmented copies
/// (entries that cannot be read or have no labels are reported and skipped).
#[allow(clippy::too_many_arguments)]
fn encode_all(
    encoder: &TransducerModel,
    entries: &[ManifestEntry],
    vocab: &Vocabulary,
    mode: Lookahead,
    frozen_blocks: usize,
    distill_teacher: Option<&TransducerModel>,
    mut augmenter: Option<&mut augment::Augmenter>,
    device: &Device,
) -> anyhow::Result<Vec<Example>> {
    let pb = bar(entries.len() as u64, "encoding");
    let mut data = Vec::new();
    let encode = |mel: Vec<f32>, labels: Vec<u32>| -> anyhow::Result<Example> {
        let mel = Tensor::from_vec(mel.clone(), (mel.len() / 80, 80), device)?;
        let (hidden, _, ready) = encoder.encode_layers(&mel, mode, frozen_blocks)?;
        let ready: Vec<f32> = ready.iter().map(|&r| r as f32).collect();
        let target = match distill_teacher {
            Some(teacher) => {
                let (full, _, _) = teacher.encode_hidden(&mel, Lookahead::Full)?;
                Some(teacher.ln_post.forward(&full)?)
            }
            None => None,
        };
        Ok(Example { hidden, ready: Tensor::new(ready.as_slice(), device)?, labels, target })
    };
    for (n, e) in entries.iter().enumerate() {
        pb.inc(1);
        let labels = vocab.encode(&e.reference);
        let samples = match FileSource::open(&e.path).and_then(FileSource::read_all) {
            Ok(s) if !s.is_empty() && !labels.is_empty() => s,
            Ok(_) => continue,
            Err(err) => {
                pb.suspend(|| eprintln!("hark: skipping {}: {err:#}", e.path.display()));
                continue;
            }
        };
        data.push(encode(RunningNorm::normalize_all(&MelFrontend::compute(&samples)), labels.clone())?);
        if let Some(aug) = augmenter.as_deref_mut() {
            for _ in 0..aug.copies() {
                let mut mel = RunningNorm::normalize_all(&MelFrontend::compute(&aug.audio(&samples)?));
                aug.mask_mel(&mut mel, 80);
                data.push(encode(mel, labels.clone())?);
            }
        }
        if pb.is_hidden() && (n + 1) % 500 == 0 {
            eprintln!("hark: encoded {}/{} utterances", n + 1, entries.len());
        }
    }
    pb.finish_and_clear();
    Ok(data)
}

/// The checkpoint's weights and its step file, beside the model folder `output`. The suffix is
/// appended to the whole folder name (not swapped for its "extension"), so runs whose names
/// differ only after a dot — ancat-tiny.en and ancat-tiny.en-nodistill — keep apart.
pub(crate) fn checkpoint_paths(output: &Path) -> (PathBuf, PathBuf) {
    let name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (
        output.with_file_name(format!("{name}.checkpoint.safetensors")),
        output.with_file_name(format!("{name}.checkpoint.json")),
    )
}

/// Stores encoded utterances (hidden states and targets as f16) under a temporary name, then
/// renames, so an interrupted save leaves no half file behind.
fn save_encoded(path: &Path, data: &[Example]) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().expect("cache file has a folder"))?;
    let mut map = HashMap::new();
    for (i, ex) in data.iter().enumerate() {
        map.insert(format!("{i}.hidden"), ex.hidden.to_dtype(DType::F16)?);
        map.insert(format!("{i}.ready"), ex.ready.clone());
        map.insert(format!("{i}.labels"), Tensor::new(ex.labels.as_slice(), &Device::Cpu)?);
        if let Some(t) = &ex.target {
            map.insert(format!("{i}.target"), t.to_dtype(DType::F16)?);
        }
    }
    let tmp = path.with_extension("partial");
    candle_core::safetensors::save(&map, &tmp)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn load_encoded(path: &Path, device: &Device) -> Option<Vec<Example>> {
    let mut map = candle_core::safetensors::load(path, device).ok()?;
    let mut data = Vec::new();
    for i in 0.. {
        let Some(hidden) = map.remove(&format!("{i}.hidden")) else { break };
        data.push(Example {
            hidden: hidden.to_dtype(DType::F32).ok()?,
            ready: map.remove(&format!("{i}.ready"))?,
            labels: map.remove(&format!("{i}.labels"))?.to_vec1().ok()?,
            target: map.remove(&format!("{i}.target")).map(|t| t.to_dtype(DType::F32)).transpose().ok()?,
        });
    }
    (!data.is_empty()).then_some(data)
}

/// `cpu`, `cuda` or `cuda:N` → a candle device. A CUDA device needs hark built with
/// `--features cuda` (refused here otherwise) and an NVIDIA driver (candle's error then).
pub fn parse_device(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ if name.starts_with("cuda") && !cfg!(feature = "cuda") => {
            bail!(
                "--device {name}: this hark was built without CUDA; build it with scripts/build-cuda.sh (or `cargo build --release --features cuda` where CUDA's toolkit is installed)"
            )
        }
        "cuda" => Device::new_cuda(0).context("--device cuda"),
        _ => match name.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(ordinal) => Device::new_cuda(ordinal).with_context(|| format!("--device {name}")),
            None => bail!("--device {name}: expected cpu, cuda or cuda:N"),
        },
    }
}

/// Runs a training job. Returns the per-step losses (for tests).
pub fn train(config_path: &Path, resume: bool) -> anyhow::Result<Vec<f32>> {
    Ok(train_with_stats(config_path, resume)?.iter().map(|s| s.loss).collect())
}

/// Reads a training config (with what it `extends`); relative paths in it are relative to the
/// returned folder.
fn load_config(config_path: &Path) -> anyhow::Result<(TrainConfig, &Path)> {
    let cfg: TrainConfig = recipe::read(config_path)?;
    Ok((cfg, config_path.parent().unwrap_or(Path::new("."))))
}

/// The utterances of the config's training manifests (at most `max_utterances` of each).
fn training_entries(cfg: &TrainConfig, base: &Path) -> anyhow::Result<Vec<ManifestEntry>> {
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
    Ok(entries)
}

/// Runs a training job on the CPU and returns every step's figures.
pub fn train_with_stats(config_path: &Path, resume: bool) -> anyhow::Result<Vec<StepStats>> {
    train_on(config_path, resume, &Device::Cpu)
}

/// Runs a training job on `device` (the CPU, or a GPU where hark is built with `--features
/// cuda`): the frozen blocks' encoding and the trained blocks, head and optimiser run there; the
/// RNN-T lattice, dev checks and calibration run on the CPU. Returns every step's figures.
pub fn train_on(config_path: &Path, resume: bool, device: &Device) -> anyhow::Result<Vec<StepStats>> {
    let run_started = Instant::now();
    let (cfg, base) = load_config(config_path)?;
    let mode: Lookahead = cfg.lookahead.parse().map_err(anyhow::Error::msg)?;
    let device = device.clone();
    let entries = training_entries(&cfg, base)?;
    let init = cfg.init_model.as_ref().map(|p| InitModel::load(&resolve(base, p))).transpose()?;
    let vocab = match (cfg.word_pieces, &init) {
        (Some(n), Some(init)) if n != init.vocab.len() => {
            bail!("word_pieces = {n} but init_model {} has {} tokens", init.dir.display(), init.vocab.len())
        }
        (_, Some(init)) => init.vocab.clone(),
        (Some(size), None) => {
            let vocab = Vocabulary::learn_pieces(entries.iter().map(|e| e.reference.as_str()), size)?;
            let words: usize =
                entries.iter().map(|e| eval::normalize(&e.reference).split_whitespace().count()).sum();
            let pieces: usize = entries.iter().map(|e| vocab.encode(&e.reference).len()).sum();
            eprintln!(
                "hark: {} word pieces, {:.2} per word of the training text",
                vocab.len(),
                pieces as f64 / words.max(1) as f64
            );
            vocab
        }
        (None, None) => Vocabulary::characters(),
    };
    let mut model_cfg = cfg.model.clone().unwrap_or_else(|| TransducerConfig::tiny(vocab.len()));
    model_cfg.vocab_size = vocab.len();
    let n_layers = model_cfg.n_layers;
    if cfg.unfreeze > n_layers {
        bail!("unfreeze = {} but the encoder has {n_layers} blocks", cfg.unfreeze);
    }
    let first_trained = n_layers - cfg.unfreeze;
    if mode == Lookahead::Adaptive {
        let frames = cfg
            .lookahead_frames
            .clone()
            .context("adaptive training needs lookahead_frames (one window per encoder block)")?;
        if frames.len() != n_layers {
            bail!("lookahead_frames lists {} windows for {n_layers} blocks", frames.len());
        }
        if cfg.unfreeze == 0 {
            bail!("adaptive training needs unfreeze ≥ 1: the schedulers of frozen blocks cannot learn");
        }
        model_cfg.lookahead_frames = frames;
    } else if let Lookahead::Fixed(n) = mode {
        model_cfg.lookahead_frames = vec![n; n_layers];
    }
    let mut tensors = random_tensors(&model_cfg, cfg.seed)?;
    if let Some(w) = &cfg.init_whisper {
        let dir = models::resolve(w)?;
        load_whisper_encoder(&mut tensors, &dir, &model_cfg)?;
    }
    // The distillation teacher is Whisper's own encoder, also when continuing from a model
    // whose blocks have moved away from it.
    let teacher = match &init {
        Some(_) if cfg.distill_weight > 0.0 => {
            if cfg.init_whisper.is_none() {
                bail!(
                    "distill_weight with init_model needs init_whisper: the distillation teacher is Whisper's encoder"
                );
            }
            Some(TransducerModel::from_tensors(model_cfg.clone(), &tensors, &device)?)
        }
        _ => None,
    };
    if let Some(init) = &init {
        init.overlay(&mut tensors)?;
    }
    // Schedulers: frozen blocks, and every block in a fixed mode, keep their gate always open
    // (their window is fixed; a fixed:N model then runs in adaptive mode exactly as fixed:N);
    // the trained ones start near zero with a bias, so the first steps see the gates mostly open.
    // A scheduler the initial model trained is kept; an always-open one (zero weights) starts
    // afresh.
    let mut rng = Rng::new(cfg.seed ^ 0x9a7e);
    for l in 0..n_layers {
        let w = &tensors[&format!("blocks.{l}.scheduler.weight")];
        let (weight, bias) = if l < first_trained || matches!(mode, Lookahead::Fixed(_)) {
            (w.zeros_like()?, 10f32)
        } else if init.is_some() && w.abs()?.max_all()?.to_scalar::<f32>()? > 0.0 {
            continue;
        } else {
            let small: Vec<f32> = (0..w.elem_count()).map(|_| 1e-3 * rng.normal()).collect();
            (Tensor::from_vec(small, w.shape(), &device)?, cfg.gate_init_bias)
        };
        tensors.insert(format!("blocks.{l}.scheduler.weight"), weight);
        tensors.insert(format!("blocks.{l}.scheduler.bias"), Tensor::new(&[bias], &device)?);
    }
    for t in tensors.values_mut() {
        *t = t.to_device(&device)?;
    }
    let encoder = TransducerModel::from_tensors(model_cfg.clone(), &tensors, &device)?;

    // The frozen blocks' outputs, once per utterance, kept on disk for the next run with the
    // same data and frozen blocks.
    let lower: Vec<String> = (0..first_trained)
        .map(|l| future_frames(mode, &model_cfg, l, true).map_or("all".into(), |w| w.to_string()))
        .collect();
    let shape = TransducerConfig {
        lookahead_frames: Vec::new(),
        origin: String::new(),
        calibrated_layers: Vec::new(),
        latency_curve: Vec::new(),
        ..model_cfg.clone()
    };
    let fingerprint = format!(
        "v1 {shape:?} whisper={:?} frozen={} lower={lower:?} distill={} augment={:?} seed={} files={:?} vocabulary={:?}",
        cfg.init_whisper,
        frozen_weights_sha256(&tensors, first_trained)?,
        cfg.distill_weight > 0.0,
        cfg.augment,
        cfg.seed,
        entries
            .iter()
            .map(|e| (
                e.path.display().to_string(),
                &e.reference,
                std::fs::metadata(&e.path).map(|m| m.len()).unwrap_or(0)
            ))
            .collect::<Vec<_>>(),
        // The labels are cached too.
        (0..vocab.len() as u32).map(|i| vocab.token(i)).collect::<Vec<_>>()
    );
    let cache = models::cache_root()
        .join("encoded")
        .join(format!("{}.safetensors", &hex_sha256(fingerprint.as_bytes())[..16]));
    let data = match load_encoded(&cache, &device).filter(|_| cfg.keep_encoded) {
        Some(data) => {
            eprintln!("hark: {} encoded training utterances from {}", data.len(), cache.display());
            data
        }
        None => {
            let mut augmenter = cfg
                .augment
                .clone()
                .map(|a| augment::Augmenter::new(a, base, cfg.seed ^ 0xa06))
                .transpose()?;
            let data = encode_all(
                &encoder,
                &entries,
                &vocab,
                mode,
                first_trained,
                (cfg.distill_weight > 0.0).then(|| teacher.as_ref().unwrap_or(&encoder)),
                augmenter.as_mut(),
                &device,
            )?;
            if cfg.keep_encoded
                && let Err(e) = save_encoded(&cache, &data)
            {
                eprintln!("hark: could not keep the encoded utterances in {}: {e:#}", cache.display());
            }
            data
        }
    };
    eprintln!("hark: {} training utterances", data.len());
    drop(encoder);
    drop(teacher);

    // What is trained: the head, the top blocks (with their schedulers) and the final LayerNorm.
    let mut head_names: Vec<String> = HEAD.iter().map(|s| s.to_string()).collect();
    let mut encoder_names = Vec::new();
    for l in first_trained..n_layers {
        for p in BLOCK_PARAMS {
            let name = format!("blocks.{l}.{p}");
            if p.starts_with("scheduler") {
                if mode == Lookahead::Adaptive {
                    head_names.push(name);
                }
            } else {
                encoder_names.push(name);
            }
        }
    }
    if cfg.unfreeze > 0 {
        encoder_names.extend(["ln_post.weight".to_string(), "ln_post.bias".to_string()]);
    }
    let trained: Vec<String> = head_names.iter().chain(&encoder_names).cloned().collect();

    let output = resolve(base, &cfg.output);
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let (checkpoint, state_path) = checkpoint_paths(&output);
    let mut start = 0;
    if resume && checkpoint.is_file() {
        let saved = candle_core::safetensors::load(&checkpoint, &device)?;
        for name in &trained {
            tensors.insert(
                name.clone(),
                saved.get(name).with_context(|| format!("checkpoint lacks {name}"))?.clone(),
            );
        }
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_path)?)?;
        start = state["step"].as_u64().unwrap_or(0) as usize;
        eprintln!("hark: resuming at step {start} (optimizer moments restart)");
    }
    let mut fixed = tensors.clone();
    let mut vars = HashMap::new();
    for name in &trained {
        vars.insert(
            name.clone(),
            Var::from_tensor(&fixed.remove(name).with_context(|| format!("model lacks {name}"))?)?,
        );
    }
    let params = Params { vars, fixed };
    let group = |names: &[String]| -> Vec<Var> { names.iter().map(|n| params.vars[n].clone()).collect() };
    let mut head_opt = AdamW::new(
        group(&head_names),
        ParamsAdamW { lr: cfg.lr, weight_decay: cfg.weight_decay, ..Default::default() },
    )?;
    let mut encoder_opt = AdamW::new(
        group(&encoder_names),
        ParamsAdamW {
            lr: cfg.lr * cfg.encoder_lr_scale,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let save_checkpoint = |step: usize| -> anyhow::Result<()> {
        let map: HashMap<String, Tensor> =
            params.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
        candle_core::safetensors::save(&map, &checkpoint)?;
        std::fs::write(&state_path, serde_json::json!({ "step": step }).to_string())?;
        Ok(())
    };
    let export = |step: usize| -> anyhow::Result<()> {
        let mut all = params.fixed.clone();
        for (n, v) in &params.vars {
            all.insert(n.clone(), v.as_tensor().clone());
        }
        let mut c = model_cfg.clone();
        c.trained = true;
        c.origin = format!(
            "hark train {}: encoder {} in {} mode, top {} blocks and head trained {step} steps{}",
            config_path.display(),
            cfg.init_whisper.as_deref().unwrap_or("random"),
            cfg.lookahead,
            cfg.unfreeze,
            init.as_ref().map(|i| format!(" from {}", i.dir.display())).unwrap_or_default()
        );
        save_model(&output, &c, &all, &vocab)?;
        Ok(())
    };

    let mut rng = Rng::new(cfg.seed ^ 0x5eed);
    let mut stats = Vec::new();
    let mut steps = cfg.steps;
    let pb = bar(steps as u64, "training");
    pb.set_position(start as u64);
    let t0 = Instant::now();
    let mut utts = 0usize;
    let head = Head { params: &params, cfg: &model_cfg };
    let mut step = start;
    while step < steps {
        let lr = layers::warmup_cosine(cfg.lr, step, cfg.warmup, steps, 0.1);
        head_opt.set_learning_rate(lr);
        encoder_opt.set_learning_rate(lr * cfg.encoder_lr_scale);
        // One utterance's graph at a time: each utterance's share of the loss is backpropagated as
        // soon as it is computed and the gradients summed, so memory holds one graph, not the
        // batch's (16 long LibriSpeech utterances held over 15 GB). The latency hinge is
        // therefore per utterance: each utterance's expected lookahead above the budget costs.
        let picks: Vec<&Example> =
            (0..cfg.batch).map(|_| &data[(rng.next_u64() % data.len() as u64) as usize]).collect();
        let tokens: usize = picks.iter().map(|e| e.labels.len()).sum();
        let per_utt = 1.0 / cfg.batch as f64;
        let (mut rnnt_total, mut latency_total, mut gate_total) = (0f64, 0f64, 0f64);
        let mut sums: HashMap<candle_core::TensorId, Tensor> = HashMap::new();
        let mut last = None;
        for ex in picks {
            let mut x = ex.hidden.clone();
            let mut ready = ex.ready.clone();
            let mut gate = Tensor::zeros((), DType::F32, &device)?;
            for l in first_trained..n_layers {
                let out = TrainableBlock { layer: l, params: &params }.forward(
                    &x,
                    mode,
                    &model_cfg,
                    cfg.dropout,
                )?;
                if let Some(window) = future_frames(mode, &model_cfg, l, true) {
                    ready = propagate_ready(&ready, &out.gate_prob, window)?;
                }
                if mode == Lookahead::Adaptive {
                    gate = (gate + (out.gate_prob.mean_all()? / cfg.unfreeze as f64)?)?;
                }
                x = out.x;
            }
            let feats = layer_norm(&x, params.get("ln_post.weight"), params.get("ln_post.bias"))?;
            let logits = head.logits(&dropout_if(&feats, cfg.dropout)?, &ex.labels)?;
            let rnnt_u = rnnt::rnnt_loss(&logits, &ex.labels, model_cfg.blank_id)?;
            let mut loss = (&rnnt_u / tokens as f64)?;
            if let Some(target) = &ex.target
                && cfg.distill_weight > 0.0
            {
                loss = (loss + ((&feats - target)?.sqr()?.mean_all()? * (per_utt * cfg.distill_weight))?)?;
            }
            if mode != Lookahead::Full {
                let latency = mean_lookahead_ms(&ready)?;
                if cfg.latency_weight > 0.0 && mode == Lookahead::Adaptive {
                    let excess = (&latency - cfg.latency_budget_ms)?.relu()?;
                    loss = (loss + (excess * (per_utt * cfg.latency_weight / 100.0))?)?;
                }
                latency_total += latency.to_scalar::<f32>()? as f64;
            }
            if cfg.gate_weight > 0.0 && mode == Lookahead::Adaptive {
                loss = (loss + (&gate * (per_utt * cfg.gate_weight))?)?;
            }
            let total: f32 = loss.to_scalar()?;
            if !total.is_finite() {
                bail!("the loss became {total} at step {step}; lower the learning rate");
            }
            rnnt_total += rnnt_u.to_scalar::<f32>()? as f64;
            gate_total += gate.to_scalar::<f32>()? as f64;
            let g = loss.backward()?;
            for v in params.vars.values() {
                if let Some(gv) = g.get(v.as_tensor()) {
                    let sum = match sums.remove(&v.id()) {
                        Some(s) => (s + gv)?,
                        None => gv.clone(),
                    };
                    sums.insert(v.id(), sum);
                }
            }
            last = Some(g);
        }
        utts += cfg.batch;
        // The last utterance's store, holding the sums, is what the optimisers read.
        let mut grads = last.context("batch = 0")?;
        for v in params.vars.values() {
            if let Some(sum) = sums.remove(&v.id()) {
                grads.insert(v.as_tensor(), sum);
            }
        }
        let value = (rnnt_total / tokens.max(1) as f64) as f32;
        let step_stats = StepStats {
            loss: value,
            lookahead_ms: (latency_total * per_utt) as f32,
            gate_rate: (gate_total * per_utt) as f32,
        };
        layers::clip_grad_norm(&mut grads, params.vars.values(), cfg.clip_norm)?;
        head_opt.step(&grads)?;
        encoder_opt.step(&grads)?;
        stats.push(step_stats);
        pb.inc(1);
        let mut msg = format!(
            "loss/token {value:.3}  {:.1} utt/s  lr {lr:.1e}",
            utts as f64 / t0.elapsed().as_secs_f64()
        );
        if mode != Lookahead::Full {
            msg += &format!("  lookahead {:.0} ms", step_stats.lookahead_ms);
        }
        if mode == Lookahead::Adaptive {
            msg += &format!("  gates {:.0}%", 100.0 * step_stats.gate_rate);
        }
        let done = step + 1;
        if pb.is_hidden() && done % 50 == 0 {
            eprintln!("hark: step {done}/{steps}: {msg}"); // a log line where no bar is drawn
        }
        pb.set_message(msg);
        if let Some(minutes) = cfg.time_budget_minutes.filter(|_| done == start + BUDGET_PROBE_STEPS) {
            let budget_s = minutes * 60.0;
            let fit = steps_within_budget(
                steps,
                done,
                t0.elapsed().as_secs_f64() / BUDGET_PROBE_STEPS as f64,
                budget_s - run_started.elapsed().as_secs_f64(),
                budget_s,
            );
            if fit < steps {
                pb.suspend(|| eprintln!("hark: {fit} of {steps} steps fit in the {minutes} min budget"));
                steps = fit;
                pb.set_length(steps as u64);
            }
        }
        if done % cfg.checkpoint_every == 0 || done == steps {
            save_checkpoint(done)?;
            export(done)?;
        }
        if let Some(dev) = cfg.dev.as_ref().filter(|_| done % cfg.dev_every == 0 || done == steps) {
            let wer = dev_wer(&output, &resolve(base, dev), mode, cfg.dev_files)?;
            pb.suspend(|| {
                eprintln!(
                    "hark: step {done}: loss/token {value:.3}, dev WER {wer:.2}% ({} files)",
                    cfg.dev_files
                )
            });
        }
        step = done;
    }
    pb.finish();
    if start < steps {
        calibrate_exported(&cfg, &output, &entries)?;
    }
    Ok(stats)
}

/// Runs the latency calibration of the config (if any) on its exported model: the schedulers of
/// the top `unfreeze` blocks, on `calibrate_files` training utterances spread over `entries`.
fn calibrate_exported(cfg: &TrainConfig, output: &Path, entries: &[ManifestEntry]) -> anyhow::Result<()> {
    let (Some(target), Lookahead::Adaptive, Some(frames)) = (
        cfg.calibrate_lookahead_ms,
        cfg.lookahead.parse().map_err(anyhow::Error::msg)?,
        &cfg.lookahead_frames,
    ) else {
        return Ok(());
    };
    let stride = (entries.len() / cfg.calibrate_files.max(1)).max(1);
    let audio: Vec<PathBuf> =
        entries.iter().step_by(stride).take(cfg.calibrate_files).map(|e| e.path.clone()).collect();
    let layers: Vec<usize> = (frames.len().saturating_sub(cfg.unfreeze)..frames.len()).collect();
    let (before, after, offset) = calibrate::calibrate(output, &layers, &audio, target)?;
    eprintln!(
        "hark: mean lookahead on {} training utterances {before:.1} ms → {after:.1} ms (scheduler bias −{offset:.3})",
        audio.len()
    );
    Ok(())
}

/// `hark train --calibrate`: only the latency calibration, on the model the config exported,
/// with the same utterances as the calibration at the end of training.
pub fn calibrate_only(config_path: &Path) -> anyhow::Result<()> {
    let (cfg, base) = load_config(config_path)?;
    if cfg.calibrate_lookahead_ms.is_none() || cfg.lookahead != "adaptive" {
        bail!("{} sets no calibrate_lookahead_ms for an adaptive model", config_path.display());
    }
    calibrate_exported(&cfg, &resolve(base, &cfg.output), &training_entries(&cfg, base)?)
}

/// WER of the exported model on the first `n` files of a dev manifest, streaming, greedy.
fn dev_wer(model_dir: &Path, manifest: &Path, mode: Lookahead, n: usize) -> anyhow::Result<f64> {
    let mut entries = read_manifest(manifest)?;
    entries.truncate(n.max(1));
    let engine = TransducerEngine::load(model_dir, mode)?;
    let rec = Recognizer::Transducer(engine, TransducerOptions::greedy());
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let mut hyps = vec![String::new(); paths.len()];
    transcribe_files(&paths, &rec, None, 2, |o| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_cpu_or_cuda() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        let err = parse_device("gpu").unwrap_err().to_string();
        assert!(err.contains("expected cpu, cuda or cuda:N"), "{err}");
        assert!(parse_device("cuda:x").is_err());
        // Without the `cuda` feature the error says so instead of falling back to the CPU.
        if !cfg!(feature = "cuda") {
            let err = format!("{:#}", parse_device("cuda").unwrap_err());
            assert!(err.contains("built without CUDA"), "{err}");
        }
    }

    #[test]
    fn a_time_budget_cuts_the_step_count_to_what_fits() {
        // 10 steps of 2 s done, 500 s of a 600 s budget left, 60 s kept: 220 more steps.
        assert_eq!(steps_within_budget(1000, 10, 2.0, 500.0, 600.0), 230);
        // Plenty of time: the recipe's count stands.
        assert_eq!(steps_within_budget(100, 10, 0.1, 500.0, 600.0), 100);
        // Out of time already: one more step, so the run still ends with an export.
        assert_eq!(steps_within_budget(1000, 10, 2.0, 30.0, 600.0), 11);
    }

    #[test]
    fn runs_whose_names_differ_after_a_dot_keep_separate_checkpoints() {
        let (default, _) = checkpoint_paths(Path::new("models/ancat-tiny.en"));
        let (variant, state) = checkpoint_paths(Path::new("models/experiments/ancat-tiny.en-nodistill"));
        assert_eq!(default, Path::new("models/ancat-tiny.en.checkpoint.safetensors"));
        assert_eq!(variant, Path::new("models/experiments/ancat-tiny.en-nodistill.checkpoint.safetensors"));
        assert_eq!(state, Path::new("models/experiments/ancat-tiny.en-nodistill.checkpoint.json"));
    }

    #[test]
    fn the_cache_key_follows_the_frozen_weights_only() {
        let config = TransducerConfig::tiny(29);
        let mut tensors = random_tensors(&config, 0).unwrap();
        let key = frozen_weights_sha256(&tensors, 2).unwrap();
        // A trained block or the head (what an init_model brings) leaves it as it is.
        for name in ["blocks.2.fc1.weight", "joiner_out.weight"] {
            tensors.insert(name.into(), (&tensors[name] + 1.0).unwrap());
        }
        assert_eq!(frozen_weights_sha256(&tensors, 2).unwrap(), key);
        // A frozen block or the conv front end changes it.
        for name in ["blocks.1.qkv.bias", "conv1.weight"] {
            let mut changed = tensors.clone();
            changed.insert(name.into(), (&tensors[name] + 1.0).unwrap());
            assert_ne!(frozen_weights_sha256(&changed, 2).unwrap(), key, "{name}");
        }
    }
}
