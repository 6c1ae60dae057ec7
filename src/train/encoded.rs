//! Training data: each utterance run once through the front end and the frozen blocks, with
//! its labels (and distillation target), kept on disk for the next run with the same data; and
//! the trained model a run continues from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{DType, Device, Module, Tensor};

use super::augment;
use super::bar;
use crate::asr::transducer::recognizer::RunningNorm;
use crate::asr::transducer::{Lookahead, TransducerModel, Vocabulary};
use crate::audio::FileSource;
use crate::eval::ManifestEntry;
use crate::features::MelFrontend;

/// A training example: the frozen blocks' output (50 Hz, `[T, d]`), per frame the last mel frame
/// it depends on, the labels, and the distillation target when distilling.
pub(super) struct Example {
    pub(super) hidden: Tensor,
    pub(super) ready: Tensor,
    pub(super) labels: Vec<u32>,
    pub(super) target: Option<Tensor>,
}

pub(super) fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of the weights the cached hidden states come from: the conv front end and the
/// frozen blocks (not the trained ones, which an `init_model` also carries).
pub(super) fn frozen_weights_sha256(
    tensors: &HashMap<String, Tensor>,
    first_trained: usize,
) -> anyhow::Result<String> {
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
pub(super) struct InitModel {
    pub(super) dir: PathBuf,
    pub(super) tensors: HashMap<String, Tensor>,
    pub(super) vocab: Vocabulary,
}

impl InitModel {
    pub(super) fn load(dir: &Path) -> anyhow::Result<Self> {
        let weights = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)
            .with_context(|| format!("init_model: {}", weights.display()))?;
        let vocab = Vocabulary::load(&dir.join("vocabulary.txt"))?;
        Ok(Self { dir: dir.to_path_buf(), tensors, vocab })
    }

    /// Replaces the fresh tensors by the model's, which must have the same names and shapes.
    pub(super) fn overlay(&self, tensors: &mut HashMap<String, Tensor>) -> anyhow::Result<()> {
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
pub(super) fn encode_all(
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

/// Stores encoded utterances (hidden states and targets as f16) under a temporary name, then
/// renames, so an interrupted save leaves no half file behind.
pub(super) fn save_encoded(path: &Path, data: &[Example]) -> anyhow::Result<()> {
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

pub(super) fn load_encoded(path: &Path, device: &Device) -> Option<Vec<Example>> {
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
