//! What follows a run: the latency calibration of the exported model, and the periodic dev WER.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::{TrainConfig, calibrate, load_config, resolve, training_entries};
use crate::asr::transducer::{Lookahead, TransducerEngine, TransducerOptions};
use crate::eval::{ManifestEntry, read_manifest, wer_counts};
use crate::pipeline::{Recognizer, transcribe_files};

/// Runs the latency calibration of the config (if any) on its exported model: the schedulers of
/// the top `unfreeze` blocks, on `calibrate_files` training utterances spread over `entries`.
pub(super) fn calibrate_exported(
    cfg: &TrainConfig,
    output: &Path,
    entries: &[ManifestEntry],
) -> anyhow::Result<()> {
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
pub(super) fn dev_wer(model_dir: &Path, manifest: &Path, mode: Lookahead, n: usize) -> anyhow::Result<f64> {
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
