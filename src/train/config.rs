//! A transducer training recipe (`hark train --config`), its defaults, and the time budget.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::asr::transducer::TransducerConfig;

use super::augment;

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
pub(super) fn steps_within_budget(
    steps: usize,
    done: usize,
    per_step_s: f64,
    left_s: f64,
    budget_s: f64,
) -> usize {
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
