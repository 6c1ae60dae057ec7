//! `hark train lm`: the transducer's word-piece n-gram LM, from plain text and transcripts, in
//! the transducer's own vocabulary, written into its model folder.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use flate2::read::GzDecoder;
use serde::Deserialize;

use crate::asr::transducer::Vocabulary;
use crate::asr::transducer::lm::{LmFusion, LmTraining, NgramLm};
use crate::asr::transducer::recognizer::LM_FILE;
use crate::eval::normalize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmConfig {
    /// Transducer folders (relative to this file) whose vocabulary the LM predicts; the LM is
    /// written into each as `lm.safetensors`. They must share one vocabulary.
    pub models: Vec<PathBuf>,
    /// Training text: one sentence per line, plain or gzipped, or manifests (`.tsv`: the
    /// reference transcript column).
    pub text: Vec<PathBuf>,
    /// Held-out manifests or text for the perplexity printed at the end (never trained on).
    #[serde(default)]
    pub dev: Vec<PathBuf>,
    pub order: usize,
    /// N-grams of order 3 and above seen fewer times are dropped.
    #[serde(default = "default_min_count")]
    pub min_count: u32,
    /// Fusion settings stored with the LM (tuned on a dev set; see models/README.md).
    pub lm_weight: f32,
    pub lm_bonus: f32,
    pub beam: usize,
}

fn default_min_count() -> u32 {
    2
}

/// The sentences of a text file or manifest, normalised as transducer labels are.
fn sentences(path: &Path) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let manifest = path.extension().is_some_and(|e| e == "tsv");
    let mut out = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let text = if manifest {
            if i == 0 {
                continue; // the header
            }
            line.split('\t').nth(2).unwrap_or_default().to_string()
        } else {
            line
        };
        let text = normalize(&text);
        if !text.is_empty() {
            out.push(text);
        }
    }
    Ok(out)
}

pub fn train(config_path: &Path) -> anyhow::Result<()> {
    let cfg: LmConfig = super::recipe::read(config_path)?;
    let base = config_path.parent().unwrap_or(Path::new("."));
    let Some(first) = cfg.models.first() else { bail!("{}: models is empty", config_path.display()) };
    let vocab = Vocabulary::load(&base.join(first).join("vocabulary.txt"))?;
    for other in &cfg.models[1..] {
        if Vocabulary::load(&base.join(other).join("vocabulary.txt"))? != vocab {
            bail!("{} and {} have different vocabularies", first.display(), other.display());
        }
    }
    let encode = |texts: Vec<String>| -> Vec<Vec<u32>> {
        texts.iter().map(|t| vocab.encode(t)).filter(|s| !s.is_empty()).collect()
    };
    let mut train = Vec::new();
    for path in &cfg.text {
        let s = sentences(&base.join(path))?;
        eprintln!("hark: {} sentences from {}", s.len(), path.display());
        train.extend(encode(s));
    }
    let tokens: usize = train.iter().map(Vec::len).sum();
    eprintln!("hark: training an order-{} LM on {} sentences, {tokens} word pieces", cfg.order, train.len());
    let mut lm = NgramLm::train(
        train.into_iter(),
        vocab.len(),
        LmTraining { order: cfg.order, min_count: cfg.min_count },
    )?;
    lm.fusion = LmFusion { weight: cfg.lm_weight, bonus: cfg.lm_bonus };
    lm.beam = cfg.beam;
    let mut dev = Vec::new();
    for path in &cfg.dev {
        dev.extend(encode(sentences(&base.join(path))?));
    }
    if !dev.is_empty() {
        let per_token = lm.mean_log_prob(&dev);
        eprintln!(
            "hark: held-out perplexity {:.2} per word piece over {} sentences",
            (-per_token).exp(),
            dev.len()
        );
    }
    for model in &cfg.models {
        let out = base.join(model).join(LM_FILE);
        lm.save(&out)?;
        let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        println!("{} ({:.1} MB)", out.display(), size as f64 / 1e6);
    }
    Ok(())
}
