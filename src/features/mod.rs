//! Acoustic features: Whisper's log-mel spectrogram, computed frame by frame as samples arrive.

pub mod mel;

pub use mel::{MelFrontend, N_MELS, HOP_LENGTH, normalize_whisper};
