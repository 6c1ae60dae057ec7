//! The recogniser options `transcribe`, `eval` and `worker` share, and the recogniser they load.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::asr::transducer::lm::LmFusion;
use crate::asr::transducer::recognizer::LM_FILE;
use crate::asr::transducer::search::SearchMode;
use crate::asr::transducer::{Decoding, Lookahead, TransducerEngine, TransducerOptions};
use crate::asr::whisper::{SearchOptions, WhisperEngine, WhisperOptions};
use crate::models;
use crate::pipeline::Recognizer;
use crate::separation::EnhanceMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Whisper: accurate, decodes in windows of up to 30 s.
    Whisper,
    /// The streaming ANCAT transducer: emits text while audio arrives.
    Transducer,
}

#[derive(Args, Clone)]
pub struct RecogniserArgs {
    /// Recogniser.
    #[arg(long, value_enum, default_value = "whisper")]
    pub engine: Engine,
    /// Model name (installed on first use) or model folder [default: whisper-tiny.en, or
    /// ancat-tiny.en for the transducer].
    #[arg(long)]
    pub model: Option<String>,
    /// Beam width; 1 is greedy search (the transducer's beam search is modified beam search).
    /// Default: 1, or for a transducer that ships an LM, the beam its LM was tuned with.
    #[arg(long)]
    pub beam_size: Option<usize>,
    /// Transducer: weight of the model's LM in beam search (0 = no LM) [default: as tuned].
    #[arg(long)]
    pub lm_weight: Option<f32>,
    /// Transducer: score added per emitted token when the LM is on [default: as tuned].
    #[arg(long)]
    pub lm_bonus: Option<f32>,
    /// Transducer lookahead: adaptive (as calibrated), adaptive:MS (the schedulers moved to that
    /// mean lookahead in ms), causal, fixed:N (N encoder frames of 20 ms per layer) or full.
    #[arg(long, default_value = "adaptive", value_parser = parse_lookahead)]
    pub lookahead: Lookahead,
    /// Pad every window to 30 s as Whisper was trained (slower on short clips).
    #[arg(long)]
    pub pad_30s: bool,
    /// Files transcribed at once (default: the number of CPU cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Enhance the audio before recognition: denoise (DeepFilterNet3), denoise:gtcrn, denoise:rnnoise, denoise:ensemble or target:NAME
    /// (keep one speaker enrolled with `hark enroll`).
    #[arg(long, value_parser = parse_enhance)]
    pub enhance: Option<EnhanceMode>,
}

pub fn parse_enhance(s: &str) -> Result<EnhanceMode, String> {
    s.parse().map_err(|e: crate::Error| e.to_string())
}

pub fn parse_lookahead(s: &str) -> Result<Lookahead, String> {
    s.parse()
}

pub fn load(r: &RecogniserArgs, timestamps: bool) -> anyhow::Result<Recognizer> {
    match r.engine {
        Engine::Whisper => {
            let dir = models::resolve(r.model.as_deref().unwrap_or("whisper-tiny.en"))?;
            let engine =
                WhisperEngine::load(&dir).with_context(|| format!("loading model {}", dir.display()))?;
            let opts = WhisperOptions {
                search: SearchOptions {
                    beam_size: r.beam_size.unwrap_or(1).max(1),
                    timestamps,
                    ..Default::default()
                },
                pad_to_30s: r.pad_30s,
                ..Default::default()
            };
            Ok(Recognizer::Whisper(engine, opts))
        }
        Engine::Transducer => {
            let dir = models::resolve_transducer(r.model.as_deref().unwrap_or(models::DEFAULT_TRANSDUCER))?;
            let engine = TransducerEngine::load(&dir, r.lookahead)
                .with_context(|| format!("loading model {}", dir.display()))?;
            if !engine.model.config.trained {
                eprintln!(
                    "hark: warning: {} is untrained ({}): its transcripts are meaningless; its lookahead statistics are real",
                    engine.name, engine.model.config.origin
                );
            }
            let search = match r.beam_size {
                Some(beam) if beam > 1 => SearchMode::Beam { beam },
                Some(_) => SearchMode::Greedy { max_symbols: 3 },
                None => engine.default_search().0,
            };
            let tuned = engine.lm.as_ref().map(|lm| lm.fusion);
            let lm = match (search, tuned) {
                (SearchMode::Beam { .. }, Some(f)) => Some(LmFusion {
                    weight: r.lm_weight.unwrap_or(f.weight),
                    bonus: r.lm_bonus.unwrap_or(f.bonus),
                })
                .filter(|f| f.weight > 0.0),
                _ => None,
            };
            if lm.is_none() && r.lm_weight.is_some_and(|w| w > 0.0) {
                bail!(
                    "--lm-weight needs beam search (--beam-size 2 or more) and a model folder with {}",
                    LM_FILE
                );
            }
            Ok(Recognizer::Transducer(
                engine,
                TransducerOptions { decoding: Decoding::Explicit { search, lm }, ..Default::default() },
            ))
        }
    }
}

/// A files progress bar on stderr (none for a single file).
pub fn progress(n: usize) -> ProgressBar {
    if n < 2 {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let pb = ProgressBar::new(n as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files {msg}")
            .expect("valid template"),
    );
    pb
}
