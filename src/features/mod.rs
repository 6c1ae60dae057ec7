//! Acoustic features: Whisper's log-mel spectrogram, computed frame by frame as samples arrive.

pub mod mel;

pub use mel::{HOP_LENGTH, MelFrontend, N_MELS, normalize_whisper};
