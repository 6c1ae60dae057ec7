//! `hark train separation --config FILE`: trains the two-speaker separator
//! (`crate::separation::mossformer`) on mixtures built on the fly from single-speaker recordings:
//! two utterances of different speakers, each cropped to the segment length at a random place,
//! levelled to a random loudness (±`level_db` around each other, as Libri2Mix draws them) and
//! summed. The loss is permutation-invariant SI-SNR (Luo & Mesgarani; the better of the two
//! speaker orders per mixture). AdamW with warm-up and cosine decay, gradient clipping,
//! checkpoints and resume, and the exported model folder `output` (config.json +
//! model.safetensors).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{D, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rayon::prelude::*;
use serde::Deserialize;

use crate::asr::transducer::init::Rng;
use crate::audio::FileSource;
use crate::audio::Resampler;
use crate::audio::SAMPLE_RATE;
use crate::separation::mossformer::{Separator, SeparatorConfig, TwoSpeakerSeparator, init};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparationTrainConfig {
    /// Output model folder (relative to the config file).
    pub output: PathBuf,
    /// Manifests of single-speaker recordings; the fourth column names the speaker.
    pub train: Vec<PathBuf>,
    #[serde(default)]
    pub model: SeparatorConfig,
    /// A separator folder (relative to the config file) whose weights start the run instead of
    /// random ones: fine-tuning on new voices. Its shape must be `model`'s.
    #[serde(default)]
    pub init_model: Option<PathBuf>,
    /// Seconds per training mixture.
    #[serde(default = "default_segment")]
    pub segment_s: f32,
    /// The two sources' levels differ by up to this many dB.
    #[serde(default = "default_level")]
    pub level_db: f32,
    /// Each source is played up to this fraction faster or slower (pitch and formants move
    /// with it), so every recorded voice stands for a range of voices; 0 leaves them as they are.
    #[serde(default)]
    pub speed_perturb: f32,
    pub steps: usize,
    #[serde(default = "default_batch")]
    pub batch: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    #[serde(default = "default_clip")]
    pub clip_norm: f64,
    #[serde(default = "default_every")]
    pub checkpoint_every: usize,
    #[serde(default)]
    pub seed: u64,
}

fn default_segment() -> f32 {
    3.0
}
fn default_level() -> f32 {
    5.0
}
fn default_batch() -> usize {
    4
}
fn default_lr() -> f64 {
    1e-3
}
fn default_warmup() -> usize {
    100
}
fn default_clip() -> f64 {
    5.0
}
fn default_every() -> usize {
    100
}

/// One speaker's recording at the model's rate.
struct Source {
    speaker: String,
    samples: Vec<f32>,
}

fn load_sources(manifests: &[PathBuf], rate: u32) -> anyhow::Result<Vec<Source>> {
    let mut rows = Vec::new();
    for manifest in manifests {
        let text =
            std::fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
        let base = manifest.parent().unwrap_or(Path::new("."));
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 4 {
                bail!("{}: a row without a speaker column: {line}", manifest.display());
            }
            rows.push((base.join(cols[0]), format!("{}:{}", manifest.display(), cols[3])));
        }
    }
    let sources: Vec<anyhow::Result<Source>> = rows
        .par_iter()
        .map(|(path, speaker)| {
            let audio = FileSource::open(path)
                .and_then(|s| s.read_all())
                .with_context(|| format!("reading {}", path.display()))?;
            let samples = Resampler::resample_all(&audio, SAMPLE_RATE, rate)?;
            Ok(Source { speaker: speaker.clone(), samples })
        })
        .collect();
    sources.into_iter().collect()
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// A random `len`-sample stretch of `x` (zero-padded at a random place when shorter).
fn crop(x: &[f32], len: usize, rng: &mut Rng) -> Vec<f32> {
    if x.len() >= len {
        let start = (rng.next_u64() % (x.len() - len + 1) as u64) as usize;
        x[start..start + len].to_vec()
    } else {
        let mut out = vec![0.0; len];
        let start = (rng.next_u64() % (len - x.len() + 1) as u64) as usize;
        out[start..start + x.len()].copy_from_slice(x);
        out
    }
}

