//! Node adapters for the plain algorithm structs.

use std::sync::Arc;

use super::{AudioChunk, Stage};
use crate::asr::Segment;
use crate::asr::whisper::{WhisperEngine, WhisperOptions, WhisperStage};
use crate::error::Result;
use crate::features::MelFrontend;
use crate::features::mel::MelFrame;

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

/// Log-mel frames → transcript segments.
pub struct WhisperNode(WhisperStage);

impl WhisperNode {
    pub fn new(engine: Arc<WhisperEngine>, opts: WhisperOptions) -> Self {
        Self(WhisperStage::new(engine, opts))
    }
}

impl Stage for WhisperNode {
    type In = Vec<MelFrame>;
    type Out = Segment;
    const NAME: &'static str = "whisper";

    fn process(&mut self, input: Vec<MelFrame>, out: &mut Vec<Segment>) -> Result<()> {
        self.0.push(&input, out)
    }

    fn finish(&mut self, out: &mut Vec<Segment>) -> Result<()> {
        self.0.finish(out)
    }
}
