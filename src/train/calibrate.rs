//! Calibrating a trained adaptive model to a latency target.
//!
//! Training sees the lookahead only through the regulariser's expectation; the hard gates at run
//! time can land above the wanted mean. Calibration shifts the trained schedulers' biases down by
//! the smallest amount (bisection) that brings the counted mean lookahead of the masked forward
//! (which equals the streaming engine's, tested) to the target, on *training* utterances.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::asr::transducer::config::LatencyPoint;
use crate::asr::transducer::init;
use crate::asr::transducer::model::lookahead_ms;
use crate::asr::transducer::recognizer::RunningNorm;
use crate::asr::transducer::{Lookahead, TransducerConfig, TransducerModel, Vocabulary};
use crate::audio::FileSource;
use crate::features::MelFrontend;

/// Frame-weighted mean lookahead (ms) of `model` in adaptive mode over `mels`, the utterances
/// encoded in parallel (calibration passes over them some thirty times; on a lent GPU machine
/// this runs on its many CPU cores after the training budget).
pub fn mean_lookahead(model: &TransducerModel, mels: &[Tensor]) -> anyhow::Result<f64> {
    let per_utterance = mels
        .par_iter()
        .map(|mel| {
            // Only the readiness is needed: the head's projection is skipped.
            let (_, _, ready_mel) = model.encode_hidden(mel, Lookahead::Adaptive)?;
            let sum: f64 = ready_mel.iter().enumerate().map(|(k, &r)| lookahead_ms(k, r) as f64).sum();
            Ok((sum, ready_mel.len()))
        })
        .collect::<anyhow::Result<Vec<(f64, usize)>>>()?;
    let (sum, n) = per_utterance.iter().fold((0f64, 0usize), |(s, n), &(a, b)| (s + a, n + b));
    Ok(sum / n.max(1) as f64)
}

/// The weights with `offset` subtracted from the scheduler biases of `layers`: a gate threshold
/// of `offset` made part of the model.
fn shifted(
    tensors: &HashMap<String, Tensor>,
    layers: &[usize],
    offset: f32,
) -> anyhow::Result<HashMap<String, Tensor>> {
    let mut t = tensors.clone();
    for l in layers {
        let name = format!("blocks.{l}.scheduler.bias");
        let b = (t.get(&name).with_context(|| format!("model lacks {name}"))? - offset as f64)?;
        t.insert(name, b);
    }
    Ok(t)
}

/// Gate-threshold offsets (around the calibrated biases) at which the latency curve is measured:
/// from most gates open to nearly all closed.
const CURVE_OFFSETS: [f32; 18] =
    [-4.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 12.0];

/// Shifts the schedulers of `layers` in the model folder `dir` until the mean lookahead over
/// `audio` is at most `target_ms`, measures the latency curve of the result (for
/// `--lookahead adaptive:MS`), and rewrites the folder. Returns (before, after, offset).
pub fn calibrate(
    dir: &Path,
    layers: &[usize],
    audio: &[std::path::PathBuf],
    target_ms: f64,
) -> anyhow::Result<(f64, f64, f32)> {
    let config: TransducerConfig = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?;
    let mut mels = Vec::new();
    for path in audio {
        let mel = RunningNorm::normalize_all(&MelFrontend::compute(&FileSource::open(path)?.read_all()?));
        if !mel.is_empty() {
            mels.push(Tensor::from_vec(
                mel.clone(),
                (mel.len() / config.n_mels, config.n_mels),
                &Device::Cpu,
            )?);
        }
    }
    let mut model = TransducerModel::from_tensors(config.clone(), &tensors, &Device::Cpu)?;
    let before = mean_lookahead(&model, &mels)?;
    let offset = if before <= target_ms { 0.0 } else { bisect(&mut model, layers, &mels, target_ms)? };
    let t = shifted(&tensors, layers, offset)?;
    let mut model = TransducerModel::from_tensors(config.clone(), &t, &Device::Cpu)?;
    let after = mean_lookahead(&model, &mels)?;
    let mut config = config;
    if offset > 0.0 {
        config.origin +=
            &format!("; schedulers calibrated to ≤ {target_ms} ms mean lookahead (bias −{offset:.3})");
    }
    config.calibrated_layers = layers.to_vec();
    config.latency_curve = CURVE_OFFSETS
        .iter()
        .map(|&threshold_offset| {
            model.set_gate_thresholds(layers, threshold_offset);
            Ok(LatencyPoint { threshold_offset, mean_lookahead_ms: mean_lookahead(&model, &mels)? })
        })
        .collect::<anyhow::Result<_>>()?;
    init::save_model(dir, &config, &t, &Vocabulary::load(&dir.join("vocabulary.txt"))?)?;
    Ok((before, after, offset))
}

