//! The transducer as a stage: log-mel frames in, partial and final transcripts out.

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;

use super::lm::{LmFusion, NgramLm};
use super::search::{Joiner, PartialTracker, Search, SearchMode, Word, words};
use super::stream::{EncoderFrame, StreamingEncoder};
use super::{Lookahead, LookaheadHistogram, TransducerModel, Vocabulary};
use crate::error::Result;
use crate::features::mel::{MelFrame, N_MELS};

pub struct TransducerEngine {
    pub model: Arc<TransducerModel>,
    pub joiner: Joiner,
    pub vocab: Vocabulary,
    pub name: String,
    /// The word-piece LM shipped in the model folder (`lm.safetensors`), with its tuned fusion.
    pub lm: Option<Arc<NgramLm>>,
    /// The lookahead mode it was loaded for (its schedulers' thresholds follow it): the one
    /// source of truth for every stream it decodes.
    pub lookahead: Lookahead,
}

/// The LM's file in a model folder.
pub const LM_FILE: &str = "lm.safetensors";

impl TransducerEngine {
    /// Loads a model folder for `lookahead`; `adaptive:MS` moves the schedulers to that latency.
    pub fn load(dir: &Path, lookahead: Lookahead) -> Result<Arc<Self>> {
        let _span = tracing::info_span!("load_transducer", dir = %dir.display()).entered();
        let mut model = TransducerModel::load(dir, &Device::Cpu)?;
        if let Lookahead::AdaptiveAt(ms) = lookahead {
            model
                .set_latency_target(ms as f64)
                .map_err(|e| crate::error::Error::Model(format!("--lookahead {lookahead}: {e}")))?;
        }
        let vocab = Vocabulary::load(&dir.join("vocabulary.txt"))?;
        if vocab.len() != model.config.vocab_size {
            return Err(crate::error::Error::Model(format!(
                "{}: vocabulary.txt has {} tokens, the model {}",
                dir.display(),
                vocab.len(),
                model.config.vocab_size
            )));
        }
        let joiner = Joiner::from_model(&model)?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let lm_path = dir.join(LM_FILE);
        let lm = if lm_path.exists() {
            let lm = NgramLm::load(&lm_path)?;
            if lm.vocab_size() != vocab.len() {
                return Err(crate::error::Error::Model(format!(
                    "{}: the LM has {} tokens, the vocabulary {}",
                    lm_path.display(),
                    lm.vocab_size(),
                    vocab.len()
                )));
            }
            Some(Arc::new(lm))
        } else {
            None
        };
        Ok(Arc::new(Self { model: Arc::new(model), joiner, vocab, name, lm, lookahead }))
    }

    /// The decoding this model is meant for: beam search with its LM at the LM's tuned settings
    /// where the folder has one, else greedy.
    pub fn default_search(&self) -> (SearchMode, Option<LmFusion>) {
        match &self.lm {
            Some(lm) => (SearchMode::Beam { beam: lm.beam }, Some(lm.fusion)),
            None => (SearchMode::Greedy { max_symbols: 3 }, None),
        }
    }
}

/// How a stream is searched.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Decoding {
    /// As the model folder says: beam search with its LM at the LM's tuned settings where it
    /// ships one, else greedy (see [`TransducerEngine::default_search`]).
    #[default]
    Model,
    /// This search, with the engine's LM fused at these weights (None: no LM).
    Explicit { search: SearchMode, lm: Option<LmFusion> },
}

/// Per-stream options. The lookahead is not among them: it is the engine's
/// ([`TransducerEngine::lookahead`]), fixed when the model is loaded.
#[derive(Debug, Clone, Copy)]
pub struct TransducerOptions {
    pub decoding: Decoding,
    /// Full-context mode waits for the end of a segment; without endpoints, cut segments here.
    pub max_segment_frames: usize,
}

impl Default for TransducerOptions {
    fn default() -> Self {
        Self { decoding: Decoding::Model, max_segment_frames: 3000 }
    }
}

impl TransducerOptions {
    /// Greedy search without an LM, whatever the model folder ships (training's dev checks).
    pub fn greedy() -> Self {
        Self {
            decoding: Decoding::Explicit { search: SearchMode::Greedy { max_symbols: 3 }, lm: None },
            ..Default::default()
        }
    }
}

/// Whisper's log-mel scaling made causal: the clamp floor follows the loudest frame so far
/// instead of the loudest in a 30 s window.
#[derive(Debug, Clone)]
pub struct RunningNorm {
    max: f32,
}

impl Default for RunningNorm {
    fn default() -> Self {
        Self { max: f32::NEG_INFINITY }
    }
}