/// `x` played `factor` times as fast, `len` samples of it, by linear interpolation: the factors
/// used are near 1, where its aliasing stays far below the speech. Not the transducer's
/// `augment::change_speed` (rubato): for an arbitrary factor that costs ~50× more per source
/// (4 ms against 0.08 ms for 4 s at 8 kHz), on the path that feeds every training step.
fn change_speed_linear(x: &[f32], factor: f32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let pos = i as f32 * factor;
            let (j, frac) = (pos as usize, pos.fract());
            let a = x.get(j).copied().unwrap_or(0.0);
            let b = x.get(j + 1).copied().unwrap_or(0.0);
            a + (b - a) * frac
        })
        .collect()
}

/// A random `len`-sample stretch of one source, at a random speed within ±`perturb`.
fn draw(x: &[f32], len: usize, perturb: f32, rng: &mut Rng) -> Vec<f32> {
    if perturb <= 0.0 {
        return crop(x, len, rng);
    }
    let factor = 1.0 + (rng.uniform() * 2.0 - 1.0) * perturb;
    let stretch = crop(x, (len as f32 * factor).ceil() as usize + 1, rng);
    change_speed_linear(&stretch, factor, len)
}

/// The sources grouped by speaker (indices into `sources`), in a fixed order.
fn by_speaker(sources: &[Source]) -> Vec<Vec<usize>> {
    let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, s) in sources.iter().enumerate() {
        groups.entry(&s.speaker).or_default().push(i);
    }
    groups.into_values().collect()
}

/// Two different speakers of `n` (n ≥ 2), each pair equally likely.
fn two_speakers(n: usize, rng: &mut Rng) -> (usize, usize) {
    let first = (rng.next_u64() % n as u64) as usize;
    let second = (first + 1 + (rng.next_u64() % (n as u64 - 1)) as usize) % n;
    (first, second)
}

/// A batch of two-speaker mixtures `[B, L]` and their sources `[B, 2, L]`, on `device`. Each
/// mixture draws two different speakers uniformly, then one recording of each: a corpus of many
/// short recordings (spoken digits) weighs no more than a speaker with a few long ones.
fn batch(
    sources: &[Source],
    speakers: &[Vec<usize>],
    cfg: &SeparationTrainConfig,
    rng: &mut Rng,
    device: &Device,
) -> anyhow::Result<(Tensor, Tensor)> {
    let len = (cfg.segment_s * cfg.model.sample_rate as f32) as usize;
    let pick =
        |group: &[usize], rng: &mut Rng| &sources[group[(rng.next_u64() % group.len() as u64) as usize]];
    let (mut mixes, mut refs) = (Vec::new(), Vec::new());
    for _ in 0..cfg.batch {
        let (first, second) = two_speakers(speakers.len(), rng);
        let a = pick(&speakers[first], rng);
        let b = pick(&speakers[second], rng);
        let (mut s1, mut s2) =
            (draw(&a.samples, len, cfg.speed_perturb, rng), draw(&b.samples, len, cfg.speed_perturb, rng));
        let db = (rng.uniform() * 2.0 - 1.0) * cfg.level_db / 2.0;
        let target = 0.05 * 10f32.powf((rng.uniform() * 2.0 - 1.0) * 0.3); // about −26 dBFS, ±6 dB
        for (s, level) in
            [(&mut s1, target * 10f32.powf(db / 20.0)), (&mut s2, target * 10f32.powf(-db / 20.0))]
        {
            let gain = level / rms(s).max(1e-4);
            s.iter_mut().for_each(|v| *v *= gain);
        }
        mixes.extend(s1.iter().zip(&s2).map(|(x, y)| x + y));
        refs.extend(s1);
        refs.extend(s2);
    }
    Ok((
        Tensor::from_vec(mixes, (cfg.batch, len), device)?,
        Tensor::from_vec(refs, (cfg.batch, 2, len), device)?,
    ))
}

