//! `hark train`: the transducer trained with the RNN-T loss on top of Whisper tiny.en's encoder.
//!
//! The lower encoder blocks stay frozen: their outputs (in the training lookahead mode) are
//! computed once per utterance and cached. The top `unfreeze` blocks, their attention schedulers
//! and the head (25 Hz subsampling, stateless predictor, joiner) are trained, with optional
//! regularisers: the expected algorithmic lookahead (propagated through the trained blocks), the
//! gate usage, and distillation to the frozen full-context encoder's output.

pub mod augment;
pub mod calibrate;
mod config;
mod dev;
mod encoded;
mod head;
pub mod layers;
pub mod lm;
pub mod recipe;
pub mod rnnt;
pub mod separation;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::{ProgressBar, ProgressStyle};

use crate::asr::transducer::init::{Rng, load_whisper_encoder, random_tensors, save_model};
use crate::asr::transducer::model::future_frames;
use crate::asr::transducer::{Lookahead, TransducerConfig, TransducerModel, Vocabulary};
use crate::eval;
use crate::eval::ManifestEntry;
use crate::eval::read_manifest;
use crate::models;
use config::steps_within_budget;
pub use config::{BUDGET_PROBE_STEPS, TrainConfig};
pub use dev::calibrate_only;
use dev::{calibrate_exported, dev_wer};
use encoded::{
    Example, InitModel, encode_all, frozen_weights_sha256, hex_sha256, load_encoded, save_encoded,
};
use head::{HEAD, Head};
use layers::{
    BLOCK_PARAMS, Params, TrainableBlock, dropout_if, layer_norm, mean_lookahead_ms, propagate_ready,
};

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