impl RunningNorm {
    /// A whole recording's frames, normalised as the streaming stage would (flattened).
    pub fn normalize_all(frames: &[MelFrame]) -> Vec<f32> {
        let mut norm = Self::default();
        let mut out = Vec::with_capacity(frames.len() * N_MELS);
        for f in frames {
            norm.apply(&f.values, &mut out);
        }
        out
    }

    pub fn apply(&mut self, frame: &[f32; N_MELS], out: &mut Vec<f32>) {
        self.max = frame.iter().copied().fold(self.max, f32::max);
        out.extend(frame.iter().map(|&v| (v.max(self.max - 8.0) + 4.0) / 4.0));
    }
}

/// What the stage produced for a stream.
#[derive(Debug, Clone, Default)]
pub struct TransducerResult {
    pub text: String,
    pub words: Vec<Word>,
    /// Every encoder output frame's lookahead.
    pub lookahead: LookaheadHistogram,
    pub corrections: usize,
}

/// The text of one segment, fixed at an endpoint.
#[derive(Debug, Clone, Default)]
pub struct FinalSegment {
    pub text: String,
    pub words: Vec<Word>,
}

fn new_search(engine: &TransducerEngine, opts: &TransducerOptions) -> Search {
    let (search, lm) = match opts.decoding {
        Decoding::Model => engine.default_search(),
        Decoding::Explicit { search, lm } => (search, lm),
    };
    Search::new(search, &engine.joiner).with_lm(engine.lm.clone().zip(lm))
}

pub struct TransducerStage {
    engine: Arc<TransducerEngine>,
    opts: TransducerOptions,
    encoder: StreamingEncoder,
    search: Search,
    norm: RunningNorm,
    partial: PartialTracker,
    corrections: usize,
    lookahead: LookaheadHistogram,
    finals: Vec<FinalSegment>,
    segment_frames: usize,
    buf: Vec<f32>,
    frames: Vec<EncoderFrame>,
}

impl TransducerStage {
    pub fn new(engine: Arc<TransducerEngine>, opts: TransducerOptions) -> Self {
        Self {
            encoder: StreamingEncoder::new(engine.model.clone(), engine.lookahead),
            search: new_search(&engine, &opts),
            engine,
            opts,
            norm: RunningNorm::default(),
            partial: PartialTracker::default(),
            corrections: 0,
            lookahead: LookaheadHistogram::default(),
            finals: Vec::new(),
            segment_frames: 0,
            buf: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Feeds mel frames; returns the partial text when it changed.
    pub fn push(&mut self, frames: &[MelFrame]) -> Result<Option<String>> {
        self.buf.clear();
        for f in frames {
            self.norm.apply(&f.values, &mut self.buf);
        }
        self.segment_frames += frames.len();
        self.encoder.push(&self.buf, &mut self.frames)?;
        if self.engine.lookahead == Lookahead::Full && self.segment_frames >= self.opts.max_segment_frames {
            self.encoder.finish(&mut self.frames)?;
            self.segment_frames = 0;
        }
        Ok(self.decode_frames())
    }

    /// An endpoint: flushes the encoder, fixes the segment's text as final and starts the next
    /// segment from a clean state (so memory does not grow with the length of the stream).
    pub fn endpoint(&mut self) -> Result<()> {
        self.encoder.finish(&mut self.frames)?;
        self.segment_frames = 0;
        self.decode_frames();
        let best = self.search.best();
        if !best.emissions.is_empty() {
            let text = self.engine.vocab.decode(&best.tokens());
            self.finals.push(FinalSegment { text, words: words(&best.emissions, &self.engine.vocab) });
        }
        self.search = new_search(&self.engine, &self.opts);
        self.corrections += self.partial.corrections;
        self.partial = PartialTracker::default();
        Ok(())
    }

    /// Final segments fixed since the last call.
    pub fn take_finals(&mut self) -> Vec<FinalSegment> {
        std::mem::take(&mut self.finals)
    }

    fn decode_frames(&mut self) -> Option<String> {
        if self.frames.is_empty() {
            return None;
        }
        for f in self.frames.drain(..) {
            self.search.step(&self.engine.joiner, f.index, &f.values);
            self.lookahead.add(f.lookahead_ms);
        }
        let text = self.engine.vocab.decode(&self.search.best().tokens());
        (text != self.partial.shown).then(|| {
            self.partial.update(&text);
            text
        })
    }

    /// Ends the stream and returns everything not yet taken as finals.
    pub fn finish(mut self) -> Result<TransducerResult> {
        self.endpoint()?;
        let finals = self.take_finals();
        Ok(TransducerResult {
            text: finals.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(" "),
            words: finals.into_iter().flat_map(|f| f.words).collect(),
            lookahead: self.lookahead,
            corrections: self.corrections,
        })
    }
}
