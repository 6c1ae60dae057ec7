//! Whisper: the recogniser for finals and for batch transcription, on candle.

pub mod config;
pub mod decode;
pub mod model;
pub mod tokenizer;
mod transcribe;

pub use decode::SearchOptions;
pub use transcribe::{WhisperEngine, WhisperOptions, WhisperStage};