/// The smallest gate threshold of `layers` (bisection, to 1/256 of the bracket) that brings the
/// mean lookahead to at most `target_ms`: the lookahead falls as the gates close.
fn bisect(
    model: &mut TransducerModel,
    layers: &[usize],
    mels: &[Tensor],
    target_ms: f64,
) -> anyhow::Result<f32> {
    let mut at = |threshold: f32| {
        model.set_gate_thresholds(layers, threshold);
        mean_lookahead(model, mels)
    };
    let (mut lo, mut hi) = (0f32, 1f32);
    while at(hi)? > target_ms {
        hi *= 2.0;
        if hi > 1e3 {
            anyhow::bail!("the lookahead stays above {target_ms} ms with every trained gate closed");
        }
    }
    for _ in 0..8 {
        let mid = 0.5 * (lo + hi);
        if at(mid)? > target_ms {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::transducer::init::{random_tensors, save_model};

    #[test]
    fn calibration_brings_the_counted_lookahead_to_the_target() {
        let mut cfg = TransducerConfig::tiny(29);
        (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.ffn_dim) = (32, 4, 2, 64);
        cfg.lookahead_frames = vec![0, 4];
        let mut t = random_tensors(&cfg, 3).unwrap();
        // Block 1's gates mostly open.
        t.insert("blocks.1.scheduler.bias".into(), Tensor::new(&[3f32], &Device::Cpu).unwrap());
        let dir = tempfile::tempdir().unwrap();
        save_model(dir.path(), &cfg, &t, &Vocabulary::characters()).unwrap();
        let audio = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/speech-16k-mono.wav")];
        let (before, after, offset) = calibrate(dir.path(), &[1], &audio, 60.0).unwrap();
        assert!(before > 60.0 && after <= 60.0 && after > 12.5 && offset > 0.0, "{before} {after} {offset}");
        // The folder now holds the calibrated model: measuring it again gives `after`.
        let model = TransducerModel::load(dir.path(), &Device::Cpu).unwrap();
        let mel = RunningNorm::normalize_all(&MelFrontend::compute(
            &FileSource::open(&audio[0]).unwrap().read_all().unwrap(),
        ));
        let mel = Tensor::from_vec(mel.clone(), (mel.len() / 80, 80), &Device::Cpu).unwrap();
        assert!((mean_lookahead(&model, std::slice::from_ref(&mel)).unwrap() - after).abs() < 1e-9);
        assert!(model.config.origin.contains("calibrated"));
        // Its latency curve falls as the threshold rises, through the calibrated point, and a
        // run-time target in its range gives about that lookahead.
        let curve = model.config.latency_curve.clone();
        assert!(curve.windows(2).all(|p| p[1].mean_lookahead_ms <= p[0].mean_lookahead_ms), "{curve:?}");
        assert!(
            curve.iter().any(|p| p.threshold_offset == 0.0 && (p.mean_lookahead_ms - after).abs() < 1e-9)
        );
        assert_eq!(model.config.calibrated_layers, [1]);
        let target = 0.5 * (after + curve.last().unwrap().mean_lookahead_ms);
        let mut moved = model;
        moved.set_latency_target(target).unwrap();
        let reached = mean_lookahead(&moved, &[mel]).unwrap();
        assert!((reached - target).abs() < 10.0, "asked {target:.1} ms, got {reached:.1} ms ({curve:?})");
    }
}