/// SI-SNR (dB) of each estimate row against its reference row, `[B, L]` → `[B]`.
pub fn si_snr(est: &Tensor, reference: &Tensor) -> candle_core::Result<Tensor> {
    let est = est.broadcast_sub(&est.mean_keepdim(D::Minus1)?)?;
    let reference = reference.broadcast_sub(&reference.mean_keepdim(D::Minus1)?)?;
    let dot = (&est * &reference)?.sum_keepdim(D::Minus1)?;
    let energy = (reference.sqr()?.sum_keepdim(D::Minus1)? + 1e-8)?;
    let target = reference.broadcast_mul(&(dot / energy)?)?;
    let noise = (est - &target)?;
    let ratio = (target.sqr()?.sum(D::Minus1)? / (noise.sqr()?.sum(D::Minus1)? + 1e-8)?)?;
    (ratio + 1e-8)?.log()? * (10.0 / std::f64::consts::LN_10)
}

/// Permutation-invariant SI-SNR of two estimates against two references, `[B, 2, L]` → `[B]`
/// (the mean over the two speakers, in the better order).
pub fn pit_si_snr(est: &Tensor, reference: &Tensor) -> candle_core::Result<Tensor> {
    let (e0, e1) = (est.narrow(1, 0, 1)?.squeeze(1)?, est.narrow(1, 1, 1)?.squeeze(1)?);
    let (r0, r1) = (reference.narrow(1, 0, 1)?.squeeze(1)?, reference.narrow(1, 1, 1)?.squeeze(1)?);
    let same = (si_snr(&e0, &r0)? + si_snr(&e1, &r1)?)?;
    let swapped = (si_snr(&e0, &r1)? + si_snr(&e1, &r0)?)?;
    same.maximum(&swapped)? / 2.0
}

/// Writes the model folder from `weights` on the CPU.
fn save_model(
    dir: &Path,
    cfg: &SeparatorConfig,
    weights: &HashMap<String, Tensor>,
    origin: &str,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Written under temporary names and renamed, so an interrupted save leaves the old model.
    let tmp = dir.join("model.safetensors.part");
    candle_core::safetensors::save(weights, &tmp)?;
    std::fs::rename(&tmp, dir.join("model.safetensors"))?;
    let config = serde_json::json!({ "engine": "separator", "separator": cfg, "origin": origin });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    Ok(())
}

fn on_cpu(weights: &HashMap<String, Tensor>) -> candle_core::Result<HashMap<String, Tensor>> {
    weights.iter().map(|(n, t)| Ok((n.clone(), t.to_device(&Device::Cpu)?))).collect()
}

