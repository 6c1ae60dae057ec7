//! Node adapters for the plain algorithm structs.

use std::sync::Arc;

use super::{AudioChunk, Stage};
use crate::asr::Segment;
use crate::asr::transducer::recognizer::TransducerResult;
use crate::asr::transducer::{TransducerEngine, TransducerOptions, TransducerStage};
use crate::asr::whisper::{WhisperEngine, WhisperOptions, WhisperStage};
use crate::error::Result;
use crate::features::MelFrontend;
use crate::features::mel::MelFrame;
use crate::separation::Enhancer;

/// Audio → log-mel frames (each carrying its frame index, i.e. its stream time).
#[derive(Default)]
pub struct MelStage(MelFrontend);

impl Stage for MelStage {
    type In = AudioChunk;
    type Out = Vec<MelFrame>;
    const NAME: &'static str = "mel";

    fn process(&mut self, input: AudioChunk, out: &mut Vec<Vec<MelFrame>>) -> Result<()> {
        let mut frames = Vec::new();
        self.0.push(&input.samples, &mut frames);
        if !frames.is_empty() {
            out.push(frames);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Vec<MelFrame>>) -> Result<()> {
        let mut frames = Vec::new();
        self.0.finish(&mut frames);
        if !frames.is_empty() {
            out.push(frames);
        }
        Ok(())
    }
}

/// What recogniser nodes emit.
#[derive(Debug, Clone)]
pub enum RecognizerEvent {
    /// A finished piece of transcript (Whisper).
    Segment(Segment),
    /// The text so far, while audio is still arriving (transducer).
    Partial(String),
    /// Everything recognised in the stream, with words and lookahead (transducer).
    Final(TransducerResult),
}

/// Log-mel frames → transcript segments.
pub struct WhisperNode(WhisperStage);

impl WhisperNode {
    pub fn new(engine: Arc<WhisperEngine>, opts: WhisperOptions) -> Self {
        Self(WhisperStage::new(engine, opts))
    }
}

impl Stage for WhisperNode {
    type In = Vec<MelFrame>;
    type Out = RecognizerEvent;
    const NAME: &'static str = "whisper";

    fn process(&mut self, input: Vec<MelFrame>, out: &mut Vec<RecognizerEvent>) -> Result<()> {
        let mut segments = Vec::new();
        self.0.push(&input, &mut segments)?;
        out.extend(segments.into_iter().map(RecognizerEvent::Segment));
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<RecognizerEvent>) -> Result<()> {
        let mut segments = Vec::new();
        self.0.finish(&mut segments)?;
        out.extend(segments.into_iter().map(RecognizerEvent::Segment));
        Ok(())
    }
}

/// Log-mel frames → partials while streaming, then the final result.
pub struct TransducerNode(Option<TransducerStage>);

impl TransducerNode {
    pub fn new(engine: Arc<TransducerEngine>, opts: TransducerOptions) -> Self {
        Self(Some(TransducerStage::new(engine, opts)))
    }
}

impl Stage for TransducerNode {
    type In = Vec<MelFrame>;
    type Out = RecognizerEvent;
    const NAME: &'static str = "transducer";

    fn process(&mut self, input: Vec<MelFrame>, out: &mut Vec<RecognizerEvent>) -> Result<()> {
        let stage = self.0.as_mut().expect("not finished");
        if let Some(partial) = stage.push(&input)? {
            out.push(RecognizerEvent::Partial(partial));
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<RecognizerEvent>) -> Result<()> {
        if let Some(stage) = self.0.take() {
            out.push(RecognizerEvent::Final(stage.finish()?));
        }
        Ok(())
    }
}

/// 16 kHz audio → the same audio enhanced (denoised or one speaker kept), aligned sample for
/// sample: the chunks it emits carry their own stream positions.
pub struct EnhanceStage {
    enhancer: Box<dyn Enhancer>,
    emitted: u64,
}

impl EnhanceStage {
    pub fn new(enhancer: Box<dyn Enhancer>) -> Self {
        Self { enhancer, emitted: 0 }
    }

    fn emit(&mut self, samples: Vec<f32>, out: &mut Vec<AudioChunk>) {
        if !samples.is_empty() {
            let start = self.emitted;
            self.emitted += samples.len() as u64;
            out.push(AudioChunk { start, samples });
        }
    }
}

impl Stage for EnhanceStage {
    type In = AudioChunk;
    type Out = AudioChunk;
    const NAME: &'static str = "enhance";

    fn process(&mut self, input: AudioChunk, out: &mut Vec<AudioChunk>) -> Result<()> {
        let samples = self.enhancer.process(&input.samples);
        self.emit(samples, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<AudioChunk>) -> Result<()> {
        let samples = self.enhancer.finish();
        self.emit(samples, out);
        Ok(())
    }
}