/// Trains on `device` (the CPU, or a GPU where hark is built with `--features cuda`); returns
/// the loss (negative PIT SI-SNR, dB) of every step run.
pub fn train(config_path: &Path, resume: bool, device: &Device) -> anyhow::Result<Vec<f32>> {
    let cfg: SeparationTrainConfig = super::recipe::read(config_path)?;
    let base = config_path.parent().unwrap_or(Path::new("."));
    let output = base.join(&cfg.output);
    let manifests: Vec<PathBuf> = cfg.train.iter().map(|p| base.join(p)).collect();
    // candle allocates every intermediate afresh; keep freed memory in the process instead of
    // returning it to the kernel and paying for zeroed pages on the next step (~15% of a step).
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let t0 = Instant::now();
    let sources = load_sources(&manifests, cfg.model.sample_rate)?;
    let speakers = by_speaker(&sources);
    if speakers.len() < 2 {
        bail!("the training manifests name {} speaker(s); mixtures need at least two", speakers.len());
    }
    let hours =
        sources.iter().map(|s| s.samples.len()).sum::<usize>() as f64 / cfg.model.sample_rate as f64 / 3600.0;
    eprintln!(
        "hark: {} recordings, {} speakers, {hours:.2} h loaded in {:.0} s",
        sources.len(),
        speakers.len(),
        t0.elapsed().as_secs_f64()
    );

    // The checkpoint lives beside the output folder, so that folder's parent must exist.
    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    let (checkpoint, state_path) = super::checkpoint_paths(&output);
    let mut start = 0;
    let mut weights = match &cfg.init_model {
        Some(dir) => {
            let dir = base.join(dir);
            let initial =
                TwoSpeakerSeparator::load(&dir).with_context(|| format!("init_model {}", dir.display()))?;
            if initial.config != cfg.model {
                bail!(
                    "init_model {} has the shape {:?}, the recipe's [model] is {:?}",
                    dir.display(),
                    initial.config,
                    cfg.model
                );
            }
            initial.into_weights()
        }
        None => init(&cfg.model, cfg.seed)?,
    };
    if resume && checkpoint.is_file() {
        weights = candle_core::safetensors::load(&checkpoint, &Device::Cpu)?;
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_path)?)?;
        start = state["step"].as_u64().unwrap_or(0) as usize;
        eprintln!("hark: resuming at step {start} (optimizer moments restart)");
    }
    let vars: HashMap<String, Var> = weights
        .iter()
        .map(|(n, t)| Ok((n.clone(), Var::from_tensor(&t.to_device(device)?)?)))
        .collect::<candle_core::Result<_>>()?;
    let mut opt = AdamW::new(
        vars.values().cloned().collect(),
        ParamsAdamW { lr: cfg.lr, weight_decay: 0.0, ..Default::default() },
    )?;
    let current = || -> HashMap<String, Tensor> {
        vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect()
    };
    let save_checkpoint = |step: usize, weights: &HashMap<String, Tensor>| -> anyhow::Result<()> {
        candle_core::safetensors::save(weights, &checkpoint)?;
        std::fs::write(&state_path, serde_json::json!({ "step": step }).to_string())?;
        Ok(())
    };
    let mut rng = Rng::new(cfg.seed ^ 0x5e9a);
    for _ in 0..start {
        rng.next_u64(); // a resumed run draws different mixtures from the ones already seen
    }
    let pb = indicatif::ProgressBar::new(cfg.steps as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template("separation [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("template"),
    );
    pb.set_position(start as u64);
    let mut losses = Vec::new();
    let mut recent = Vec::new();
    let started = Instant::now();
    for step in start..cfg.steps {
        let lr = super::layers::warmup_cosine(cfg.lr, step, cfg.warmup, cfg.steps, 0.05);
        opt.set_learning_rate(lr);
        let (mix, reference) = batch(&sources, &speakers, &cfg, &mut rng, device)?;
        let tensors = current();
        let model = Separator { config: &cfg.model, weights: &tensors };
        let est = model.forward(&mix)?;
        let loss = pit_si_snr(&est, &reference)?.mean_all()?.neg()?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            bail!("step {step}: the loss is {value}; stopping (the last checkpoint is intact)");
        }
        let mut grads = loss.backward()?;
        super::layers::clip_grad_norm(&mut grads, vars.values(), cfg.clip_norm)?;
        opt.step(&grads)?;
        losses.push(value);
        recent.push(value);
        if recent.len() > 50 {
            recent.remove(0);
        }
        let done = step + 1 - start;
        let audio_s = done as f64 * cfg.batch as f64 * cfg.segment_s as f64;
        pb.set_position(step as u64 + 1);
        pb.set_message(format!(
            "SI-SNR {:.2} dB (mean of last {}), {:.1}× real time",
            -recent.iter().sum::<f32>() / recent.len() as f32,
            recent.len(),
            audio_s / started.elapsed().as_secs_f64()
        ));
        if (step + 1) % cfg.checkpoint_every == 0 || step + 1 == cfg.steps {
            // One copy off the device serves the checkpoint and the model folder.
            let weights = on_cpu(&current())?;
            save_checkpoint(step + 1, &weights)?;
            save_model(
                &output,
                &cfg.model,
                &weights,
                &format!("hark train separation --config {} ({} steps)", config_path.display(), step + 1),
            )?;
            let line = format!(
                "step {}: SI-SNR {:.2} dB (mean of last {}), lr {lr:.2e}, {:.1} s, checkpoint saved",
                step + 1,
                -recent.iter().sum::<f32>() / recent.len() as f32,
                recent.len(),
                started.elapsed().as_secs_f64()
            );
            pb.suspend(|| eprintln!("{line}"));
        }
    }
    pb.finish();
    Ok(losses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pit_picks_the_better_order_and_matches_the_metric() {
        let a: Vec<f32> = (0..800).map(|i| (i as f32 * 0.07).sin()).collect();
        let b: Vec<f32> = (0..800).map(|i| (i * 7919 % 97) as f32 / 48.0 - 1.0).collect();
        let refs = Tensor::from_vec([a.clone(), b.clone()].concat(), (1, 2, 800), &Device::Cpu).unwrap();
        let noisy_b: Vec<f32> = b.iter().zip(&a).map(|(x, y)| x + 0.1 * y).collect();
        let swapped =
            Tensor::from_vec([noisy_b.clone(), a.clone()].concat(), (1, 2, 800), &Device::Cpu).unwrap();
        let got = pit_si_snr(&swapped, &refs).unwrap().to_vec1::<f32>().unwrap()[0];
        // a against a is perfect (capped by the 1e-8 terms); b + 0.1a against b is measured as hark's metric does.
        let mean_removed = |x: &[f32]| {
            let m = x.iter().sum::<f32>() / x.len() as f32;
            x.iter().map(|v| v - m).collect::<Vec<f32>>()
        };
        let expected_b =
            crate::separation::metrics::si_sdr(&mean_removed(&noisy_b), &mean_removed(&b)) as f32;
        let row = Tensor::from_vec(a.clone(), (1, 800), &Device::Cpu).unwrap();
        let perfect = si_snr(&row, &row).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!(
            (got - (expected_b + perfect) / 2.0).abs() < 0.05,
            "{got} vs {}",
            (expected_b + perfect) / 2.0
        );
    }

    #[test]
    fn mixtures_draw_speakers_not_recordings() {
        // A speaker with many short recordings weighs as much as one with a single recording.
        let source = |speaker: &str| Source { speaker: speaker.into(), samples: vec![0.0; 10] };
        let mut sources: Vec<Source> = (0..100).map(|_| source("digits")).collect();
        sources.push(source("reader-a"));
        sources.push(source("reader-b"));
        let groups = by_speaker(&sources);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [100, 1, 1]);
        let mut rng = Rng::new(5);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            let (a, b) = two_speakers(3, &mut rng);
            assert_ne!(a, b);
            counts[a] += 1;
            counts[b] += 1;
        }
        // Each speaker is in two thirds of the pairs.
        assert!(counts.iter().all(|&c| (1850..2150).contains(&c)), "{counts:?}");
    }

    /// Zero crossings per sample of a signal (twice its frequency, for a pure tone).
    fn crossing_rate(x: &[f32]) -> f32 {
        x.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count() as f32 / x.len() as f32
    }

    #[test]
    fn changing_speed_scales_the_pitch_and_keeps_the_length() {
        let tone: Vec<f32> =
            (0..8000).map(|i| (2.0 * std::f32::consts::PI * 200.0 * i as f32 / 8000.0).sin()).collect();
        for factor in [0.85f32, 1.0, 1.15] {
            let out = change_speed_linear(&tone, factor, 4000);
            assert_eq!(out.len(), 4000);
            let ratio = crossing_rate(&out) / crossing_rate(&tone[..4000]);
            assert!((ratio - factor).abs() < 0.01, "factor {factor}: pitch ratio {ratio}");
        }
        // Perturbed draws stay within the range asked for, and a zero range is a plain crop.
        let mut rng = Rng::new(3);
        for _ in 0..20 {
            let ratio = crossing_rate(&draw(&tone, 2000, 0.15, &mut rng)) / crossing_rate(&tone);
            assert!((0.83..=1.17).contains(&ratio), "pitch ratio {ratio}");
        }
        let plain = draw(&tone, 2000, 0.0, &mut rng);
        assert!(tone.windows(2000).any(|w| w == plain.as_slice()));
    }
}
